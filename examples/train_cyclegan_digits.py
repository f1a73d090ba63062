"""
Title: CycleGAN between two handwriting datasets, UCI digits <-> MNIST (recipe of kzoo's CycleGAN weights)
Description: Translate scikit-learn's UCI digits into MNIST's style and back without any paired examples.
Model: cyclegan_generator_resnet6 (x2) + patchgan_discriminator (x2), 28x28 grayscale, small widths
Data: UCI handwritten digits (scikit-learn, upscaled and framed like MNIST) and MNIST from the shared data directory.
Runtime: 5 minutes on 2 CPU cores (3 epochs); shipped: `--epochs 8 --semantic-weight 1`, 7 minutes; `--quick` under 1.
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
zero over the second half. `--semantic-weight` adds CyCADA's semantic-consistency loss
(Hoffman et al. 2018): a frozen classifier per domain, trained here on that domain's
training labels, must read G(x) as the class it read x as (and F(y) likewise). Plain
CycleGAN (weight 0) never uses a label.

The quality figure follows the paper's "FCN score": a classifier trained on one domain
judges the translations. kzoo's LeNet-5 (MNIST only) reads UCI digits translated to MNIST
style; a LeNet-5 trained on the UCI training digits (shipped as `lenet5.uci_digits`) reads
MNIST test digits translated to UCI style. Both are compared with the untranslated digits,
on 797 UCI digits and 2,000 MNIST test digits that no network here trained on. LeNet-5
FIDs to the MNIST test digits say how MNIST-like the translations look.

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
parser.add_argument(
    "--semantic-weight", type=float, default=0.0, help="CyCADA's semantic-consistency loss weight (0: plain CycleGAN)"
)
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
mnist_images, mnist_labels = kzoo.data.load_mnist("train")
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


def digit_classifier(name: str, images: np.ndarray, labels: np.ndarray, architecture: str, epochs: int) -> keras.Model:
    """A digit classifier of one domain's [-1, 1] images, trained on that domain's training split."""
    if architecture == "lenet5":  # a judge: scores translations, never seen by the CycleGAN
        body = kzoo.get("lenet5")  # the architecture and settings of the MNIST judge, kzoo's lenet5.mnist
    else:  # a semantic classifier (CyCADA's f): another architecture than the judges, so the loss cannot game them
        layers = [keras.layers.Flatten(), keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)]
        body = keras.Sequential(layers)
    inputs = keras.Input(image_shape)
    model = keras.Model(inputs, body(keras.layers.Rescaling(0.5, offset=0.5)(inputs)), name=name)  # [-1, 1] -> [0, 1]
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=32, epochs=epochs, verbose=0)
    model.body = body  # what is shipped: reads [0, 1] pixels, like lenet5.mnist
    return model


# The UCI judge (scores MNIST -> UCI translations; shipped as lenet5.uci_digits) and, for the
# semantic loss, one MLP per domain. Labels of the training splits only; the held-out UCI digits stay unseen.
classifier_epochs = 2 if args.quick else 30
uci_judge = digit_classifier("lenet5_uci_digits", x_train, uci_labels[:trained], "lenet5", classifier_epochs)
semantic_x = semantic_y = None  # plain CycleGAN (weight 0) trains no semantic classifier
if args.semantic_weight:
    semantic_x = digit_classifier("semantic_uci", x_train, uci_labels[:trained], "mlp", classifier_epochs)
    semantic_y = digit_classifier("semantic_mnist", y_train, mnist_labels[chosen], "mlp", classifier_epochs)


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
    semantic_weight=args.semantic_weight,
    semantic_classifier_x=semantic_x,
    semantic_classifier_y=semantic_y,
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


def lenet_accuracy(images_tanh: np.ndarray, labels: np.ndarray, judge: keras.Model | None = None) -> float:
    if judge is not None:  # the UCI judge reads [-1, 1] images
        return float((judge.predict(images_tanh, batch_size=1000, verbose=0).argmax(axis=-1) == labels).mean())
    logits = lenet.predict(generative.to_unit_range(images_tanh), batch_size=1000, verbose=0)
    return float((logits.argmax(axis=-1) == labels).mean())


uci_as_mnist = uci_to_mnist.predict(x_held_out, batch_size=500, verbose=0)
mnist_as_uci = mnist_to_uci.predict(y_test, batch_size=500, verbose=0)
metrics = {
    "lenet5_accuracy_uci_translated_to_mnist": lenet_accuracy(uci_as_mnist, x_held_out_labels),
    "lenet5_accuracy_uci_untranslated": lenet_accuracy(x_held_out, x_held_out_labels),
    "lenet5_accuracy_mnist_test_translated_to_uci": lenet_accuracy(mnist_as_uci, y_test_labels),
    "lenet5_accuracy_mnist_test_untranslated": lenet_accuracy(y_test, y_test_labels),
    "uci_lenet5_accuracy_mnist_test_translated_to_uci": lenet_accuracy(mnist_as_uci, y_test_labels, uci_judge),
    "uci_lenet5_accuracy_mnist_test_untranslated": lenet_accuracy(y_test, y_test_labels, uci_judge),
    # Frechet distance on LeNet-5 features: UCI digits in MNIST style vs MNIST test digits, and as they are.
    "lenet5_fid_uci_translated_to_mnist": generative.lenet5_frechet_distance(
        generative.to_unit_range(uci_as_mnist), generative.to_unit_range(y_test), classifier=lenet
    ),
    "lenet5_fid_uci_untranslated": generative.lenet5_frechet_distance(
        generative.to_unit_range(x_held_out), generative.to_unit_range(y_test), classifier=lenet
    ),
    # The floor: as many real MNIST training digits (none of those trained on) against the same test digits.
    "lenet5_fid_real_mnist_train_digits": generative.lenet5_frechet_distance(
        np.delete(mnist_images, chosen, axis=0)[: len(x_held_out), ..., None] / 255.0,
        generative.to_unit_range(y_test),
        classifier=lenet,
    ),
}
metrics = {key: round(value, 4) for key, value in metrics.items()}
judge_metrics = {"test_accuracy": round(lenet_accuracy(x_held_out, x_held_out_labels, uci_judge), 4)}
print(f"cyclegan: {metrics} ({train_seconds:.0f} s of training)")
# Both generators are published with the same figures; `kzoo reproduce` reads this file.
published = {f"cyclegan_generator_resnet6.{tag}": metrics for tag in ("uci_to_mnist", "mnist_to_uci")}
write_metrics(output_dir, {**published, "lenet5.uci_digits": judge_metrics})

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
weight_paths["uci_digits"] = output_dir / "lenet5_uci_digits.weights.h5"
uci_judge.body.save_weights(weight_paths["uci_digits"])
summary = {"metrics": metrics, "train_seconds": round(train_seconds, 1), "history": history.history, "args": vars(args)}
(output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
print(f"wrote {output_dir}")

"""
## Publishing (maintainers)
"""

if args.publish:
    kind = f"semantic CycleGAN (CyCADA loss, weight {args.semantic_weight:g})" if args.semantic_weight else ""
    kind = kind or "plain CycleGAN"
    common = {"license": "CC BY-SA 3.0 (trained by kzoo on MNIST, CC BY-SA 3.0, and the UCI digits, CC BY 4.0)"}
    common["recipe"] = "examples/train_cyclegan_digits.py " + " ".join(sys.argv[1:])
    for tag, path in weight_paths.items():
        target = kzoo_weights.publish_file(path)
        hashes = kzoo_weights.file_hashes(target)
        files = {"file": target.name, "sha256": hashes["sha256"], "size": target.stat().st_size}
        if tag == "uci_digits":  # the judge of MNIST -> UCI translations
            record = kzoo_weights.WeightsRecord(
                model="lenet5",
                tag=tag,
                **files,
                dataset=f"UCI digits (scikit-learn, first {split} of 1,797, framed like MNIST at 28x28), labels",
                metrics=judge_metrics,
                eval_split=f"last {args.uci_holdout} UCI digits (never seen)",
                num_classes=10,
                class_names=tuple(str(digit) for digit in range(10)),
                input_shape=image_shape,
                include_top=True,
                preprocessing=kzoo_weights.Preprocessing(scale=1.0 / 255.0, channel_order="grayscale"),
                default=False,
                builder_kwargs={"activation": "tanh", "subsampling": "avg"},
                notes=f"{classifier_epochs} epochs of Adam(1e-3); the judge of the CycleGAN's MNIST -> UCI digits",
                **{**common, "license": "CC BY 4.0 (trained by kzoo on the UCI digits, CC BY 4.0)"},
            )
        else:
            record = kzoo_weights.WeightsRecord(
                model="cyclegan_generator_resnet6",
                tag=tag,
                **files,
                dataset=(
                    f"unpaired: UCI digits (scikit-learn, first {split} of 1,797, framed like MNIST at 28x28) and "
                    f"{args.mnist_images} MNIST training images"
                ),
                metrics=metrics,
                eval_split=f"last {args.uci_holdout} UCI digits (never seen) and the first 2,000 MNIST test digits",
                input_shape=image_shape,
                include_top=True,
                preprocessing=preprocessing,
                default=tag == "uci_to_mnist",
                builder_kwargs={"base_filters": args.base_filters},
                notes=f"{kind}; trained in {train_seconds:.0f} s on 2 CPU cores; images in [-1, 1] (tanh)",
                **common,
            )
        kzoo_weights.write_manifest_entry(record)
        print(f"published {target} (sha256 {hashes['sha256']})")
