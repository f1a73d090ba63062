"""
Title: CycleGAN between two handwriting datasets, UCI digits <-> MNIST (recipe of kzoo's CycleGAN weights)
Description: Translate scikit-learn's UCI digits into MNIST's style and back without any paired examples.
Model: cyclegan_generator_resnet6 (x2) + patchgan_discriminator (x2), 28x28 grayscale, small widths
Data: UCI handwritten digits (scikit-learn, upscaled and framed like MNIST) and MNIST from the shared data directory.
Runtime: about 5 minutes on 2 CPU cores (3 epochs); the shipped weights used `--epochs 8`; `--quick` under a minute.
Tags: cyclegan, gan, image-to-image, mnist, uci digits, recipe
Figure: cyclegan_translations.png
Shared-data: mnist

## What this shows

CycleGAN (Zhu et al. 2017) learns two translators G: X -> Y and F: Y -> X from two
unpaired image collections. Here X is the UCI digits (blurry: upscaled from 8x8) and Y the
MNIST digits (sharp pen strokes). `kzoo.generative.CycleGAN` trains them with the paper's
recipe at a CPU-friendly size: least-squares GAN losses, cycle consistency (lambda = 10),
the identity loss (0.5 lambda), a pool of 50 generated images per discriminator, Adam(2e-4,
beta_1=0.5) and a learning rate that is constant for the first half and decays linearly to
zero over the second half.

The quality figure follows the paper's "FCN score": a classifier trained on one domain
judges the translations. kzoo's LeNet-5 was trained on MNIST only; if G turns UCI digits
into convincing MNIST digits *of the same class*, LeNet-5 reads them at least as well as
the untranslated UCI digits. The recipe reports both accuracies on 797 UCI digits the
CycleGAN never saw (labels are never used in training), and the same for MNIST test digits
translated to the UCI style.

    python examples/train_cyclegan_digits.py                  # train, evaluate, figure in runs/cyclegan_digits
    python examples/train_cyclegan_digits.py --publish        # ... and ship both generators
    python examples/train_cyclegan_digits.py --quick --output-dir /tmp/cyclegan
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

"""
## Settings
"""

parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
parser.add_argument("--epochs", type=int, default=3, help="one epoch = one pass over the MNIST subset")
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--mnist-images", type=int, default=4000, help="MNIST training images used as domain Y")
parser.add_argument("--uci-holdout", type=int, default=797, help="last UCI digits kept for evaluation")
parser.add_argument("--base-filters", type=int, default=8)
parser.add_argument("--learning-rate", type=float, default=2e-4)
parser.add_argument("--cycle-weight", type=float, default=10.0)
parser.add_argument("--identity-weight", type=float, default=0.5)
parser.add_argument("--pool-size", type=int, default=50)
parser.add_argument("--seed", type=int, default=2017)
parser.add_argument("--output-dir", default="runs/cyclegan_digits")
parser.add_argument("--quick", action="store_true", help="1 epoch on 160 UCI and 160 MNIST images; never publishes")
parser.add_argument("--publish", action="store_true", help="write both generators and manifest entries")
args = parser.parse_args()
if args.quick:
    args.epochs, args.mnist_images, args.publish = 1, 160, False

keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data: two unpaired domains in [-1, 1]
"""

preprocessing = kzoo_weights.Preprocessing(scale=2.0 / 255.0, offset=-1.0, channel_order="grayscale")
uci_images, uci_labels = kzoo.data.load_uci_digits(size=28)
mnist_images, _ = kzoo.data.load_mnist("train")
mnist_test, mnist_test_labels = kzoo.data.load_mnist("test")
chosen = np.random.default_rng(args.seed).choice(len(mnist_images), args.mnist_images, replace=False)
split = len(uci_images) - args.uci_holdout
trained = 160 if args.quick else split  # a smoke run: 10 steps
x_train = preprocessing(uci_images[:trained, ..., None].astype("float32"))  # domain X: UCI
y_train = preprocessing(mnist_images[chosen, ..., None].astype("float32"))  # domain Y: MNIST
x_held_out, x_held_out_labels = preprocessing(uci_images[split:, ..., None].astype("float32")), uci_labels[split:]
y_test, y_test_labels = preprocessing(mnist_test[:2000, ..., None].astype("float32")), mnist_test_labels[:2000]
dataset = generative.unpaired(x_train, y_train, batch_size=args.batch_size, seed=args.seed)

"""
## Model and training
"""

image_shape = (28, 28, 1)


def network(name: str, role: str) -> keras.Model:
    model = "cyclegan_generator_resnet6" if role == "generator" else "patchgan_discriminator"
    return kzoo.get(model, input_shape=image_shape, base_filters=args.base_filters, name=name)


