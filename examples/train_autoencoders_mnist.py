"""
Title: Autoencoders on MNIST: convolutional, denoising and variational (recipe of kzoo's `*.mnist` weights)
Description: Train an autoencoder on MNIST, measure its test reconstruction loss and draw its figures.
Model: autoencoder_conv, autoencoder_denoising or vae (pick with --model)
Data: MNIST from the shared data directory (`KZOO_DATA_DIR`, default `../shared/data`).
Runtime: about 3 minutes per model and seed on 2 CPU cores with the default flags; `--quick` takes under a minute.
Tags: autoencoder, vae, denoising, representation-learning, mnist, recipe
Figure: autoencoder_conv.png
Shared-data: mnist

## What this shows

- `autoencoder_conv`: stride-2 convolutions squeeze a digit into 32 numbers and transposed
  convolutions draw it again. Figure: test digits above their reconstructions.
- `autoencoder_denoising`: the same network, trained on digits it corrupts itself with
  Gaussian noise (only while training). Figure: noisy test digits, the network's output,
  the clean originals.
- `vae`: a variational autoencoder (Kingma & Welling's MLP: 784-512-256 to z and back),
  trained on the negative ELBO (binary cross-entropy + KL). With the default 2-D latent
  space the figures are the decoded latent grid (their figure 4) and the test digits' latent
  means coloured by class; `--latent-dim 16` trains the richer `vae.mnist_latent16`. Its
  likelihood is measured as the papers do: the importance-weighted bound with k = 100
  samples per test digit (Burda et al. 2016) beside the Monte Carlo ELBO, in nats.

  A convolutional VAE (stride-2 convolutions 32-64, a 256-unit layer, 16-D z) was tried
  first: after 20 epochs it stood at 113.7 nats (IWAE, first 1,000 test digits) and took
  26 s an epoch; the MLP reached 94.5 in 40 epochs of 4 s. The MLP ships.

The Keras blog's autoencoders ("Building Autoencoders in Keras", Chollet 2016) reach a
binary cross-entropy of about 0.09-0.10 on the MNIST test set; the recipe reports the same
figure (mean per-pixel binary cross-entropy on the 10,000 test digits, pixels in [0, 1]).

    python examples/train_autoencoders_mnist.py --model autoencoder_conv
    python examples/train_autoencoders_mnist.py --model vae --seeds 0 1 2 --publish   # ship vae.mnist
    python examples/train_autoencoders_mnist.py --model vae --latent-dim 16 --seeds 0 1 2 --publish
    python examples/train_autoencoders_mnist.py --model vae --quick --output-dir /tmp/vae
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import kzoo
from kzoo import generative
from kzoo import weights as kzoo_weights
from kzoo.examples import write_metrics
from kzoo.finetune import resolve_jit_compile
from kzoo.models.autoencoders import kl_divergence

"""
## Settings
"""

MODELS = {
    # model: (epochs, builder arguments, maximum test reconstruction loss to publish)
    "autoencoder_conv": (6, {"latent_dim": 32, "filters": (32, 64)}, 0.10),
    "autoencoder_denoising": (6, {"latent_dim": 32, "filters": (32, 64), "noise_stddev": 0.5}, 0.11),
    "vae": (40, {"latent_dim": 2, "filters": (), "hidden_units": (512, 256), "beta": 1.0}, 0.22),
}
parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--model", choices=sorted(MODELS), default="autoencoder_conv")
parser.add_argument("--latent-dim", type=int, default=None, help="vae: size of z (default 2; tag mnist_latent<N>)")
parser.add_argument("--epochs", type=int, default=None, help="default: per model (see MODELS)")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--learning-rate", type=float, default=2e-3)
parser.add_argument("--validation-size", type=int, default=5000)
parser.add_argument("--seeds", type=int, nargs="+", default=[2016], help="one run each; the median run ships")
parser.add_argument("--iwae-samples", type=int, default=100, help="vae: importance samples per test digit")
parser.add_argument("--output-dir", default=None, help="default: runs/<model>_<tag>")
parser.add_argument("--quick", action="store_true", help="1 epoch on 6,000 images, one seed; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entry to zoo_weights/")
args = parser.parse_args()
default_epochs, builder_kwargs, publish_threshold = MODELS[args.model]
if args.latent_dim is not None:
    if args.model != "vae":
        parser.error("--latent-dim is for --model vae (the autoencoders' code size is fixed by their recipe)")
    builder_kwargs = {**builder_kwargs, "latent_dim": args.latent_dim}
variational = args.model == "vae"
tag = "mnist" if not variational or builder_kwargs["latent_dim"] == 2 else f"mnist_latent{builder_kwargs['latent_dim']}"
args.epochs = args.epochs or default_epochs
if args.quick:
    args.epochs, args.publish, args.seeds = 1, False, args.seeds[:1]

output_dir = Path(args.output_dir or f"runs/{args.model}_{tag}")
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data

Pixels scaled to [0, 1]. The last 5,000 training digits are held out for validation; the
10,000 test digits are used once per run, at the end (nothing is chosen on them: the
median run is only which of the finished runs ships).
"""

