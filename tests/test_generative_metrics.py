"""kzoo.generative's sample-quality and likelihood measures against independent computations.

- ``frechet_distance`` against the 1-D closed form and an eigendecomposition written here
  (the function itself uses SciPy's matrix square root);
- ``importance_weighted_log_likelihood`` against log p(x) and the ELBO integrated by
  quadrature over the 1-D latent of a tiny VAE;
- the LeNet-5 features and the FID of real digits, when MNIST is present.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kzoo
from kzoo import generative
from kzoo.errors import InvalidArgumentError

from conftest import requires_data


def _gaussian_fid_by_eigendecomposition(a: np.ndarray, b: np.ndarray) -> float:
    """tr((S_a S_b)^(1/2)) as the sum of square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2)."""
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = vectors @ np.diag(np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sum(np.sqrt(np.clip(middle, 0, None)))
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def test_frechet_distance_matches_the_closed_form_and_an_eigendecomposition():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 2.0, size=(4000, 1))
    b = rng.normal(-0.5, 0.5, size=(3000, 1))
    closed_form = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2  # 1-D: (m-m')^2 + (s-s')^2
    assert generative.frechet_distance(a, b) == pytest.approx(closed_form, rel=1e-9)
    mixing = rng.standard_normal((6, 6))
    c = rng.standard_normal((500, 6)) @ mixing
    d = rng.standard_normal((700, 6)) @ mixing.T + 0.3
    assert generative.frechet_distance(c, d) == pytest.approx(_gaussian_fid_by_eigendecomposition(c, d), rel=1e-7)
    assert generative.frechet_distance(c, d) == pytest.approx(generative.frechet_distance(d, c), rel=1e-7)
    assert generative.frechet_distance(c, c) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((1, 3)), np.zeros((5, 3)), "N >= 2"),
        (np.zeros((5, 3)), np.zeros((5, 4)), "3 features"),
        (np.zeros(5), np.zeros((5, 1)), r"\(N, D\) array"),
    ],
)
def test_frechet_distance_rejects_mismatched_features(a, b, match):
    with pytest.raises(InvalidArgumentError, match=match):
        generative.frechet_distance(a, b)


def _tiny_vae(seed: int = 0) -> keras.Model:
    """Four Bernoulli pixels from a 1-D latent: small enough to integrate log p(x) exactly."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh")(x)
    # q(z|x) as wide as the prior (log-variance 0, kernel zero): importance weights then have
    # light tails, so 200,000 samples pin log p(x) down; a narrow q would need far more.
    log_var = keras.layers.Dense(1, kernel_initializer="zeros")
    encoder = keras.Model(x, [keras.layers.Dense(1)(hidden), log_var(hidden)], name="encoder")
    z = keras.Input((1,))
    decoder = keras.Model(z, keras.layers.Dense(4, activation="sigmoid")(z), name="decoder")
    image = keras.Input((4,))
    z_mean, _ = encoder(image)
    return keras.Model(image, decoder(z_mean))


def _integrated(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p(x) and the ELBO of each row of x, by the trapezoid rule over z in [-12, 12]."""
    encoder, decoder = generative.encoder_decoder(model)
    kernel, bias = (np.asarray(w, "float64") for w in decoder.layers[-1].get_weights())
    grid = np.linspace(-12, 12, 48001)
    probabilities = 1 / (1 + np.exp(-(grid[:, None] * kernel[0] + bias)))  # (grid, 4)
    log_px_given_z = x @ np.log(probabilities).T + (1 - x) @ np.log1p(-probabilities).T  # (rows, grid)
    log_prior = -0.5 * (grid**2 + np.log(2 * np.pi))
    log_p = np.log(np.trapezoid(np.exp(log_px_given_z + log_prior), grid, axis=1))
    z_mean, z_log_var = (np.asarray(t, "float64")[:, 0] for t in encoder.predict(x.astype("float32"), verbose=0))
    variance = np.exp(z_log_var)
    q = np.exp(-0.5 * (grid - z_mean[:, None]) ** 2 / variance[:, None]) / np.sqrt(2 * np.pi * variance[:, None])
    kl = 0.5 * (variance + z_mean**2 - 1 - z_log_var)
    elbo = np.trapezoid(q * log_px_given_z, grid, axis=1) - kl
    return log_p, elbo


def test_importance_weighted_log_likelihood_approaches_the_integrated_log_likelihood():
    model = _tiny_vae()
    x = np.array([[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0], [0, 1, 1, 0]], "float32")
    exact_log_p, exact_elbo = _integrated(model, x.astype("float64"))
    iwae, elbo = generative.importance_weighted_log_likelihood(model, x, samples=200_000, batch_size=4, seed=1)
    assert iwae.shape == elbo.shape == (4,)
    np.testing.assert_allclose(iwae, exact_log_p, atol=1e-2)  # the bound is tight at many samples
    np.testing.assert_allclose(elbo, exact_elbo, atol=1e-2)  # Monte Carlo mean of the same log weights
    assert np.all(exact_elbo < exact_log_p)  # sanity of the reference: the ELBO is a lower bound
    one, one_elbo = generative.importance_weighted_log_likelihood(model, x, samples=1, seed=1)
    np.testing.assert_allclose(one, one_elbo, rtol=1e-12)  # one sample: the bound is that sample's ELBO
    few, _ = generative.importance_weighted_log_likelihood(model, np.repeat(x, 200, 0), samples=5, seed=2)
    # In expectation the bound tightens with the samples: 5 samples sit between the ELBO and log p(x).
    means = few.reshape(4, 200).mean(axis=1)
    assert np.all(means > exact_elbo) and np.all(means < exact_log_p + 1e-3)


def test_importance_weighted_log_likelihood_rejects_bad_input():
    model = _tiny_vae()
    with pytest.raises(InvalidArgumentError, match="pixels in"):
        generative.importance_weighted_log_likelihood(model, np.full((2, 4), 255.0, "float32"))
    with pytest.raises(InvalidArgumentError, match="positive integer"):
        generative.importance_weighted_log_likelihood(model, np.zeros((2, 4), "float32"), samples=0)
    with pytest.raises(InvalidArgumentError, match="encoder"):
        generative.importance_weighted_log_likelihood(kzoo.get("lenet5"), np.zeros((2, 28, 28, 1), "float32"))


def test_lenet5_features_reject_pixels_outside_the_unit_range():
    lenet = kzoo.get("lenet5", include_preprocessing=False)
    with pytest.raises(InvalidArgumentError, match="to_unit_range"):
        generative.lenet5_features(np.full((2, 28, 28), -1.0), classifier=lenet)
    with pytest.raises(InvalidArgumentError, match=r"\(N, 28, 28\)"):
        generative.lenet5_features(np.zeros((2, 32, 32)), classifier=lenet)
    assert generative.lenet5_features(np.zeros((3, 28, 28)), classifier=lenet).shape == (3, 84)


@requires_data("mnist")
def test_lenet5_frechet_distance_of_real_digits_is_small_and_of_noise_is_large(monkeypatch):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    train, _ = kzoo.data.load_mnist("train")
    test, _ = kzoo.data.load_mnist("test")
    real_a, real_b = train[:2000] / 255.0, test[:2000] / 255.0
    noise = np.random.default_rng(0).uniform(0, 1, size=(2000, 28, 28))
    floor = generative.lenet5_frechet_distance(real_a, real_b)
    assert generative.lenet5_frechet_distance(real_a, real_a) == pytest.approx(0.0, abs=1e-6)
    assert floor < generative.lenet5_frechet_distance(real_a, noise) / 20
