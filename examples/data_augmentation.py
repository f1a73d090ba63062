"""
Title: Data augmentation: more training images for free
Description: A small CNN trained on 20 real digits per class, with and without random rotations, zooms and shifts.
Model: a small CNN (keras.Sequential) with kzoo.data.augmentation layers at its input
Data: scikit-learn's UCI handwritten digits, framed like MNIST by kzoo.data.load_uci_digits (no shared data needed).
Runtime: about 1.5 minutes on 2 CPU cores (measured 95 s on a shared, busy machine; `--quick`: seconds).
Tags: classification, data augmentation, cnn, uci digits
Figure: augmentation_samples.png

## What this shows

With 200 labelled images a CNN memorises its training set and generalises poorly. Random
geometric transformations that keep the label (a digit rotated by a few degrees, zoomed or
shifted by a few pixels is still the same digit) multiply the training set's variety.
Keras augmentation layers do it on the fly, are active only in training, and sit in the
model itself, so nothing changes at inference. `kzoo.data.augmentation` builds them by
name; we add `RandomTranslation` for shifts.

We train the same network twice on the same 200 images and measure both on the 1,597
others. Too strong an augmentation changes labels (a 6 turned into a 9) and hurts; the
sweep at the end shows where.

    python examples/data_augmentation.py --output-dir runs/augmentation
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np

import kzoo
from kzoo.examples import batches, example_parser, save_figure

parser = example_parser(__doc__)
parser.add_argument("--per-class", type=int, default=20)
parser.add_argument("--steps", type=int, default=1500, help="training steps per model")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
if args.quick:
    args.steps = 80

"""
## Data: 20 labelled images per class, the rest held out
"""

images, labels = kzoo.data.load_uci_digits()
images = images[..., None].astype("float32") / 255.0
rng = np.random.default_rng(args.seed)
chosen = np.concatenate([rng.choice(np.flatnonzero(labels == d), args.per_class, replace=False) for d in range(10)])
held_out = np.setdiff1d(np.arange(len(labels)), chosen)
x_train, y_train, x_test, y_test = images[chosen], labels[chosen], images[held_out], labels[held_out]


def augmenter(strength):
    """Rotation (fraction of a turn), zoom and shift (fractions of the image), all scaled by ``strength``."""
    if strength == 0:
        return None
    layers = kzoo.data.augmentation({"rotation": 0.05 * strength, "zoom": 0.1 * strength}, seed=args.seed).layers
    shift = keras.layers.RandomTranslation(0.1 * strength, 0.1 * strength, fill_mode="constant", seed=args.seed)
    return keras.Sequential([*layers, shift], name="augmentation")


def cnn(strength):
    augmentation = augmenter(strength)
    return keras.Sequential(
        [keras.Input((28, 28, 1))]
        + ([augmentation] if augmentation else [])
        + [
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def train(strength):
    keras.utils.set_random_seed(args.seed)
    model = cnn(strength)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=25,
    )
    model.fit(batches(x_train, y_train, 32, seed=args.seed), steps_per_epoch=args.steps, epochs=1, verbose=0)
    return model.evaluate(x_train, y_train, verbose=0)[1], model.evaluate(x_test, y_test, verbose=0)[1]


"""
## What the augmentation does to a few training digits
"""

example_augmenter = augmenter(1.0)
figure, axes = plt.subplots(4, 8, figsize=(8, 4.4))
for row in range(4):
    versions = [x_train[row * 20]] + [example_augmenter(x_train[row * 20][None], training=True)[0] for _ in range(7)]
    for column, version in enumerate(versions):
        axes[row, column].imshow(np.asarray(version)[..., 0], cmap="gray", vmin=0, vmax=1)
        axes[row, column].axis("off")
    axes[row, 0].set_title("original" if row == 0 else "", fontsize=8)
figure.suptitle("Original (left) and random augmentations of 4 training digits", fontsize=10)
save_figure(figure, args.output_dir, "augmentation_samples.png")

"""
## Without, with, and too much
"""

strengths = [0.0, 0.5, 1.0, 2.0, 4.0] if not args.quick else [0.0, 1.0]
results = {}
for strength in strengths:
    results[strength] = train(strength)
    print(
        f"augmentation strength {strength:<4} training accuracy {results[strength][0]:.4f}, "
        f"held-out accuracy {results[strength][1]:.4f} ({len(y_test)} digits)"
    )

figure, axis = plt.subplots(figsize=(6, 4))
axis.plot(strengths, [r[0] for r in results.values()], "s--", label="training images (200)")
axis.plot(strengths, [r[1] for r in results.values()], "o-", label=f"held-out images ({len(y_test)})")
axis.set(xlabel="augmentation strength (1 = rotation 0.05 turn, zoom 10%, shift 10%)", ylabel="accuracy")
axis.set_title("Augmentation strength vs accuracy, 20 training digits per class")
axis.legend()
save_figure(figure, args.output_dir, "augmentation_accuracy.png")