train_images, _ = kzoo.data.load_mnist("train")
test_images, test_labels = kzoo.data.load_mnist("test")
if args.quick:
    train_images, args.validation_size = train_images[:6000], 1000
preprocessing = kzoo_weights.Preprocessing(scale=1.0 / 255.0, channel_order="grayscale")
x_train = preprocessing(train_images[: -args.validation_size, ..., None].astype("float32"))
x_val = preprocessing(train_images[-args.validation_size :, ..., None].astype("float32"))
x_test = preprocessing(test_images[..., None].astype("float32"))
# The likelihood bound costs `iwae_samples` decodes per digit: a smoke run scores 500 digits.
x_likelihood = x_test[:500] if args.quick else x_test

"""
## Model, training and evaluation, once per seed

`fit(x, x)`: the target is the input itself. The denoising autoencoder corrupts its input
inside the model while training; the VAE's sampling layer adds the KL term to the loss.
XLA is kzoo's choice for the device (`resolve_jit_compile`, as `kzoo.finetune` picks: off for the
convolutional autoencoders on a CPU, where TensorFlow's own kernels are faster).

The reconstruction loss is the mean per-pixel binary cross-entropy between a test digit and
the model's reconstruction of it (for the VAE, decoded from the mean of q(z|x)). For the
denoising autoencoder the input is a noisy digit (the training noise, fixed seed) and the
target the clean one; its clean-input figure is reported too. For the VAE,
`test_negative_elbo_nats` is that reconstruction loss summed over the 784 pixels plus the
KL term (the figure of the first shipped VAE); `test_negative_iwae_nats` and
`test_negative_elbo_mc_nats` are the sampled estimates of `generative.importance_weighted_log_likelihood`.
"""


