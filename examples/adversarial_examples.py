"""
Title: Adversarial examples (FGSM, PGD) and adversarial training
Description: Imperceptible pixel changes fool the pretrained LeNet-5 on MNIST; PGD adversarial training buys robustness.
Model: lenet5 (pretrained `mnist` weights), then fine-tuned on PGD examples in a keras.Model subclass with train_step
Data: MNIST from the shared data directory (`KZOO_DATA_DIR`, default `../shared/data`).
Runtime: about 2 minutes on 2 CPU cores (measured 100 s on a shared, busy machine; `--quick`: seconds).
Tags: classification, adversarial robustness, fgsm, pgd, mnist
Figure: adversarial_examples.png
Shared-data: mnist

## What this shows

A classifier that reads 99% of MNIST correctly can be fooled by changing every pixel by at
most `epsilon` (on a 0-1 scale) in the worst direction (Szegedy et al. 2013):

- **FGSM** (Goodfellow et al. 2014): one step of size epsilon along the sign of the
  gradient of the loss with respect to the input;
- **PGD** (Madry et al. 2018): several smaller signed-gradient steps from a random start,
  each projected back into the epsilon-ball (and into [0, 1]). A much stronger attack.

**Adversarial training** (Madry et al.) trains on PGD examples instead of clean ones: a
min-max game whose inner maximisation is the attack. Here we fine-tune the pretrained
LeNet-5 that way and measure clean, FGSM and PGD accuracy of both models on test digits
never trained on. (LeNet-5 is small: robustness costs it some clean accuracy.)

    python examples/adversarial_examples.py --output-dir runs/adversarial
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import tensorflow as tf

import kzoo
from kzoo.examples import example_parser, save_figure

parser = example_parser(__doc__)
parser.add_argument("--epsilon", type=float, default=0.1, help="L-infinity budget on the 0-1 pixel scale")
parser.add_argument("--pgd-steps", type=int, default=10)
parser.add_argument("--train-images", type=int, default=20000, help="MNIST images for adversarial training")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--test-images", type=int, default=2000)
args = parser.parse_args()
if args.quick:
    args.train_images, args.epochs, args.test_images, args.pgd_steps = 1024, 1, 256, 5

"""
## Data and the pretrained model

LeNet-5's `mnist` weights take pixels scaled to [0, 1], so the attacks work on that scale.
"""

train_images, train_labels = kzoo.data.load_mnist("train")
test_images, test_labels = kzoo.data.load_mnist("test")
x_train = train_images[: args.train_images, ..., None].astype("float32") / 255.0
y_train = train_labels[: args.train_images].astype("int32")
x_test = test_images[: args.test_images, ..., None].astype("float32") / 255.0
y_test = test_labels[: args.test_images].astype("int32")
# include_preprocessing=False: the attacks work on [0, 1] pixels (epsilon is a fraction of the range).
standard = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)
cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

"""
## FGSM and PGD

One function: FGSM is PGD with one step of size epsilon and no random start.
"""


def pgd(model, images, labels, epsilon, steps, step_size, random_start=True):
    adversarial = images
    if random_start:
        adversarial = images + tf.random.uniform(tf.shape(images), -epsilon, epsilon)
    for _ in range(steps):
        adversarial = tf.clip_by_value(adversarial, 0.0, 1.0)
        with tf.GradientTape() as tape:
            tape.watch(adversarial)
            loss = cross_entropy(labels, model(adversarial, training=False))
        adversarial = adversarial + step_size * tf.sign(tape.gradient(loss, adversarial))
        adversarial = tf.clip_by_value(adversarial, images - epsilon, images + epsilon)  # project on the ball
    return tf.clip_by_value(adversarial, 0.0, 1.0)


compiled_pgd = tf.function(pgd)  # the evaluation runs thousands of attack steps: trace them once per setting


def attack(model, images, labels, kind, epsilon):
    if kind == "clean" or epsilon == 0:
        return images
    if kind == "FGSM":
        return compiled_pgd(model, images, labels, epsilon, steps=1, step_size=epsilon, random_start=False)
    return compiled_pgd(model, images, labels, epsilon, args.pgd_steps, step_size=2.5 * epsilon / args.pgd_steps)


def accuracy(model, kind, epsilon):
    correct = 0
    for start in range(0, len(x_test), 256):
        images, labels = x_test[start : start + 256], y_test[start : start + 256]
        predictions = model(attack(model, images, labels, kind, epsilon), training=False).numpy().argmax(-1)
        correct += int((predictions == labels).sum())
    return correct / len(x_test)


"""
## Adversarial training

