"""
Title: Optimizers compared: SGD, momentum, RMSProp and Adam, and the learning rate
Description: Optimizer paths on the Rosenbrock valley, MLP training curves on real digits, a learning-rate sweep.
Model: keras.optimizers SGD (with and without momentum), RMSprop, Adam; an MLP (keras.Sequential)
Data: scikit-learn's UCI handwritten digits (8x8, 1,797 images; no shared data needed).
Runtime: about 1.5 minutes on 2 CPU cores (measured 90 s on a shared, busy machine; `--quick`: seconds).
Tags: classification, optimization, learning rate, uci digits
Figure: optimizer_paths.png

## What this shows

1. **Paths in a curved valley.** The Rosenbrock function `(1 - x)^2 + 100 (y - x^2)^2` has
   its minimum at (1, 1) at the bottom of a long, bent valley. Plain SGD crawls along the
   valley floor; momentum accumulates speed along it; RMSProp and Adam divide each
   coordinate's step by a running scale of its gradients, so steep and flat directions
   advance alike.
2. **Training curves.** The same MLP trained on the UCI digits by each optimizer at its
   usual learning rate.
3. **Learning-rate sweep.** Too small: slow. Too large: the loss diverges or stalls. The
   good range is wide for Adam and narrower for SGD.

    python examples/optimizers_compared.py --output-dir runs/optimizers
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from kzoo.examples import batches, example_parser, save_figure

parser = example_parser(__doc__)
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--path-steps", type=int, default=1000, help="optimizer steps on the Rosenbrock function")
args = parser.parse_args()
if args.quick:
    args.epochs, args.path_steps = 2, 100

OPTIMIZERS = {  # name: (factory, learning rate on the valley, learning rate on the digits)
    "SGD": (lambda rate: keras.optimizers.SGD(rate), 1e-3, 0.05),
    "SGD + momentum 0.9": (lambda rate: keras.optimizers.SGD(rate, momentum=0.9), 1e-3, 0.05),
    "RMSProp": (lambda rate: keras.optimizers.RMSprop(rate), 1e-2, 1e-3),
    "Adam": (lambda rate: keras.optimizers.Adam(rate), 5e-2, 1e-3),
}

"""
## 1. Paths on the Rosenbrock valley
"""


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


paths = {}
for name, (make, valley_rate, _) in OPTIMIZERS.items():
    point = keras.Variable(np.array([-1.5, 2.0], "float32"))
    optimizer = make(valley_rate)
    trace = [point.numpy().copy()]
    for _ in range(args.path_steps):
        with tf.GradientTape() as tape:
            loss = rosenbrock(point[0], point[1])
        optimizer.apply_gradients([(tape.gradient(loss, point), point)])
        trace.append(point.numpy().copy())
    paths[name] = np.array(trace)
    final = paths[name][-1]
    print(f"{name:<20} after {args.path_steps} steps: ({final[0]:+.3f}, {final[1]:+.3f}), f = {rosenbrock(*final):.4f}")

grid_x, grid_y = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
levels = np.log10(rosenbrock(grid_x, grid_y) + 1e-3)
figure, axes = plt.subplots(1, len(paths), figsize=(4 * len(paths), 4), sharey=True)
for index, (axis, (name, trace)) in enumerate(zip(axes, paths.items())):
    axis.contour(grid_x, grid_y, levels, levels=25, cmap="Greys", linewidths=0.6)
    axis.plot(trace[:, 0], trace[:, 1], ".-", color=f"C{index}", markersize=2, linewidth=1)
    axis.plot([1], [1], "r*", markersize=12)
    axis.set(
        xlim=(-2, 2), ylim=(-1, 3), title=f"{name}\nf = {rosenbrock(*trace[-1]):.4f} after {args.path_steps} steps"
    )
save_figure(figure, args.output_dir, "optimizer_paths.png")

"""
## 2. Training curves of an MLP on the UCI digits
"""

digits = load_digits()
x_train, x_test, y_train, y_test = train_test_split(
    (digits.data / 16.0).astype("float32"), digits.target, test_size=0.3, random_state=0, stratify=digits.target
)
steps_per_epoch = len(x_train) // 32


def train(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(
        batches(x_train, y_train, 32),
        steps_per_epoch=steps_per_epoch,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        verbose=0,
    )
    return history.history


figure, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, (make, _, digits_rate) in OPTIMIZERS.items():
    history = train(make(digits_rate))
    label = f"{name} (lr {digits_rate:g})"
    axes[0].plot(history["loss"], label=label)
    axes[1].plot(history["val_accuracy"], label=label)
    print(f"{label:<30} final training loss {history['loss'][-1]:.4f}, test accuracy {history['val_accuracy'][-1]:.4f}")
axes[0].set(yscale="log", xlabel="epoch", ylabel="training loss", title="MLP on UCI digits")
axes[1].set(xlabel="epoch", ylabel="test accuracy (30% held out)", ylim=(0.8, 1.0))
axes[0].legend(fontsize=8)
save_figure(figure, args.output_dir, "optimizer_curves.png")

"""
## 3. The learning rate
"""

rates = [1e-4, 1e-3, 1e-2, 1e-1, 1.0] if not args.quick else [1e-2, 1.0]
figure, axis = plt.subplots(figsize=(6, 4))
for name in ("SGD", "Adam"):
    final_losses = []
    for rate in rates:
        history = train(OPTIMIZERS[name][0](rate))
        final_losses.append(history["loss"][-1])
        print(f"{name:<5} learning rate {rate:<7g} final training loss {history['loss'][-1]:.4f}")
    axis.loglog(rates, np.nan_to_num(final_losses, nan=1e3, posinf=1e3), "o-", label=name)
axis.set(xlabel="learning rate", ylabel=f"training loss after {args.epochs} epochs", title="Learning-rate sweep")
axis.legend()
save_figure(figure, args.output_dir, "learning_rate_sweep.png")
