"""Masking layers Keras does not ship."""

from __future__ import annotations

from typing import Any

import keras
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