A `keras.Model` around the classifier whose `train_step` replaces each batch by its PGD
examples, so `fit`, its callbacks and metrics work unchanged.
"""


class AdversarialTraining(keras.Model):
    def __init__(self, classifier, epsilon, steps, **kwargs):
        super().__init__(**kwargs)
        self.classifier, self.epsilon, self.steps = classifier, epsilon, steps

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def train_step(self, data):
        images, labels = data
        adversarial = pgd(self.classifier, images, labels, self.epsilon, self.steps, 2.5 * self.epsilon / self.steps)
        with tf.GradientTape() as tape:
            logits = self.classifier(adversarial, training=True)
            loss = self.compute_loss(y=labels, y_pred=logits)
        weights = self.classifier.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        for metric in self.metrics:
            metric.update_state(loss) if metric.name == "loss" else metric.update_state(labels, logits)
        return {metric.name: metric.result() for metric in self.metrics}


keras.utils.set_random_seed(0)
robust = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)
trainer = AdversarialTraining(robust, args.epsilon, steps=max(args.pgd_steps // 2, 1))
trainer.compile(keras.optimizers.Adam(1e-3), cross_entropy, metrics=["accuracy"])
trainer.fit(x_train, y_train, batch_size=128, epochs=args.epochs, verbose=2)

"""
## Results
"""

epsilons = [0.0, 0.05, 0.1, 0.15, 0.2] if not args.quick else [0.0, args.epsilon]
curves = {}
for name, model in (("standard", standard), ("adversarially trained", robust)):
    for kind in ("FGSM", "PGD"):
        curves[name, kind] = [accuracy(model, kind, epsilon) for epsilon in epsilons]
    at_budget = {kind: accuracy(model, kind, args.epsilon) for kind in ("clean", "FGSM", "PGD")}
    print(
        f"{name:<22} clean {at_budget['clean']:.4f}, FGSM {at_budget['FGSM']:.4f}, PGD-{args.pgd_steps} "
        f"{at_budget['PGD']:.4f} (epsilon {args.epsilon}, {len(x_test)} MNIST test images)"
    )

figure, axis = plt.subplots(figsize=(6, 4))
for (name, kind), values in curves.items():
    axis.plot(epsilons, values, "o-" if kind == "PGD" else "s--", label=f"{name}, {kind}")
axis.set(xlabel="epsilon (L-infinity, 0-1 pixels)", ylabel="test accuracy", title="Accuracy under attack", ylim=(0, 1))
axis.legend(fontsize=8)
save_figure(figure, args.output_dir, "adversarial_accuracy.png")

count = 6
rows = {"clean": x_test[:count]}
rows["FGSM"] = attack(standard, x_test[:count], y_test[:count], "FGSM", args.epsilon).numpy()
rows["PGD"] = attack(standard, x_test[:count], y_test[:count], "PGD", args.epsilon).numpy()
figure, axes = plt.subplots(len(rows), count, figsize=(1.6 * count, 1.9 * len(rows)))
for row, (kind, images) in enumerate(rows.items()):
    predictions = standard(images, training=False).numpy().argmax(-1)
    for column in range(count):
        axes[row, column].imshow(images[column, ..., 0], cmap="gray", vmin=0, vmax=1)
        axes[row, column].set_title(f"{kind}: {predictions[column]}", fontsize=9)
        axes[row, column].axis("off")
figure.suptitle(f"Standard LeNet-5's predictions, epsilon = {args.epsilon}", fontsize=10)
save_figure(figure, args.output_dir, "adversarial_examples.png")
