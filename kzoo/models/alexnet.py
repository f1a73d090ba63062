"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), as in the paper and as the common single tower.

- ``alexnet``: the paper's layer sizes on a 227x227 input (96-256-384-384-256 filters),
  with the paper's split across two GPUs expressed as grouped convolutions (groups=2 in
  conv2, conv4 and conv5): 60,965,224 parameters, the paper's "60 million". Local
  response normalisation is left out (Keras has no such layer, and later work found it
  unnecessary).
- ``alexnet_onetower``: the single-tower variant of torchvision and most courses
  (64-192-384-256-256 filters, 224x224 input): 61,100,840 parameters.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.models._vision import check_vision_args, classifier, global_pooling
from kzoo.registry import ModelSpec, register_model

PAPER = "Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks, NeurIPS"

# (filters, kernel, stride, padding, groups, max-pool after)
PAPER_CONFIG = (
    (96, 11, 4, 0, 1, True),
    (256, 5, 1, 2, 2, True),
    (384, 3, 1, 1, 1, False),
    (384, 3, 1, 1, 2, False),
    (256, 3, 1, 1, 2, True),
)
ONE_TOWER_CONFIG = (
    (64, 11, 4, 2, 1, True),
    (192, 5, 1, 2, 1, True),
    (384, 3, 1, 1, 1, False),
    (256, 3, 1, 1, 1, False),
    (256, 3, 1, 1, 1, True),
)


def _build_alexnet(
    *,
    config: tuple,
    input_shape: tuple[int, int, int] | None,
    default_input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: Any,
    name: str,
    fc_units: int,
    dropout: float,
    width_multiplier: float,
) -> keras.Model:
    input_shape = check_vision_args(
        model=name,
        input_shape=input_shape,
        default_input_shape=default_input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        min_size=63,
    )
    if not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(expected_received(f"{name}: dropout", "a rate in [0, 1)", dropout))
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for index, (filters, kernel, stride, padding, groups, pool) in enumerate(config, start=1):
        filters = max(groups, int(filters * width_multiplier) // groups * groups)
        if padding:
            x = keras.layers.ZeroPadding2D(padding, name=f"conv{index}_pad")(x)
        x = keras.layers.Conv2D(
            filters, kernel, strides=stride, groups=groups, activation="relu", name=f"conv{index}_conv"
        )(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"conv{index}_pool")(x)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for layer in ("fc6", "fc7"):
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"{layer}_dropout")(x)
            x = keras.layers.Dense(fc_units, activation="relu", name=layer)(x)
        x = classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)
    else:
        x = global_pooling(x, pooling)
    return keras.Model(inputs, x, name=name)


def alexnet(
    *,
    variant: str = "paper",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 1000,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: Any = None,
    name: str | None = None,
    fc_units: int = 4096,
    dropout: float = 0.5,
    width_multiplier: float = 1.0,
) -> keras.Model:
    """AlexNet: five convolutions and three dense layers.

    Args:
        variant: ``"paper"`` (two towers as grouped convolutions, 227x227) or ``"onetower"``
            (torchvision's single tower, 224x224).
        input_shape: ``(height, width, channels)``; the dense head needs the default size.
        num_classes: Output logits.
        include_top: Keep fc6, fc7 and ``predictions``.
        pooling: With ``include_top=False``: ``None``, ``"avg"`` or ``"max"``.
        classifier_activation: ``None`` for logits.
        name: Model name.
        fc_units: Width of fc6 and fc7 (4096).
        dropout: Dropout before fc6 and fc7 (the paper: 0.5).
        width_multiplier: Scales the convolution widths.

    Example:
        >>> import kzoo
        >>> kzoo.get("alexnet").count_params()
        60965224

    Reference: Krizhevsky et al. 2012, ImageNet Classification with Deep Convolutional Neural Networks.
    """
    if variant not in ("paper", "onetower"):
        raise InvalidArgumentError(expected_received("alexnet: variant", "'paper' or 'onetower'", variant))
    paper = variant == "paper"
    return _build_alexnet(
        config=PAPER_CONFIG if paper else ONE_TOWER_CONFIG,
        input_shape=input_shape,
        default_input_shape=(227, 227, 3) if paper else (224, 224, 3),
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        name=name or ("alexnet" if paper else "alexnet_onetower"),
        fc_units=fc_units,
        dropout=dropout,
        width_multiplier=width_multiplier,
    )


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "alexnet": {"num_params": 60_965_224, "input_shape": (227, 227, 3)},
    "alexnet_onetower": {"num_params": 61_100_840, "input_shape": (224, 224, 3)},
}


for _name, _variant, _params in (("alexnet", "paper", "60,965,224"), ("alexnet_onetower", "onetower", "61,100,840")):
    register_model(
        ModelSpec(
            name=_name,
            **CARD_FACTS[_name],
            builder=alexnet,
            family="alexnet",
            task="image-classification",
            paper=PAPER + ("" if _variant == "paper" else " (single-tower variant, as torchvision)"),
            kwargs={"variant": _variant},
            description=f"AlexNet ({'two towers as grouped convolutions' if _variant == 'paper' else 'one tower'}), "
            f"{_params} parameters.",
            test_kwargs={"input_shape": (67, 67, 3), "num_classes": 3, "fc_units": 8, "width_multiplier": 0.0625},
            head_layers=("predictions",),
            stem_layer="conv1_conv",
            stages=("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"),
            example=f"import kzoo\nmodel = kzoo.get('{_name}', num_classes=10)",
        )
    )
