"""ResNet v1 and v2 (He et al. 2015, 2016) and the CIFAR ResNets of He et al. 2015 (Table 6).

- ResNet-18/34: basic blocks (two 3x3 convolutions), convolutions without bias, as in
  torchvision (11,689,512 and 21,797,672 parameters).
- ResNet-50/101/152 v1: bottleneck blocks with the stride on the first 1x1 convolution and
  biased convolutions, exactly as keras.applications builds them, so the official ImageNet
  weights load by layer name (``conv2_block1_1_conv`` ...).
- ResNet-50/101/152 v2: pre-activation bottlenecks, as keras.applications ``ResNet50V2``.
- ResNet-20/32/44/56/110 for 32x32 images: three stages of 16/32/64 filters and
  parameter-free "option A" shortcuts (subsample + zero-pad channels).

One builder takes the block kind and the blocks per stage as data.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.layers.shortcut import ZeroPadShortcut
from kzoo.models._vision import check_vision_args, classifier, global_pooling
from kzoo.models.imagenet_weights import CAFFE, TF, register_imagenet_files
from kzoo.registry import ModelSpec, register_model

PAPER_V1 = "He, Zhang, Ren & Sun 2015, Deep Residual Learning for Image Recognition, CVPR 2016"
PAPER_V2 = "He, Zhang, Ren & Sun 2016, Identity Mappings in Deep Residual Networks, ECCV 2016"
EPSILON = 1.001e-5  # keras.applications' BatchNorm epsilon, kept for weight parity

# name: (block kind, blocks per stage)
IMAGENET = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
    "resnet50v2": ("preact", (3, 4, 6, 3)),
    "resnet101v2": ("preact", (3, 4, 23, 3)),
    "resnet152v2": ("preact", (3, 8, 36, 3)),
}
CIFAR = {f"resnet{6 * n + 2}_cifar": n for n in (3, 5, 7, 9, 18)}  # ResNet-20, 32, 44, 56, 110


def _bn(x: Any, name: str) -> Any:
    return keras.layers.BatchNormalization(epsilon=EPSILON, name=name)(x)


def _basic_block(x: Any, filters: int, stride: int, name: str) -> Any:
    """Two 3x3 convolutions; a 1x1 projection when the shape changes (torchvision layout)."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_1_pad")(x)
    x = keras.layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_1_conv")(x)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, _bn(x, f"{name}_2_bn")])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def _bottleneck_block(x: Any, filters: int, stride: int, name: str) -> Any:
    """1x1 (stride) -> 3x3 -> 1x1 (4x filters), post-activation, as keras.applications ResNet50."""
    shortcut = x
    if stride != 1 or x.shape[-1] != 4 * filters:
        shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    x = keras.layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = keras.layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, _bn(x, f"{name}_3_bn")])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def _preact_block(x: Any, filters: int, stride: int, name: str, first: bool) -> Any:
    """Pre-activation bottleneck (BN-ReLU before each convolution), as keras.applications ResNet50V2.

    As there, the stride sits on the 3x3 convolution of the last block of a stage.
    """
    preact = keras.layers.Activation("relu", name=f"{name}_preact_relu")(_bn(x, f"{name}_preact_bn"))
    if first:
        shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    elif stride > 1:
        shortcut = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_2_pad")(x)
    x = keras.layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = keras.layers.Activation("relu", name=f"{name}_2_relu")(_bn(x, f"{name}_2_bn"))
    x = keras.layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return keras.layers.Add(name=f"{name}_out")([shortcut, x])


