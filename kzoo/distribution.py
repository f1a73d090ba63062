"""tf.distribute strategies for kzoo.finetune, and what Keras 3 needs to train under them."""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import BackendError, InvalidArgumentError, expected_received, import_tensorflow


def check_backend(distribution: Any) -> None:
    """``tf.distribute`` strategies run TensorFlow models only."""
    if distribution is not None and keras.backend.backend() != "tensorflow":
        raise BackendError(
            expected_received(
                "finetune: distribution",
                f"None on the {keras.backend.backend()} backend (tf.distribute strategies run TensorFlow models only)",
                type(distribution).__name__,
                "Use KERAS_BACKEND=tensorflow, or keras.distribution (e.g. DataParallel) on JAX.",
            )
        )


def scope(distribution: Any) -> Any:
    """A fresh scope each time (strategy scopes cannot be re-entered), or a no-op one."""
    return distribution.scope() if distribution is not None else NullScope()


def patch_for_strategy(trainee: keras.Model, distribution: Any, train: Any) -> None:
    """Lets Keras 3's ``fit`` train under a ``tf.distribute`` strategy like one device would.

    Under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585),

    Checked with Keras 3.15 / TF 2.21 and two workers on 127.0.0.1, ``fit`` fails twice:
    it builds the model from a batch it first averages across workers in eager mode
    ("Attempt to convert a value (PerReplica...)"), and it reduces each step's logs with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on scalar logs ("Invalid reduction
    dimension 0"). So this model builds from the element spec of ``train``, and its
    train/test steps return each log as a 1-element vector, which that reduction averages over
    the replicas into the scalar Keras expects. Two workers then give the same losses and
    weights as one process training on the same global batches (tests/test_finetune.py).
    Every other strategy (one worker, ``MirroredStrategy``) builds the same way: Keras' own
    build draws a batch from ``train``, which moves its shuffling on by one epoch, so unpatched
    it would see other batches than the same job on one device without a strategy.
    """
    tf = import_tensorflow("kzoo.finetune with a tf.distribute strategy")

    spec = getattr(train, "element_spec", None)
    if spec is None:
        raise InvalidArgumentError(
            expected_received("train", "a tf.data.Dataset or kzoo.data.Datasets under a multi-worker strategy", train)
        )

    def build(iterator: Any = None, data_batch: Any = None) -> None:
        with distribution.scope():  # builds from shapes only, so the dataset's spec will do
            trainee._symbolic_build(data_batch=spec)

    def as_vectors(step: Any) -> Any:
        return lambda data: {key: tf.reshape(value, [1]) for key, value in step(data).items()}

    trainee._maybe_symbolic_build = build
    if is_multi_worker(distribution):  # one worker reduces nothing: its logs stay scalars
        trainee.train_step = as_vectors(trainee.train_step)
        trainee.test_step = as_vectors(trainee.test_step)


def is_multi_worker(distribution: Any) -> bool:
    extended = getattr(distribution, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


class NullScope:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
