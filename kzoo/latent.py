"""Latent-space tools for the autoencoders: encode, project, interpolate, sample, walk a grid.

Every kzoo autoencoder (``autoencoder_*``, ``vae``) has ``encoder`` and ``decoder`` sub-models
that share its weights; these functions use them. No TensorFlow needed (NumPy and Keras only).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kzoo.errors import InvalidArgumentError, expected_received


def encoder_decoder(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The ``encoder`` and ``decoder`` halves of a kzoo autoencoder (they share its weights)."""
    try:
        return model.get_layer("encoder"), model.get_layer("decoder")
    except (ValueError, AttributeError):
        raise InvalidArgumentError(
            expected_received(
                "model",
                "a kzoo autoencoder with 'encoder' and 'decoder' layers (e.g. kzoo.get('vae'))",
                getattr(model, "name", type(model).__name__),
            )
        ) from None


def encode(model: keras.Model, images: Any, *, batch_size: int = 256) -> np.ndarray:
    """Latent codes of ``images`` (in [0, 1]); for a VAE, the mean of q(z|x)."""
    encoder, _ = encoder_decoder(model)
    codes = encoder.predict(np.asarray(images, dtype="float32"), batch_size=batch_size, verbose=0)
    return np.asarray(codes[0] if isinstance(codes, (list, tuple)) else codes)


def project_2d(codes: Any) -> np.ndarray:
    """Projects codes ``(N, D)`` onto their first two principal components (unchanged when D <= 2)."""
    codes = np.asarray(codes, dtype="float64")
    if codes.ndim != 2 or len(codes) < 2:
        raise InvalidArgumentError(expected_received("project_2d: codes", "an (N, D) array with N >= 2", codes.shape))
    if codes.shape[1] <= 2:
        return codes.astype("float32")
    centred = codes - codes.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return (centred @ components[:2].T).astype("float32")


def interpolate(model: keras.Model, start: Any, end: Any, *, steps: int = 8) -> np.ndarray:
    """Decodes ``steps`` codes on the straight line from the code of ``start`` to that of ``end``.

    ``start`` and ``end`` are single images ``(H, W, C)`` in [0, 1]; returns ``(steps, H, W, C)``.
    """
    if not isinstance(steps, int) or steps < 2:
        raise InvalidArgumentError(expected_received("interpolate: steps", "an int >= 2", steps))
    _, decoder = encoder_decoder(model)
    codes = encode(model, np.stack([np.asarray(start), np.asarray(end)]))
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    return decoder.predict((1.0 - weights) * codes[0] + weights * codes[1], verbose=0)


def sample(model: keras.Model, count: int, *, seed: int | None = 0) -> np.ndarray:
    """Decodes ``count`` codes drawn from N(0, I), the VAE's prior."""
    _, decoder = encoder_decoder(model)
    latent_dim = int(decoder.inputs[0].shape[-1])
    codes = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype("float32")
    return decoder.predict(codes, verbose=0)


def latent_grid(model: keras.Model, *, size: int = 15, quantile: float = 0.95) -> np.ndarray:
    """Decodes a ``size`` x ``size`` grid over a 2-D latent space (Kingma & Welling 2014, fig. 4).

    The grid's coordinates are the Gaussian quantiles from ``1 - quantile`` to ``quantile``
    on each axis, so it covers the prior evenly. Returns ``(size * size, H, W, C)`` images,
    row by row, the first latent dimension across.
    """
    from scipy.stats import norm

    _, decoder = encoder_decoder(model)
    if int(decoder.inputs[0].shape[-1]) != 2:
        raise InvalidArgumentError(
            expected_received("latent_grid: decoder latent size", "2", int(decoder.inputs[0].shape[-1]))
        )
    if not 0.5 < quantile < 1.0:
        raise InvalidArgumentError(expected_received("latent_grid: quantile", "a number in (0.5, 1)", quantile))
    axis = norm.ppf(np.linspace(1.0 - quantile, quantile, size)).astype("float32")
    codes = np.array([[x, y] for y in axis[::-1] for x in axis], dtype="float32")
    return decoder.predict(codes, verbose=0)