def _cifar_block(x: Any, filters: int, stride: int, name: str) -> Any:
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = ZeroPadShortcut(filters, stride, name=f"{name}_shortcut")(x)
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_1_conv")(x)
    x = keras.layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, _bn(x, f"{name}_2_bn")])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def _build_resnet(
    *,
    block: str,
    blocks: tuple[int, ...],
    input_shape: tuple[int, int, int] | None,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: Any,
    name: str,
    width: int,
) -> keras.Model:
    cifar = block == "cifar"
    input_shape = check_vision_args(
        model=name,
        input_shape=input_shape,
        default_input_shape=(32, 32, 3) if cifar else (224, 224, 3),
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        min_size=8 if cifar else 32,
    )
    if not isinstance(width, int) or width < 1:
        raise InvalidArgumentError(expected_received(f"{name}: width", "a positive int", width))
    inputs = keras.Input(shape=input_shape, name="image")

    # Stem
    if cifar:
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
        x = keras.layers.Activation("relu", name="stem_relu")(_bn(x, "stem_bn"))
    else:
        x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
        x = keras.layers.Conv2D(width, 7, strides=2, use_bias=block != "basic", name="conv1_conv")(x)
        if block != "preact":
            x = keras.layers.Activation("relu", name="conv1_relu")(_bn(x, "conv1_bn"))
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    # Residual stages
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        stage_name = f"stage{stage + 1}" if cifar else f"conv{stage + 2}"
        for index in range(1, count + 1):
            name_ = f"{stage_name}_block{index}"
            if block == "preact":
                # keras.applications: the stride is on the last block, and not in the last stage.
                stride = 2 if index == count and stage < len(blocks) - 1 else 1
                x = _preact_block(x, filters, stride, name_, first=index == 1)
            else:
                stride = 2 if index == 1 and stage > 0 else 1
                make = {"basic": _basic_block, "bottleneck": _bottleneck_block, "cifar": _cifar_block}[block]
                x = make(x, filters, stride, name_)
    if block == "preact":
        x = keras.layers.Activation("relu", name="post_relu")(_bn(x, "post_bn"))

    # Head
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)
    else:
        x = global_pooling(x, pooling)
    return keras.Model(inputs, x, name=name)


def resnet(
    *,
    variant: str = "resnet50",
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: Any = None,
    name: str | None = None,
    width: int | None = None,
) -> keras.Model:
    """ResNet v1/v2 for ImageNet-size images, or the CIFAR ResNets for 32x32 images.

    Args:
        variant: ``resnet18``/``34``/``50``/``101``/``152``, ``resnet50v2``/``101v2``/``152v2``,
            or ``resnet20_cifar``/``32``/``44``/``56``/``110``.
        input_shape: ``(height, width, channels)``; default ``(224, 224, 3)`` (CIFAR: 32x32x3).
        num_classes: Output logits; default 1000 (CIFAR: 10).
        include_top: Keep global average pooling and ``predictions``.
        pooling: With ``include_top=False``: ``None``, ``"avg"`` or ``"max"``.
        classifier_activation: ``None`` for logits.
        name: Model name; default the variant.
        width: Filters of the first stage (64; CIFAR 16); smaller for quick experiments.

    Example:
        >>> import kzoo
        >>> kzoo.get("resnet50").count_params()
        25636712

    Reference: He et al. 2015, Deep Residual Learning; He et al. 2016, Identity Mappings in Deep Residual Networks.
    """
    if variant in IMAGENET:
        block, blocks = IMAGENET[variant]
        default_classes, default_width = 1000, 64
    elif variant in CIFAR:
        block, blocks = "cifar", (CIFAR[variant],) * 3
        default_classes, default_width = 10, 16
    else:
        raise InvalidArgumentError(expected_received("resnet: variant", f"one of {[*IMAGENET, *CIFAR]}", variant))
    return _build_resnet(
        block=block,
        blocks=blocks,
        input_shape=input_shape,
        num_classes=default_classes if num_classes is None else num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        name=name or variant,
        width=default_width if width is None else width,
    )


_PARAMS = {
    "resnet18": "11,689,512",
    "resnet34": "21,797,672",
    "resnet50": "25,636,712",
    "resnet101": "44,707,176",
    "resnet152": "60,419,944",
}
# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "resnet101": {"num_params": 44_707_176, "input_shape": (224, 224, 3)},
    "resnet101v2": {"num_params": 44_675_560, "input_shape": (224, 224, 3)},
    "resnet110_cifar": {"num_params": 1_736_058, "input_shape": (32, 32, 3)},
    "resnet152": {"num_params": 60_419_944, "input_shape": (224, 224, 3)},
    "resnet152v2": {"num_params": 60_380_648, "input_shape": (224, 224, 3)},
    "resnet18": {"num_params": 11_699_112, "input_shape": (224, 224, 3)},
    "resnet20_cifar": {"num_params": 271_098, "input_shape": (32, 32, 3)},
    "resnet32_cifar": {"num_params": 466_426, "input_shape": (32, 32, 3)},
    "resnet34": {"num_params": 21_814_696, "input_shape": (224, 224, 3)},
    "resnet44_cifar": {"num_params": 661_754, "input_shape": (32, 32, 3)},
    "resnet50": {"num_params": 25_636_712, "input_shape": (224, 224, 3)},
    "resnet50v2": {"num_params": 25_613_800, "input_shape": (224, 224, 3)},
    "resnet56_cifar": {"num_params": 857_082, "input_shape": (32, 32, 3)},
}


