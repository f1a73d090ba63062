"""Layers that keep a model's identity and its input preprocessing inside its graph.

``KzooIdentity`` passes its input through unchanged; its config holds what the model is
(registry name, builder arguments, weights key, preprocessing, classes, stages, text
vocabulary). Being a layer, it travels with the model through everything Keras does to
one: ``.keras`` save and load, ``get_config``/``from_config``, ``clone_model`` (which
rebuilds a functional model from its layers' configs and would drop attributes set on
the model object), mixed-precision copies and export. ``ImagePreprocessing`` maps raw
0-255 pixels to what the weights expect, so a pretrained model takes raw images.
"""

from __future__ import annotations

import copy
from typing import Any

import keras

IDENTITY_LAYER = "kzoo_identity"
PREPROCESSING_LAYER = "preprocessing"


@keras.saving.register_keras_serializable(package="kzoo")
class KzooIdentity(keras.layers.Layer):
    """An identity layer whose config is the model's kzoo metadata (a JSON-able dict).

    Args:
        metadata: What :class:`kzoo.identity.ModelIdentity` serializes to.
    """

    def __init__(self, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        # The input passes through as it is: never cast raw pixels or token ids.
        kwargs.setdefault("name", IDENTITY_LAYER)
        super().__init__(autocast=False, **kwargs)
        self.metadata = copy.deepcopy(metadata or {})
        self.supports_masking = True

    def call(self, inputs: Any) -> Any:
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def compute_output_spec(self, inputs: Any) -> Any:
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype, sparse=getattr(inputs, "sparse", False))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("autocast", None)
        config["metadata"] = copy.deepcopy(self.metadata)
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class ImagePreprocessing(keras.layers.Layer):
    """Raw pixels (0-255, uint8 or float) to a model's input, in float32.

    ``x = (x[..., channels] * scale + offset - mean) / std``, where ``channels`` reverses
    RGB to BGR when ``channel_order == "bgr"`` (the same formula as
    :class:`kzoo.weights.Preprocessing`, which ``kzoo.data`` applies for models without it).

    Args:
        scale, offset, mean, std, channel_order: See :class:`kzoo.weights.Preprocessing`.
    """

    def __init__(
        self,
        scale: float = 1.0 / 255.0,
        offset: float = 0.0,
        mean: Any = None,
        std: Any = None,
        channel_order: str = "rgb",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", PREPROCESSING_LAYER)
        # float32 whatever the model's dtype policy: 0-255 values and ImageNet means lose
        # digits in bfloat16; the next layer casts to its compute dtype.
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.scale, self.offset, self.channel_order = float(scale), float(offset), channel_order
        self.mean = None if mean is None else tuple(float(v) for v in mean)
        self.std = None if std is None else tuple(float(v) for v in std)

    def call(self, inputs: Any) -> Any:
        x = keras.ops.cast(inputs, "float32")
        if self.channel_order == "bgr":
            x = keras.ops.flip(x, axis=-1)
        x = x * self.scale + self.offset
        if self.mean is not None:
            x = x - keras.ops.convert_to_tensor(self.mean, "float32")
        if self.std is not None:
            x = x / keras.ops.convert_to_tensor(self.std, "float32")
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            scale=self.scale,
            offset=self.offset,
            mean=list(self.mean) if self.mean is not None else None,
            std=list(self.std) if self.std is not None else None,
            channel_order=self.channel_order,
        )
        return config
