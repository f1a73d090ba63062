"""Multi-scale features: the output of every stage of a zoo model, for U-Net encoders and other heads."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kzoo import identity as identity_lib
from kzoo.errors import InvalidArgumentError, expected_received

_NOT_FEATURES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.ZeroPadding2D)


def feature_extractor(
    model: keras.Model, stages: Sequence[str] | None = None, *, declared: Sequence[str] | None = None
) -> keras.Model:
    """A model that returns ``{stage: feature map}`` for the stages a zoo model declares.

    Each stage's feature map is the output of its last layer that is not a pooling or
    padding layer (so ``vgg16``'s ``block1`` gives ``block1_conv2``, before pooling, and
    ``resnet50``'s ``conv2`` gives ``conv2_block3_out``). The returned model shares the
    original's layers and weights.

    Args:
        model: A model from :func:`kzoo.get` (``include_top=False`` is typical).
        stages: Which stages, in any order; default every stage with a 4-D (image) output.
        declared: For a model kzoo did not build: its stage names, input to output (a
            kzoo model knows its own).

    Example:
        >>> import kzoo
        >>> backbone = kzoo.get("resnet18", include_top=False)
        >>> features = kzoo.feature_extractor(backbone, stages=["conv2", "conv5"])
        >>> sorted(features.output)
        ['conv2', 'conv5']
    """
    identity = identity_lib.of(model)
    if declared is None:
        if identity is None or not identity.stages:
            raise InvalidArgumentError(
                expected_received(
                    "model",
                    "a model built by kzoo.get that declares stages",
                    getattr(model, "name", model),
                    "For another model, pass its stage names: feature_extractor(model, declared=[...]).",
                )
            )
        declared = identity.stages
    outputs = {}
    for stage in declared:
        candidates = [
            layer
            for layer in model.layers
            if (layer.name == stage or layer.name.startswith(f"{stage}_")) and not isinstance(layer, _NOT_FEATURES)
        ]
        if candidates and len(candidates[-1].output.shape) == 4:
            outputs[stage] = candidates[-1].output
    if stages is not None:
        unknown = [s for s in stages if s not in outputs]
        if unknown:
            raise InvalidArgumentError(
                expected_received("stages", f"names from {list(outputs)}", unknown, "See kzoo.info(name).")
            )
        outputs = {s: outputs[s] for s in stages}
    # The same inputs, so the extractor shares the identity layer (and any preprocessing):
    # it takes what the model takes, and kzoo.data pipelines built for it feed it correctly.
    model_class = identity_lib.KzooModel if identity is not None else keras.Model
    return model_class(model.inputs, outputs, name=f"{model.name}_features")
