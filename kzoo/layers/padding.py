"""Padding layers Keras does not ship."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kzoo.errors import InvalidArgumentError, expected_received


@keras.saving.register_keras_serializable(package="kzoo")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring the image (``abc|ba``), as CycleGAN's generators do.

    Reflection keeps border statistics natural where zero padding would draw a dark frame
    that instance normalization then amplifies (Zhu et al. 2017, appendix 7.2).

    Args:
        padding: Pixels added on every side of the height and width (each side must be
            smaller than the input's side).
    """

    def __init__(self, padding: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
            raise InvalidArgumentError(expected_received("ReflectionPadding2D: padding", "an int >= 0", padding))
        self.padding = padding

    def call(self, inputs: Any) -> Any:
        p = self.padding
        return ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def grow(size: int | None) -> int | None:
            return None if size is None else size + 2 * self.padding

        return (input_shape[0], grow(input_shape[1]), grow(input_shape[2]), input_shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding}
