"""kzoo's exceptions.

Every error kzoo raises on purpose is a :class:`KzooError`. Errors about what the
caller passed are also :class:`ValueError`, so ``except ValueError`` keeps working
for code written against Keras. Messages follow one shape: what was expected, what
was received, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KzooError(Exception):
    """Root of every error kzoo raises on purpose."""


class InvalidArgumentError(KzooError, ValueError):
    """An argument has the wrong type, shape or value."""


class UnknownModelError(InvalidArgumentError):
    """No model is registered under the requested name."""


class UnknownWeightsError(InvalidArgumentError):
    """The model has no weights under the requested tag."""


class RegistryError(KzooError, ValueError):
    """A model or weights record could not be registered (e.g. a duplicate name)."""


class WeightsError(KzooError):
    """A weights file could not be read or does not fit the model."""


class IntegrityError(WeightsError):
    """A weights file does not match its recorded hash or size."""


class DownloadError(KzooError, OSError):
    """A weights file could not be downloaded."""


class OfflineError(KzooError):
    """A download was needed while ``KZOO_OFFLINE=1`` forbids network access."""


class DataNotFoundError(KzooError, FileNotFoundError):
    """A dataset kzoo reads from the shared data directory is missing."""


class ExportError(KzooError):
    """A model could not be exported, or its exported file did not match the Keras model."""


class BackendError(KzooError, RuntimeError):
    """A feature needs what the current Keras backend lacks (TensorFlow itself, or its backend)."""


def expected_received(what: str, expected: str, received: object, fix: str | None = None) -> str:
    """Formats the standard message: ``<what>: expected ..., received ... . <fix>``."""
    message = f"{what}: expected {expected}, received {received!r}."
    if fix:
        message += f" {fix}"
    return message


def import_tensorflow(feature: str):
    """Imports TensorFlow for ``feature``, or raises :class:`BackendError` saying why it is needed.

    Models, weights and training run on the JAX backend without TensorFlow; ``tf.data``
    pipelines, TensorBoard summaries, SavedModels and ``tf.distribute`` need it installed.
    """
    try:
        import tensorflow
    except ImportError as error:
        raise BackendError(
            expected_received(
                feature,
                "TensorFlow installed (kzoo's data pipelines, TensorBoard summaries, SavedModels and "
                "tf.distribute are built on it; the models themselves run on the JAX backend without it)",
                f"no TensorFlow ({error})",
                "pip install tensorflow-cpu next to JAX, or feed NumPy arrays to fit() instead.",
            )
        ) from error
    return tensorflow


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """Returns ``did you mean 'a', 'b'?`` for the closest candidates, or ``''``."""
    matches = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    if not matches:
        return ""
    return "did you mean " + ", ".join(repr(m) for m in matches) + "?"
