"""Generative models: autoencoders, GAN / conditional GAN, CycleGAN, their losses and tools.

The registry-wide tests (tests/test_models.py) already build, differentiate, save and
compile every registered network; these tests cover what is specific to generative models.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import kzoo
from kzoo import generative
from kzoo.errors import InvalidArgumentError
from kzoo.models.autoencoders import kl_divergence
from kzoo.models.cyclegan import patchgan_output_size

from conftest import requires_data


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, kwargs, code_shape",
    [
        ("autoencoder_dense", {"latent_dim": 5}, (5,)),
        ("autoencoder_deep", {"latent_dim": 5, "hidden_units": (16, 8)}, (5,)),
        ("autoencoder_conv", {"latent_dim": 5, "filters": (4, 8)}, (5,)),
        ("autoencoder_denoising", {"latent_dim": 5, "filters": (4, 8)}, (5,)),
    ],
)
def test_autoencoder_halves_have_the_right_shapes(name, kwargs, code_shape):
    model = kzoo.get(name, input_shape=(12, 16, 2), **kwargs)
    encoder, decoder = generative.encoder_decoder(model)
    assert model.output_shape == (None, 12, 16, 2)
    assert encoder.output_shape == (None, *code_shape)
    assert decoder.input_shape == (None, *code_shape) and decoder.output_shape == (None, 12, 16, 2)
    # The autoencoder is exactly decoder(encoder(x)) at inference (noise is off).
    x = np.random.default_rng(0).uniform(size=(3, 12, 16, 2)).astype("float32")
    np.testing.assert_allclose(_numpy(model(x)), _numpy(decoder(encoder(x))), atol=1e-6)


def test_vae_encoder_outputs_mean_and_log_variance():
    model = kzoo.get("vae", latent_dim=3, filters=(4,), hidden_units=(8,))
    encoder, decoder = generative.encoder_decoder(model)
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 3), (None, 3)]
    assert decoder.output_shape == (None, 28, 28, 1)


def test_gan_and_cyclegan_networks_have_the_right_shapes():
    assert kzoo.get("dcgan_generator", latent_dim=7, input_shape=(32, 32, 3), base_filters=2).output_shape == (
        None,
        32,
        32,
        3,
    )
    assert kzoo.get("dcgan_discriminator", base_filters=2).output_shape == (None, 1)
    conditional = kzoo.get("cgan_generator", num_classes=4, base_filters=2)
    assert [tuple(i.shape) for i in conditional.inputs] == [(None, 100), (None,)]
    generator = kzoo.get("cyclegan_generator_resnet9", input_shape=(28, 28, 1), base_filters=2)
    assert generator.output_shape == (None, 28, 28, 1)
    assert sum(layer.name.endswith("_add") for layer in generator.layers) == 9
    for size, patches in ((256, 30), (128, 14), (32, 2), (28, 1)):
        assert patchgan_output_size(size, 3) == patches  # 30x30 patches at 256: the paper's 70x70 PatchGAN
    assert kzoo.get("patchgan_discriminator", input_shape=(32, 32, 1), base_filters=2).output_shape == (
        None,
        2,
        2,
        1,
    )


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(InvalidArgumentError, match="divisible by 4"):
        kzoo.get("autoencoder_conv", input_shape=(30, 30, 1))
    with pytest.raises(InvalidArgumentError, match="at least 24"):
        kzoo.get("patchgan_discriminator", input_shape=(16, 16, 3))
    with pytest.raises(InvalidArgumentError, match="beta"):
        kzoo.get("vae", beta=-1.0)
    with pytest.raises(InvalidArgumentError, match="conditional discriminator"):
        generative.GAN(kzoo.get("cgan_generator", base_filters=2), kzoo.get("dcgan_discriminator", base_filters=2))
    with pytest.raises(InvalidArgumentError, match="discriminator_y input shape"):
        g = kzoo.get("cyclegan_generator_resnet6", input_shape=(28, 28, 1), base_filters=2)
        f = kzoo.get("cyclegan_generator_resnet6", input_shape=(28, 28, 1), base_filters=2)
        d = kzoo.get("patchgan_discriminator", input_shape=(28, 28, 1), base_filters=2)
        generative.CycleGAN(g, f, d, kzoo.get("patchgan_discriminator", input_shape=(32, 32, 1), base_filters=2))


# ---------------------------------------------------------------------------------------------
# Losses against hand-computed values
# ---------------------------------------------------------------------------------------------


def test_gan_losses_match_hand_computed_values():
    real, fake = np.array([[2.0], [0.0]], "float32"), np.array([[-1.0], [1.0]], "float32")
    # Real targets 0.9 (one-sided smoothing), fake targets 0.
    expected_real = np.mean([-(0.9 * math.log(_sigmoid(r)) + 0.1 * math.log(1 - _sigmoid(r))) for r in (2.0, 0.0)])
    expected_fake = np.mean([-math.log(1 - _sigmoid(f)) for f in (-1.0, 1.0)])
    assert float(generative.discriminator_loss(real, fake, 0.1)) == pytest.approx(expected_real + expected_fake, 1e-5)
    assert float(generative.discriminator_loss(np.zeros((4, 1)), np.zeros((4, 1)))) == pytest.approx(2 * math.log(2))
    expected_generator = np.mean([-math.log(_sigmoid(f)) for f in (-1.0, 1.0)])
    assert float(generative.generator_loss(fake)) == pytest.approx(expected_generator, 1e-5)


def test_classifier_score_matches_hand_computed_values():
    assert generative.classifier_score(np.eye(10)) == pytest.approx(10.0)  # certain, all classes used
    assert generative.classifier_score(np.tile([[1.0, 0.0]], (5, 1))) == pytest.approx(1.0)  # one class
    assert generative.classifier_score(np.full((4, 3), 1 / 3)) == pytest.approx(1.0)  # unsure
    # Two images, p = (0.5, 0.5) and (1, 0): marginal (0.75, 0.25).
    kl_first = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_second = math.log(1 / 0.75)
    score = generative.classifier_score([[0.5, 0.5], [1.0, 0.0]])
    assert score == pytest.approx(math.exp((kl_first + kl_second) / 2), rel=1e-6)


def test_least_squares_cycle_and_kl_losses_match_hand_computed_values():
    real, fake = np.array([1.0, 0.0, 2.0], "float32"), np.array([0.5, -1.0], "float32")
    # ((0 + 1 + 1) / 3 + (0.25 + 1) / 2) / 2
    assert float(generative.lsgan_discriminator_loss(real, fake)) == pytest.approx((2 / 3 + 0.625) / 2)
    assert float(generative.lsgan_generator_loss(fake)) == pytest.approx((0.25 + 4.0) / 2)
    assert float(generative.l1_loss(np.array([1.0, -1.0]), np.array([0.5, 1.0]))) == pytest.approx(1.25)
    # KL(N(mu, sigma^2) || N(0, 1)) = (mu^2 + sigma^2 - 1 - log sigma^2) / 2 per dimension.
    mean, log_var = np.array([[1.0, 0.0]], "float32"), np.array([[0.0, math.log(4.0)]], "float32")
    expected = 0.5 * (1.0 + 1.0 - 1 - 0) + 0.5 * (0 + 4.0 - 1 - math.log(4.0))
    assert float(_numpy(kl_divergence(mean, log_var))[0]) == pytest.approx(expected, 1e-5)


def test_vae_adds_beta_weighted_kl_to_its_losses():
    model = kzoo.get("vae", input_shape=(8, 8, 1), latent_dim=2, filters=(2,), hidden_units=(), beta=4.0, seed=1)
    x = np.random.default_rng(0).uniform(size=(5, 8, 8, 1)).astype("float32")
    model(x)
    z_mean, z_log_var = model.get_layer("encoder")(x)
    expected = 4.0 / 64 * float(np.mean(_numpy(kl_divergence(z_mean, z_log_var))))
    assert len(model.losses) == 1
    assert float(model.losses[0]) == pytest.approx(expected, rel=1e-5)
    # fit() optimises reconstruction + KL: the reported loss exceeds the plain cross-entropy.
    model.compile(optimizer="adam", loss="binary_crossentropy")
    loss = model.evaluate(x, x, verbose=0)
    bce = float(keras.ops.mean(keras.losses.binary_crossentropy(x, model.predict(x, verbose=0))))
    assert loss == pytest.approx(bce + expected, rel=1e-4)


def test_vae_without_filters_is_a_dense_vae_that_matches_its_layers_by_hand():
    model = kzoo.get("vae", input_shape=(6, 4, 1), latent_dim=3, filters=(), hidden_units=(5,), seed=0)
    layers = [layer for layer in model._flatten_layers(include_self=False)]
    assert not any(isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) for layer in layers)
    encoder, decoder = generative.encoder_decoder(model)
    assert encoder.output_shape == [(None, 3), (None, 3)] and decoder.output_shape == (None, 6, 4, 1)
    x = np.random.default_rng(1).uniform(size=(2, 6, 4, 1)).astype("float32")
    # The encoder by hand: flatten -> relu(dense1) -> (z_mean, z_log_var); the decoder mirrors it.
    enc = {layer.name: layer.get_weights() for layer in encoder.layers if layer.weights}
    dec = {layer.name: layer.get_weights() for layer in decoder.layers if layer.weights}
    hidden = np.maximum(x.reshape(2, -1) @ enc["dense1"][0] + enc["dense1"][1], 0)
    np.testing.assert_allclose(
        _numpy(encoder(x)[0]), hidden @ enc["z_mean"][0] + enc["z_mean"][1], rtol=1e-5, atol=1e-6
    )
    z = np.random.default_rng(2).standard_normal((2, 3)).astype("float32")
    logits = np.maximum(z @ dec["dense1"][0] + dec["dense1"][1], 0) @ dec["pixels"][0] + dec["pixels"][1]
    np.testing.assert_allclose(_numpy(decoder(z)), (1 / (1 + np.exp(-logits))).reshape(2, 6, 4, 1), rtol=1e-5)


def test_vae_samples_only_while_training_and_denoiser_adds_noise_only_while_training():
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    vae = kzoo.get("vae", input_shape=(8, 8, 1), filters=(2,), hidden_units=(), seed=3)
    np.testing.assert_array_equal(_numpy(vae(x)), _numpy(vae(x)))
    assert not np.allclose(_numpy(vae(x, training=True)), _numpy(vae(x)))
    denoiser = kzoo.get("autoencoder_denoising", input_shape=(8, 8, 1), filters=(2,), seed=3)
    np.testing.assert_array_equal(_numpy(denoiser(x)), _numpy(denoiser(x)))
    assert not np.allclose(_numpy(denoiser(x, training=True)), _numpy(denoiser(x)))


# ---------------------------------------------------------------------------------------------
# One step of each model changes exactly the weights it should
# ---------------------------------------------------------------------------------------------


def _snapshot(model):
    return [np.array(v) for v in model.variables]


def _changed(model, before):
    return [not np.array_equal(np.array(v), b) for v, b in zip(model.variables, before)]


def _trainable_flags(model):
    trainable = {id(v) for v in model.trainable_variables}
    return [id(v) in trainable for v in model.variables]


@pytest.mark.parametrize("family", ["dcgan", "cgan"])
def test_gan_steps_change_only_their_own_network(family):
    keras.utils.set_random_seed(0)
    kwargs = {"input_shape": (8, 8, 1), "base_filters": 2}
    extra = {"num_classes": 3} if family == "cgan" else {}
    generator = kzoo.get(f"{family}_generator", latent_dim=4, **kwargs, **extra)
    discriminator = kzoo.get(f"{family}_discriminator", dropout=0.3, **kwargs, **extra)  # dropout: seed state
    gan = generative.GAN(generator, discriminator, seed=0)
    gan.compile()
    images = np.random.default_rng(0).uniform(-1, 1, (6, 8, 8, 1)).astype("float32")
    labels = np.array([0, 1, 2, 0, 1, 2], "int32") if family == "cgan" else None

    g_before, d_before = _snapshot(generator), _snapshot(discriminator)
    gan.discriminator_step(images, labels)
    assert not any(_changed(generator, g_before)), "the discriminator step changed the generator"
    d_changed = _changed(discriminator, d_before)
    assert all(c for c, t in zip(d_changed, _trainable_flags(discriminator)) if t)

    g_before, d_before = _snapshot(generator), _snapshot(discriminator)
    gan.generator_step(6, labels)
    assert not any(_changed(discriminator, d_before)), "the generator step changed the discriminator"
    g_changed = _changed(generator, g_before)
    assert all(c for c, t in zip(g_changed, _trainable_flags(generator)) if t)
    # Batch-norm statistics are generator state the generator step may update, and does.
    moving = [c for c, v in zip(g_changed, generator.variables) if "moving" in v.path]
    assert moving and all(moving)


def _tiny_cyclegan(seed=0, pool_size=3):
    keras.utils.set_random_seed(seed)

    def g():
        return kzoo.get("cyclegan_generator_resnet6", input_shape=(24, 24, 1), base_filters=2)

    def d():
        return kzoo.get("patchgan_discriminator", input_shape=(24, 24, 1), base_filters=2)

    return generative.CycleGAN(g(), g(), d(), d(), pool_size=pool_size, seed=seed)


def test_cyclegan_steps_change_only_their_own_networks():
    cyclegan = _tiny_cyclegan()
    cyclegan.compile()
    rng = np.random.default_rng(0)
    x, y = (rng.uniform(-1, 1, (2, 24, 24, 1)).astype("float32") for _ in range(2))
    generators = (cyclegan.generator_g, cyclegan.generator_f)
    discriminators = (cyclegan.discriminator_x, cyclegan.discriminator_y)

    before = [_snapshot(m) for m in generators + discriminators]
    result = cyclegan.generator_step(x, y)
    for model, snapshot in zip(generators, before[:2]):
        assert all(_changed(model, snapshot))  # instance norm has no non-trainable state
    for model, snapshot in zip(discriminators, before[2:]):
        assert not any(_changed(model, snapshot))
    assert float(result["cycle_loss"]) > 0 and float(result["identity_loss"]) > 0

    before = [_snapshot(m) for m in generators + discriminators]
    cyclegan.discriminator_step(x, y, result["fake_x"], result["fake_y"])
    for model, snapshot in zip(generators, before[:2]):
        assert not any(_changed(model, snapshot))
    for model, snapshot in zip(discriminators, before[2:]):
        assert all(_changed(model, snapshot))


def _tiny_classifier(seed, classes=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((24, 24, 1))
    return keras.Model(inputs, keras.layers.Dense(classes)(keras.layers.Flatten()(inputs)), name=f"judge{seed}")


def _semantic_cyclegan(weight, seed=0):
    base = _tiny_cyclegan(seed=seed)
    networks = (base.generator_g, base.generator_f, base.discriminator_x, base.discriminator_y)
    kwargs = {"pool_size": 3, "seed": seed, "semantic_weight": weight}
    return generative.CycleGAN(
        *networks, semantic_classifier_x=_tiny_classifier(11), semantic_classifier_y=_tiny_classifier(12), **kwargs
    )


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_cyclegan_semantic_loss_is_the_cross_entropy_of_the_labels_the_classifiers_gave():
    cyclegan = _semantic_cyclegan(1.0)
    rng = np.random.default_rng(3)
    x, y, fake_x, fake_y = (rng.uniform(-1, 1, (4, 24, 24, 1)).astype("float32") for _ in range(4))
    c_x, c_y = cyclegan.semantic_classifier_x, cyclegan.semantic_classifier_y

    def cross_entropy(judge_of_source, source, judge_of_translation, translated):
        labels = _numpy(judge_of_source(source)).argmax(axis=-1)
        log_p = _log_softmax(_numpy(judge_of_translation(translated)).astype("float64"))
        return -log_p[np.arange(len(labels)), labels].mean()

    expected = cross_entropy(c_x, x, c_y, fake_y) + cross_entropy(c_y, y, c_x, fake_x)
    assert float(cyclegan.semantic_loss(x, y, fake_x, fake_y)) == pytest.approx(expected, rel=1e-5)


def test_cyclegan_semantic_step_moves_only_the_generators_and_the_loss_changes_their_update():
    rng = np.random.default_rng(0)
    x, y = (rng.uniform(-1, 1, (2, 24, 24, 1)).astype("float32") for _ in range(2))
    updated = {}
    for weight in (0.0, 5.0):
        cyclegan = _semantic_cyclegan(weight)
        cyclegan.compile()
        frozen = (cyclegan.discriminator_x, cyclegan.discriminator_y)
        frozen += (cyclegan.semantic_classifier_x, cyclegan.semantic_classifier_y)
        before = [_snapshot(m) for m in frozen]
        generator_before = _snapshot(cyclegan.generator_g)
        result = cyclegan.generator_step(x, y)
        for model, snapshot in zip(frozen, before):
            assert not any(_changed(model, snapshot))  # the classifiers are judges, never trained
        assert all(_changed(cyclegan.generator_g, generator_before))
        assert (float(result["semantic_loss"]) > 0) == (weight > 0)
        updated[weight] = _snapshot(cyclegan.generator_g)
    # The same networks and data: only the semantic term differs, and it moves the weights.
    assert any(not np.allclose(a, b, atol=1e-7) for a, b in zip(updated[0.0], updated[5.0]))


def test_cyclegan_semantic_weight_without_classifiers_of_matching_classes_is_refused():
    base = _tiny_cyclegan()
    networks = (base.generator_g, base.generator_f, base.discriminator_x, base.discriminator_y)
    with pytest.raises(InvalidArgumentError, match="semantic_classifier_x"):
        generative.CycleGAN(*networks, semantic_weight=1.0)
    with pytest.raises(InvalidArgumentError, match="same classes"):
        generative.CycleGAN(
            *networks,
            semantic_weight=1.0,
            semantic_classifier_x=_tiny_classifier(1, classes=3),
            semantic_classifier_y=_tiny_classifier(2, classes=4),
        )
    with pytest.raises(InvalidArgumentError, match="semantic_weight"):
        generative.CycleGAN(*networks, semantic_weight=-1.0)


def test_cyclegan_with_semantic_classifiers_round_trips(tmp_path):
    cyclegan = _semantic_cyclegan(2.0)
    path = tmp_path / "semantic.keras"
    cyclegan.save(path)
    restored = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert restored.semantic_weight == 2.0
    x = np.random.default_rng(2).uniform(-1, 1, (3, 24, 24, 1)).astype("float32")
    np.testing.assert_allclose(_numpy(restored(x)), _numpy(cyclegan(x)), atol=1e-5)
    for name in ("semantic_classifier_x", "semantic_classifier_y"):
        np.testing.assert_allclose(_numpy(getattr(restored, name)(x)), _numpy(getattr(cyclegan, name)(x)), atol=1e-6)


def test_cyclegan_fits_on_unpaired_datasets_and_round_trips(tmp_path):
    cyclegan = _tiny_cyclegan()
    # Eager: tracing the whole CycleGAN step into a graph takes longer than three tiny steps.
    cyclegan.compile(generator_optimizer=keras.optimizers.Adam(generative.LinearDecay(2e-4, 1, 2)), run_eagerly=True)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, (4, 24, 24, 1)).astype("float32"), rng.uniform(-1, 1, (6, 24, 24, 1)).astype("float32")
    dataset = generative.unpaired(x, y, batch_size=2, seed=0)
    assert int(dataset.cardinality()) == 3  # the larger domain, once per epoch
    history = cyclegan.fit(dataset, epochs=1, verbose=0)
    assert set(history.history) >= {"generator_loss", "cycle_loss", "discriminator_x_loss", "discriminator_y_loss"}
    assert int(cyclegan.pool_x.count.value) == 3  # 3 steps of 2 images filled the pool of 3
    path = tmp_path / "cyclegan.keras"
    cyclegan.save(path)
    restored = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(_numpy(restored(x)), _numpy(cyclegan(x)), atol=1e-5)
    np.testing.assert_array_equal(np.array(restored.pool_y.images), np.array(cyclegan.pool_y.images))


def test_gan_fits_logs_sample_grids_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    kwargs = {"input_shape": (8, 8, 1), "base_filters": 2}
    gan = generative.GAN(kzoo.get("dcgan_generator", latent_dim=4, **kwargs), kzoo.get("dcgan_discriminator", **kwargs))
    gan.compile()
    images = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
    grids = generative.GeneratedImages(gan.noise(4), log_dir=str(tmp_path / "logs"))
    gan.fit(images, batch_size=4, epochs=2, callbacks=[grids], verbose=0)
    assert [epoch for epoch, _ in grids.grids] == [0, 1]
    assert grids.grids[0][1].shape == (2 * 9 + 1, 2 * 9 + 1, 1)  # 2x2 grid of 8x8 images, 1-pixel borders
    assert list((tmp_path / "logs" / "images").glob("events.out.tfevents.*"))
    path = tmp_path / "gan.keras"
    gan.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    noise = gan.noise(3, seed=5)
    np.testing.assert_allclose(_numpy(restored(noise)), _numpy(gan(noise)), atol=1e-6)
    # It comes back compiled, with both optimizers' state: training resumes where it stopped.
    for name in ("generator_optimizer", "discriminator_optimizer"):
        assert int(getattr(restored, name).iterations) == int(getattr(gan, name).iterations) == 4
    restored.fit(images, batch_size=4, epochs=1, verbose=0)
    assert int(restored.generator_optimizer.iterations) == 6


# ---------------------------------------------------------------------------------------------
# The image pool, the schedule, the latent tools
# ---------------------------------------------------------------------------------------------


def test_image_pool_fills_then_swaps_images_one_for_one():
    pool = generative.ImagePool(4, (1, 1, 1), seed=0)
    first = np.arange(4, dtype="float32").reshape(4, 1, 1, 1)
    np.testing.assert_array_equal(_numpy(pool(first)), first)  # filling: passed through, stored
    np.testing.assert_array_equal(np.sort(np.array(pool.images).ravel()), [0, 1, 2, 3])
    swapped_any = passed_any = False
    for step in range(5):
        old = set(np.array(pool.images).ravel().tolist())
        new = (10 * (step + 1) + np.arange(3, dtype="float32")).reshape(3, 1, 1, 1)
        returned = _numpy(pool(new)).ravel().tolist()
        stored = np.array(pool.images).ravel().tolist()
        # Nothing is created or lost: what went in (pool + batch) is what came out (pool + returned).
        assert sorted(stored + returned) == sorted(old | set(new.ravel().tolist()))
        swapped_any |= any(value in old for value in returned)
        passed_any |= any(value in new.ravel() for value in returned)
    assert swapped_any and passed_any


def test_linear_decay_is_constant_then_linear_to_zero():
    schedule = generative.LinearDecay(2e-4, constant_steps=100, decay_steps=100)
    values = [float(schedule(step)) for step in (0, 100, 150, 200, 300)]
    assert values == pytest.approx([2e-4, 2e-4, 1e-4, 0.0, 0.0])


def test_latent_tools():
    model = kzoo.get("vae", input_shape=(8, 8, 1), filters=(2,), hidden_units=())
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    path = generative.interpolate(model, x[0], x[1], steps=5)
    decoder = model.get_layer("decoder")
    codes = generative.encode(model, x)
    np.testing.assert_allclose(path[[0, -1]], _numpy(decoder(codes)), atol=1e-5)
    assert generative.latent_grid(model, size=3).shape == (9, 8, 8, 1)
    assert generative.sample(model, 4).shape == (4, 8, 8, 1)
    # A line in 5-D projects onto one principal axis, keeping distances.
    line = np.outer(np.arange(4.0), [1.0, 2.0, 0.0, 2.0, 0.0])
    projected = generative.project_2d(line)
    np.testing.assert_allclose(np.abs(projected[:, 0]), np.abs(np.arange(4.0) - 1.5) * 3.0, atol=1e-5)
    np.testing.assert_allclose(projected[:, 1], 0.0, atol=1e-5)
    with pytest.raises(InvalidArgumentError, match="encoder"):
        generative.encoder_decoder(kzoo.get("lenet5"))


# ---------------------------------------------------------------------------------------------
# Shipped weights reach their recorded figures
# ---------------------------------------------------------------------------------------------


def _record(model):
    return kzoo.registry.origin(model).weights


@requires_data("mnist")
@pytest.mark.parametrize(
    "name, tag", [("autoencoder_conv", True), ("autoencoder_denoising", True), ("vae", True), ("vae", "mnist_latent16")]
)
def test_shipped_autoencoders_reach_their_recorded_test_loss(name, tag, monkeypatch):
    if not kzoo.list_models(name, pretrained=True):
        pytest.skip(f"{name} has no shipped weights")
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    model = kzoo.get(name, pretrained=tag)
    record = _record(model)
    images, _ = kzoo.data.load_mnist("test")
    x = record.preprocessing(images[..., None].astype("float32"))
    bce = float(keras.ops.mean(keras.losses.binary_crossentropy(x, model.predict(x, batch_size=1000, verbose=0))))
    assert bce == pytest.approx(record.metrics["test_reconstruction_bce"], abs=2e-4)
    noise_stddev = record.builder_kwargs.get("noise_stddev")
    if noise_stddev:  # the recipe's test noise: seed 0, the training noise level, clipped to [0, 1]
        noisy = np.clip(x + np.random.default_rng(0).normal(0, noise_stddev, x.shape), 0, 1).astype("float32")
        denoised = model.predict(noisy, batch_size=1000, verbose=0)
        denoising = float(keras.ops.mean(keras.losses.binary_crossentropy(x, denoised)))
        assert denoising == pytest.approx(record.metrics["test_denoising_bce"], abs=2e-4)
        as_is = float(keras.ops.mean(keras.losses.binary_crossentropy(x, np.clip(noisy, 1e-7, 1 - 1e-7))))
        assert as_is == pytest.approx(record.metrics["test_noisy_input_bce"], abs=2e-4)
        assert denoising < as_is / 5  # the network removes most of the noise
    if name == "vae":  # KL of q(z|x) from the prior, and the negative ELBO in nats (784 summed pixels + KL)
        z_mean, z_log_var = model.get_layer("encoder").predict(x, batch_size=1000, verbose=0)
        kl = float(np.mean(_numpy(kl_divergence(z_mean, z_log_var))))
        assert kl == pytest.approx(record.metrics["test_kl"], abs=2e-3)
        elbo = bce * 784 + record.builder_kwargs["beta"] * kl
        assert elbo == pytest.approx(record.metrics["test_negative_elbo_nats"], abs=0.2)
        # The importance-weighted bound (k = 100) on every 10th test digit, fresh samples: the
        # recorded 10,000-digit mean within 3 standard errors of a 1,000-digit mean.
        iwae, mc_elbo = generative.importance_weighted_log_likelihood(model, x[::10], samples=100, seed=7)
        standard_error = record.metrics["test_negative_iwae_per_digit_sd"] / math.sqrt(len(iwae))
        assert -iwae.mean() == pytest.approx(record.metrics["test_negative_iwae_nats"], abs=3 * standard_error)
        assert -mc_elbo.mean() == pytest.approx(record.metrics["test_negative_elbo_mc_nats"], abs=3 * standard_error)
        assert np.all(iwae >= mc_elbo - 1e-9)  # the bound is never looser than the ELBO of its own samples


def test_shipped_cyclegan_reaches_its_recorded_lenet5_accuracy(monkeypatch):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    translator = kzoo.get("cyclegan_generator_resnet6", pretrained="uci_to_mnist")
    record = _record(translator)
    lenet = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)  # reads [0, 1], as the recipe scores
    images, labels = kzoo.data.load_uci_digits(size=28)
    held_out = record.preprocessing(images[-797:, ..., None].astype("float32"))
    translated = translator.predict(held_out, batch_size=500, verbose=0)
    logits = lenet.predict(generative.to_unit_range(translated), verbose=0)
    accuracy = float((logits.argmax(axis=-1) == labels[-797:]).mean())
    assert accuracy == pytest.approx(record.metrics["lenet5_accuracy_uci_translated_to_mnist"], abs=2e-3)
    untranslated = lenet.predict(generative.to_unit_range(held_out), verbose=0).argmax(axis=-1)
    assert float((untranslated == labels[-797:]).mean()) == pytest.approx(
        record.metrics["lenet5_accuracy_uci_untranslated"], abs=2e-3
    )
    if "lenet5_fid_uci_translated_to_mnist" not in record.metrics:
        return
    # The Frechet distances on LeNet-5 features against the recipe's 2,000 MNIST test digits.
    if not kzoo.datasets.has_data("mnist"):
        pytest.skip("the Frechet distances need MNIST test digits (KZOO_DATA_DIR)")
    test_digits = kzoo.data.load_mnist("test")[0][:2000, ..., None] / 255.0
    for key, digits in (("translated_to_mnist", translated), ("untranslated", held_out)):
        distance = generative.lenet5_frechet_distance(generative.to_unit_range(digits), test_digits, classifier=lenet)
        assert distance == pytest.approx(record.metrics[f"lenet5_fid_uci_{key}"], rel=1e-3, abs=1e-3)


@requires_data("mnist")
def test_shipped_cyclegan_mnist_to_uci_reaches_its_recorded_lenet5_accuracy(monkeypatch):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    translator = kzoo.get("cyclegan_generator_resnet6", pretrained="mnist_to_uci")
    record = _record(translator)
    lenet = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)
    images, labels = kzoo.data.load_mnist("test")  # the recipe's: the first 2,000 test digits
    digits = record.preprocessing(images[:2000, ..., None].astype("float32"))
    translated = translator.predict(digits, batch_size=500, verbose=0)
    reads = lenet.predict(generative.to_unit_range(translated), batch_size=1000, verbose=0).argmax(axis=-1)
    accuracy = float((reads == labels[:2000]).mean())
    assert accuracy == pytest.approx(record.metrics["lenet5_accuracy_mnist_test_translated_to_uci"], abs=2e-3)
    untranslated = lenet.predict(generative.to_unit_range(digits), batch_size=1000, verbose=0).argmax(axis=-1)
    assert float((untranslated == labels[:2000]).mean()) == pytest.approx(
        record.metrics["lenet5_accuracy_mnist_test_untranslated"], abs=2e-3
    )
    # The judge trained on UCI digits only (lenet5.uci_digits, from the same recipe) reads the translations.
    judge = kzoo.get("lenet5", pretrained="uci_digits", include_preprocessing=False)
    judge_record = _record(judge)
    uci_images, uci_labels = kzoo.data.load_uci_digits(size=28)
    held_out_reads = judge.predict(uci_images[-797:, ..., None] / 255.0, verbose=0).argmax(axis=-1)
    assert float((held_out_reads == uci_labels[-797:]).mean()) == pytest.approx(
        judge_record.metrics["test_accuracy"], abs=2e-3
    )
    for key, images_tanh in (("translated_to_uci", translated), ("untranslated", digits)):
        reads = judge.predict(generative.to_unit_range(images_tanh), batch_size=1000, verbose=0).argmax(axis=-1)
        assert float((reads == labels[:2000]).mean()) == pytest.approx(
            record.metrics[f"uci_lenet5_accuracy_mnist_test_{key}"], abs=2e-3
        )


@pytest.mark.parametrize("family", ["dcgan", "cgan"])
def test_shipped_gan_reaches_its_recorded_lenet5_figures(family, monkeypatch):
    if not kzoo.list_models(f"{family}_generator", pretrained=True):
        pytest.skip(f"{family}_generator has no shipped weights")
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    generator = kzoo.get(f"{family}_generator", pretrained=True)
    record = _record(generator)
    # The recipe's scoring: 10,000 digits from N(0, I) noise (seed 1), read by the pretrained LeNet-5;
    # a conditional generator is asked for each digit in turn (0, 1, ..., 9, 0, ...).
    noise = np.random.default_rng(1).standard_normal((10000, generator.inputs[0].shape[-1])).astype("float32")
    asked = np.arange(10000, dtype="int32") % 10
    inputs = [noise, asked] if family == "cgan" else noise
    images = generative.to_unit_range(generator.predict(inputs, batch_size=1000, verbose=0))
    lenet = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)  # reads [0, 1], as the recipe scores
    logits = lenet.predict(images, batch_size=1000, verbose=0)
    score = generative.classifier_score(_numpy(keras.ops.softmax(logits)))
    assert score == pytest.approx(record.metrics["lenet5_score"], abs=0.01)
    if family == "cgan":
        agreement = float((logits.argmax(axis=-1) == asked).mean())
        assert agreement == pytest.approx(record.metrics["lenet5_agrees_with_condition"], abs=2e-3)
    if kzoo.data.has_data("mnist"):  # the score's ceiling: real MNIST test digits, read the same way
        real, _ = kzoo.data.load_mnist("test")
        real_logits = lenet.predict(real[..., None].astype("float32") / 255.0, batch_size=1000, verbose=0)
        real_score = generative.classifier_score(_numpy(keras.ops.softmax(real_logits)))
        assert real_score == pytest.approx(record.metrics["lenet5_score_real_test_digits"], abs=0.01)
        # The Fréchet distance on LeNet-5 features to the test digits, and its real-digit floor.
        test_unit = real[..., None].astype("float32") / 255.0
        fid = generative.lenet5_frechet_distance(images, test_unit, classifier=lenet)
        assert fid == pytest.approx(record.metrics["lenet5_fid_mnist_test"], abs=0.01)
        train, _ = kzoo.data.load_mnist("train")
        floor = generative.lenet5_frechet_distance(train[:10000] / 255.0, test_unit, classifier=lenet)
        assert floor == pytest.approx(record.metrics["lenet5_fid_real_train_digits"], abs=0.01)
        assert floor < fid  # real digits stay closer to the test set than generated ones
