"""CycleGAN's networks (Zhu, Park, Isola & Efros 2017): ResNet generators and the 70x70 PatchGAN.

- Generator (Johnson et al. 2016's architecture, as CycleGAN uses it): ``c7s1-k, d2k, d4k,
  R4k x blocks, u2k, uk, c7s1-C`` with reflection padding, instance normalization and a
  tanh output; 6 residual blocks for 128x128 images, 9 for 256x256 and larger.
- Discriminator: the 70x70 PatchGAN ``C64-C128-C256-C512`` of 4x4 convolutions (LeakyReLU
  0.2, instance normalization from the second layer on), then a 4x4 convolution to one
  logit per overlapping 70x70 patch (fewer patches, down to one, at small image sizes).

Instance normalization is ``keras.layers.GroupNormalization(groups=-1)`` (one group per
channel), which normalizes each image's channel over its own height and width.

The adversarial training (least-squares GAN loss, cycle-consistency and identity losses,
the pool of 50 previously generated images, linear learning-rate decay) lives in
:class:`kzoo.generative.CycleGAN`, which takes two generators and two discriminators.
Images are in [-1, 1]. ``base_filters`` (the paper's 64) and the image size are
configurable, so a small CycleGAN trains on a CPU in minutes.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.layers.padding import ReflectionPadding2D
from kzoo.models._vision import check_image_shape
from kzoo.registry import ModelSpec, register_model

PAPER = (
    "Zhu, Park, Isola & Efros 2017, Unpaired image-to-image translation using cycle-consistent adversarial "
    "networks, ICCV"
)
DOWNSAMPLINGS = 2  # the generator's d2k and d4k stages


def _instance_norm(name: str) -> keras.layers.Layer:
    return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)


def _conv_norm_relu(x: Any, filters: int, kernel: int, strides: int, *, prefix: str, reflect: int = 0) -> Any:
    if reflect:
        x = ReflectionPadding2D(reflect, name=f"{prefix}_pad")(x)
    padding = "valid" if reflect else "same"
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"{prefix}_conv")(x)
    x = _instance_norm(f"{prefix}_norm")(x)
    return keras.layers.ReLU(name=f"{prefix}_relu")(x)


def _residual_block(x: Any, filters: int, *, prefix: str) -> Any:
    shortcut = x
    x = _conv_norm_relu(x, filters, 3, 1, prefix=f"{prefix}_a", reflect=1)
    x = ReflectionPadding2D(1, name=f"{prefix}_b_pad")(x)
    x = keras.layers.Conv2D(filters, 3, use_bias=False, name=f"{prefix}_b_conv")(x)
    x = _instance_norm(f"{prefix}_b_norm")(x)
    return keras.layers.Add(name=f"{prefix}_add")([shortcut, x])


def _build_resnet_generator(
    *, input_shape: tuple[int, int, int] | None, blocks: int, base_filters: int, name: str
) -> keras.Model:
    if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 1:
        raise InvalidArgumentError(expected_received(f"{name}: blocks", "a positive int (the paper: 6 or 9)", blocks))
    if not isinstance(base_filters, int) or isinstance(base_filters, bool) or base_filters < 1:
        raise InvalidArgumentError(expected_received(f"{name}: base_filters", "a positive int", base_filters))
    image_shape = check_image_shape(name, input_shape, (128, 128, 3), 2**DOWNSAMPLINGS)
    if min(image_shape[:2]) < 2**DOWNSAMPLINGS * 2:
        raise InvalidArgumentError(
            expected_received(f"{name}: input_shape", "height and width of at least 8", image_shape)
        )

    inputs = keras.Input(shape=image_shape, name="image")
    x = _conv_norm_relu(inputs, base_filters, 7, 1, prefix="stem", reflect=3)
    for stage in range(1, DOWNSAMPLINGS + 1):
        x = _conv_norm_relu(x, base_filters * 2**stage, 3, 2, prefix=f"down{stage}")
    for block in range(1, blocks + 1):
        x = _residual_block(x, base_filters * 2**DOWNSAMPLINGS, prefix=f"res{block}")
    for stage in range(1, DOWNSAMPLINGS + 1):
        filters = base_filters * 2 ** (DOWNSAMPLINGS - stage)
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False, name=f"up{stage}_conv")(
            x
        )
        x = _instance_norm(f"up{stage}_norm")(x)
        x = keras.layers.ReLU(name=f"up{stage}_relu")(x)
    x = ReflectionPadding2D(3, name="output_pad")(x)
    x = keras.layers.Conv2D(image_shape[-1], 7, name="output_conv")(x)
    outputs = keras.layers.Activation("tanh", dtype="float32", name="output_tanh")(x)
    return keras.Model(inputs, outputs, name=name)


def patchgan_output_size(size: int, layers: int) -> int:
    """Side of the PatchGAN's logit map for an input side ``size`` (4x4 kernels, padding 1)."""
    for _ in range(layers):
        size = (size + 2 - 4) // 2 + 1
    for _ in range(2):  # the stride-1 C512 layer and the final convolution
        size = size + 2 - 4 + 1
    return size


