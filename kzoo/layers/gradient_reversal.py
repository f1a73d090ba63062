"""The gradient-reversal layer of domain-adversarial training."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kzoo.errors import InvalidArgumentError, expected_received


@keras.saving.register_keras_serializable(package="kzoo")
class GradientReversal(keras.layers.Layer):
    """Identity on the forward pass; multiplies the gradient by ``-scale`` on the way back.

    Ganin & Lempitsky 2015 (DANN): placed between a feature extractor and a domain
    classifier, it lets one optimiser step train the domain classifier to tell the domains
    apart while pushing the features to make them indistinguishable.

    Written with ``stop_gradient`` only, so it runs on every Keras backend:
    ``y = stop_gradient((1 + scale) * x) - scale * x`` equals ``x`` and has gradient
    ``-scale``.

    Args:
        scale: The factor ``lambda`` of the reversed gradient (>= 0). Change it during
            training (a schedule) through ``layer.scale.assign(value)``.
    """

    def __init__(self, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if scale < 0:
            raise InvalidArgumentError(expected_received("GradientReversal scale", "a number >= 0", scale))
        self.initial_scale = float(scale)
        self.scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_scale), trainable=False, name="scale"
        )

    def call(self, inputs: Any) -> Any:
        scale = ops.cast(self.scale, inputs.dtype)
        return ops.stop_gradient((1.0 + scale) * inputs) - scale * inputs

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.initial_scale}
