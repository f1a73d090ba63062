"""Training and tools for the generative models: GAN, conditional GAN, CycleGAN, latent spaces.

- :class:`GAN` trains any generator/discriminator pair from the registry (``dcgan_*``,
  ``cgan_*``) with the standard non-saturating loss and one-sided label smoothing.
- :class:`CycleGAN` trains two generators and two discriminators (``cyclegan_generator_*``,
  ``patchgan_discriminator``) with the least-squares GAN loss, the cycle-consistency and
  identity losses, and an :class:`ImagePool` of previously generated images; pair it with
  :class:`LinearDecay` for the paper's learning-rate schedule and :func:`unpaired` for data.
- :class:`GeneratedImages` logs an image grid of the model's outputs to TensorBoard after
  every epoch (generator samples from fixed noise, or translations of fixed images).
- :func:`classifier_score`: the Inception score with any classifier (kzoo scores MNIST
  generators with its pretrained LeNet-5); :func:`frechet_distance` and
  :func:`lenet5_frechet_distance`, the FID with LeNet-5's penultimate features.
- :func:`importance_weighted_log_likelihood`: a VAE's importance-weighted bound on log p(x)
  and its ELBO, per image.
- Latent-space tools for the autoencoders live in :mod:`kzoo.latent` (re-exported here):
  :func:`encoder_decoder`, :func:`encode`, :func:`project_2d`, :func:`interpolate`,
  :func:`sample`, :func:`latent_grid`.

Both wrappers are ``keras.Model`` subclasses with their own ``train_step``, so ``fit``,
callbacks and ``.keras`` saving work unchanged, on the TensorFlow and the JAX backend. Model
code uses ``keras.ops``; the backend-specific piece is :func:`_minimize`: a
``tf.GradientTape`` on TensorFlow, and on JAX ``jax.value_and_grad`` of a stateless call
followed by ``optimizer.stateless_apply``. On JAX, ``fit`` runs the whole step as a pure
function of the model's state (:meth:`_AdversarialModel.train_step`).

Each train step is two halves, also callable on their own: ``discriminator_step`` updates
only the discriminator(s) and ``generator_step`` only the generator(s). The network that a
half does not train is run through ``stateless_call`` with its state changes discarded, so
even its non-trainable state (batch-norm statistics, dropout seeds) stays untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from kzoo.errors import BackendError, InvalidArgumentError, expected_received, import_tensorflow
from kzoo.latent import (  # noqa: F401  (re-exported: kzoo.generative.encode etc. keep working)
    encode,
    encoder_decoder,
    interpolate,
    latent_grid,
    project_2d,
    sample,
)

# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def discriminator_loss(real_logits: Any, fake_logits: Any, label_smoothing: float = 0.0) -> Any:
    """Binary cross-entropy of the discriminator: real images -> 1 - smoothing, fakes -> 0.

    One-sided label smoothing (Salimans et al. 2016) lowers only the real targets; smoothing
    the fake targets too would reward the generator for staying where it is.
    """
    real_targets = ops.full_like(real_logits, 1.0 - label_smoothing)
    real = keras.losses.binary_crossentropy(real_targets, real_logits, from_logits=True)
    fake = keras.losses.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits, from_logits=True)
    return ops.mean(real) + ops.mean(fake)


def generator_loss(fake_logits: Any) -> Any:
    """The non-saturating generator loss: binary cross-entropy of the fakes against 1."""
    return ops.mean(keras.losses.binary_crossentropy(ops.ones_like(fake_logits), fake_logits, from_logits=True))


def lsgan_discriminator_loss(real_outputs: Any, fake_outputs: Any) -> Any:
    """Least-squares GAN loss of a discriminator, halved as in CycleGAN.

    ``(mean((D(real) - 1)^2) + mean(D(fake)^2)) / 2``.
    """
    return 0.5 * (ops.mean(ops.square(real_outputs - 1.0)) + ops.mean(ops.square(fake_outputs)))


def lsgan_generator_loss(fake_outputs: Any) -> Any:
    """Least-squares GAN loss of a generator: ``mean((D(G(x)) - 1)^2)``."""
    return ops.mean(ops.square(fake_outputs - 1.0))


def l1_loss(a: Any, b: Any) -> Any:
    """Mean absolute difference (CycleGAN's cycle-consistency and identity losses)."""
    return ops.mean(ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32")))


def classifier_score(probabilities: Any) -> float:
    """The Inception score computed with any classifier: ``exp(E_x KL(p(y|x) || p(y)))``.

    ``probabilities`` are a classifier's class probabilities ``(N, K)`` for N generated
    images. The score is K when every image is recognised with certainty and the classes are
    used equally, and 1 when the classifier is unsure or every image has the same class
    (Salimans et al. 2016; with a digit classifier instead of Inception for MNIST).
    """
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.ndim != 2 or len(probabilities) < 1:
        raise InvalidArgumentError(
            expected_received("classifier_score: probabilities", "an (N, K) array", probabilities.shape)
        )
    marginal = probabilities.mean(axis=0, keepdims=True)
    kl = (probabilities * (np.log(probabilities + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
    return float(np.exp(kl.mean()))


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features ``(N, D)``.

    ``|m_a - m_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` with the means ``m`` and covariances
    ``S`` of each set (Heusel et al. 2017, the FID, with any feature extractor). The matrix
    square root is SciPy's (``scipy.linalg.sqrtm``); as in the FID's reference code, a
    product too ill-conditioned for it gets a small ridge on both covariances, and the
    rounding's imaginary part is dropped. 0 for identical sets; symmetric.
    """
    import scipy.linalg

    a, b = (np.asarray(features, dtype="float64") for features in (features_a, features_b))
    for name, features in (("features_a", a), ("features_b", b)):
        if features.ndim != 2 or len(features) < 2:
            raise InvalidArgumentError(
                expected_received(f"frechet_distance: {name}", "an (N, D) array with N >= 2", features.shape)
            )
    if a.shape[1] != b.shape[1]:
        raise InvalidArgumentError(
            expected_received("frechet_distance: features_b", f"{a.shape[1]} features, as features_a", b.shape[1])
        )
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        ridge = np.eye(len(cov_a)) * 1e-6
        root = scipy.linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    root = np.real(root)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def _pretrained_lenet5() -> keras.Model:
    """kzoo's ``lenet5.mnist``, reading [0, 1] pixels (what the LeNet-5 measures score with)."""
    import kzoo  # here: kzoo imports this module

    return kzoo.get("lenet5", pretrained=True, include_preprocessing=False)


def lenet5_features(images: Any, *, classifier: keras.Model | None = None, batch_size: int = 1000) -> np.ndarray:
    """LeNet-5's penultimate features (F6, 84 values) of digits in [0, 1], shape ``(N, 28, 28[, 1])``.

    ``classifier``: a kzoo ``lenet5`` that reads [0, 1] pixels; default the pretrained
    ``lenet5.mnist`` weights (``kzoo.get("lenet5", pretrained=True, include_preprocessing=False)``).
    Generator outputs in [-1, 1] go through :func:`to_unit_range` first.
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise InvalidArgumentError(
            expected_received("lenet5_features: images", "(N, 28, 28) or (N, 28, 28, 1) digits", images.shape)
        )
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise InvalidArgumentError(
            expected_received(
                "lenet5_features: images",
                "pixels in [0, 1]",
                f"values from {images.min():.3g} to {images.max():.3g}",
                "Map generator outputs with kzoo.generative.to_unit_range, raw 0-255 digits with / 255.",
            )
        )
    classifier = classifier or _pretrained_lenet5()
    try:
        features = classifier.get_layer("f6_act").output
    except ValueError:
        raise InvalidArgumentError(
            expected_received("lenet5_features: classifier", "a kzoo lenet5 (with its 'f6_act' layer)", classifier.name)
        ) from None
    extractor = keras.Model(classifier.inputs, features)
    return np.asarray(extractor.predict(images, batch_size=batch_size, verbose=0), dtype="float64")


def lenet5_frechet_distance(
    images_a: Any, images_b: Any, *, classifier: keras.Model | None = None, batch_size: int = 1000
) -> float:
    """:func:`frechet_distance` of two sets of digits in [0, 1] on :func:`lenet5_features`.

    kzoo's FID for MNIST-like generators: 0 for identical sets; real MNIST training digits
    against the test digits give its floor for sets of that size.
    """
    classifier = classifier or _pretrained_lenet5()
    return frechet_distance(
        lenet5_features(images_a, classifier=classifier, batch_size=batch_size),
        lenet5_features(images_b, classifier=classifier, batch_size=batch_size),
    )


def importance_weighted_log_likelihood(
    model: keras.Model, images: Any, *, samples: int = 100, batch_size: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image log-likelihood estimates of a VAE, in nats: the importance-weighted bound and the ELBO.

    For each image ``x``, ``samples`` codes ``z_k ~ q(z|x)`` (the encoder's diagonal Gaussian)
    give log weights ``w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)`` with a standard normal
    prior and the decoder's Bernoulli likelihood over the pixels (``x`` in [0, 1], summed binary
    cross-entropy: kzoo's VAEs train with it). Returns ``(iwae, elbo)``: ``log mean_k exp(w_k)``
    (Burda et al. 2016: a lower bound on ``log p(x)`` that tightens as ``samples`` grows) and
    ``mean_k w_k`` (a Monte Carlo ELBO), both from the same samples. Their negatives are the
    "nats" figures.

    Args:
        model: A kzoo VAE (its ``encoder`` outputs ``[z_mean, z_log_var]``; its ``decoder``
            maps codes to pixel probabilities).
        images: Pixels in [0, 1], the model's input shape.
        samples: Importance samples per image (100 or more for a reported figure).
        batch_size: Images per batch (each batch decodes ``batch_size * samples`` codes).
        seed: Seed of the samples.
    """
    encoder, decoder = encoder_decoder(model)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidArgumentError(expected_received("samples", "a positive integer", samples))
    x = np.asarray(images, dtype="float32")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise InvalidArgumentError(
            expected_received("images", "pixels in [0, 1]", f"values from {x.min():.3g} to {x.max():.3g}")
        )
    rng = np.random.default_rng(seed)
    iwae, elbo = [], []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        z_mean, z_log_var = (np.asarray(t, dtype="float64") for t in encoder.predict(batch, verbose=0))
        noise = rng.standard_normal((samples, *z_mean.shape))
        z = z_mean + np.exp(0.5 * z_log_var) * noise  # (samples, batch, latent)
        log_q = -0.5 * np.sum(noise**2 + z_log_var + np.log(2 * np.pi), axis=-1)
        log_prior = -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=-1)
        flat = z.reshape(-1, z.shape[-1]).astype("float32")
        probabilities = np.asarray(decoder.predict(flat, batch_size=max(1000, len(batch)), verbose=0), "float64")
        probabilities = np.clip(probabilities.reshape(samples, *batch.shape), 1e-7, 1 - 1e-7)
        target = batch.astype("float64")[None]
        log_likelihood = np.sum(
            target * np.log(probabilities) + (1 - target) * np.log1p(-probabilities),
            axis=tuple(range(2, probabilities.ndim)),
        )
        weights = log_likelihood + log_prior - log_q  # (samples, batch)
        peak = weights.max(axis=0)
        iwae.append(peak + np.log(np.mean(np.exp(weights - peak), axis=0)))
        elbo.append(weights.mean(axis=0))
    return np.concatenate(iwae), np.concatenate(elbo)


# ---------------------------------------------------------------------------------------------
# Shared pieces of the train steps
# ---------------------------------------------------------------------------------------------


def _frozen_call(model: keras.Model, inputs: Any) -> Any:
    """Runs ``model`` in training mode without changing any of its variables."""
    outputs, _ = model.stateless_call(
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        inputs,
        training=True,
    )
    return outputs


def _minimize(
    owner: keras.Model, loss_fn: Callable[[], tuple[Any, Any]], variables: list, optimizer: Any
) -> tuple[Any, Any]:
    """One optimizer step on ``variables`` (of ``owner``'s networks); ``loss_fn() -> (loss, extra)``."""
    if keras.backend.backend() == "jax":
        return _minimize_stateless(owner, loss_fn, variables, optimizer)
    if keras.backend.backend() != "tensorflow":
        raise BackendError(
            expected_received(
                f"{type(owner).__name__} training: backend",
                "'tensorflow' or 'jax'",
                keras.backend.backend(),
                "Set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before importing keras.",
            )
        )
    tf = import_tensorflow("GAN and CycleGAN training on the TensorFlow backend")

    with tf.GradientTape() as tape:
        loss, extra = loss_fn()
        scaled = optimizer.scale_loss(loss)  # loss scaling under mixed_float16; identity otherwise
    gradients = tape.gradient(scaled, variables)
    optimizer.apply(gradients, variables)
    return loss, extra


def _minimize_stateless(
    owner: keras.Model, loss_fn: Callable[[], tuple[Any, Any]], variables: list, optimizer: Any
) -> tuple[Any, Any]:
    """The JAX version of :func:`_minimize`: ``jax.value_and_grad`` + ``optimizer.stateless_apply``.

    ``loss_fn`` calls the networks as usual; it runs inside a ``keras.StatelessScope`` that
    maps ``variables`` to the values being differentiated and every other variable of
    ``owner`` to its current value, so the state it changes (batch-norm statistics, dropout
    seeds) comes back as values. Variables are read through ``.value`` and written through
    ``.assign``: inside :meth:`_AdversarialModel.train_step`'s own stateless scope that
    reads and records the step's state; called eagerly, it updates the variables.
    """
    import jax

    trained = {id(v) for v in variables}
    others = [v for v in owner.variables if id(v) not in trained]

    def scaled_loss(values: list) -> tuple[Any, tuple]:
        mapping = list(zip(variables, values)) + [(v, v.value) for v in others]
        with keras.StatelessScope(mapping) as scope:
            loss, extra = loss_fn()
            scaled = optimizer.scale_loss(loss)  # loss scaling under mixed_float16; identity otherwise
        return scaled, (loss, extra, [scope.get_current_value(v) for v in others])

    values = [v.value for v in variables]
    (_, (loss, extra, updated)), gradients = jax.value_and_grad(scaled_loss, has_aux=True)(values)
    new_values, new_optimizer_values = optimizer.stateless_apply(
        [v.value for v in optimizer.variables], gradients, values
    )
    for variable, value in zip(
        [*others, *variables, *optimizer.variables], [*updated, *new_values, *new_optimizer_values]
    ):
        variable.assign(value)
    return loss, extra


def _check_model(owner: str, argument: str, model: Any) -> None:
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(
            expected_received(f"{owner}: {argument}", "a keras.Model (e.g. from kzoo.get)", type(model).__name__)
        )


def _default_optimizer(learning_rate: Any = 2e-4) -> keras.optimizers.Optimizer:
    # Adam(2e-4, beta_1=0.5): the DCGAN paper's setting, also CycleGAN's.
    return keras.optimizers.Adam(learning_rate, beta_1=0.5)


class _AdversarialModel(keras.Model):
    """What GAN and CycleGAN share: one optimizer for the generator side, one for the discriminator side.

    Subclasses define ``_generator_variables`` and ``_discriminator_variables``. The two
    optimizers are part of the compile configuration, so a ``.keras`` file reloads compiled
    and training resumes with the saved optimizer state.
    """

    def compile(
        self,
        generator_optimizer: keras.optimizers.Optimizer | None = None,
        discriminator_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        """Sets the two optimizers (default: Adam(2e-4, beta_1=0.5) each); ``kwargs`` go to ``Model.compile``."""
        if "optimizer" in kwargs:
            raise InvalidArgumentError(
                expected_received(
                    f"{type(self).__name__}.compile",
                    "generator_optimizer= and discriminator_optimizer=",
                    "optimizer=",
                    "Pass one optimizer per side (the same object may not serve both).",
                )
            )
        self.generator_optimizer = generator_optimizer or _default_optimizer()
        self.discriminator_optimizer = discriminator_optimizer or _default_optimizer()
        self.generator_optimizer.build(self._generator_variables())
        self.discriminator_optimizer.build(self._discriminator_variables())
        super().compile(optimizer=_OptimizerState([self.generator_optimizer, self.discriminator_optimizer]), **kwargs)
        self._adversarial_compile_kwargs = kwargs

    def get_compile_config(self) -> dict | None:
        if not getattr(self, "compiled", False):
            return None
        return {
            "generator_optimizer": keras.saving.serialize_keras_object(self.generator_optimizer),
            "discriminator_optimizer": keras.saving.serialize_keras_object(self.discriminator_optimizer),
            **{k: v for k, v in self._adversarial_compile_kwargs.items() if k in ("jit_compile", "run_eagerly")},
        }

    def compile_from_config(self, config: dict) -> None:
        config = dict(config)
        for key in ("generator_optimizer", "discriminator_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        self.compile(**config)

    def _generator_variables(self) -> list:
        raise NotImplementedError

    def _discriminator_variables(self) -> list:
        raise NotImplementedError

    def _train_step(self, data: Any) -> dict:
        raise NotImplementedError

    # Keras calls ``train_step(data)`` on TensorFlow and ``train_step(state, data)`` on JAX,
    # where the step must be a pure function of the state: the step then runs inside a
    # ``keras.StatelessScope`` holding the state, and returns the state it leaves behind.
    def train_step(self, *args: Any) -> Any:
        if keras.backend.backend() != "jax":
            return self._train_step(*args)
        state, data = args
        groups = (
            self.trainable_variables,
            self.non_trainable_variables,
            self.optimizer.variables,
            self.metrics_variables,
        )
        return _stateless_step(self._train_step, groups, state, data)

    def test_step(self, *args: Any) -> Any:
        if not hasattr(self, "_test_step"):  # no evaluation of its own: Keras' default
            return super().test_step(*args)
        if keras.backend.backend() != "jax":
            return self._test_step(*args)
        state, data = args
        groups = (self.trainable_variables, self.non_trainable_variables, self.metrics_variables)
        return _stateless_step(self._test_step, groups, state, data)


def _stateless_step(step: Callable[[Any], dict], groups: tuple, state: tuple, data: Any) -> tuple[dict, tuple]:
    """Runs ``step(data)`` on the values ``state`` gives the variable ``groups``; returns logs, new state."""
    mapping = [
        (variable, value) for variables, values in zip(groups, state) for variable, value in zip(variables, values)
    ]
    with keras.StatelessScope(mapping) as scope:
        logs = step(data)
    return logs, tuple([scope.get_current_value(v) for v in variables] for variables in groups)


class _OptimizerState(keras.optimizers.Optimizer):
    """The model's ``optimizer``: lists the variables of the optimizers that really train it.

    Keras's JAX trainer passes ``model.optimizer.variables`` through each (compiled,
    stateless) train step and back; listing both optimizers' variables here is what lets
    each of them keep its state from step to step. It applies no gradients itself and saves
    nothing: each optimizer is saved as the model's own attribute.
    """

    def __init__(self, optimizers: list, **kwargs: Any) -> None:
        super().__init__(learning_rate=0.0, **kwargs)
        self._optimizers = list(optimizers)

    @property
    def variables(self) -> list:
        return [variable for optimizer in self._optimizers for variable in optimizer.variables]

    def build(self, variables: list) -> None:
        self.built = True  # the optimizers were built on their own networks' variables

    def save_own_variables(self, store: Any) -> None:
        pass

    def load_own_variables(self, store: Any) -> None:
        pass


def _serialize(model: keras.Model) -> dict:
    return keras.saving.serialize_keras_object(model)


# ---------------------------------------------------------------------------------------------
# GAN and conditional GAN
# ---------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo")
class GAN(_AdversarialModel):
    """A GAN (Goodfellow et al. 2014) or conditional GAN, trained with ``fit``.

    ``fit`` takes real images in [-1, 1] (for a conditional GAN, ``(images, labels)``
    pairs). Each step first updates the discriminator on a real and a generated batch,
    then the generator with the non-saturating loss against the updated discriminator.
    Calling the model generates: ``gan(noise)`` or ``gan([noise, labels])``.

    Args:
        generator: Noise (and label) -> image model, e.g. ``kzoo.get("dcgan_generator")``.
        discriminator: Image (and label) -> one logit, e.g. ``kzoo.get("dcgan_discriminator")``.
        label_smoothing: One-sided label smoothing of the real targets (0.1 -> 0.9).
        seed: Seed of the noise drawn in each step.

    Example:
        >>> import kzoo
        >>> from kzoo.generative import GAN, GeneratedImages
        >>> gan = GAN(kzoo.get("dcgan_generator"), kzoo.get("dcgan_discriminator"))
        >>> gan.compile()            # Adam(2e-4, beta_1=0.5) for both networks
        >>> gan.fit(images, epochs=5, callbacks=[GeneratedImages(gan.noise(16), log_dir="runs/gan")])

    Reference: Radford et al. 2016 (DCGAN), Mirza & Osindero 2014 (conditional GAN),
    Salimans et al. 2016 (one-sided label smoothing).
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        *,
        label_smoothing: float = 0.1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_model("GAN", "generator", generator)
        _check_model("GAN", "discriminator", discriminator)
        if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing < 0.5:
            raise InvalidArgumentError(
                expected_received("GAN: label_smoothing", "a number in [0, 0.5)", label_smoothing)
            )
        self.conditional = len(generator.inputs) == 2
        if self.conditional != (len(discriminator.inputs) == 2):
            raise InvalidArgumentError(
                expected_received(
                    "GAN: discriminator",
                    "a conditional discriminator ([image, label] inputs) for a conditional generator, and an "
                    "unconditional one otherwise",
                    f"{len(generator.inputs)} generator inputs and {len(discriminator.inputs)} discriminator inputs",
                )
            )
        if tuple(generator.outputs[0].shape[1:]) != tuple(discriminator.inputs[0].shape[1:]):
            raise InvalidArgumentError(
                expected_received(
                    "GAN: discriminator input shape",
                    f"the generator's image shape {tuple(generator.outputs[0].shape[1:])}",
                    tuple(discriminator.inputs[0].shape[1:]),
                )
            )
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.label_smoothing = float(label_smoothing)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.built = True  # the networks are built functional models

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.generator(inputs, training=training)

    def noise(self, count: int, seed: int | None = 0) -> np.ndarray:
        """Standard-normal latent vectors ``(count, latent_dim)`` (fixed by ``seed``)."""
        return np.random.default_rng(seed).standard_normal((count, self.latent_dim)).astype("float32")

    def _generator_variables(self) -> list:
        return self.generator.trainable_variables

    def _discriminator_variables(self) -> list:
        return self.discriminator.trainable_variables

    @property
    def metrics(self) -> list:
        return [self.discriminator_loss_tracker, self.generator_loss_tracker]

    def _unpack(self, data: Any) -> tuple[Any, Any]:
        if isinstance(data, (tuple, list)):
            images = data[0]
            labels = data[1] if len(data) > 1 else None
        else:
            images, labels = data, None
        if self.conditional and labels is None:
            raise InvalidArgumentError(
                expected_received("conditional GAN data", "(images, labels) batches", "images without labels")
            )
        return images, labels

    def _labels(self, labels: Any) -> Any:
        return None if labels is None else ops.cast(ops.convert_to_tensor(labels), "int32")

    def _latent(self, batch_size: Any, labels: Any) -> Any:
        noise = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        return [noise, labels] if self.conditional else noise

    def _judge(self, images: Any, labels: Any) -> Any:
        return [images, labels] if self.conditional else images

    def discriminator_step(self, images: Any, labels: Any = None) -> Any:
        """Updates the discriminator on ``images`` and as many generated ones; returns its loss."""
        images, labels = ops.cast(images, "float32"), self._labels(labels)
        fakes = ops.stop_gradient(_frozen_call(self.generator, self._latent(ops.shape(images)[0], labels)))

        def loss_fn() -> tuple[Any, Any]:
            real_logits = self.discriminator(self._judge(images, labels), training=True)
            fake_logits = self.discriminator(self._judge(fakes, labels), training=True)
            return discriminator_loss(real_logits, fake_logits, self.label_smoothing), None

        loss, _ = _minimize(self, loss_fn, self._discriminator_variables(), self.discriminator_optimizer)
        return loss

    def generator_step(self, batch_size: Any, labels: Any = None) -> Any:
        """Updates the generator to fool the (unchanged) discriminator; returns its loss."""
        labels = self._labels(labels)
        latent = self._latent(batch_size, labels)

        def loss_fn() -> tuple[Any, Any]:
            fakes = self.generator(latent, training=True)
            return generator_loss(_frozen_call(self.discriminator, self._judge(fakes, labels))), None

        loss, _ = _minimize(self, loss_fn, self._generator_variables(), self.generator_optimizer)
        return loss

    def _train_step(self, data: Any) -> dict:
        images, labels = self._unpack(data)
        self.discriminator_loss_tracker.update_state(self.discriminator_step(images, labels))
        self.generator_loss_tracker.update_state(self.generator_step(ops.shape(images)[0], labels))
        return {metric.name: metric.result() for metric in self.metrics}

    def _test_step(self, data: Any) -> dict:
        images, labels = self._unpack(data)
        images = ops.cast(images, "float32")
        fakes = self.generator(self._latent(ops.shape(images)[0], labels), training=False)
        real_logits = self.discriminator(self._judge(images, labels), training=False)
        fake_logits = self.discriminator(self._judge(fakes, labels), training=False)
        self.discriminator_loss_tracker.update_state(discriminator_loss(real_logits, fake_logits, self.label_smoothing))
        self.generator_loss_tracker.update_state(generator_loss(fake_logits))
        return {metric.name: metric.result() for metric in self.metrics}

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "generator": _serialize(self.generator),
            "discriminator": _serialize(self.discriminator),
            "label_smoothing": self.label_smoothing,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> GAN:
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


# ---------------------------------------------------------------------------------------------
# CycleGAN
# ---------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo")
class ImagePool(keras.layers.Layer):
    """The history of generated images a CycleGAN discriminator learns from (Shrivastava et al. 2017).

    While the pool is filling, each generated image is stored and passed through. Once
    full, each image is, with probability 1/2, swapped with a random stored one (the stored
    image goes to the discriminator, the new one takes its place), else passed through.
    Within one batch the swapped slots are distinct while the batch is no larger than the
    pool. The pool is state of the model (saved with it), not of any network.

    Args:
        pool_size: Number of stored images (the paper's 50); 0 passes every image through.
        image_shape: ``(height, width, channels)`` of the images.
        seed: Seed of the random choices.
    """

    def __init__(self, pool_size: int, image_shape: Sequence[int], seed: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 0:
            raise InvalidArgumentError(expected_received("ImagePool: pool_size", "an int >= 0", pool_size))
        self.pool_size = pool_size
        self.image_shape = tuple(int(d) for d in image_shape)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.images = self.add_weight(
            shape=(max(pool_size, 1), *self.image_shape), initializer="zeros", trainable=False, name="images"
        )
        self.count = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="count")
        self.built = True

    def call(self, images: Any) -> Any:
        if self.pool_size == 0:
            return images
        size = self.pool_size
        images = ops.cast(images, "float32")
        batch = ops.shape(images)[0]
        count = ops.convert_to_tensor(self.count)
        filling = count < size  # the whole batch is handled in one phase
        positions = count + ops.arange(batch, dtype="int32")
        insert = ops.logical_and(filling, positions < size)
        swap = ops.logical_and(ops.logical_not(filling), keras.random.uniform((batch,), seed=self.seed_generator) < 0.5)
        # Distinct random slots: the first entries of a random permutation of the pool.
        permutation = keras.random.shuffle(ops.arange(size, dtype="int32"), seed=self.seed_generator)
        random_slots = ops.take(permutation, ops.arange(batch, dtype="int32") % size)
        slots = ops.where(filling, ops.minimum(positions, size - 1), random_slots)
        write = ops.cast(ops.logical_or(insert, swap), "float32")

        stored = ops.take(self.images, slots, axis=0)
        returned = ops.where(ops.reshape(swap, (-1, 1, 1, 1)), stored, images)
        # Scatter the written images into their slots with a (batch, pool) one-hot matrix.
        assignment = ops.one_hot(slots, size) * write[:, None]
        hits = ops.sum(assignment, axis=0)
        flat_images = ops.reshape(images, (batch, -1))
        written = ops.matmul(ops.transpose(assignment / ops.maximum(hits, 1.0)[None, :]), flat_images)
        flat_pool = ops.reshape(self.images, (size, -1))
        keep = 1.0 - ops.minimum(hits, 1.0)
        self.images.assign(ops.reshape(flat_pool * keep[:, None] + written, (size, *self.image_shape)))
        self.count.assign(ops.minimum(count + batch, size))
        return returned

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "image_shape": list(self.image_shape),
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="kzoo")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate for ``constant_steps``, then linear decay to 0 over ``decay_steps``.

    CycleGAN trains 100 epochs at 2e-4 and decays linearly to zero over the next 100:
    ``LinearDecay(2e-4, 100 * steps_per_epoch, 100 * steps_per_epoch)``.
    """

    def __init__(self, initial_learning_rate: float, constant_steps: int, decay_steps: int) -> None:
        if decay_steps < 1 or constant_steps < 0:
            raise InvalidArgumentError(
                expected_received(
                    "LinearDecay", "constant_steps >= 0 and decay_steps >= 1", (constant_steps, decay_steps)
                )
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.constant_steps = int(constant_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step: Any) -> Any:
        progress = (ops.cast(step, "float32") - self.constant_steps) / self.decay_steps
        return self.initial_learning_rate * (1.0 - ops.clip(progress, 0.0, 1.0))

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "constant_steps": self.constant_steps,
            "decay_steps": self.decay_steps,
        }


@keras.saving.register_keras_serializable(package="kzoo")
class CycleGAN(_AdversarialModel):
    """CycleGAN (Zhu et al. 2017): unpaired translation between domains X and Y, trained with ``fit``.

    ``fit`` takes ``(x_batch, y_batch)`` pairs of unrelated images in [-1, 1] (see
    :func:`unpaired`). Each step first updates both generators with

        LSGAN(D_Y(G(x))) + LSGAN(D_X(F(y)))
        + cycle_weight * (|F(G(x)) - x| + |G(F(y)) - y|)
        + cycle_weight * identity_weight * (|F(x) - x| + |G(y) - y|)

    then both discriminators with the halved least-squares loss on real images and on
    generated images drawn through an :class:`ImagePool`. Calling the model translates
    X -> Y: ``cyclegan(x) == generator_g(x)``.

    With ``semantic_weight > 0`` the generators also pay CyCADA's semantic-consistency loss
    (Hoffman et al. 2018): frozen classifiers label each real image, and the translation must
    keep that label,

        semantic_weight * (CE(c_Y(G(x)), argmax c_X(x)) + CE(c_X(F(y)), argmax c_Y(y)))

    where ``c_X`` judges domain-X images and ``c_Y`` domain-Y images (CyCADA uses one
    source classifier for both: pass the same model twice). The classifiers see images as
    the CycleGAN does (in [-1, 1]: wrap a classifier of [0, 1] pixels in a rescaling), run
    with ``training=False`` and are never updated. Off by default (plain CycleGAN).

    Args:
        generator_g: X -> Y generator, e.g. ``kzoo.get("cyclegan_generator_resnet6")``.
        generator_f: Y -> X generator.
        discriminator_x: Judges domain X images, e.g. ``kzoo.get("patchgan_discriminator")``.
        discriminator_y: Judges domain Y images.
        cycle_weight: The paper's lambda (10).
        identity_weight: Identity loss weight relative to ``cycle_weight`` (the paper's 0.5;
            0 disables it). Needs X and Y to have the same number of channels.
        pool_size: Generated images remembered per discriminator (the paper's 50).
        seed: Seed of the image pools.
        semantic_weight: Weight of the semantic-consistency loss (0, the default, disables it).
        semantic_classifier_x: Frozen classifier of domain-X images (needed when
            ``semantic_weight > 0``); outputs ``(batch, classes)``.
        semantic_classifier_y: Frozen classifier of domain-Y images, with the same classes.
        semantic_from_logits: Whether the classifiers output logits (else probabilities).

    Example:
        >>> import kzoo
        >>> from kzoo.generative import CycleGAN, LinearDecay, unpaired
        >>> g = lambda: kzoo.get("cyclegan_generator_resnet6", input_shape=(32, 32, 1), base_filters=16)
        >>> d = lambda: kzoo.get("patchgan_discriminator", input_shape=(32, 32, 1), base_filters=16)
        >>> cyclegan = CycleGAN(g(), g(), d(), d())
        >>> cyclegan.compile()
        >>> cyclegan.fit(unpaired(images_x, images_y, batch_size=8), epochs=10)
    """

    def __init__(
        self,
        generator_g: keras.Model,
        generator_f: keras.Model,
        discriminator_x: keras.Model,
        discriminator_y: keras.Model,
        *,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        pool_size: int = 50,
        seed: int | None = None,
        semantic_weight: float = 0.0,
        semantic_classifier_x: keras.Model | None = None,
        semantic_classifier_y: keras.Model | None = None,
        semantic_from_logits: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for argument, model in (
            ("generator_g", generator_g),
            ("generator_f", generator_f),
            ("discriminator_x", discriminator_x),
            ("discriminator_y", discriminator_y),
        ):
            _check_model("CycleGAN", argument, model)
        shape_x = tuple(generator_g.inputs[0].shape[1:])
        shape_y = tuple(generator_f.inputs[0].shape[1:])
        for what, got, want in (
            ("generator_f output shape", tuple(generator_f.outputs[0].shape[1:]), shape_x),
            ("generator_g output shape", tuple(generator_g.outputs[0].shape[1:]), shape_y),
            ("discriminator_x input shape", tuple(discriminator_x.inputs[0].shape[1:]), shape_x),
            ("discriminator_y input shape", tuple(discriminator_y.inputs[0].shape[1:]), shape_y),
        ):
            if got != want:
                raise InvalidArgumentError(expected_received(f"CycleGAN: {what}", str(want), got))
        if identity_weight and shape_x[-1] != shape_y[-1]:
            raise InvalidArgumentError(
                expected_received(
                    "CycleGAN: identity_weight",
                    "0 when the domains have different channel counts",
                    identity_weight,
                    f"X has {shape_x[-1]} channels, Y has {shape_y[-1]}.",
                )
            )
        for argument, value in (
            ("cycle_weight", cycle_weight),
            ("identity_weight", identity_weight),
            ("semantic_weight", semantic_weight),
        ):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise InvalidArgumentError(expected_received(f"CycleGAN: {argument}", "a number >= 0", value))
        self._check_semantic(semantic_weight, semantic_classifier_x, semantic_classifier_y, shape_x, shape_y)
        self.semantic_weight = float(semantic_weight)
        self.semantic_classifier_x, self.semantic_classifier_y = semantic_classifier_x, semantic_classifier_y
        self.semantic_from_logits = bool(semantic_from_logits)
        self.generator_g, self.generator_f = generator_g, generator_f
        self.discriminator_x, self.discriminator_y = discriminator_x, discriminator_y
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.pool_size, self.seed = pool_size, seed
        pool_seeds = (None, None) if seed is None else (seed, seed + 1)
        self.pool_x = ImagePool(pool_size, shape_x, seed=pool_seeds[0], name="pool_x")
        self.pool_y = ImagePool(pool_size, shape_y, seed=pool_seeds[1], name="pool_y")
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "generator_loss",
                "cycle_loss",
                "identity_loss",
                "semantic_loss",
                "discriminator_x_loss",
                "discriminator_y_loss",
            )
        }
        self.built = True  # the networks are built functional models

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.generator_g(inputs, training=training)

    @staticmethod
    def _check_semantic(weight: float, classifier_x: Any, classifier_y: Any, shape_x: tuple, shape_y: tuple) -> None:
        if not weight:
            return
        outputs = []
        for argument, model, shape in (
            ("semantic_classifier_x", classifier_x, shape_x),
            ("semantic_classifier_y", classifier_y, shape_y),
        ):
            if model is None:
                raise InvalidArgumentError(
                    expected_received(
                        f"CycleGAN: {argument}",
                        "a classifier when semantic_weight > 0",
                        None,
                        "Pass frozen classifiers of both domains (the same model twice is CyCADA's choice), "
                        "or semantic_weight=0.",
                    )
                )
            _check_model("CycleGAN", argument, model)
            got = tuple(model.inputs[0].shape[1:])
            if got != shape:
                raise InvalidArgumentError(expected_received(f"CycleGAN: {argument} input shape", str(shape), got))
            outputs.append(tuple(model.outputs[0].shape))
        classes = tuple(shape[-1] for shape in outputs)
        if len(set(classes)) != 1 or any(len(shape) != 2 for shape in outputs):
            raise InvalidArgumentError(
                expected_received(
                    "CycleGAN: semantic classifier outputs", "(batch, classes) with the same classes", classes
                )
            )

    def semantic_loss(self, x: Any, y: Any, fake_x: Any, fake_y: Any) -> Any:
        """CyCADA's semantic-consistency loss: a translation keeps the label the frozen classifiers gave."""
        losses = []
        for source_classifier, source, target_classifier, translated in (
            (self.semantic_classifier_x, x, self.semantic_classifier_y, fake_y),
            (self.semantic_classifier_y, y, self.semantic_classifier_x, fake_x),
        ):
            labels = ops.stop_gradient(ops.argmax(source_classifier(source, training=False), axis=-1))
            outputs = ops.cast(target_classifier(translated, training=False), "float32")
            losses.append(
                ops.mean(
                    keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=self.semantic_from_logits)
                )
            )
        return losses[0] + losses[1]

    def _generator_variables(self) -> list:
        return self.generator_g.trainable_variables + self.generator_f.trainable_variables

    def _discriminator_variables(self) -> list:
        return self.discriminator_x.trainable_variables + self.discriminator_y.trainable_variables

    @property
    def metrics(self) -> list:
        return list(self.trackers.values())

    def generator_step(self, x: Any, y: Any) -> dict:
        """Updates both generators; returns their losses and the translations ``fake_x``, ``fake_y``."""
        x, y = ops.cast(x, "float32"), ops.cast(y, "float32")

        def loss_fn() -> tuple[Any, Any]:
            fake_y = self.generator_g(x, training=True)
            fake_x = self.generator_f(y, training=True)
            adversarial = lsgan_generator_loss(_frozen_call(self.discriminator_y, fake_y)) + lsgan_generator_loss(
                _frozen_call(self.discriminator_x, fake_x)
            )
            cycle = l1_loss(self.generator_f(fake_y, training=True), x) + l1_loss(
                self.generator_g(fake_x, training=True), y
            )
            total = adversarial + self.cycle_weight * cycle
            identity = ops.zeros(())
            if self.identity_weight:
                identity = l1_loss(self.generator_f(x, training=True), x) + l1_loss(
                    self.generator_g(y, training=True), y
                )
                total = total + self.cycle_weight * self.identity_weight * identity
            semantic = ops.zeros(())
            if self.semantic_weight:
                semantic = self.semantic_loss(x, y, fake_x, fake_y)
                total = total + self.semantic_weight * semantic
            extra = {"cycle_loss": cycle, "identity_loss": identity, "semantic_loss": semantic}
            return total, {**extra, "fake_x": fake_x, "fake_y": fake_y}

        total, extra = _minimize(self, loss_fn, self._generator_variables(), self.generator_optimizer)
        return {"generator_loss": total, **extra}

    def discriminator_step(self, x: Any, y: Any, fake_x: Any, fake_y: Any) -> dict:
        """Updates both discriminators on real images and pooled generated ones; returns their losses."""
        x, y = ops.cast(x, "float32"), ops.cast(y, "float32")
        pooled_x = self.pool_x(ops.stop_gradient(fake_x))
        pooled_y = self.pool_y(ops.stop_gradient(fake_y))

        def loss_fn() -> tuple[Any, Any]:
            loss_x = lsgan_discriminator_loss(
                self.discriminator_x(x, training=True), self.discriminator_x(pooled_x, training=True)
            )
            loss_y = lsgan_discriminator_loss(
                self.discriminator_y(y, training=True), self.discriminator_y(pooled_y, training=True)
            )
            return loss_x + loss_y, {"discriminator_x_loss": loss_x, "discriminator_y_loss": loss_y}

        _, losses = _minimize(self, loss_fn, self._discriminator_variables(), self.discriminator_optimizer)
        return losses

    def _train_step(self, data: Any) -> dict:
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise InvalidArgumentError(
                expected_received("CycleGAN data", "(x_batch, y_batch) pairs, e.g. from kzoo.generative.unpaired", data)
            )
        x, y = data
        generated = self.generator_step(x, y)
        discriminated = self.discriminator_step(x, y, generated["fake_x"], generated["fake_y"])
        for name, value in {**generated, **discriminated}.items():
            if name in self.trackers:
                self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "generator_g": _serialize(self.generator_g),
            "generator_f": _serialize(self.generator_f),
            "discriminator_x": _serialize(self.discriminator_x),
            "discriminator_y": _serialize(self.discriminator_y),
            "cycle_weight": self.cycle_weight,
            "identity_weight": self.identity_weight,
            "pool_size": self.pool_size,
            "seed": self.seed,
            "semantic_weight": self.semantic_weight,
            **{
                key: None if getattr(self, key) is None else _serialize(getattr(self, key))
                for key in ("semantic_classifier_x", "semantic_classifier_y")
            },
            "semantic_from_logits": self.semantic_from_logits,
        }

    @classmethod
    def from_config(cls, config: dict) -> CycleGAN:
        config = dict(config)
        for key in (
            "generator_g",
            "generator_f",
            "discriminator_x",
            "discriminator_y",
            "semantic_classifier_x",
            "semantic_classifier_y",
        ):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def unpaired(images_x: Any, images_y: Any, *, batch_size: int = 1, seed: int | None = None) -> Any:
    """A ``tf.data`` pipeline of ``(x_batch, y_batch)`` from two unrelated image collections.

    Each collection (a NumPy array or an unbatched ``tf.data.Dataset`` of images) is
    shuffled and repeated independently; one epoch is as many batches as the larger
    collection fills, so every image of both is seen about once per epoch.
    """
    tf = import_tensorflow("kzoo.generative.unpaired (tf.data)")

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidArgumentError(expected_received("unpaired: batch_size", "a positive int", batch_size))
    datasets, sizes = [], []
    for images in (images_x, images_y):
        dataset = images if isinstance(images, tf.data.Dataset) else tf.data.Dataset.from_tensor_slices(images)
        size = int(dataset.cardinality())
        if size < 1:
            raise InvalidArgumentError(
                expected_received("unpaired: each image collection", "a finite, non-empty collection", size)
            )
        sizes.append(size)
        datasets.append(dataset.shuffle(min(size, 10_000), seed=seed).repeat())
    steps = max(sizes) // batch_size
    return tf.data.Dataset.zip(tuple(datasets)).batch(batch_size, drop_remainder=True).take(steps).prefetch(2)


# ---------------------------------------------------------------------------------------------
# TensorBoard image grids
# ---------------------------------------------------------------------------------------------


class GeneratedImages(keras.callbacks.Callback):
    """After every ``every`` epochs, runs the model on fixed ``inputs`` and logs an image grid.

    For a :class:`GAN` the inputs are fixed noise (and labels), so the grids show the same
    samples improving; for a :class:`CycleGAN` they are fixed domain-X images and the grid
    shows their translations. Images in [-1, 1] are shown as [0, 1]. Grids go to
    TensorBoard under ``<log_dir>/images`` as ``tag`` and are kept in ``self.grids``
    (``[(epoch, grid)]``) for figures.

    Args:
        inputs: What the model is called on (NumPy arrays).
        log_dir: TensorBoard log directory, or ``None`` to keep the grids in memory only.
        tag: TensorBoard image tag.
        every: Epoch interval.
    """

    def __init__(self, inputs: Any, *, log_dir: str | None = None, tag: str = "samples/generated", every: int = 1):
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise InvalidArgumentError(expected_received("GeneratedImages: every", "a positive int", every))
        self.inputs, self.log_dir, self.tag, self.every = inputs, log_dir, tag, every
        self.grids: list[tuple[int, np.ndarray]] = []
        self._writer = None

    def on_train_begin(self, logs: Any = None) -> None:
        if self.log_dir is not None and self._writer is None:
            tf = import_tensorflow("GeneratedImages with a log_dir (TensorBoard summaries)")

            self._writer = tf.summary.create_file_writer(f"{self.log_dir}/images")

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if (epoch + 1) % self.every:
            return
        grid = image_grid(keras.ops.convert_to_numpy(self.model(self.inputs, training=False)))
        self.grids.append((epoch, grid))
        if self._writer is not None:
            tf = import_tensorflow("GeneratedImages with a log_dir (TensorBoard summaries)")

            with self._writer.as_default():
                tf.summary.image(self.tag, grid[None], step=epoch)
            self._writer.flush()

    def on_train_end(self, logs: Any = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def to_unit_range(images: Any) -> np.ndarray:
    """Maps images from [-1, 1] (generator outputs) to [0, 1] for display."""
    return np.clip((np.asarray(images, dtype="float32") + 1.0) / 2.0, 0.0, 1.0)


def image_grid(images: Any, *, columns: int | None = None, padding: int = 1, value_range: str = "tanh") -> np.ndarray:
    """Tiles ``(N, H, W, C)`` images into one ``(rows*H, columns*W, C)`` image in [0, 1].

    Args:
        images: The images.
        columns: Grid columns (default: a square grid).
        padding: Pixels of white between images.
        value_range: ``"tanh"`` for images in [-1, 1], ``"unit"`` for [0, 1].
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise InvalidArgumentError(expected_received("image_grid: images", "an (N, H, W, C) array", images.shape))
    if value_range not in ("tanh", "unit"):
        raise InvalidArgumentError(expected_received("image_grid: value_range", "'tanh' or 'unit'", value_range))
    images = to_unit_range(images) if value_range == "tanh" else np.clip(images, 0.0, 1.0)
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.ones((rows * (height + padding) + padding, columns * (width + padding) + padding, channels), "float32")
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid
