"""DCGAN (Radford, Metz & Chintala 2016) and the conditional GAN (Mirza & Osindero 2014).

The registry holds the two networks of each GAN as plain functional models; the
adversarial training lives in :class:`kzoo.generative.GAN`, a ``keras.Model`` subclass
with its own ``train_step`` that takes a generator and a discriminator:

    >>> import kzoo
    >>> from kzoo.generative import GAN
    >>> gan = GAN(kzoo.get("dcgan_generator"), kzoo.get("dcgan_discriminator"))
    >>> gan.compile()
    >>> gan.fit(images_in_minus1_to_1, epochs=5)

The architecture follows the DCGAN guidelines: no pooling (strided convolutions in the
discriminator, transposed convolutions in the generator), batch normalization in the
generator, ReLU in the generator with a tanh output, LeakyReLU(0.2) in the discriminator.
The discriminator has no batch normalization, so its output for one image never depends
on the rest of the batch (the paper's BN in D is often dropped in practice for this
reason). Images are in [-1, 1]; the discriminator outputs one logit per image.

The conditional variants take a class label as a second input: the generator concatenates
a learned label embedding to the noise vector, the discriminator appends a learned
label map as an extra image channel.

Builders share one keyword-only signature: ``latent_dim`` / ``input_shape`` (the image
shape), ``num_classes`` (``None`` for an unconditional GAN), ``base_filters``, ``name``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.models._vision import check_image_shape
from kzoo.registry import ModelSpec, register_model

PAPER_DCGAN = (
    "Radford, Metz & Chintala 2016, Unsupervised representation learning with deep convolutional generative "
    "adversarial networks, ICLR"
)
PAPER_CGAN = "Mirza & Osindero 2014, Conditional generative adversarial nets, arXiv:1411.1784"
UPSAMPLINGS = 2  # 7x7 -> 14x14 -> 28x28 for MNIST; 8x8 -> 32x32 for 32x32 images


def _check_common(name: str, num_classes: Any, base_filters: Any) -> None:
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool)):
        raise InvalidArgumentError(
            expected_received(f"{name}: num_classes", "None (unconditional) or an int >= 2", num_classes)
        )
    if num_classes is not None and num_classes < 2:
        raise InvalidArgumentError(expected_received(f"{name}: num_classes", "an int >= 2", num_classes))
    if not isinstance(base_filters, int) or isinstance(base_filters, bool) or base_filters < 1:
        raise InvalidArgumentError(expected_received(f"{name}: base_filters", "a positive int", base_filters))


def _build_generator(
    *,
    latent_dim: int,
    image_shape: tuple[int, int, int] | None,
    num_classes: int | None,
    embedding_dim: int,
    base_filters: int,
    name: str,
) -> keras.Model:
    _check_common(name, num_classes, base_filters)
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise InvalidArgumentError(expected_received(f"{name}: latent_dim", "a positive int", latent_dim))
    height, width, channels = check_image_shape(name, image_shape, (28, 28, 1), 2**UPSAMPLINGS)
    start_h, start_w = height // 2**UPSAMPLINGS, width // 2**UPSAMPLINGS

    latent = keras.Input(shape=(latent_dim,), name="latent")
    inputs, x = [latent], latent
    if num_classes is not None:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        embedded = keras.layers.Embedding(num_classes, embedding_dim, name="label_embedding")(label)
        x = keras.layers.Concatenate(name="latent_and_label")([latent, embedded])

    # Project and reshape, then transposed convolutions double the size at each stage.
    x = keras.layers.Dense(start_h * start_w * base_filters * 2**UPSAMPLINGS, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.ReLU(name="project_relu")(x)
    x = keras.layers.Reshape((start_h, start_w, base_filters * 2**UPSAMPLINGS), name="project_reshape")(x)
    for stage in range(1, UPSAMPLINGS + 1):
        filters = base_filters * 2 ** (UPSAMPLINGS - stage)
        x = keras.layers.Conv2DTranspose(filters, 5, strides=2, padding="same", use_bias=False, name=f"up{stage}_conv")(
            x
        )
        x = keras.layers.BatchNormalization(name=f"up{stage}_bn")(x)
        x = keras.layers.ReLU(name=f"up{stage}_relu")(x)
    x = keras.layers.Conv2D(channels, 5, padding="same", name="output_conv")(x)
    image = keras.layers.Activation("tanh", dtype="float32", name="output_tanh")(x)
    return keras.Model(inputs if len(inputs) > 1 else latent, image, name=name)


def _build_discriminator(
    *,
    input_shape: tuple[int, int, int] | None,
    num_classes: int | None,
    base_filters: int,
    dropout: float,
    name: str,
) -> keras.Model:
    _check_common(name, num_classes, base_filters)
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(expected_received(f"{name}: dropout", "a rate in [0, 1)", dropout))
    height, width, channels = check_image_shape(name, input_shape, (28, 28, 1), 2**UPSAMPLINGS)

    image = keras.Input(shape=(height, width, channels), name="image")
    inputs, x = [image], image
    if num_classes is not None:
        label = keras.Input(shape=(), dtype="int32", name="label")
        inputs.append(label)
        label_map = keras.layers.Embedding(num_classes, height * width, name="label_embedding")(label)
        label_map = keras.layers.Reshape((height, width, 1), name="label_map")(label_map)
        x = keras.layers.Concatenate(name="image_and_label")([image, label_map])
    for stage in range(1, UPSAMPLINGS + 1):
        x = keras.layers.Conv2D(
            base_filters * 2 ** (stage - 1), 5, strides=2, padding="same", name=f"down{stage}_conv"
        )(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{stage}_lrelu")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"down{stage}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="predictions")(x)
    return keras.Model(inputs if len(inputs) > 1 else image, logit, name=name)


def dcgan_generator(
    *,
    latent_dim: int = 100,
    input_shape: tuple[int, int, int] | None = None,
    base_filters: int = 64,
    name: str = "dcgan_generator",
) -> keras.Model:
    """DCGAN generator: noise ``(latent_dim,)`` -> image in [-1, 1].

    Args:
        latent_dim: Size of the noise vector.
        input_shape: Shape of the generated images ``(height, width, channels)``, sides
            divisible by 4; default ``(28, 28, 1)``. (Named like every vision builder's
            argument so ``pretrained`` weights know their image size.)
        base_filters: Width of the last transposed convolution (doubled per stage inwards).
        name: Model name.

    Example:
        >>> import kzoo, numpy as np
        >>> generator = kzoo.get("dcgan_generator", pretrained=True)   # MNIST digits, latent_dim=64
        >>> noise = np.random.default_rng(0).standard_normal((16, generator.input_shape[-1]))
        >>> images = generator.predict(noise)                           # in [-1, 1]

    Reference: Radford, Metz & Chintala 2016.
    """
    return _build_generator(
        latent_dim=latent_dim,
        image_shape=input_shape,
        num_classes=None,
        embedding_dim=0,
        base_filters=base_filters,
        name=name,
    )


def dcgan_discriminator(
    *,
    input_shape: tuple[int, int, int] | None = None,
    base_filters: int = 64,
    dropout: float = 0.3,
    name: str = "dcgan_discriminator",
) -> keras.Model:
    """DCGAN discriminator: image in [-1, 1] -> one real/fake logit.

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by 4; default ``(28, 28, 1)``.
        base_filters: Width of the first strided convolution (doubled per stage).
        dropout: Dropout after each LeakyReLU (0 disables it).
        name: Model name.

    Reference: Radford, Metz & Chintala 2016.
    """
    return _build_discriminator(
        input_shape=input_shape, num_classes=None, base_filters=base_filters, dropout=dropout, name=name
    )


def cgan_generator(
    *,
    latent_dim: int = 100,
    num_classes: int = 10,
    embedding_dim: int = 50,
    input_shape: tuple[int, int, int] | None = None,
    base_filters: int = 64,
    name: str = "cgan_generator",
) -> keras.Model:
    """Conditional DCGAN generator: ``[noise, label]`` -> image of that class in [-1, 1].

    Args:
        latent_dim: Size of the noise vector.
        num_classes: Number of classes the generator is conditioned on.
        embedding_dim: Size of the learned label embedding concatenated to the noise.
        input_shape: Shape of the generated images, sides divisible by 4.
        base_filters: Width of the last transposed convolution.
        name: Model name.

    Example:
        >>> import kzoo, keras, numpy as np
        >>> generator = kzoo.get("cgan_generator")
        >>> images = generator.predict([keras.random.normal((10, 100)), np.arange(10)])

    Reference: Mirza & Osindero 2014.
    """
    return _build_generator(
        latent_dim=latent_dim,
        image_shape=input_shape,
        num_classes=num_classes,
        embedding_dim=embedding_dim,
        base_filters=base_filters,
        name=name,
    )


def cgan_discriminator(
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 10,
    base_filters: int = 64,
    dropout: float = 0.3,
    name: str = "cgan_discriminator",
) -> keras.Model:
    """Conditional DCGAN discriminator: ``[image, label]`` -> one logit (real image of that class?).

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by 4.
        num_classes: Number of classes.
        base_filters: Width of the first strided convolution.
        dropout: Dropout after each LeakyReLU.
        name: Model name.

    Reference: Mirza & Osindero 2014.
    """
    return _build_discriminator(
        input_shape=input_shape, num_classes=num_classes, base_filters=base_filters, dropout=dropout, name=name
    )


def _with_labels(model: Any, batch_size: int, rng: Any) -> list:
    """Standard-normal noise (or images) plus valid integer labels."""
    first = rng.standard_normal((batch_size, *model.inputs[0].shape[1:])).astype("float32")
    classes = model.get_layer("label_embedding").input_dim
    return [first, rng.integers(0, classes, size=(batch_size,)).astype(np.int32)]


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "cgan_discriminator": {"num_params": 222_305, "input_shape": None},
    "cgan_generator": {"num_params": 2_958_645, "input_shape": None},
    "dcgan_discriminator": {"num_params": 212_865, "input_shape": (28, 28, 1)},
    "dcgan_generator": {"num_params": 2_330_945, "input_shape": (100,)},
}


for _name, _builder, _paper, _description, _test_kwargs, _conditional in (
    (
        "dcgan_generator",
        dcgan_generator,
        PAPER_DCGAN,
        "DCGAN generator: noise -> 28x28 image in [-1, 1] (train with kzoo.generative.GAN).",
        {"latent_dim": 4, "input_shape": (8, 8, 1), "base_filters": 2},
        False,
    ),
    (
        "dcgan_discriminator",
        dcgan_discriminator,
        PAPER_DCGAN,
        "DCGAN discriminator: image in [-1, 1] -> real/fake logit.",
        {"input_shape": (8, 8, 1), "base_filters": 2, "dropout": 0.0},
        False,
    ),
    (
        "cgan_generator",
        cgan_generator,
        PAPER_CGAN,
        "Conditional DCGAN generator: [noise, label] -> image of that class.",
        {"latent_dim": 4, "num_classes": 3, "embedding_dim": 2, "input_shape": (8, 8, 1), "base_filters": 2},
        True,
    ),
    (
        "cgan_discriminator",
        cgan_discriminator,
        PAPER_CGAN,
        "Conditional DCGAN discriminator: [image, label] -> real/fake logit.",
        {"input_shape": (8, 8, 1), "num_classes": 3, "base_filters": 2, "dropout": 0.0},
        True,
    ),
):
    register_model(
        ModelSpec(
            name=_name,
            **CARD_FACTS[_name],
            builder=_builder,
            family="gan",
            task="image-generation",
            paper=_paper,
            description=_description,
            test_kwargs=_test_kwargs,
            head_layers=("predictions",) if "discriminator" in _name else (),
            make_inputs=_with_labels if _conditional else None,
            example=(
                "import kzoo\n"
                "from kzoo.generative import GAN\n"
                "images, labels = kzoo.data.load_mnist('train')\n"
                f"gan = GAN(kzoo.get('{_name.split('_')[0]}_generator'), "
                f"kzoo.get('{_name.split('_')[0]}_discriminator'))\n"
                "gan.compile()\n"
                f"gan.fit(images[..., None] / 127.5 - 1.0{', labels' if _conditional else ''}, batch_size=128)"
            ),
        )
    )
