"""Autoencoders: undercomplete dense, deep (stacked), convolutional, denoising and variational.

Every variant is one functional model ``image -> encoder -> [sampling] -> decoder -> image``
whose encoder and decoder are nested functional models, so either half is available on
its own: ``model.get_layer("encoder")`` maps images to latent codes and
``model.get_layer("decoder")`` maps codes back to images (see
:func:`kzoo.generative.encoder_decoder`).

Inputs are images scaled to [0, 1]; the decoder ends in a float32 sigmoid, so the natural
loss is binary cross-entropy per pixel (``model.compile(loss="binary_crossentropy")``),
as in the Keras blog's "Building Autoencoders in Keras" (Chollet 2016).

- The denoising autoencoder (Vincent et al. 2008) adds Gaussian noise to its input, clipped
  back to [0, 1], only while training (``keras.layers.GaussianNoise``); at inference it is
  a plain autoencoder.
- The variational autoencoder (Kingma & Welling 2014) has an encoder that outputs the mean
  and log-variance of q(z|x) and a :class:`VariationalSampling` layer that draws z with the
  reparameterization trick and adds beta * KL(q(z|x) || N(0, I)) to the model's losses, so
  ``compile(loss="binary_crossentropy")`` + ``fit(x, x)`` minimises the negative ELBO
  (divided by the number of pixels, because Keras averages the per-pixel cross-entropy).
  ``beta > 1`` gives the beta-VAE of Higgins et al. 2017. At inference the layer returns the
  mean, so predictions are deterministic.

Builders share one keyword-only signature: ``input_shape``, ``latent_dim``, ``name`` plus the
family arguments ``hidden_units`` (dense), ``filters`` (convolutional), ``noise_stddev``
and ``beta``. The vision arguments ``num_classes``/``include_top``/``pooling`` have no
meaning for a model whose output is an image, so these builders do not take them.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.models._vision import check_image_shape
from kzoo.registry import ModelSpec, register_model

PAPER_AE = "Hinton & Salakhutdinov 2006, Reducing the dimensionality of data with neural networks, Science 313"
PAPER_DENOISING = (
    "Vincent, Larochelle, Bengio & Manzagol 2008, Extracting and composing robust features with denoising "
    "autoencoders, ICML"
)
PAPER_VAE = "Kingma & Welling 2014, Auto-Encoding Variational Bayes, ICLR"
KINDS = ("dense", "conv")


@keras.saving.register_keras_serializable(package="kzoo")
class VariationalSampling(keras.layers.Layer):
    """Reparameterized sample ``z = mean + exp(log_var / 2) * eps`` that adds the KL term.

    Takes ``[z_mean, z_log_var]``. While training it returns a sample; otherwise the mean.
    Either way it adds ``kl_weight * mean_batch(KL(N(mean, exp(log_var)) || N(0, I)))`` to
    the layer's losses, which ``fit`` adds to the compiled reconstruction loss. Computed in
    float32 whatever the dtype policy.

    Args:
        kl_weight: Multiplier of the KL divergence (beta / number of pixels for a VAE whose
            reconstruction loss is a per-pixel mean).
        seed: Seed of the layer's noise.
    """

    def __init__(self, kl_weight: float = 1.0, seed: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.kl_weight = float(kl_weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        z_mean, z_log_var = inputs
        self.add_loss(self.kl_weight * ops.mean(kl_divergence(z_mean, z_log_var)))
        if not training:
            return z_mean
        noise = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * noise

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "kl_weight": self.kl_weight, "seed": self.seed}


def kl_divergence(z_mean: Any, z_log_var: Any) -> Any:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over latent dimensions.

    ``-0.5 * sum(1 + log_var - mean^2 - exp(log_var))`` (Kingma & Welling 2014, appendix B).
    """
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def _check_positive_ints(model: str, argument: str, values: Any, allow_empty: bool) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or (not values and not allow_empty):
        raise InvalidArgumentError(
            expected_received(f"{model}: {argument}", "a non-empty tuple of positive ints", values)
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise InvalidArgumentError(expected_received(f"{model}: {argument}", "a tuple of positive ints", values))
    return tuple(values)


def _dense_stack(x: Any, units: tuple[int, ...], prefix: str) -> Any:
    for index, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"{prefix}{index}")(x)
    return x


def _conv_encoder(inputs: Any, filters: tuple[int, ...]) -> Any:
    x = inputs
    for index, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", name=f"conv{index}")(x)
    return keras.layers.Flatten(name="flatten")(x)


def _dense_decoder(x: Any, image_shape: tuple) -> Any:
    x = keras.layers.Dense(math.prod(image_shape), name="pixels")(x)
    return keras.layers.Reshape(image_shape, name="reshape")(x)