def _build_patchgan(
    *, input_shape: tuple[int, int, int] | None, base_filters: int, downsamplings: int, name: str
) -> keras.Model:
    if not isinstance(base_filters, int) or isinstance(base_filters, bool) or base_filters < 1:
        raise InvalidArgumentError(expected_received(f"{name}: base_filters", "a positive int", base_filters))
    if not isinstance(downsamplings, int) or isinstance(downsamplings, bool) or downsamplings < 1:
        raise InvalidArgumentError(
            expected_received(f"{name}: downsamplings", "a positive int (3 gives 70x70 patches)", downsamplings)
        )
    image_shape = check_image_shape(name, input_shape, (128, 128, 3))
    if patchgan_output_size(min(image_shape[:2]), downsamplings) < 1:
        smallest = next(s for s in range(1, 4096) if patchgan_output_size(s, downsamplings) >= 1)
        raise InvalidArgumentError(
            expected_received(
                f"{name}: input_shape",
                f"height and width of at least {smallest} for downsamplings={downsamplings}",
                image_shape,
                "Use larger images or fewer downsamplings.",
            )
        )

    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    for layer in range(1, downsamplings + 2):
        strides = 2 if layer <= downsamplings else 1
        x = keras.layers.ZeroPadding2D(1, name=f"c{layer}_pad")(x)
        x = keras.layers.Conv2D(
            base_filters * min(2 ** (layer - 1), 8), 4, strides=strides, use_bias=layer == 1, name=f"c{layer}_conv"
        )(x)
        if layer > 1:
            x = _instance_norm(f"c{layer}_norm")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"c{layer}_lrelu")(x)
    x = keras.layers.ZeroPadding2D(1, name="predictions_pad")(x)
    outputs = keras.layers.Conv2D(1, 4, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def cyclegan_generator(
    *,
    residual_blocks: int = 9,
    input_shape: tuple[int, int, int] | None = None,
    base_filters: int = 64,
    name: str | None = None,
) -> keras.Model:
    """CycleGAN's ResNet generator (Johnson et al.'s transformation network).

    Registered as ``cyclegan_generator_resnet6`` (6 residual blocks, the paper's choice for
    128x128) and ``cyclegan_generator_resnet9`` (9 blocks, for 256x256): the same builder with
    another ``residual_blocks``.

    Args:
        residual_blocks: Residual blocks between the down- and up-sampling convolutions.
        input_shape: ``(height, width, channels)``, sides divisible by 4; default ``(128, 128, 3)``.
        base_filters: Width of the first convolution (the paper's 64).
        name: Model name; default ``cyclegan_generator_resnet<blocks>``.

    Example:
        >>> import kzoo
        >>> to_mnist = kzoo.get("cyclegan_generator_resnet6", pretrained="uci_to_mnist")
        >>> mnist_style = to_mnist.predict(uci_digits_in_minus1_to_1)

    Reference: Zhu et al. 2017; Johnson, Alahi & Fei-Fei 2016.
    """
    return _build_resnet_generator(
        input_shape=input_shape,
        blocks=residual_blocks,
        base_filters=base_filters,
        name=name or f"cyclegan_generator_resnet{residual_blocks}",
    )


def cyclegan_generator_resnet6(**kwargs: Any) -> keras.Model:
    """Alias of ``cyclegan_generator(residual_blocks=6, ...)``."""
    return cyclegan_generator(**{"residual_blocks": 6, **kwargs})


def cyclegan_generator_resnet9(**kwargs: Any) -> keras.Model:
    """Alias of ``cyclegan_generator(residual_blocks=9, ...)``."""
    return cyclegan_generator(**{"residual_blocks": 9, **kwargs})


def patchgan_discriminator(
    *,
    input_shape: tuple[int, int, int] | None = None,
    base_filters: int = 64,
    downsamplings: int = 3,
    name: str = "patchgan_discriminator",
) -> keras.Model:
    """The 70x70 PatchGAN discriminator: one real/fake logit per overlapping image patch.

    Args:
        input_shape: ``(height, width, channels)``; default ``(128, 128, 3)`` (at least 24x24
            with 3 downsamplings).
        base_filters: Width of the first convolution (the paper's 64; capped at 8x in depth).
        downsamplings: Stride-2 layers; 3 gives the paper's 70x70 receptive field.
        name: Model name.

    Reference: Isola et al. 2017 (pix2pix); Zhu et al. 2017.
    """
    return _build_patchgan(input_shape=input_shape, base_filters=base_filters, downsamplings=downsamplings, name=name)


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "cyclegan_generator_resnet6": {"num_params": 7_841_411, "input_shape": (128, 128, 3)},
    "cyclegan_generator_resnet9": {"num_params": 11_383_427, "input_shape": (128, 128, 3)},
    "patchgan_discriminator": {"num_params": 2_765_633, "input_shape": (128, 128, 3)},
}