uci_to_mnist, mnist_to_uci = network("uci_to_mnist", "generator"), network("mnist_to_uci", "generator")
cyclegan = generative.CycleGAN(
    uci_to_mnist,
    mnist_to_uci,
    network("judge_uci", "discriminator"),
    network("judge_mnist", "discriminator"),
    cycle_weight=args.cycle_weight,
    identity_weight=args.identity_weight,
    pool_size=args.pool_size,
    seed=args.seed,
)
steps = args.epochs * int(dataset.cardinality())
schedule = generative.LinearDecay(args.learning_rate, constant_steps=steps // 2, decay_steps=steps - steps // 2)
cyclegan.compile(
    generator_optimizer=keras.optimizers.Adam(schedule, beta_1=0.5),
    discriminator_optimizer=keras.optimizers.Adam(schedule, beta_1=0.5),
    jit_compile=not args.quick,  # a smoke run skips the XLA compile (test_models compiles each model)
)
translations = generative.GeneratedImages(
    x_held_out[:16], log_dir=str(output_dir / "logs"), tag="translations/uci_to_mnist"
)
started = time.perf_counter()
history = cyclegan.fit(dataset, epochs=args.epochs, callbacks=[translations], verbose=2)
train_seconds = time.perf_counter() - started

"""
## Evaluation: LeNet-5 (trained on MNIST only) reads the translations
"""

lenet = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)  # reads [0, 1] pixels


def lenet_accuracy(images_tanh: np.ndarray, labels: np.ndarray) -> float:
    logits = lenet.predict(generative.to_unit_range(images_tanh), batch_size=1000, verbose=0)
    return float((logits.argmax(axis=-1) == labels).mean())


uci_as_mnist = uci_to_mnist.predict(x_held_out, batch_size=500, verbose=0)
mnist_as_uci = mnist_to_uci.predict(y_test, batch_size=500, verbose=0)
metrics = {
    "lenet5_accuracy_uci_translated_to_mnist": lenet_accuracy(uci_as_mnist, x_held_out_labels),
    "lenet5_accuracy_uci_untranslated": lenet_accuracy(x_held_out, x_held_out_labels),
    "lenet5_accuracy_mnist_test_translated_to_uci": lenet_accuracy(mnist_as_uci, y_test_labels),
    "lenet5_accuracy_mnist_test_untranslated": lenet_accuracy(y_test, y_test_labels),
}
metrics = {key: round(value, 4) for key, value in metrics.items()}
print(f"cyclegan: {metrics} ({train_seconds:.0f} s of training)")
# Both generators are published with the same figures; `kzoo reproduce` reads this file.
write_metrics(output_dir, {f"cyclegan_generator_resnet6.{tag}": metrics for tag in ("uci_to_mnist", "mnist_to_uci")})

"""
## Figure: translations in both directions, and back
"""

rows = [
    ("UCI digit (held out)", x_held_out[:12]),
    ("G: in MNIST style", uci_as_mnist[:12]),
    ("F(G(x)): back to UCI", mnist_to_uci.predict(uci_as_mnist[:12], verbose=0)),
    ("MNIST test digit", y_test[:12]),
    ("F: in UCI style", mnist_as_uci[:12]),
    ("G(F(y)): back to MNIST", uci_to_mnist.predict(mnist_as_uci[:12], verbose=0)),
]
figure, axes = plt.subplots(len(rows), 1, figsize=(9, 1.1 * len(rows) + 0.6))
for axis, (title, images) in zip(axes, rows):
    axis.imshow(generative.image_grid(images, columns=12)[..., 0], cmap="gray")
    axis.set_title(title, fontsize=8)
    axis.axis("off")
figure.suptitle(
    "CycleGAN UCI <-> MNIST: LeNet-5 accuracy on held-out UCI digits "
    f"{metrics['lenet5_accuracy_uci_untranslated']:.3f} -> {metrics['lenet5_accuracy_uci_translated_to_mnist']:.3f} "
    "after translation",
    fontsize=9,
)
figure.tight_layout()
figure.savefig(output_dir / "cyclegan_translations.png", dpi=100)

weight_paths = {}
for tag, model in (("uci_to_mnist", uci_to_mnist), ("mnist_to_uci", mnist_to_uci)):
    weight_paths[tag] = output_dir / f"cyclegan_generator_resnet6_{tag}.weights.h5"
    model.save_weights(weight_paths[tag])
summary = {"metrics": metrics, "train_seconds": round(train_seconds, 1), "history": history.history, "args": vars(args)}
(output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
print(f"wrote {output_dir}")

"""
## Publishing (maintainers)
"""

if args.publish:
    for tag, path in weight_paths.items():
        target = kzoo_weights.publish_file(path)
        hashes = kzoo_weights.file_hashes(target)
        record = kzoo_weights.WeightsRecord(
            model="cyclegan_generator_resnet6",
            tag=tag,
            file=target.name,
            sha256=hashes["sha256"],
            size=target.stat().st_size,
            dataset=(
                f"unpaired: UCI digits (scikit-learn, first {split} of 1,797, framed like MNIST at 28x28) and "
                f"{args.mnist_images} MNIST training images"
            ),
            metrics=metrics,
            eval_split=f"last {args.uci_holdout} UCI digits (never seen) and the first 2,000 MNIST test digits",
            input_shape=image_shape,
            include_top=True,
            preprocessing=preprocessing,
            license="CC BY-SA 3.0 (trained by kzoo on MNIST, CC BY-SA 3.0, and the UCI digits, CC BY 4.0)",
            recipe="examples/train_cyclegan_digits.py " + " ".join(sys.argv[1:]),
            default=tag == "uci_to_mnist",
            builder_kwargs={"base_filters": args.base_filters},
            notes=f"trained in {train_seconds:.0f} s on 2 CPU cores; images in [-1, 1] (tanh)",
        )
        kzoo_weights.write_manifest_entry(record)
        print(f"published {target} (sha256 {hashes['sha256']})")
