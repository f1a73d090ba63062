"""
Title: DCGAN on MNIST (recipe of kzoo's `dcgan_generator.mnist` and `dcgan_discriminator.mnist` weights)
Description: Train a DCGAN (or, with --conditional, a conditional GAN) to draw handwritten digits.
Model: dcgan_generator + dcgan_discriminator (cgan_generator + cgan_discriminator with --conditional)
Data: MNIST training images from the shared data directory (`KZOO_DATA_DIR`, default `../shared/data`).
Runtime: about 5 minutes on 2 idle CPU cores (the shipped weights: `--epochs 8`, 16 minutes); `--quick` under a minute.
Tags: gan, dcgan, conditional gan, image-generation, mnist, recipe
Figure: dcgan_samples_over_training.png
Shared-data: mnist

## What this shows

`kzoo.generative.GAN` is a `keras.Model` with its own `train_step`: each batch first
updates the discriminator (real digits labelled 0.9, one-sided label smoothing; generated
digits labelled 0), then the generator with the non-saturating loss. Because it is a
Keras model, `fit` and its callbacks just work: `GeneratedImages` draws the same 64
noise vectors after every epoch into TensorBoard (`<output-dir>/logs`), and the recipe
saves those grids side by side as "samples over training".

How good are the samples? A GAN has no test loss, so the recipe scores 10,000 generated
digits with kzoo's pretrained LeNet-5, as the Inception score does with an ImageNet
classifier (Salimans et al. 2016): `exp(E_x KL(p(y|x) || p(y)))` is 10 for confidently
recognised digits spread evenly over the 10 classes and 1 for blobs or a single class.
The same score of the real MNIST test digits is the reference.

    python examples/train_dcgan_mnist.py                      # train, score, figures in runs/dcgan_mnist
    python examples/train_dcgan_mnist.py --epochs 8 --publish # ... and ship the weights
    python examples/train_dcgan_mnist.py --conditional        # a conditional GAN: choose the digit
    python examples/train_dcgan_mnist.py --conditional --epochs 12 --publish  # ship cgan_*.mnist
    python examples/train_dcgan_mnist.py --quick --output-dir /tmp/dcgan
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
import tensorflow as tf

import kzoo
from kzoo import generative
from kzoo import weights as kzoo_weights
from kzoo.examples import write_metrics
from kzoo.finetune import resolve_jit_compile

"""
## Settings
"""

parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--latent-dim", type=int, default=64)
parser.add_argument("--base-filters", type=int, default=16, help="generator width")
parser.add_argument("--discriminator-filters", type=int, default=64, help="discriminator width")
parser.add_argument("--learning-rate", type=float, default=2e-4)
parser.add_argument("--label-smoothing", type=float, default=0.1)
parser.add_argument("--conditional", action="store_true", help="train cgan_* (class-conditional): choose the digit")
parser.add_argument("--seed", type=int, default=2016)
parser.add_argument("--output-dir", default=None, help="default: runs/dcgan_mnist or runs/cgan_mnist")
parser.add_argument("--quick", action="store_true", help="1 epoch on 3,200 images; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entries to zoo_weights/")
args = parser.parse_args()
if args.quick:
    args.publish, args.epochs = False, 1
family = "cgan" if args.conditional else "dcgan"

keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir or f"runs/{family}_mnist")
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data: the 60,000 training digits, scaled to [-1, 1] (the generator's tanh range)
"""

train_images, train_labels = kzoo.data.load_mnist("train")
if args.quick:
    train_images, train_labels = train_images[:3200], train_labels[:3200]
preprocessing = kzoo_weights.Preprocessing(scale=2.0 / 255.0, offset=-1.0, channel_order="grayscale")
x_train = preprocessing(train_images[..., None].astype("float32"))
pieces = (x_train, train_labels.astype("int32")) if args.conditional else x_train
dataset = (
    tf.data.Dataset.from_tensor_slices(pieces)
    .shuffle(len(x_train), seed=args.seed)
    .batch(args.batch_size, drop_remainder=True)
    .prefetch(tf.data.AUTOTUNE)
)

"""
## Model and training
"""

# A discriminator wider than the generator costs little (it sees 28x28 and 14x14 maps only)
# and keeps the game balanced: in a run with both at width 16 the discriminator sat at chance
# (loss 2 ln 2) and the samples got worse in the second epoch.
widths = {"generator": args.base_filters, "discriminator": args.discriminator_filters}
generator = kzoo.get(
    f"{family}_generator", latent_dim=args.latent_dim, input_shape=(28, 28, 1), base_filters=widths["generator"]
)
discriminator = kzoo.get(f"{family}_discriminator", input_shape=(28, 28, 1), base_filters=widths["discriminator"])
gan = generative.GAN(generator, discriminator, label_smoothing=args.label_smoothing, seed=args.seed)
gan.compile(
    generator_optimizer=keras.optimizers.Adam(args.learning_rate, beta_1=0.5),
    discriminator_optimizer=keras.optimizers.Adam(args.learning_rate, beta_1=0.5),
    # kzoo's choice for the device, as kzoo.finetune makes it (XLA off for convolutions on a CPU:
    # TensorFlow's own kernels are faster there); a smoke run always skips the XLA compile.
    jit_compile=resolve_jit_compile(gan, False if args.quick else None),
)
fixed_noise = gan.noise(64, seed=0)
fixed_inputs = [fixed_noise, np.arange(64, dtype="int32") % 10] if args.conditional else fixed_noise
samples = generative.GeneratedImages(fixed_inputs, log_dir=str(output_dir / "logs"))
started = time.perf_counter()
history = gan.fit(dataset, epochs=args.epochs, callbacks=[samples], verbose=2)
train_seconds = time.perf_counter() - started

