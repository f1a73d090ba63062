"""Activations for Lipschitz-constrained networks."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kzoo.errors import InvalidArgumentError, expected_received


@keras.saving.register_keras_serializable(package="kzoo")
class GroupSort(keras.layers.Layer):
    """GroupSort activation (Anil, Lucas & Grosse 2019); ``group_size=2`` is MinMax.

    Splits the last axis into consecutive groups of ``group_size`` units and sorts each group
    in ascending order. The output is a permutation of the input, so the layer is
    1-Lipschitz and keeps the gradient norm (``||J v|| = ||v||``): stacked after
    norm-constrained ``Dense`` layers it gives networks that are 1-Lipschitz yet expressive,
    where ReLU (which zeroes half the gradient) makes them lose capacity.

    Args:
        group_size: Units per group (divides the number of input units). 2 gives MinMax:
            each pair ``(a, b)`` becomes ``(min(a, b), max(a, b))``.

    Example:

    >>> kzoo.layers.GroupSort()(np.array([[3.0, 1.0, -2.0, 5.0]]))  # [[1., 3., -2., 5.]]
    """

    def __init__(self, group_size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(group_size, int) or group_size < 1:
            raise InvalidArgumentError(expected_received("GroupSort group_size", "a positive integer", group_size))
        self.group_size = group_size

    def build(self, input_shape: tuple) -> None:
        units = input_shape[-1]
        if units is None or units % self.group_size:
            expected = f"a last axis that is a multiple of group_size={self.group_size}"
            raise InvalidArgumentError(expected_received("GroupSort input shape", expected, tuple(input_shape)))

    def call(self, inputs: Any) -> Any:
        units = inputs.shape[-1]
        groups = ops.reshape(inputs, (-1, units // self.group_size, self.group_size))
        return ops.reshape(ops.sort(groups, axis=-1), ops.shape(inputs))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "group_size": self.group_size}
