"""
Title: Domain-adversarial training (DANN): from MNIST to the UCI digits without their labels
Description: A gradient-reversal layer makes MNIST features fit unlabelled UCI digits too; compared with source-only.
Model: a small CNN with a label head and, behind kzoo.layers.GradientReversal, a domain head (keras.Model.train_step)
Data: MNIST from the shared data directory (`KZOO_DATA_DIR`, default `../shared/data`); scikit-learn's UCI digits.
Runtime: about 3 minutes on 2 CPU cores (measured on a shared, busy machine; `--quick`: seconds).
Tags: classification, domain adaptation, dann, mnist, uci digits
Figure: dann_features.png
Shared-data: mnist

## What this shows

Labelled data in one domain (MNIST, the *source*), unlabelled data in another (the UCI
digits, scanned at 8x8 by other writers: the *target*). A network trained on the source
alone loses accuracy on the target because its features differ between domains.

DANN (Ganin & Lempitsky 2015) adds a *domain classifier* on the features, behind a
**gradient-reversal layer**: identity on the forward pass, gradient multiplied by `-lambda`
on the backward pass. One optimiser step then trains the domain head to tell MNIST from
UCI, while the reversed gradient trains the feature extractor to make them
indistinguishable, and the label head keeps the features useful for digits. lambda ramps
from 0 to `--max-lambda` with the paper's schedule `max * (2 / (1 + exp(-10 p)) - 1)`. The paper
ramps to 1 with SGD; with Adam, 1 made this small network's adversarial game blow up in
our runs (domain loss above 10, target accuracy below source-only), 0.3 did not.

The target labels are used only to measure the two models at the end.

    python examples/dann_mnist_to_uci_digits.py --output-dir runs/dann
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

import kzoo
from kzoo.examples import example_parser, save_figure
from kzoo.layers import GradientReversal

parser = example_parser(__doc__)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--steps-per-epoch", type=int, default=200)
parser.add_argument("--batch-size", type=int, default=64, help="per domain")
parser.add_argument("--learning-rate", type=float, default=1e-3)
parser.add_argument("--max-lambda", type=float, default=0.3, help="final scale of the reversed gradient")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
if args.quick:
    args.epochs, args.steps_per_epoch = 2, 25

"""
## Source (labelled) and target (unlabelled) streams
"""

source_images, source_labels = kzoo.data.load_mnist("train")
target_images, target_labels = kzoo.data.load_uci_digits()
source_x = source_images[..., None].astype("float32") / 255.0
target_x = target_images[..., None].astype("float32") / 255.0


def stream(*arrays):
    data = (
        tf.data.Dataset.from_tensor_slices(arrays if len(arrays) > 1 else arrays[0])
        .shuffle(len(arrays[0]), seed=args.seed)
        .repeat()
    )
    return data.batch(args.batch_size, drop_remainder=True)


pairs = tf.data.Dataset.zip((stream(source_x, source_labels.astype("int32")), stream(target_x))).prefetch(2)

"""
## The model: features, a label head and a domain head behind the gradient reversal
"""


def features_extractor():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 5, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(48, 5, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
        ],
        name="features",
    )


class DomainAdversarial(keras.Model):
    """Trains on (source images, source labels) and target images.

    The domain head always learns to tell the domains apart; only with ``adversarial=True``
    does its reversed gradient reach the features (source-only keeps the reversal at 0).
    """

    def __init__(self, adversarial, **kwargs):
        super().__init__(**kwargs)
        self.adversarial = adversarial
        self.features = features_extractor()
        self.label_head = keras.layers.Dense(10, name="label_head")
        self.reversal = GradientReversal(0.0, name="gradient_reversal")
        self.domain_head = keras.Sequential(
            [keras.layers.Dense(100, activation="relu"), keras.layers.Dense(1)], name="domain_head"
        )
        self.label_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.domain_loss = keras.losses.BinaryCrossentropy(from_logits=True)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("label_loss", "domain_loss")}
        self.domain_accuracy = keras.metrics.BinaryAccuracy(threshold=0.0, name="domain_accuracy")

    def call(self, images, training=False):
        return self.label_head(self.features(images, training=training))

    @property
    def metrics(self):
        return [*self.trackers.values(), self.domain_accuracy]

    def train_step(self, data):
        (source, labels), target = data
        domains = tf.concat([tf.zeros((args.batch_size, 1)), tf.ones((args.batch_size, 1))], axis=0)
        with tf.GradientTape() as tape:
            hidden = self.features(tf.concat([source, target], axis=0), training=True)
            label_loss = self.label_loss(labels, self.label_head(hidden[: args.batch_size]))
            domain_logits = self.domain_head(self.reversal(hidden))
            domain_loss = self.domain_loss(domains, domain_logits)
            loss = label_loss + domain_loss
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.trainable_weights), self.trainable_weights))
        self.trackers["label_loss"].update_state(label_loss)
        self.trackers["domain_loss"].update_state(domain_loss)
        self.domain_accuracy.update_state(domains, domain_logits)
        return {metric.name: metric.result() for metric in self.metrics}


class ReversalSchedule(keras.callbacks.Callback):
    """lambda_p = 2 / (1 + exp(-10 p)) - 1, p the fraction of training done (Ganin & Lempitsky)."""

    def __init__(self, layer, total_steps, maximum):
        super().__init__()
        self.layer, self.total_steps, self.maximum, self.step = layer, total_steps, maximum, 0

    def on_train_batch_begin(self, batch, logs=None):
        progress = self.step / self.total_steps
        self.layer.scale.assign(self.maximum * (2.0 / (1.0 + np.exp(-10.0 * progress)) - 1.0))
        self.step += 1


"""
## Source-only vs DANN
"""

results, models = {}, {}
for name, adversarial in (("source only", False), ("DANN", True)):
    keras.utils.set_random_seed(args.seed)
    model = DomainAdversarial(adversarial)
    model.compile(keras.optimizers.Adam(args.learning_rate))
    schedule = (
        [ReversalSchedule(model.reversal, args.epochs * args.steps_per_epoch, args.max_lambda)] if adversarial else []
    )
    model.fit(
        pairs, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, callbacks=schedule, shuffle=False, verbose=2
    )
    source_test, source_test_labels = kzoo.data.load_mnist("test")
    predictions = model.predict(source_test[..., None].astype("float32") / 255.0, batch_size=500, verbose=0)
    target_predictions = model.predict(target_x, batch_size=500, verbose=0)
    results[name] = (
        float((predictions.argmax(-1) == source_test_labels).mean()),
        float((target_predictions.argmax(-1) == target_labels).mean()),
    )
    models[name] = model
    print(f"{name:<12} MNIST test accuracy {results[name][0]:.4f}, UCI digits (target) accuracy {results[name][1]:.4f}")

"""
## The features of both domains, projected on their two main principal components
"""

figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
sample = np.random.default_rng(0).choice(len(source_x), 1000, replace=False)
for axis, (name, model) in zip(axes, models.items()):
    hidden = [model.features.predict(x, batch_size=500, verbose=0) for x in (source_x[sample], target_x[:1000])]
    everything = np.concatenate(hidden)
    centred = everything - everything.mean(0)
    projection = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    axis.scatter(*projection[:1000].T, s=3, alpha=0.5, label="MNIST (source)")
    axis.scatter(*projection[1000:].T, s=3, alpha=0.5, label="UCI digits (target)")
    axis.set_title(f"{name}: features (PCA)\ntarget accuracy {results[name][1]:.3f}", fontsize=10)
    axis.legend(fontsize=8, markerscale=4)
bars = axes[2].bar(
    [f"{name}\n{domain}" for name in results for domain in ("MNIST", "UCI")],
    [value for name in results for value in results[name]],
    color=["C0", "C1", "C0", "C1"],
)
axes[2].bar_label(bars, fmt="%.3f", fontsize=8)
axes[2].set(ylim=(0, 1.05), title="test accuracy (UCI: all 1,797, labels never trained on)")
save_figure(figure, args.output_dir, "dann_features.png")
