"""Mixed precision for kzoo.finetune: a copy of the model whose layers compute in a lower precision.

Keras' ``mixed_float16`` and ``mixed_bfloat16`` policies keep variables in float32 and
compute in the lower precision. Layers whose output must stay float32 (the head, the
outputs, and kzoo's identity and preprocessing layers, which see raw 0-255 pixels) keep
the float32 policy.
"""

from __future__ import annotations

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.layers.identity import IDENTITY_LAYER, PREPROCESSING_LAYER

POLICIES = (None, "mixed_float16", "mixed_bfloat16")
ALWAYS_FLOAT32 = frozenset({IDENTITY_LAYER, PREPROCESSING_LAYER})


def float32_layers(model: keras.Model, head_layers: tuple[str, ...]) -> set[str]:
    """The layers of ``model`` that keep computing in float32 under a mixed policy."""
    return set(head_layers) | {t._keras_history[0].name for t in model.outputs} | set(ALWAYS_FLOAT32)


def with_dtype_policy(model: keras.Model, policy: str, keep_float32: set[str]) -> keras.Model:
    """A copy of a functional model whose layers compute in ``policy`` (the head stays float32)."""
    if not isinstance(model, keras.Model) or "layers" not in model.get_config():
        raise InvalidArgumentError(
            expected_received(
                "model for mixed precision",
                "a functional model (as kzoo.get returns)",
                type(model).__name__,
                "Or call keras.config.set_dtype_policy(policy) before building your model.",
            )
        )
    config = model.get_config()
    for layer_config in config["layers"]:
        if layer_config["class_name"] == "InputLayer" or layer_config["config"].get("name") in keep_float32:
            continue
        layer_config["config"]["dtype"] = policy
    # The model's own class (a KzooModel keeps its raw-input handling); its identity layer is in the config.
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy
