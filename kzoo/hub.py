"""TF-Hub, Kaggle and local SavedModel backbones as Keras 3 layers.

``tensorflow_hub.KerasLayer`` is a ``tf_keras`` (Keras 2) layer: Keras 3 models reject it
("Only instances of keras.Layer can be added to a Sequential model" and the like), so kzoo
uses ``tensorflow_hub`` only to *resolve* a handle to a local directory (downloading and
caching it under ``TFHUB_CACHE_DIR``) and wraps that directory in Keras 3's own
:class:`keras.layers.TFSMLayer`. TFSMLayer tracks the SavedModel's variables, so
``trainable=True`` fine-tunes them with ``fit``.

Example:
    >>> import keras
    >>> import kzoo.hub
    >>> backbone = kzoo.hub.load("https://www.kaggle.com/models/google/mobilenet-v2/"
    ...                          "TensorFlow2/100-224-feature-vector/2")
    >>> inputs = keras.Input((224, 224, 3))
    >>> outputs = keras.layers.Dense(5)(backbone(inputs))
    >>> model = keras.Model(inputs, outputs)
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import keras

from kzoo.errors import BackendError, InvalidArgumentError, OfflineError, did_you_mean, expected_received

# Handles tensorflow_hub resolves over the network; everything else is a path.
_REMOTE_PREFIXES = ("http://", "https://", "gs://")


def _is_remote(handle: str) -> bool:
    return handle.startswith(_REMOTE_PREFIXES)


def _offline() -> bool:
    return os.environ.get("KZOO_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached_download(handle: str) -> str | None:
    """The directory ``tensorflow_hub`` already downloaded ``handle`` into, if any.

    tensorflow_hub names its cache entries ``sha1(handle)`` under ``TFHUB_CACHE_DIR`` (see
    ``compressed_module_resolver._module_dir``) and offers no public look-up that avoids the
    network, so kzoo recomputes the name to honour ``KZOO_OFFLINE`` with a warm cache.
    """
    from tensorflow_hub import resolver

    module_dir = os.path.join(resolver.tfhub_cache_dir(use_temp=True), hashlib.sha1(handle.encode("utf8")).hexdigest())
    if os.path.isdir(module_dir) and os.listdir(module_dir):
        return module_dir
    return None


def _resolve(handle: str) -> str:
    """Returns a local SavedModel directory for ``handle``, downloading it if allowed."""
    if _is_remote(handle):
        if _offline():
            cached = _cached_download(handle)
            if cached is None:
                raise OfflineError(
                    f"kzoo.hub.load({handle!r}) needs to download the model, but KZOO_OFFLINE=1 forbids "
                    "network access. Unset KZOO_OFFLINE once to fill the cache (TFHUB_CACHE_DIR), or pass "
                    "the path of a local SavedModel directory."
                )
            return cached
        import tensorflow_hub

        return tensorflow_hub.resolve(handle)
    path = os.path.abspath(os.path.expanduser(handle))
    if not os.path.isdir(path):
        raise InvalidArgumentError(
            expected_received(
                "handle",
                "a TF-Hub/Kaggle URL or an existing SavedModel directory",
                handle,
                f"No directory exists at {path}.",
            )
        )
    return path


def _signature_keys(path: str) -> list[str]:
    """Reads the signature names from ``saved_model.pb`` without loading the model."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    keys = {key for meta_graph in proto.meta_graphs for key in meta_graph.signature_def}
    # "__saved_model_init_op" is TensorFlow's internal initializer, not something to call.
    return sorted(key for key in keys if not key.startswith("__"))


def _output_keys(endpoint_fn: Any) -> list[str] | None:
    """The keys of the endpoint's dict output, or ``None`` when it is not a dict or unknown."""
    structured = getattr(endpoint_fn, "structured_outputs", None)
    if structured is None:
        # A tf.function attribute (not a signature): ask its traced concrete functions.
        concrete = getattr(endpoint_fn, "concrete_functions", None) or []
        structured = concrete[0].structured_outputs if concrete else None
    if isinstance(structured, dict):
        return sorted(structured)
    return None


@keras.saving.register_keras_serializable(package="kzoo")
class HubOutput(keras.layers.Layer):
    """Selects one entry of a SavedModel endpoint's dict output.

    Serving signatures always return dicts (``{"output_0": ...}``); a backbone used inside
    a functional model should return one tensor, so :func:`load` wraps the
    :class:`keras.layers.TFSMLayer` in this layer when the endpoint returns a dict.

    Args:
        saved_model: The wrapped :class:`keras.layers.TFSMLayer`.
        output_key: The key to return.
        **kwargs: Standard layer arguments (``name``, ``trainable``).

    Example:
        >>> import kzoo.hub
        >>> layer = kzoo.hub.load("path/to/saved_model", output_key="features")
        >>> isinstance(layer, kzoo.hub.HubOutput)
        True
    """

    def __init__(self, saved_model: keras.layers.Layer, output_key: str, **kwargs):
        super().__init__(**kwargs)
        self.saved_model = saved_model
        self.output_key = output_key

    def call(self, inputs, training=False):
        outputs = self.saved_model(inputs, training=training)
        if self.output_key not in outputs:
            raise InvalidArgumentError(expected_received("output_key", f"one of {sorted(outputs)}", self.output_key))
        return outputs[self.output_key]

    def get_config(self) -> dict:
        config = super().get_config()
        config["saved_model"] = keras.saving.serialize_keras_object(self.saved_model)
        config["output_key"] = self.output_key
        return config

    @classmethod
    def from_config(cls, config: dict) -> HubOutput:
        # Deserializing the TFSMLayer enforces Keras' safe_mode check: a SavedModel is code.
        config = dict(config)
        config["saved_model"] = keras.saving.deserialize_keras_object(config["saved_model"])
        return cls(**config)


