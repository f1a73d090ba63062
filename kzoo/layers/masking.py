"""Masking layers Keras does not ship."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
class MaskFromIds(keras.layers.Layer):
    """Passes ``values`` through with the padding mask of ``ids`` (``ids != 0``).

    Called as ``MaskFromIds()([values, ids])``. Keras' ``Concatenate`` ORs its inputs' masks,
    treating an unmasked input as all valid, so concatenating masked word embeddings with
    unmasked character features loses the padding mask and a bidirectional RNN reads the
    padding. Giving the character features the words' mask keeps it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        return inputs[0]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return ops.not_equal(inputs[1], 0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]


@keras.saving.register_keras_serializable(package="kzoo")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """The maximum over the time axis of the valid (unmasked) steps: ``(batch, time, d) -> (batch, d)``.

    Keras' ``GlobalMaxPooling1D`` drops the mask (it warns and takes the padding into the
    maximum), so a padded batch would give a sentence a different vector than the same
    sentence alone. Padded steps here are left out of the maximum; a sequence with no valid step gives zeros.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
        # Padded steps take the batch's smallest value, which no valid maximum is below.
        pooled = ops.max(ops.where(valid, inputs, ops.min(inputs)), axis=1)
        return ops.where(ops.any(valid, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="kzoo")
class UnknownWords(keras.layers.Layer):
    """Sends word ids the training data never had to one unknown-word id, and rare ones too in training.

    Lample et al. 2016's unknown-word rule for a tagger whose words are hashed (no vocabulary):
    ``counts`` (a non-trainable ``(num_bins,)`` weight) holds how often each id occurred in the
    training sentences (:meth:`set_counts`). At inference an id with count 0 becomes
    ``unknown_id``; in training an id seen once becomes ``unknown_id`` with probability
    ``singleton_rate``, so the unknown-word embedding is trained and the model learns to read
    an unfamiliar word from its characters. While every count is 0 (a new model) ids pass
    unchanged. Padding (0) stays 0.

    Args:
        num_bins: Number of word ids (the embedding's input dimension).
        unknown_id: The id unknown words get (1: the hashing layer's first bin).
        singleton_rate: Probability that a word seen once is made unknown in training.
        seed: Seed of the training-time draws.
    """

    def __init__(
        self, num_bins: int, unknown_id: int = 1, singleton_rate: float = 0.5, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_bins, self.unknown_id, self.singleton_rate, self.seed = num_bins, unknown_id, singleton_rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: Any) -> None:
        self.counts = self.add_weight(
            name="counts", shape=(self.num_bins,), dtype="int32", initializer="zeros", trainable=False
        )

    def set_counts(self, ids: Any) -> None:
        """Counts the word ids of the training data (any array of ids; 0 is skipped), capped at 2."""
        ids = np.asarray(ids).reshape(-1)
        counts = np.bincount(ids[ids > 0], minlength=self.num_bins)[: self.num_bins]
        self.counts.assign(np.minimum(counts, 2).astype("int32"))  # 0, once, more: all the rule reads

    def unreachable(self) -> Any:
        """A bool mask of the ids that can never reach the embedding at inference (count 0,
        neither padding nor ``unknown_id``); all False while no counts are set."""
        counts = np.asarray(self.counts)
        mask = counts == 0
        mask[[0, self.unknown_id]] = False
        return mask if counts.any() else np.zeros_like(mask)

    def call(self, ids: Any, training: Any = None) -> Any:
        ids = ops.cast(ids, "int32")
        table = ops.convert_to_tensor(self.counts)
        counts = ops.take(table, ids)
        active = ops.any(table > 0)
        unknown = ops.logical_and(counts == 0, ids != 0)
        if training and self.singleton_rate:
            draw = keras.random.uniform(ops.shape(ids), seed=self.seed_generator)
            unknown = ops.logical_or(unknown, ops.logical_and(counts == 1, draw < self.singleton_rate))
        return ops.where(ops.logical_and(active, unknown), ops.full_like(ids, self.unknown_id), ids)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = {"num_bins": self.num_bins, "unknown_id": self.unknown_id, "singleton_rate": self.singleton_rate}
        return {**super().get_config(), **config, "seed": self.seed}
