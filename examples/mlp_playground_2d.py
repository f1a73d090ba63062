"""
Title: The TensorFlow-playground exercise: an MLP on 2-D toy data
Description: Decision boundaries of small MLPs: layers vs neurons, activation functions, and dead ReLUs.
Model: keras.Sequential multilayer perceptrons (Dense layers)
Data: scikit-learn's make_circles and a two-spirals set generated here (no download, no shared data).
Runtime: about 1.5 minutes on 2 CPU cores (measured 97 s on a shared, busy machine; `--quick`: seconds).
Tags: classification, mlp, activations, toy 2-D
Figure: playground_depth_width.png

## What this shows

The exercise of playground.tensorflow.org, as a script:

1. **Layers vs neurons**: on two interleaved spirals, a single hidden layer needs many
   neurons; a few narrow layers bend the boundary more cheaply.
2. **Activations**: on concentric circles, a linear "network" can only draw a line;
   ReLU draws polygons, tanh and sigmoid draw smooth curves.
3. **Dead ReLUs**: a unit whose pre-activation is negative on every input outputs 0 and gets
   no gradient, so it never recovers. Too large a learning rate kills many of them.

    python examples/mlp_playground_2d.py --output-dir runs/playground
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_circles

from kzoo.examples import batches, example_parser, plot_decision_boundary, save_figure

parser = example_parser(__doc__)
parser.add_argument("--steps", type=int, default=3000, help="training steps per network")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
if args.quick:
    args.steps = 200

"""
## Data
"""


def two_spirals(count: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    angle = np.sqrt(rng.uniform(0, 1, count)) * 3 * np.pi  # denser near the centre
    labels = rng.integers(0, 2, count)
    radius = angle / np.pi
    sign = np.where(labels == 1, 1.0, -1.0)
    points = np.stack([sign * radius * np.cos(angle), sign * radius * np.sin(angle)], axis=1)
    return (points + rng.normal(0, noise, points.shape)).astype("float32"), labels.astype("float32")


spirals, spiral_labels = two_spirals(800, 0.08, args.seed)
circles, circle_labels = make_circles(600, noise=0.08, factor=0.5, random_state=args.seed)
circles, circle_labels = (2 * circles).astype("float32"), circle_labels.astype("float32")

"""
## One training function for every network

Full-batch-ish Adam on binary cross-entropy from logits; the model outputs one logit.
"""


def train_mlp(points, labels, widths, activation="relu", learning_rate=0.01):
    keras.utils.set_random_seed(args.seed)
    layers = [keras.Input((2,))] + [keras.layers.Dense(width, activation=activation) for width in widths]
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
        steps_per_execution=50,
    )
    model.fit(batches(points, labels, 128, seed=args.seed), steps_per_epoch=args.steps, epochs=1, verbose=0)
    accuracy = model.evaluate(points, labels, verbose=0)[1]
    return model, accuracy


def probability(model):
    return lambda grid: keras.ops.sigmoid(model.predict(grid, batch_size=4096, verbose=0)[:, 0])


"""
## 1. Layers vs neurons (two spirals)
"""

depths = [1, 2, 3] if not args.quick else [1, 3]
widths = [4, 8, 32] if not args.quick else [4, 32]
figure, axes = plt.subplots(len(depths), len(widths), figsize=(3 * len(widths), 3 * len(depths)), squeeze=False)
for row, depth in enumerate(depths):
    for column, width in enumerate(widths):
        model, accuracy = train_mlp(spirals, spiral_labels, [width] * depth)
        title = f"{depth} layer(s) x {width} neurons\n{model.count_params()} params, accuracy {accuracy:.2f}"
        plot_decision_boundary(axes[row, column], probability(model), spirals, spiral_labels, title=title)
        print(title.replace("\n", ": "))
save_figure(figure, args.output_dir, "playground_depth_width.png")

"""
## 2. Activation functions (circles), two hidden layers of 8
"""

activations = ["linear", "relu", "tanh", "sigmoid"] if not args.quick else ["linear", "relu"]
figure, axes = plt.subplots(1, len(activations), figsize=(3 * len(activations), 3))
for axis, activation in zip(axes, activations):
    model, accuracy = train_mlp(circles, circle_labels, [8, 8], activation=activation)
    plot_decision_boundary(axis, probability(model), circles, circle_labels, title=f"{activation}: acc {accuracy:.2f}")
    print(f"activation {activation:<8} accuracy {accuracy:.3f}")
save_figure(figure, args.output_dir, "playground_activations.png")

"""
## 3. Dead ReLUs

After training, a hidden unit is *dead* when its output is 0 on every training input (and
on a grid around them). Its incoming weights then receive no gradient at all. With plain
SGD and a growing learning rate, the big first updates push many units there for good.
"""

learning_rates = [0.01, 0.1, 1.0, 3.0] if not args.quick else [0.1, 3.0]
dead_fractions, accuracies = [], []
grid = np.random.default_rng(1).uniform(-3, 3, (4000, 2)).astype("float32")
for learning_rate in learning_rates:
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential([keras.Input((2,))] + [keras.layers.Dense(32, activation="relu") for _ in range(3)])
    model.add(keras.layers.Dense(1))
    model.compile(keras.optimizers.SGD(learning_rate), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(batches(spirals, spiral_labels, 32, seed=args.seed), steps_per_epoch=args.steps, epochs=1, verbose=0)
    hidden = keras.Model(model.inputs, [layer.output for layer in model.layers[:-1]])
    outputs = hidden.predict(np.concatenate([spirals, grid]), verbose=0)
    dead = sum(int((np.abs(out).max(axis=0) == 0).sum()) for out in outputs)
    logits = model.predict(spirals, verbose=0)[:, 0]
    dead_fractions.append(dead / 96)
    accuracies.append(float(((logits > 0) == spiral_labels).mean()) if np.isfinite(logits).all() else float("nan"))
    print(f"SGD learning rate {learning_rate:<5} dead ReLUs {dead}/96, training accuracy {accuracies[-1]:.3f}")

figure, axis = plt.subplots(figsize=(5, 3.5))
axis.bar([str(rate) for rate in learning_rates], dead_fractions, color="tab:red")
for index, accuracy in enumerate(accuracies):
    axis.text(index, dead_fractions[index] + 0.01, f"acc {accuracy:.2f}", ha="center", fontsize=8)
axis.set(xlabel="SGD learning rate", ylabel="fraction of dead ReLU units (96)", ylim=(0, 1.05))
axis.set_title("Dead ReLUs after training on the spirals (3 x 32 ReLU)")
save_figure(figure, args.output_dir, "playground_dead_relus.png")
