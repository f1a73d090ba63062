"""
Title: Autoencoders on MNIST: convolutional, denoising and variational (recipe of kzoo's `*.mnist` weights)
Description: Train an autoencoder on MNIST, measure its test reconstruction loss and draw its figures.
Model: autoencoder_conv, autoencoder_denoising or vae (pick with --model)
Data: MNIST from the shared data directory (`KZOO_DATA_DIR`, default `../shared/data`).
Runtime: about 5 minutes per model on 2 CPU cores with the default flags; `--quick` takes under a minute.
Tags: autoencoder, vae, denoising, representation-learning, mnist, recipe
Figure: autoencoder_conv.png
Shared-data: mnist

## What this shows

- `autoencoder_conv`: stride-2 convolutions squeeze a digit into 32 numbers and transposed
  convolutions draw it again. Figure: test digits above their reconstructions.
- `autoencoder_denoising`: the same network, trained on digits it corrupts itself with
  Gaussian noise (only while training). Figure: noisy test digits, the network's output,
  the clean originals.
- `vae`: a variational autoencoder with a 2-D latent space, trained on the negative ELBO
  (binary cross-entropy + KL). Figures: the decoded latent grid (Kingma & Welling's figure 4)
  and the test digits' latent means coloured by class.

The Keras blog's autoencoders ("Building Autoencoders in Keras", Chollet 2016) reach a
binary cross-entropy of about 0.09-0.10 on the MNIST test set; the recipe reports the same
figure (mean per-pixel binary cross-entropy on the 10,000 test digits, pixels in [0, 1]).

    python examples/train_autoencoders_mnist.py --model autoencoder_conv
    python examples/train_autoencoders_mnist.py --model vae --publish      # also ship the weights
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
from kzoo.models.autoencoders import kl_divergence

"""
## Settings
"""

MODELS = {
    # model: (epochs, builder arguments, minimum test reconstruction loss to publish)
    "autoencoder_conv": (6, {"latent_dim": 32, "filters": (32, 64)}, 0.10),
    "autoencoder_denoising": (6, {"latent_dim": 32, "filters": (32, 64), "noise_stddev": 0.5}, 0.11),
    "vae": (6, {"latent_dim": 2, "filters": (32, 64), "hidden_units": (16,), "beta": 1.0}, 0.22),
}
parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--model", choices=sorted(MODELS), default="autoencoder_conv")
parser.add_argument("--epochs", type=int, default=None, help="default: per model (see MODELS)")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--learning-rate", type=float, default=2e-3)
parser.add_argument("--validation-size", type=int, default=5000)
parser.add_argument("--seed", type=int, default=2016)
parser.add_argument("--output-dir", default=None, help="default: runs/<model>_mnist")
parser.add_argument("--quick", action="store_true", help="1 epoch on 6,000 images; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entry to zoo_weights/")
args = parser.parse_args()
default_epochs, builder_kwargs, publish_threshold = MODELS[args.model]
args.epochs = args.epochs or default_epochs
if args.quick:
    args.epochs, args.publish = 1, False

keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir or f"runs/{args.model}_mnist")
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data

Pixels scaled to [0, 1]. The last 5,000 training digits are held out for validation; the
10,000 test digits are used once, at the end.
"""

train_images, _ = kzoo.data.load_mnist("train")
test_images, test_labels = kzoo.data.load_mnist("test")
if args.quick:
    train_images, args.validation_size = train_images[:6000], 1000
preprocessing = kzoo_weights.Preprocessing(scale=1.0 / 255.0, channel_order="grayscale")
x_train = preprocessing(train_images[: -args.validation_size, ..., None].astype("float32"))
x_val = preprocessing(train_images[-args.validation_size :, ..., None].astype("float32"))
x_test = preprocessing(test_images[..., None].astype("float32"))

"""
## Model and training

`fit(x, x)`: the target is the input itself. The denoising autoencoder corrupts its input
inside the model while training; the VAE's sampling layer adds the KL term to the loss.
"""

model = kzoo.get(args.model, **builder_kwargs)
steps = args.epochs * (len(x_train) // args.batch_size)
schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps=steps, alpha=0.05)
model.compile(optimizer=keras.optimizers.Adam(schedule), loss="binary_crossentropy", jit_compile=not args.quick)
started = time.perf_counter()
history = model.fit(
    x_train,
    x_train,
    validation_data=(x_val, x_val),
    epochs=args.epochs,
    batch_size=args.batch_size,
    shuffle=True,
    verbose=2,
)
train_seconds = time.perf_counter() - started

"""
## Evaluation on the 10,000 test digits

The reconstruction loss is the mean per-pixel binary cross-entropy between a test digit and
the model's reconstruction of it (for the VAE, decoded from the mean of q(z|x)). For the
denoising autoencoder the input is a noisy digit (the training noise, fixed seed) and the
target the clean one; its clean-input figure is reported too.
"""


def reconstruction_loss(inputs: np.ndarray, targets: np.ndarray) -> float:
    outputs = model.predict(inputs, batch_size=1000, verbose=0)
    return float(keras.ops.mean(keras.losses.binary_crossentropy(targets, outputs)))