def _conv_decoder(z: Any, filters: tuple[int, ...], image_shape: tuple) -> Any:
    height, width, channels = image_shape
    scale = 2 ** len(filters)
    x = keras.layers.Dense((height // scale) * (width // scale) * filters[-1], activation="relu", name="project")(z)
    x = keras.layers.Reshape((height // scale, width // scale, filters[-1]), name="reshape")(x)
    for index, width_ in enumerate(reversed(filters), start=1):
        x = keras.layers.Conv2DTranspose(
            width_, 3, strides=2, padding="same", activation="relu", name=f"deconv{index}"
        )(x)
    return keras.layers.Conv2D(channels, 3, padding="same", name="pixels")(x)


def _build_autoencoder(
    *,
    kind: str,
    input_shape: tuple[int, int, int] | None,
    latent_dim: int,
    hidden_units: tuple[int, ...],
    filters: tuple[int, ...],
    noise_stddev: float,
    variational: bool,
    beta: float,
    seed: int | None,
    name: str,
) -> keras.Model:
    if kind not in KINDS:
        raise InvalidArgumentError(expected_received(f"{name}: kind", f"one of {KINDS}", kind))
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise InvalidArgumentError(expected_received(f"{name}: latent_dim", "a positive int", latent_dim))
    if not isinstance(noise_stddev, (int, float)) or noise_stddev < 0:
        raise InvalidArgumentError(expected_received(f"{name}: noise_stddev", "a number >= 0", noise_stddev))
    if not isinstance(beta, (int, float)) or beta < 0:
        raise InvalidArgumentError(expected_received(f"{name}: beta", "a number >= 0 (1 is the plain VAE)", beta))
    hidden_units = _check_positive_ints(name, "hidden_units", hidden_units, allow_empty=True)
    filters = _check_positive_ints(name, "filters", filters, allow_empty=kind == "dense")
    multiple = 2 ** len(filters) if kind == "conv" else 1
    image_shape = check_image_shape(name, input_shape, (28, 28, 1), multiple)

    # Encoder: image -> code (or the mean and log-variance of q(z|x)).
    encoder_input = keras.Input(shape=image_shape, name="image")
    if kind == "dense":
        features = keras.layers.Flatten(name="flatten")(encoder_input)
    else:
        features = _conv_encoder(encoder_input, filters)
    features = _dense_stack(features, hidden_units, "dense")
    if variational:
        z_mean = keras.layers.Dense(latent_dim, name="z_mean")(features)
        z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(features)
        encoder = keras.Model(encoder_input, [z_mean, z_log_var], name="encoder")
    else:
        code = keras.layers.Dense(latent_dim, name="code")(features)
        encoder = keras.Model(encoder_input, code, name="encoder")

    # Decoder: code -> image in [0, 1], the sigmoid in float32 under mixed precision.
    decoder_input = keras.Input(shape=(latent_dim,), name="code")
    x = _dense_stack(decoder_input, tuple(reversed(hidden_units)), "dense")
    x = _dense_decoder(x, image_shape) if kind == "dense" else _conv_decoder(x, filters, image_shape)
    reconstruction = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x)
    decoder = keras.Model(decoder_input, reconstruction, name="decoder")

    # The autoencoder: [noise ->] encoder -> [sampling ->] decoder.
    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    if noise_stddev:
        # Corrupts only while training; ReLU(max_value=1) clips the noisy image back to [0, 1].
        x = keras.layers.GaussianNoise(noise_stddev, seed=seed, name="noise")(x)
        x = keras.layers.ReLU(max_value=1.0, name="noise_clip")(x)
    code = encoder(x)
    if variational:
        kl_weight = beta / math.prod(image_shape)
        code = VariationalSampling(kl_weight=kl_weight, seed=seed, name="sampling")(code)
    outputs = decoder(code)
    return keras.Model(inputs, outputs, name=name)


def _variant(
    *,
    kind: str,
    input_shape: tuple[int, int, int] | None,
    latent_dim: int,
    hidden_units: tuple[int, ...],
    filters: tuple[int, ...],
    noise_stddev: float,
    variational: bool = False,
    beta: float = 1.0,
    seed: int | None = None,
    name: str,
) -> keras.Model:
    return _build_autoencoder(
        kind=kind,
        input_shape=input_shape,
        latent_dim=latent_dim,
        hidden_units=hidden_units,
        filters=filters,
        noise_stddev=noise_stddev,
        variational=variational,
        beta=beta,
        seed=seed,
        name=name,
    )


def autoencoder_dense(
    *,
    input_shape: tuple[int, int, int] | None = None,
    latent_dim: int = 32,
    hidden_units: tuple[int, ...] = (),
    name: str = "autoencoder_dense",
) -> keras.Model:
    """Undercomplete dense autoencoder: flatten -> ``latent_dim`` code -> pixels.

    With the defaults it is the Keras blog's simplest autoencoder (784 -> 32 -> 784).

    Args:
        input_shape: ``(height, width, channels)``; default ``(28, 28, 1)``.
        latent_dim: Size of the code.
        hidden_units: Hidden layer sizes between the image and the code (mirrored in the decoder).
        name: Model name.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("autoencoder_dense")
        >>> model.compile("adam", "binary_crossentropy")
        >>> model.get_layer("encoder").output_shape
        (None, 32)

    Reference: Hinton & Salakhutdinov 2006.
    """
    return _variant(
        kind="dense",
        input_shape=input_shape,
        latent_dim=latent_dim,
        hidden_units=hidden_units,
        filters=(),
        noise_stddev=0.0,
        name=name,
    )


# The deep (stacked) autoencoder is the dense one with hidden layers: 784-128-64-32-64-128-784.
DEEP = {"hidden_units": (128, 64)}


def autoencoder_deep(**kwargs: Any) -> keras.Model:
    """Alias of ``autoencoder_dense(hidden_units=(128, 64), name="autoencoder_deep", ...)``.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("autoencoder_deep", hidden_units=(256, 128))

    Reference: Hinton & Salakhutdinov 2006.
    """
    return autoencoder_dense(**{**DEEP, "name": "autoencoder_deep", **kwargs})


def autoencoder_conv(
    *,
    input_shape: tuple[int, int, int] | None = None,
    latent_dim: int = 32,
    filters: tuple[int, ...] = (32, 64),
    name: str = "autoencoder_conv",
) -> keras.Model:
    """Convolutional autoencoder: stride-2 convolutions down, transposed convolutions up.

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2 ** len(filters)``;
            default ``(28, 28, 1)``.
        latent_dim: Size of the code.
        filters: Widths of the encoder's stride-2 convolutions (mirrored by the decoder's
            transposed convolutions).
        name: Model name.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("autoencoder_conv", pretrained=True)   # MNIST
        >>> codes = model.get_layer("encoder").predict(images / 255.0)
    """
    return _variant(
        kind="conv",
        input_shape=input_shape,
        latent_dim=latent_dim,
        hidden_units=(),
        filters=filters,
        noise_stddev=0.0,
        name=name,
    )


def autoencoder_denoising(
    *,
    input_shape: tuple[int, int, int] | None = None,
    latent_dim: int = 32,
    filters: tuple[int, ...] = (32, 64),
    noise_stddev: float = 0.5,
    seed: int | None = None,
    name: str = "autoencoder_denoising",
) -> keras.Model:
    """Denoising convolutional autoencoder: Gaussian noise on the input while training only.

    Train it as ``fit(x, x)``: the model corrupts its own input (noise of standard
    deviation ``noise_stddev``, clipped to [0, 1]) and learns to reconstruct the clean
    target. At inference no noise is added, so ``model.predict(noisy_images)`` denoises.

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2 ** len(filters)``.
        latent_dim: Size of the code.
        filters: Widths of the encoder's stride-2 convolutions.
        noise_stddev: Standard deviation of the training noise (images in [0, 1]).
        seed: Seed of the noise.
        name: Model name.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("autoencoder_denoising", pretrained=True)
        >>> clean = model.predict(noisy_images)

    Reference: Vincent et al. 2008.
    """
    return _variant(
        kind="conv",
        input_shape=input_shape,
        latent_dim=latent_dim,
        hidden_units=(),
        filters=filters,
        noise_stddev=noise_stddev,
        seed=seed,
        name=name,
    )


def vae(
    *,
    input_shape: tuple[int, int, int] | None = None,
    latent_dim: int = 2,
    filters: tuple[int, ...] = (32, 64),
    hidden_units: tuple[int, ...] = (16,),
    beta: float = 1.0,
    seed: int | None = None,
    name: str = "vae",
) -> keras.Model:
    """Convolutional variational autoencoder with a ``beta`` weight on the KL term.

    The encoder (``model.get_layer("encoder")``) outputs ``[z_mean, z_log_var]``; the
    ``sampling`` layer draws z while training (the reparameterization trick) and adds
    ``beta * KL / pixels`` to ``model.losses``; the decoder maps z to an image. Train with
    ``compile(loss="binary_crossentropy")`` and ``fit(x, x)``: the loss ``fit`` reports is
    the negative ELBO per pixel. The default 2-D latent space can be drawn directly
    (:func:`kzoo.generative.latent_grid`).

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2 ** len(filters)``.
        latent_dim: Dimension of z.
        filters: Widths of the encoder's stride-2 convolutions; ``()`` for a dense (MLP)
            VAE, whose encoder flattens the image and whose decoder ends in a dense layer
            of one unit per pixel.
        hidden_units: Dense layers between the convolutions (or the pixels) and z
            (mirrored in the decoder).
        beta: Weight of the KL term (1: the VAE; > 1: a beta-VAE).
        seed: Seed of the sampling noise.
        name: Model name.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("vae", pretrained=True)
        >>> decoder = model.get_layer("decoder")
        >>> images = decoder.predict(keras.random.normal((16, 2)))

    Reference: Kingma & Welling 2014; Higgins et al. 2017 (beta-VAE).
    """
    return _variant(
        kind="conv" if filters else "dense",
        input_shape=input_shape,
        latent_dim=latent_dim,
        hidden_units=hidden_units,
        filters=filters,
        noise_stddev=0.0,
        variational=True,
        beta=beta,
        seed=seed,
        name=name,
    )


def _unit_images(model: Any, batch_size: int, rng: Any) -> Any:
    """Test inputs in [0, 1], the range the sigmoid decoder reconstructs."""
    return rng.uniform(size=(batch_size, *model.inputs[0].shape[1:])).astype("float32")


_EXAMPLE = (
    "import kzoo\n"
    "model = kzoo.get({name!r}, pretrained=True)              # MNIST, pixels in [0, 1]\n"
    "images, _ = kzoo.data.load_mnist('test')\n"
    "reconstructions = model.predict(images[..., None] / 255.0)\n"
    "codes = model.get_layer('encoder').predict(images[..., None] / 255.0)"
)

# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "autoencoder_conv": {"num_params": 278_369, "input_shape": (28, 28, 1)},
    "autoencoder_deep": {"num_params": 222_384, "input_shape": (28, 28, 1)},
    "autoencoder_denoising": {"num_params": 278_369, "input_shape": (28, 28, 1)},
    "autoencoder_dense": {"num_params": 50_992, "input_shape": (28, 28, 1)},
    "vae": {"num_params": 178_117, "input_shape": (28, 28, 1)},
}


# Variants that are another variant's builder with other defaults.
_VARIANT_DEFAULTS = {"autoencoder_deep": DEEP}

for _name, _builder, _paper, _description, _test_kwargs in (
    (
        "autoencoder_dense",
        autoencoder_dense,
        PAPER_AE,
        "Undercomplete dense autoencoder (784 -> 32 -> 784), the Keras blog's simplest.",
        {"input_shape": (8, 8, 1), "latent_dim": 3},
    ),
    (
        "autoencoder_deep",
        autoencoder_dense,  # with DEEP's hidden layers (the variant's kwargs below)
        PAPER_AE,
        "Deep (stacked) dense autoencoder, 784-128-64-32-64-128-784.",
        {"input_shape": (8, 8, 1), "latent_dim": 3, "hidden_units": (6, 4)},
    ),
    (
        "autoencoder_conv",
        autoencoder_conv,
        PAPER_AE,
        "Convolutional autoencoder: stride-2 convolutions, dense code, transposed-convolution decoder.",
        {"input_shape": (8, 8, 1), "latent_dim": 3, "filters": (2, 3)},
    ),
    (
        "autoencoder_denoising",
        autoencoder_denoising,
        PAPER_DENOISING,
        "Denoising convolutional autoencoder: Gaussian input noise while training only.",
        {"input_shape": (8, 8, 1), "latent_dim": 3, "filters": (2, 3)},
    ),
    (
        "vae",
        vae,
        PAPER_VAE,
        "Convolutional variational autoencoder (ELBO = reconstruction + beta * KL), 2-D latent space.",
        {"input_shape": (8, 8, 1), "latent_dim": 2, "filters": (2, 3), "hidden_units": (4,), "seed": 0},
    ),
):
    register_model(
        ModelSpec(
            name=_name,
            **CARD_FACTS[_name],
            builder=_builder,
            defaults=_VARIANT_DEFAULTS.get(_name, {}),
            kwargs={"name": _name} if _name in _VARIANT_DEFAULTS else {},
            family="autoencoders",
            task="representation-learning",
            paper=_paper,
            description=_description,
            test_kwargs=_test_kwargs,
            head_layers=(),
            make_inputs=_unit_images,
            example=_EXAMPLE.format(name=_name),
        )
    )