"""
## Scoring with the pretrained LeNet-5

LeNet-5 reads [0, 1] pixels (its weights' preprocessing), so generated digits are mapped
from [-1, 1] first.
"""

lenet = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)  # reads [0, 1] pixels


def lenet_score(images_unit: np.ndarray) -> float:
    logits = lenet.predict(images_unit, batch_size=1000, verbose=0)
    return generative.classifier_score(keras.ops.convert_to_numpy(keras.ops.softmax(logits)))


count = 2000 if args.quick else 10000
noise = np.random.default_rng(1).standard_normal((count, args.latent_dim)).astype("float32")
inputs = [noise, np.arange(count, dtype="int32") % 10] if args.conditional else noise
generated = generator.predict(inputs, batch_size=1000, verbose=0)
test_images, _ = kzoo.data.load_mnist("test")
real_test = test_images[..., None].astype("float32") / 255.0
metrics = {
    "lenet5_score": round(lenet_score(generative.to_unit_range(generated)), 3),
    "lenet5_score_real_test_digits": round(lenet_score(real_test), 3),
    # Fréchet distance on LeNet-5's F6 features to the test digits; as many real training
    # digits give its floor for sets of this size.
    "lenet5_fid_mnist_test": round(
        generative.lenet5_frechet_distance(generative.to_unit_range(generated), real_test, classifier=lenet), 3
    ),
    "lenet5_fid_real_train_digits": round(
        generative.lenet5_frechet_distance(train_images[:count] / 255.0, real_test, classifier=lenet), 3
    ),
}
if args.conditional:
    predicted = lenet.predict(generative.to_unit_range(generated), batch_size=1000, verbose=0).argmax(axis=-1)
    metrics["lenet5_agrees_with_condition"] = round(float((predicted == inputs[1]).mean()), 4)
print(f"{family}: {metrics} ({train_seconds:.0f} s of training)")
# Generator and discriminator are published with the same figures; `kzoo reproduce` reads this file.
write_metrics(output_dir, {f"{family}_{network}.mnist": metrics for network in ("generator", "discriminator")})

"""
## Figures: samples over training, and the final samples
"""

shown = (
    samples.grids
    if len(samples.grids) <= 4
    else [samples.grids[i] for i in np.linspace(0, len(samples.grids) - 1, 4).astype(int)]
)
figure, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 4.3), squeeze=False)
for axis, (epoch, grid) in zip(axes[0], shown):
    axis.imshow(grid[..., 0], cmap="gray")
    axis.set_title(f"after epoch {epoch + 1}")
    axis.axis("off")
figure.suptitle(f"{family} on MNIST: the same 64 noise vectors over training (LeNet-5 score {metrics['lenet5_score']})")
figure.tight_layout()
figure.savefig(output_dir / f"{family}_samples_over_training.png", dpi=100)

weight_paths = {}
for network, model in (("generator", generator), ("discriminator", discriminator)):
    weight_paths[network] = output_dir / f"{family}_{network}_mnist.weights.h5"
    model.save_weights(weight_paths[network])
summary = {"metrics": metrics, "train_seconds": round(train_seconds, 1), "history": history.history, "args": vars(args)}
(output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
print(f"wrote {output_dir}")

"""
## Publishing (maintainers)
"""

if args.publish:
    if metrics["lenet5_score"] < 5.0:  # guards against a broken run, not targets
        raise SystemExit(f"not publishing: LeNet-5 score {metrics['lenet5_score']} is below 5")
    if args.conditional and metrics["lenet5_agrees_with_condition"] < 0.8:
        raise SystemExit(f"not publishing: LeNet-5 reads {metrics['lenet5_agrees_with_condition']} as asked")
    for network, path in weight_paths.items():
        target = kzoo_weights.publish_file(path)
        hashes = kzoo_weights.file_hashes(target)
        kwargs = {"base_filters": widths[network]}
        if network == "generator":
            kwargs["latent_dim"] = args.latent_dim
        record = kzoo_weights.WeightsRecord(
            model=f"{family}_{network}",
            tag="mnist",
            file=target.name,
            sha256=hashes["sha256"],
            size=target.stat().st_size,
            dataset="MNIST training set (60,000 images), " + ("with labels" if args.conditional else "unlabelled"),
            metrics=metrics,
            eval_split=(
                "10,000 generated digits scored by kzoo's lenet5.mnist (real MNIST test digits for reference); "
                "Fréchet distance on LeNet-5 F6 features to the 10,000 test digits (floor: the first 10,000 "
                "training digits)" + ("; 1,000 digits asked of each class, read by LeNet-5" if args.conditional else "")
            ),
            input_shape=(28, 28, 1),
            num_classes=10 if args.conditional else None,  # the digits a conditional GAN is asked for
            class_names=tuple(str(digit) for digit in range(10)) if args.conditional else None,
            include_top=True,
            preprocessing=preprocessing,
            license="CC BY-SA 3.0 (weights trained by kzoo on MNIST, which is CC BY-SA 3.0)",
            recipe="examples/train_dcgan_mnist.py " + " ".join(sys.argv[1:]),
            default=True,
            builder_kwargs=kwargs,
            notes=f"trained in {train_seconds:.0f} s on 2 CPU cores; images in [-1, 1] (tanh)",
            reproduce={
                "metric": "lenet5_agrees_with_condition" if args.conditional else "lenet5_score",
                "tolerance": 0.03 if args.conditional else 0.5,
                "why": "one seed: no spread was measured for this recipe; the tolerance is a judgment (GAN training "
                "varies more between runs than supervised training)",
            },
        )
        kzoo_weights.write_manifest_entry(record)
        print(f"published {target} (sha256 {hashes['sha256']})")