def load(
    handle: str | os.PathLike,
    *,
    trainable: bool = False,
    call_endpoint: str = "serving_default",
    output_key: str | None = None,
    name: str | None = None,
) -> keras.layers.Layer:
    """Loads a TF-Hub / Kaggle model or a local SavedModel as a Keras 3 layer.

    Args:
        handle: A TF-Hub or Kaggle model URL (downloaded once into ``TFHUB_CACHE_DIR``; with
            ``KZOO_OFFLINE=1`` only an already cached download is used) or the path of a local
            SavedModel directory.
        trainable: Whether ``fit`` updates the SavedModel's variables (fine-tuning the
            backbone) or leaves them frozen.
        call_endpoint: The signature (``"serving_default"``) or ``tf.function`` attribute
            to call.
        output_key: Which entry to return when the endpoint returns a dict. May be omitted
            when the dict has a single entry.
        name: Layer name; defaults to one Keras derives.

    Returns:
        A layer mapping the endpoint's input to one tensor: a :class:`keras.layers.TFSMLayer`,
        or a :class:`HubOutput` around it when the endpoint returns a dict.

    Raises:
        BackendError: The Keras backend is not TensorFlow.
        InvalidArgumentError: The directory is missing or is not a SavedModel, the endpoint
            does not exist, or the dict output needs an ``output_key``.
        OfflineError: ``KZOO_OFFLINE=1`` and the handle is neither local nor cached.

    Example:
        >>> import keras
        >>> import kzoo.hub
        >>> backbone = kzoo.hub.load("path/to/saved_model", trainable=True)
        >>> inputs = keras.Input((4,))
        >>> model = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs)))
    """
    if keras.backend.backend() != "tensorflow":
        # A SavedModel is a TensorFlow graph: keras.layers.TFSMLayer runs it on TensorFlow only.
        raise BackendError(
            expected_received(
                "kzoo.hub.load: Keras backend",
                "'tensorflow' (a SavedModel is a TensorFlow graph, which only TensorFlow runs)",
                keras.backend.backend(),
                "Set KERAS_BACKEND=tensorflow before importing keras, or use a kzoo.get() backbone.",
            )
        )
    handle = os.fspath(handle)
    path = _resolve(handle)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise InvalidArgumentError(
            expected_received(
                "handle",
                "a SavedModel directory (one containing saved_model.pb)",
                handle,
                f"{path} has no saved_model.pb; export the model with tf.saved_model.save() or "
                "model.export(), or point at the directory that holds saved_model.pb.",
            )
        )
    signatures = _signature_keys(path)
    try:
        saved_model = keras.layers.TFSMLayer(path, call_endpoint=call_endpoint, trainable=trainable, name=name)
    except ValueError as error:
        if call_endpoint in signatures:
            raise
        hint = did_you_mean(call_endpoint, signatures)
        raise InvalidArgumentError(
            expected_received(
                "call_endpoint",
                f"one of the SavedModel's signatures {signatures}",
                call_endpoint,
                hint or "Pass call_endpoint=<one of them>.",
            )
        ) from error

    keys = _output_keys(saved_model.call_endpoint_fn)
    if keys is None:
        if output_key is not None:
            raise InvalidArgumentError(
                expected_received(
                    "output_key", f"None, since endpoint {call_endpoint!r} does not return a dict", output_key
                )
            )
        return saved_model
    if output_key is None:
        if len(keys) != 1:
            raise InvalidArgumentError(
                expected_received(
                    "output_key",
                    f"one of {keys} (endpoint {call_endpoint!r} returns a dict with several entries)",
                    output_key,
                    f"Pass output_key={keys[0]!r}, for example.",
                )
            )
        output_key = keys[0]
    elif output_key not in keys:
        hint = did_you_mean(output_key, keys)
        raise InvalidArgumentError(expected_received("output_key", f"one of {keys}", output_key, hint or None))
    if name is not None:
        # The wrapper takes the user's name; two layers of one model must not share it.
        saved_model.name = f"{name}_saved_model"
    return HubOutput(saved_model, output_key, trainable=trainable, name=name)
