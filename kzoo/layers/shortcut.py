"""Residual shortcuts shared by the ResNet families."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kzoo")
class ZeroPadShortcut(keras.layers.Layer):
    """Parameter-free shortcut of He et al. 2016's CIFAR ResNets ("option A").

    Subsamples the input by ``strides`` and zero-pads its channels up to ``filters``, so a
    residual stage can double its width without a projection convolution.

    Args:
        filters: Output channels (>= input channels).
        strides: Spatial subsampling factor.
    """

    def __init__(self, filters: int, strides: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.strides = filters, strides

    def call(self, inputs: Any) -> Any:
        x = inputs[:, :: self.strides, :: self.strides, :]
        extra = self.filters - inputs.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def reduce(size: int | None) -> int | None:
            return None if size is None else -(-size // self.strides)

        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}