def reconstruction_loss(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> float:
    outputs = model.predict(inputs, batch_size=1000, verbose=0)
    return float(keras.ops.mean(keras.losses.binary_crossentropy(targets, outputs)))


def train_and_measure(seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    model = kzoo.get(args.model, **builder_kwargs)
    steps = args.epochs * (len(x_train) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps=steps, alpha=0.05)
    jit = resolve_jit_compile(model, None if not args.quick else False)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy", jit_compile=jit)
    started = time.perf_counter()
    history = model.fit(
        x_train, x_train, validation_data=(x_val, x_val), epochs=args.epochs, batch_size=args.batch_size, verbose=2
    )
    train_seconds = time.perf_counter() - started
    metrics = {"test_reconstruction_bce": reconstruction_loss(model, x_test, x_test)}
    noise_stddev = builder_kwargs.get("noise_stddev")
    if noise_stddev:
        noisy = np.clip(x_test + np.random.default_rng(0).normal(0, noise_stddev, x_test.shape), 0, 1)
        noisy = noisy.astype("float32")
        metrics["test_denoising_bce"] = reconstruction_loss(model, noisy, x_test)
        clipped = np.clip(noisy, 1e-7, 1 - 1e-7)
        metrics["test_noisy_input_bce"] = float(keras.ops.mean(keras.losses.binary_crossentropy(x_test, clipped)))
    if variational:
        z_mean, z_log_var = model.get_layer("encoder").predict(x_test, batch_size=1000, verbose=0)
        metrics["test_kl"] = float(np.mean(keras.ops.convert_to_numpy(kl_divergence(z_mean, z_log_var))))
        metrics["test_negative_elbo_nats"] = (
            metrics["test_reconstruction_bce"] * 784 + builder_kwargs["beta"] * (metrics["test_kl"])
        )
        iwae, elbo = generative.importance_weighted_log_likelihood(model, x_likelihood, samples=args.iwae_samples)
        metrics["test_negative_iwae_nats"] = float(-iwae.mean())
        metrics["test_negative_iwae_per_digit_sd"] = float(iwae.std())  # what a test's subset check needs
        metrics["test_negative_elbo_mc_nats"] = float(-elbo.mean())
    metrics = {key: round(value, 4) for key, value in metrics.items()}
    print(f"{args.model} seed {seed}: {metrics} ({train_seconds:.0f} s of training)")
    return {"seed": seed, "model": model, "metrics": metrics, "train_seconds": train_seconds, "history": history}


runs = [train_and_measure(seed) for seed in args.seeds]
headline = "test_negative_iwae_nats" if variational else "test_reconstruction_bce"
values = np.array([run["metrics"][headline] for run in runs])
median = runs[int(np.argsort(values)[len(values) // 2])]
model, metrics, train_seconds = median["model"], dict(median["metrics"]), median["train_seconds"]
if len(runs) > 1:
    metrics.update(
        {f"{headline}_mean": round(float(values.mean()), 4), f"{headline}_sd": round(float(values.std(ddof=1)), 4)}
    )
    metrics["seeds"] = len(runs)
print(f"{headline} over seeds {args.seeds}: {values.mean():.4f} ± {values.std(ddof=1) if len(runs) > 1 else 0:.4f}")
write_metrics(output_dir, {f"{args.model}.{tag}": metrics})  # what `kzoo reproduce` reads
noise_stddev = builder_kwargs.get("noise_stddev")

"""
## Figures (the shipped run's)
"""

figure_path = output_dir / f"{args.model}.png"
if variational:
    z_mean = model.get_layer("encoder").predict(x_test, batch_size=1000, verbose=0)[0]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 6))
    if builder_kwargs["latent_dim"] == 2:
        grid = generative.latent_grid(model, size=15)
        left.set_title("Decoded 15x15 grid over the 2-D latent space")
    else:  # a grid needs two dimensions: decode draws from the prior instead
        codes = np.random.default_rng(0).standard_normal((225, builder_kwargs["latent_dim"])).astype("float32")
        grid = model.get_layer("decoder").predict(codes, verbose=0)
        left.set_title("225 digits decoded from z ~ N(0, I)")
    left.imshow(generative.image_grid(grid, value_range="unit", padding=0)[..., 0], cmap="gray")
    left.axis("off")
    codes = generative.project_2d(z_mean)
    scatter = right.scatter(codes[:, 0], codes[:, 1], c=test_labels, cmap="tab10", s=2)
    right.legend(*scatter.legend_elements(), title="digit", loc="best", fontsize=8)
    right.set_title(
        "Latent means of the 10,000 test digits"
        + ("" if builder_kwargs["latent_dim"] == 2 else " (first 2 principal axes)")
    )
else:
    rows = [x_test[:10], model.predict(x_test[:10], verbose=0)]
    titles = ["test digits", "reconstructions"]
    if noise_stddev:
        noisy = np.clip(x_test[:10] + np.random.default_rng(0).normal(0, noise_stddev, x_test.shape)[:10], 0, 1)
        rows = [noisy.astype("float32"), model.predict(noisy.astype("float32"), verbose=0), x_test[:10]]
        titles = ["noisy input", "denoised", "clean original"]
    figure, axes = plt.subplots(len(rows), 1, figsize=(10, 1.3 * len(rows)))
    for axis, row, title in zip(axes, rows, titles):
        axis.imshow(generative.image_grid(row, columns=10, value_range="unit")[..., 0], cmap="gray")
        axis.set_title(title, fontsize=9)
        axis.axis("off")
title = f"{args.model} on MNIST: test reconstruction BCE {metrics['test_reconstruction_bce']:.4f}"
if noise_stddev:
    title += f", noisy -> clean BCE {metrics['test_denoising_bce']:.4f}"
if variational:
    title += f", -IWAE (k={args.iwae_samples}) {metrics['test_negative_iwae_nats']:.1f} nats"
figure.suptitle(title)
figure.tight_layout()
figure.savefig(figure_path, dpi=100)
print(f"wrote {figure_path}")

# Save from an uncompiled copy so the file holds the model's weights only, not Adam's state.
weights_path = output_dir / f"{args.model}_{tag}.weights.h5"
inference_model = kzoo.get(args.model, **builder_kwargs)
inference_model.set_weights(model.get_weights())
inference_model.save_weights(weights_path)
summary = {
    "metrics": metrics,
    "runs": [{"seed": r["seed"], "metrics": r["metrics"], "train_seconds": round(r["train_seconds"], 1)} for r in runs],
    "history": median["history"].history,
    "args": vars(args),
}
(output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

"""
## Publishing (maintainers)
"""

if args.publish:
    if metrics["test_reconstruction_bce"] > publish_threshold:
        raise SystemExit(f"not publishing: test BCE {metrics['test_reconstruction_bce']} > {publish_threshold}")
    target = kzoo_weights.publish_file(weights_path)
    hashes = kzoo_weights.file_hashes(target)
    reproduce, floor = {}, 0.5 if variational else 0.0005
    if len(runs) > 1:
        reproduce = {
            "metric": headline,
            "tolerance": round(max(3 * metrics[f"{headline}_sd"], floor), 4),
            "why": f"3 x the standard deviation over the recipe's {len(runs)} seeds (manifest: {headline}_sd), "
            f"at least {floor}",
        }
    seeds_note = f"the median of seeds {args.seeds} by {headline} (seed {median['seed']} ships); " if reproduce else ""
    record = kzoo_weights.WeightsRecord(
        model=args.model,
        tag=tag,
        file=target.name,
        sha256=hashes["sha256"],
        size=target.stat().st_size,
        dataset="MNIST training set (first 55,000 images; last 5,000 held out for validation)",
        metrics=metrics,
        eval_split="MNIST test set (10,000 images)"
        + (", noise seed 0" if noise_stddev else "")
        + (f"; likelihood bounds with k = {args.iwae_samples} samples per digit, seed 0" if variational else ""),
        input_shape=(28, 28, 1),
        preprocessing=preprocessing,
        license="CC BY-SA 3.0 (weights trained by kzoo on MNIST, which is CC BY-SA 3.0)",
        recipe="examples/train_autoencoders_mnist.py " + " ".join(sys.argv[1:]),
        default=tag == "mnist",
        builder_kwargs={
            key: list(value) if isinstance(value, tuple) else value for key, value in builder_kwargs.items()
        },
        notes=f"{seeds_note}trained in {train_seconds:.0f} s on 2 CPU cores; figure: {figure_path.name} (recipe)",
        reproduce=reproduce,
    )
    kzoo_weights.write_manifest_entry(record)
    print(f"published {target} (sha256 {hashes['sha256']})")
