"""VGG (Simonyan & Zisserman 2014): configurations A, B, D and E, with and without BatchNorm.

Layer names follow keras.applications (``block1_conv1`` ... ``fc1``, ``fc2``,
``predictions``), so the official ImageNet weights load by name.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.models._vision import check_vision_args, classifier, global_pooling
from kzoo.models.imagenet_weights import CAFFE, register_imagenet_files
from kzoo.registry import ModelSpec, register_model

PAPER = "Simonyan & Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015"

# Convolutions per block (the paper's configurations A, B, D, E); widths 64-128-256-512-512.
CONFIGS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
PARAMS = {"vgg16": "138,357,544", "vgg19": "143,667,240", "vgg11": "132,863,336", "vgg13": "133,047,848"}


def _build_vgg(
    *,
    config: tuple[int, ...],
    batch_norm: bool,
    input_shape: tuple[int, int, int] | None,
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
        default_input_shape=(224, 224, 3),
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        min_size=32,
    )
    if not isinstance(fc_units, int) or fc_units < 1:
        raise InvalidArgumentError(expected_received(f"{name}: fc_units", "a positive int", fc_units))
    if not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(expected_received(f"{name}: dropout", "a rate in [0, 1)", dropout))
    if not 0 < width_multiplier <= 4:
        raise InvalidArgumentError(
            expected_received(f"{name}: width_multiplier", "a number in (0, 4]", width_multiplier)
        )

    # Convolutional blocks
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, (convs, width) in enumerate(zip(config, WIDTHS), start=1):
        filters = max(1, int(width * width_multiplier))
        for index in range(1, convs + 1):
            prefix = f"block{block}"
            if batch_norm:
                x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{prefix}_conv{index}")(x)
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn{index}")(x)
                x = keras.layers.Activation("relu", name=f"{prefix}_relu{index}")(x)
            else:
                x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{prefix}_conv{index}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)

    # Classifier
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for layer in ("fc1", "fc2"):
            x = keras.layers.Dense(fc_units, activation="relu", name=layer)(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"{layer}_dropout")(x)
        x = classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)
    else:
        x = global_pooling(x, pooling)
    return keras.Model(inputs, x, name=name)


def vgg(
    *,
    depth: int = 16,
    batch_norm: bool = False,
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
    """VGG-11/13/16/19 (the paper's configurations A, B, D, E), optionally with BatchNorm.

    Args:
        depth: 11, 13, 16 or 19 weight layers.
        batch_norm: BatchNormalization after every convolution (the common ``_bn`` variants).
        input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``. With
            ``include_top=True`` the pretrained head needs 224x224.
        num_classes: Output logits.
        include_top: Keep ``flatten``, ``fc1``, ``fc2`` and ``predictions``.
        pooling: With ``include_top=False``: ``None``, ``"avg"`` or ``"max"``.
        classifier_activation: ``None`` for logits.
        name: Model name; default ``vgg16`` etc.
        fc_units: Width of fc1 and fc2 (the paper: 4096).
        dropout: Dropout after fc1 and fc2 (the paper: 0.5; inactive at inference).
        width_multiplier: Scales the convolution widths (1.0 is the paper's).

    Example:
        >>> import kzoo
        >>> kzoo.get("vgg16").count_params()
        138357544

    Reference: Simonyan & Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image Recognition.
    """
    key = f"vgg{depth}"
    if key not in CONFIGS:
        raise InvalidArgumentError(expected_received("vgg: depth", "11, 13, 16 or 19", depth))
    return _build_vgg(
        config=CONFIGS[key],
        batch_norm=batch_norm,
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        name=name or (key + ("_bn" if batch_norm else "")),
        fc_units=fc_units,
        dropout=dropout,
        width_multiplier=width_multiplier,
    )


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "vgg11": {"num_params": 132_863_336, "input_shape": (224, 224, 3)},
    "vgg11_bn": {"num_params": 132_874_344, "input_shape": (224, 224, 3)},
    "vgg13": {"num_params": 133_047_848, "input_shape": (224, 224, 3)},
    "vgg13_bn": {"num_params": 133_059_624, "input_shape": (224, 224, 3)},
    "vgg16": {"num_params": 138_357_544, "input_shape": (224, 224, 3)},
    "vgg16_bn": {"num_params": 138_374_440, "input_shape": (224, 224, 3)},
    "vgg19": {"num_params": 143_667_240, "input_shape": (224, 224, 3)},
    "vgg19_bn": {"num_params": 143_689_256, "input_shape": (224, 224, 3)},
}


for _key, _config in CONFIGS.items():
    for _bn in (False, True):
        _depth = int(_key[3:])
        register_model(
            ModelSpec(
                name=_key + ("_bn" if _bn else ""),
                **CARD_FACTS[_key + ("_bn" if _bn else "")],
                builder=vgg,
                family="vgg",
                task="image-classification",
                paper=PAPER,
                kwargs={"depth": _depth, "batch_norm": _bn},
                description=(
                    f"VGG-{_depth}{' with BatchNorm' if _bn else ''}: {sum(_config)} 3x3 convolutions in 5 blocks"
                    + (f", {PARAMS[_key]} parameters" if not _bn and _key in PARAMS else "")
                    + "."
                ),
                test_kwargs={"input_shape": (32, 32, 3), "num_classes": 3, "fc_units": 8, "width_multiplier": 0.0625},
                head_layers=("predictions",),
                stem_layer="block1_conv1",
                stages=("block1", "block2", "block3", "block4", "block5", "fc1", "fc2"),
                example=f"import kzoo\nmodel = kzoo.get('{_key}', pretrained=False, num_classes=5)",
            )
        )


# The official ImageNet files of keras.applications: (file stem, md5 with top, md5 without top,
# parameters with top, parameters without top).
IMAGENET_FILES = {
    "vgg16": (
        "vgg16/vgg16",
        "64373286793e3c8b2b4e3219cbf3544b",
        "6d6bbae143d832006294945121d1f1fc",
        138_357_544,
        14_714_688,
    ),
    "vgg19": (
        "vgg19/vgg19",
        "cbe5617147190e668d6c5d5026f83318",
        "253f8cb515780f3b799900260a226db6",
        143_667_240,
        20_024_384,
    ),
}
register_imagenet_files(IMAGENET_FILES, preprocessing={name: CAFFE for name in IMAGENET_FILES})