for _name, _builder, _kwargs, _description, _test_kwargs in (
    (
        "cyclegan_generator_resnet6",
        cyclegan_generator,
        {"residual_blocks": 6},
        "CycleGAN ResNet generator, 6 residual blocks, instance norm, reflection padding (train with "
        "kzoo.generative.CycleGAN).",
        {"input_shape": (8, 8, 3), "base_filters": 2},
    ),
    (
        "cyclegan_generator_resnet9",
        cyclegan_generator,
        {"residual_blocks": 9},
        "CycleGAN ResNet generator, 9 residual blocks.",
        {"input_shape": (8, 8, 3), "base_filters": 2},
    ),
    (
        "patchgan_discriminator",
        patchgan_discriminator,
        {},
        "70x70 PatchGAN discriminator with instance norm: one logit per image patch.",
        {"input_shape": (24, 24, 3), "base_filters": 2},
    ),
):
    register_model(
        ModelSpec(
            name=_name,
            **CARD_FACTS[_name],
            builder=_builder,
            kwargs=_kwargs,
            family="cyclegan",
            task="image-to-image",
            paper=PAPER,
            description=_description,
            test_kwargs=_test_kwargs,
            head_layers=("predictions",) if _name.startswith("patchgan") else (),
            stem_layer="c1_conv" if _name.startswith("patchgan") else "stem_conv",
            example=(
                "import kzoo\n"
                "from kzoo.generative import to_unit_range\n"
                "to_mnist = kzoo.get('cyclegan_generator_resnet6', pretrained='uci_to_mnist')  # 28x28, [-1, 1]\n"
                "images, _ = kzoo.data.load_uci_digits()\n"
                "mnist_style = to_unit_range(to_mnist.predict(images[..., None] / 127.5 - 1.0))\n"
                "# training: examples/train_cyclegan_digits.py (kzoo.generative.CycleGAN)"
            ),
        )
    )