metrics = {"test_reconstruction_bce": reconstruction_loss(x_test, x_test)}
noise_stddev = builder_kwargs.get("noise_stddev")
if noise_stddev:
    noisy_test = np.clip(x_test + np.random.default_rng(0).normal(0, noise_stddev, x_test.shape), 0, 1)
    noisy_test = noisy_test.astype("float32")
    metrics["test_denoising_bce"] = reconstruction_loss(noisy_test, x_test)
    metrics["test_noisy_input_bce"] = float(
        keras.ops.mean(keras.losses.binary_crossentropy(x_test, np.clip(noisy_test, 1e-7, 1 - 1e-7)))
    )
if args.model == "vae":
    z_mean, z_log_var = model.get_layer("encoder").predict(x_test, batch_size=1000, verbose=0)
    kl = float(np.mean(keras.ops.convert_to_numpy(kl_divergence(z_mean, z_log_var))))
    # The negative ELBO per image, in nats: summed pixel cross-entropy + KL.
    metrics["test_kl"] = kl
    metrics["test_negative_elbo_nats"] = metrics["test_reconstruction_bce"] * 784 + builder_kwargs["beta"] * kl
metrics = {key: round(value, 4) for key, value in metrics.items()}
print(f"{args.model}: {metrics} ({train_seconds:.0f} s of training)")
write_metrics(output_dir, {f"{args.model}.mnist": metrics})  # what `kzoo reproduce` reads

"""
## Figures
"""

figure_path = output_dir / f"{args.model}.png"
if args.model == "vae":
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 6))
    left.imshow(
        generative.image_grid(generative.latent_grid(model, size=15), value_range="unit", padding=0)[..., 0],
        cmap="gray",
    )
    left.set_title("Decoded 15x15 grid over the 2-D latent space")
    left.axis("off")
    codes = generative.project_2d(z_mean)
    scatter = right.scatter(codes[:, 0], codes[:, 1], c=test_labels, cmap="tab10", s=2)
    right.legend(*scatter.legend_elements(), title="digit", loc="best", fontsize=8)
    right.set_title("Latent means of the 10,000 test digits")
else:
    rows = [x_test[:10], model.predict(x_test[:10], verbose=0)]
    titles = ["test digits", "reconstructions"]
    if noise_stddev:
        rows = [noisy_test[:10], model.predict(noisy_test[:10], verbose=0), x_test[:10]]
        titles = ["noisy input", "denoised", "clean original"]
    figure, axes = plt.subplots(len(rows), 1, figsize=(10, 1.3 * len(rows)))
    for axis, row, title in zip(axes, rows, titles):
        axis.imshow(generative.image_grid(row, columns=10, value_range="unit")[..., 0], cmap="gray")
        axis.set_title(title, fontsize=9)
        axis.axis("off")
title = f"{args.model} on MNIST: test reconstruction BCE {metrics['test_reconstruction_bce']:.4f}"
if noise_stddev:
    title += f", noisy -> clean BCE {metrics['test_denoising_bce']:.4f}"
figure.suptitle(title)
figure.tight_layout()
figure.savefig(figure_path, dpi=100)
print(f"wrote {figure_path}")

# Save from an uncompiled copy so the file holds the model's weights only, not Adam's state.
weights_path = output_dir / f"{args.model}_mnist.weights.h5"
inference_model = kzoo.get(args.model, **builder_kwargs)
inference_model.set_weights(model.get_weights())
inference_model.save_weights(weights_path)
summary = {"metrics": metrics, "train_seconds": round(train_seconds, 1), "history": history.history, "args": vars(args)}
(output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))

"""
## Publishing (maintainers)
"""

if args.publish:
    if metrics["test_reconstruction_bce"] > publish_threshold:
        raise SystemExit(f"not publishing: test BCE {metrics['test_reconstruction_bce']} > {publish_threshold}")
    target = kzoo_weights.publish_file(weights_path)
    hashes = kzoo_weights.file_hashes(target)
    record = kzoo_weights.WeightsRecord(
        model=args.model,
        tag="mnist",
        file=target.name,
        sha256=hashes["sha256"],
        size=target.stat().st_size,
        dataset="MNIST training set (first 55,000 images; last 5,000 held out for validation)",
        metrics=metrics,
        eval_split="MNIST test set (10,000 images)" + (", noise seed 0" if noise_stddev else ""),
        input_shape=(28, 28, 1),
        preprocessing=preprocessing,
        license="CC BY-SA 3.0 (weights trained by kzoo on MNIST, which is CC BY-SA 3.0)",
        recipe="examples/train_autoencoders_mnist.py " + " ".join(sys.argv[1:]),
        default=True,
        builder_kwargs={
            key: list(value) if isinstance(value, tuple) else value for key, value in builder_kwargs.items()
        },
        notes=f"trained in {train_seconds:.0f} s on 2 CPU cores; figure: {figure_path.name} from the recipe",
    )
    kzoo_weights.write_manifest_entry(record)
    print(f"published {target} (sha256 {hashes['sha256']})")
