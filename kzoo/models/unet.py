"""U-Net (Ronneberger, Fischer & Brox 2015), as in the paper and in its modern form.

The paper's network uses unpadded ("valid") 3x3 convolutions, so every convolution
trims a pixel on each side: a 572x572 tile gives a 388x388 segmentation of its centre,
and skip connections crop the encoder's larger maps before concatenating. Large images
are segmented tile by tile with mirrored borders (the overlap-tile strategy, see
:func:`kzoo.segmentation.predict_tiled`).

The modern variant pads its convolutions ("same"), so the output has the input's size,
and adds BatchNormalization after each convolution; it trains faster and simpler.

Both are one builder over data: ``depth`` levels, ``base_filters`` doubling per level.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.models._vision import check_vision_args
from kzoo.registry import ModelSpec, register_model

PAPER = "Ronneberger, Fischer & Brox 2015, U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI"


def output_size(size: int, depth: int, padding: str) -> int | None:
    """Output side length for an input side ``size``, or ``None`` if the network cannot take it.

    With ``"valid"`` padding every feature map entering a 2x2 pooling must have an even
    size; with ``"same"`` padding the input must be divisible by ``2 ** depth``.
    """
    if padding == "same":
        return size if size % (2**depth) == 0 else None
    for _ in range(depth):
        size -= 4
        if size <= 0 or size % 2:
            return None
        size //= 2
    size -= 4
    if size <= 0:
        return None
    for _ in range(depth):
        size = size * 2 - 4
    return size if size > 0 else None


def valid_sizes_near(size: int, depth: int, padding: str, count: int = 2) -> list[int]:
    """The input sizes closest to ``size`` that the network accepts."""
    below = [s for s in range(size, 0, -1) if output_size(s, depth, padding)][:count]
    above = [s for s in range(size, size + 4 * 2**depth) if output_size(s, depth, padding)][:count]
    return sorted(set(below + above), key=lambda s: (abs(s - size), s))[:count]


def _conv_block(x: Any, filters: int, *, prefix: str, padding: str, batch_norm: bool) -> Any:
    for index in (1, 2):
        x = keras.layers.Conv2D(
            filters,
            3,
            padding=padding,
            use_bias=not batch_norm,
            kernel_initializer="he_normal",
            name=f"{prefix}_conv{index}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"{prefix}_bn{index}")(x)
        x = keras.layers.Activation("relu", name=f"{prefix}_relu{index}")(x)
    return x


def _build_unet(
    *,
    input_shape: tuple[int, int, int] | None,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: Any,
    name: str,
    depth: int,
    base_filters: int,
    padding: str,
    batch_norm: bool,
    dropout: float,
    default_input_shape: tuple[int, int, int],
) -> keras.Model:
    if not isinstance(depth, int) or not 1 <= depth <= 6:
        raise InvalidArgumentError(expected_received(f"{name}: depth", "an int from 1 to 6", depth))
    if not isinstance(base_filters, int) or base_filters < 1:
        raise InvalidArgumentError(expected_received(f"{name}: base_filters", "a positive int", base_filters))
    if padding not in ("valid", "same"):
        raise InvalidArgumentError(expected_received(f"{name}: padding", "'valid' (paper) or 'same'", padding))
    if not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(expected_received(f"{name}: dropout", "a rate in [0, 1)", dropout))
    if pooling is not None:
        raise InvalidArgumentError(
            expected_received(f"{name}: pooling", "None (a segmentation network keeps its feature map)", pooling)
        )
    input_shape = check_vision_args(
        model=name,
        input_shape=input_shape,
        default_input_shape=default_input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=None,
        classifier_activation=classifier_activation,
    )
    for side in input_shape[:2]:
        if output_size(side, depth, padding) is None:
            raise InvalidArgumentError(
                expected_received(
                    f"{name}: input_shape",
                    f"sides the network can take with padding={padding!r} and depth={depth}",
                    tuple(input_shape),
                    f"Nearest valid sizes for {side}: {valid_sizes_near(side, depth, padding)}"
                    + (" (the paper's 572 gives a 388 output)" if padding == "valid" else "")
                    + "; pad or crop your images, or use kzoo.segmentation.predict_tiled.",
                )
            )

    # Contracting path
    inputs = keras.Input(shape=input_shape, name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, prefix=f"enc{level + 1}", padding=padding, batch_norm=batch_norm)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"enc{level + 1}_pool")(x)
    x = _conv_block(x, base_filters * 2**depth, prefix="bottleneck", padding=padding, batch_norm=batch_norm)
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottleneck_dropout")(x)

    # Expanding path: up-convolution halves the channels, then crop-and-concatenate the skip.
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = keras.layers.Conv2DTranspose(filters, 2, strides=2, name=f"dec{level + 1}_upconv")(x)
        skip = skips[level]
        margin = (skip.shape[1] - x.shape[1]) // 2
        if margin:
            skip = keras.layers.Cropping2D(margin, name=f"dec{level + 1}_crop")(skip)
        x = keras.layers.Concatenate(name=f"dec{level + 1}_concat")([skip, x])
        x = _conv_block(x, filters, prefix=f"dec{level + 1}", padding=padding, batch_norm=batch_norm)

    if include_top:
        # 1x1 convolution to class logits (one channel for binary segmentation), in float32.
        x = keras.layers.Conv2D(num_classes, 1, activation=classifier_activation, dtype="float32", name="predictions")(
            x
        )
    return keras.Model(inputs, x, name=name)


def unet(
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 2,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: Any = None,
    name: str = "unet",
    depth: int = 4,
    base_filters: int = 64,
    padding: str = "valid",
    batch_norm: bool = False,
    dropout: float = 0.5,
) -> keras.Model:
    """U-Net as in the paper: valid convolutions, 572x572 in, 388x388 out, 31,030,658 parameters.

    Args:
        input_shape: ``(height, width, channels)``; with ``padding="valid"`` each side must be
            one the valid network can take (572, 556, ...: the error lists the nearest), with
            ``"same"`` divisible by ``2 ** depth``. Default ``(572, 572, 1)`` (valid) or
            ``(256, 256, 1)`` (same).
        num_classes: Output channels: logits per class (the paper: 2), or 1 for a single
            binary logit map.
        include_top: Keep the final 1x1 convolution; ``False`` ends at the last decoder block.
        pooling: Must be ``None`` (part of the shared vision signature).
        classifier_activation: ``None`` for logits, or e.g. ``"softmax"``/``"sigmoid"``.
        name: Model name.
        depth: Number of poolings (the paper: 4).
        base_filters: Filters of the first level, doubled per level (the paper: 64).
        padding: ``"valid"`` (paper) or ``"same"``.
        batch_norm: BatchNormalization after each convolution (not in the paper).
        dropout: Dropout at the end of the contracting path (the paper uses it).

    Example:
        >>> import kzoo
        >>> model = kzoo.get("unet")
        >>> model.output_shape
        (None, 388, 388, 2)

    Reference: Ronneberger et al. 2015, U-Net: Convolutional Networks for Biomedical Image Segmentation.
    """
    return _build_unet(
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        name=name,
        depth=depth,
        base_filters=base_filters,
        padding=padding,
        batch_norm=batch_norm,
        dropout=dropout,
        # The paper's valid-padded 572x572 input, or a size every level halves cleanly.
        default_input_shape=(572, 572, 1) if padding == "valid" else (256, 256, 1),
    )


# The "modern" U-Net is the same builder with today's defaults: same padding (output = input
# size), BatchNorm, narrower, no dropout, one binary logit map.
MODERN = {"num_classes": 1, "base_filters": 32, "padding": "same", "batch_norm": True, "dropout": 0.0}


def unet_modern(**kwargs: Any) -> keras.Model:
    """Alias of ``unet(**MODERN, name="unet_modern", ...)``: same padding, BatchNorm, 32 base
    filters, no dropout, one binary logit map; default input ``(256, 256, 1)``.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("unet_modern", input_shape=(128, 128, 1))
        >>> model.output_shape
        (None, 128, 128, 1)
    """
    return unet(**{**MODERN, "name": "unet_modern", **kwargs})


def _stages(depth: int = 4) -> tuple[str, ...]:
    return (*(f"enc{i}" for i in range(1, depth + 1)), "bottleneck", *(f"dec{i}" for i in range(depth, 0, -1)))


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "unet": {"num_params": 31_030_658, "input_shape": (572, 572, 1)},
    "unet_modern": {"num_params": 7_768_353, "input_shape": (256, 256, 1)},
    "unet_resnet18": {"num_params": 14_339_665, "input_shape": (256, 256, 3)},
    "unet_resnet50": {"num_params": 32_602_641, "input_shape": (256, 256, 3)},
    "unet_vgg16": {"num_params": 18_635_361, "input_shape": (256, 256, 3)},
}


register_model(
    ModelSpec(
        name="unet",
        **CARD_FACTS["unet"],
        builder=unet,
        family="unet",
        task="image-segmentation",
        paper=PAPER,
        description=(
            "U-Net as in the paper: valid convolutions, 572x572 -> 388x388, 2-class logits, 31,030,658 parameters."
        ),
        test_kwargs={"input_shape": (188, 188, 1), "base_filters": 2},  # 188: the smallest valid side
        head_layers=("predictions",),
        stem_layer="enc1_conv1",
        stages=_stages(),
        example=(
            "import kzoo\n"
            "model = kzoo.get('unet')                      # (572, 572, 1) -> (388, 388, 2) logits\n"
            "masks = kzoo.segmentation.predict_tiled(model, image)  # any image size, overlap-tile"
        ),
    )
)

register_model(
    ModelSpec(
        name="unet_modern",
        **CARD_FACTS["unet_modern"],
        builder=unet,
        defaults=MODERN,
        kwargs={"name": "unet_modern"},
        family="unet",
        task="image-segmentation",
        paper=PAPER + " (same padding and BatchNormalization: the common modern variant)",
        description="U-Net with same padding and BatchNormalization; binary logits at the input's size.",
        test_kwargs={"input_shape": (32, 32, 1), "base_filters": 2},
        head_layers=("predictions",),
        stem_layer="enc1_conv1",
        stages=_stages(),
        example=(
            "import kzoo\n"
            "model = kzoo.get('unet_modern', pretrained=True)   # ISBI 2012 membranes\n"
            "masks = kzoo.segmentation.predict_tiled(model, image)"
        ),
    )
)


def unet_encoder(
    *,
    encoder: str = "vgg16",
    encoder_weights: str | None = None,
    encoder_kwargs: dict | None = None,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 1,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: Any = None,
    name: str | None = None,
    decoder_filters: tuple[int, ...] = (256, 128, 64, 32, 16),
    batch_norm: bool = True,
) -> keras.Model:
    """U-Net whose contracting path is a zoo classifier (VGG, ResNet), optionally ImageNet-pretrained.

    The encoder's stage outputs (``kzoo.feature_extractor``) are the skip connections; the
    decoder upsamples from the deepest stage, concatenating each shallower one, back to
    the input resolution. The encoder's layers keep their names (``block1_conv1``,
    ``conv2_block1_1_conv``), so ``kzoo.freeze(model, until="block5")`` freezes the encoder.

    Args:
        encoder: A registered classifier with declared stages (``vgg16``, ``resnet50``, ...).
        encoder_weights: ``None`` or a weights tag of the encoder (``"imagenet_notop"``);
            grayscale inputs get the first convolution adapted as in :func:`kzoo.get`.
        encoder_kwargs: Extra encoder builder arguments (e.g. ``{"width_multiplier": 0.5}``).
        input_shape: ``(height, width, channels)``, sides divisible by 32; default (256, 256, 3).
        num_classes: 1 for binary logits, or the number of classes.
        include_top: Keep the final 1x1 convolution.
        pooling: Must be ``None``.
        classifier_activation: ``None`` for logits.
        name: Model name; default ``unet_<encoder>``.
        decoder_filters: Filters of the decoder blocks, deepest first.
        batch_norm: BatchNormalization in the decoder blocks.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("unet_resnet50", input_shape=(128, 128, 1))
        >>> model.output_shape
        (None, 128, 128, 1)
    """
    from kzoo import features, registry

    name = name or f"unet_{encoder}"
    if pooling is not None:
        raise InvalidArgumentError(expected_received(f"{name}: pooling", "None", pooling))
    input_shape = check_vision_args(
        model=name,
        input_shape=input_shape,
        default_input_shape=(256, 256, 3),
        num_classes=num_classes,
        include_top=include_top,
        pooling=None,
        classifier_activation=classifier_activation,
        min_size=32,
    )
    if input_shape[0] % 32 or input_shape[1] % 32:
        raise InvalidArgumentError(
            expected_received(f"{name}: input_shape", "sides divisible by 32", tuple(input_shape), "Pad or crop.")
        )
    backbone = registry.build_with_weights(
        encoder,
        pretrained=encoder_weights or False,
        include_top=False,
        input_shape=input_shape,
        **(encoder_kwargs or {}),
    )
    skips = features.feature_extractor(
        backbone, declared=registry.spec(encoder).stages
    ).output  # {stage: tensor}, input to output order
    maps = sorted(skips.values(), key=lambda t: -t.shape[1])  # finest first
    x = maps[-1]
    targets = [*reversed(maps[:-1])]
    if maps[0].shape[1] < input_shape[0]:
        targets.append(None)  # a last step back to the input resolution, without a skip
    if len(decoder_filters) < len(targets):
        raise InvalidArgumentError(
            expected_received(f"{name}: decoder_filters", f"at least {len(targets)} widths", decoder_filters)
        )
    for level, (skip, filters) in enumerate(zip(targets, decoder_filters), start=1):
        size = skip.shape[1] if skip is not None else input_shape[0]
        x = keras.layers.UpSampling2D(size // x.shape[1], interpolation="bilinear", name=f"dec{level}_up")(x)
        if skip is not None:
            x = keras.layers.Concatenate(name=f"dec{level}_concat")([x, skip])
        x = _conv_block(x, filters, prefix=f"dec{level}", padding="same", batch_norm=batch_norm)
    if include_top:
        x = keras.layers.Conv2D(num_classes, 1, activation=classifier_activation, dtype="float32", name="predictions")(
            x
        )
    return keras.Model(backbone.inputs, x, name=name)


for _encoder, _stages in (
    ("vgg16", ("block1", "block2", "block3", "block4", "block5")),
    ("resnet18", ("conv1", "conv2", "conv3", "conv4", "conv5")),
    ("resnet50", ("conv1", "conv2", "conv3", "conv4", "conv5")),
):
    _tiny = {"width_multiplier": 0.0625} if _encoder.startswith("vgg") else {"width": 2}
    register_model(
        ModelSpec(
            name=f"unet_{_encoder}",
            **CARD_FACTS[f"unet_{_encoder}"],
            builder=unet_encoder,
            family="unet",
            task="image-segmentation",
            paper=PAPER + f" (encoder: kzoo's {_encoder})",
            kwargs={"encoder": _encoder},
            description=f"U-Net with a {_encoder} encoder (optionally ImageNet-pretrained: encoder_weights=...).",
            test_kwargs={"input_shape": (64, 64, 1), "encoder_kwargs": _tiny, "decoder_filters": (4, 4, 4, 4, 4)},
            head_layers=("predictions",),
            stem_layer="block1_conv1" if _encoder.startswith("vgg") else "conv1_conv",
            # VGG's finest stage is at full resolution (4 decoder steps); ResNet's at half (5).
            stages=(*_stages, "dec1", "dec2", "dec3", "dec4", *(() if _encoder.startswith("vgg") else ("dec5",))),
            example=(
                "import kzoo\n"
                f"model = kzoo.get('unet_{_encoder}', input_shape=(256, 256, 3), encoder_weights='imagenet_notop')"
            ),
        )
    )