for _variant, (_block, _blocks) in IMAGENET.items():
    _v2 = _block == "preact"
    register_model(
        ModelSpec(
            name=_variant,
            **CARD_FACTS[_variant],
            builder=resnet,
            family="resnet",
            task="image-classification",
            paper=PAPER_V2 if _v2 else PAPER_V1,
            kwargs={"variant": _variant},
            description=(
                f"ResNet-{_variant[6:].replace('v2', '')} {'v2 (pre-activation)' if _v2 else 'v1'}, "
                f"{_block} blocks {list(_blocks)}"
                + (f", {_PARAMS[_variant]} parameters" if _variant in _PARAMS else "")
                + "."
            ),
            test_kwargs={"input_shape": (32, 32, 3), "num_classes": 3, "width": 2},
            head_layers=("predictions",),
            stem_layer="conv1_conv",
            stages=("conv1", "conv2", "conv3", "conv4", "conv5"),
            example=f"import kzoo\nmodel = kzoo.get('{_variant}', num_classes=5, input_shape=(160, 160, 3))",
        )
    )
for _variant, _n in CIFAR.items():
    register_model(
        ModelSpec(
            name=_variant,
            **CARD_FACTS[_variant],
            builder=resnet,
            family="resnet",
            task="image-classification",
            paper=PAPER_V1 + ", Section 4.2 (CIFAR-10)",
            kwargs={"variant": _variant},
            description=f"ResNet-{6 * _n + 2} for 32x32 images: 3 stages of {_n} basic blocks, option-A shortcuts.",
            test_kwargs={"num_classes": 3, "width": 2},
            head_layers=("predictions",),
            stem_layer="stem_conv",
            stages=("stem", "stage1", "stage2", "stage3"),
            example=f"import kzoo\nmodel = kzoo.get('{_variant}')  # 32x32x3 in, 10 logits out",
        )
    )


# The official ImageNet files of keras.applications: (file stem, md5 with top, md5 without top,
# parameters with top, parameters without top). The v2 ResNets expect "tf" preprocessing.
IMAGENET_FILES = {
    "resnet50": (
        "resnet/resnet50",
        "2cb95161c43110f7111970584f804107",
        "4d473c1dd8becc155b73f8504c6f6626",
        25_636_712,
        23_587_712,
    ),
    "resnet101": (
        "resnet/resnet101",
        "f1aeb4b969a6efcfb50fad2f0c20cfc5",
        "88cf7a10940856eca736dc7b7e228a21",
        44_707_176,
        42_658_176,
    ),
    "resnet152": (
        "resnet/resnet152",
        "100835be76be38e30d865e96f2aaae62",
        "ee4c566cf9a93f14d82f913c2dc6dd0c",
        60_419_944,
        58_370_944,
    ),
    "resnet50v2": (
        "resnet/resnet50v2",
        "3ef43a0b657b3be2300d5770ece849e0",
        "fac2f116257151a9d068a22e544a4917",
        25_613_800,
        23_564_800,
    ),
    "resnet101v2": (
        "resnet/resnet101v2",
        "6343647c601c52e1368623803854d971",
        "c0ed64b8031c3730f411d2eb4eea35b5",
        44_675_560,
        42_626_560,
    ),
    "resnet152v2": (
        "resnet/resnet152v2",
        "a49b44d1979771252814e80f8ec446f9",
        "ed17cf2e0169df9d443503ef94b23b33",
        60_380_648,
        58_331_648,
    ),
}
register_imagenet_files(
    IMAGENET_FILES, preprocessing={name: TF if name.endswith("v2") else CAFFE for name in IMAGENET_FILES}
)
