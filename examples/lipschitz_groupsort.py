"""
Title: 1-Lipschitz networks with the MinMax (GroupSort) activation
Description: Spectrally normalised MLPs are provably robust; GroupSort keeps the expressivity that ReLU loses.
Model: kzoo.layers.GroupSort (MinMax) and keras.layers.SpectralNormalization around Dense layers
Data: scikit-learn's make_moons (2-D, no data files).
Runtime: about 1 minute on 2 CPU cores (measured on a shared, busy machine; `--quick`: seconds).
Tags: classification, robustness, lipschitz, groupsort, toy 2-D
Figure: lipschitz_groupsort.png

## What this shows

If a classifier's score `f` is L-Lipschitz (`|f(x) - f(x')| <= L ||x - x'||`), a point
classified with margin `|f(x)|` keeps its class under every perturbation shorter than
`|f(x)| / L`: a **certificate**, not an empirical attack. For a stack of Dense layers and
1-Lipschitz activations, L is at most the product of the kernels' spectral norms, so
constraining each kernel to spectral norm 1 gives a 1-Lipschitz network.

With ReLU, such networks are weak: ReLU halves the gradient norm on average, so a
norm-constrained ReLU network cannot have slope 1 anywhere, and it ends up far from the
1-Lipschitz bound it pays for. **GroupSort** (Anil, Lucas & Grosse 2019) sorts pairs of
units (MinMax): a permutation, which keeps gradient norms, so the network can use its whole
Lipschitz budget. We train three networks with a hinge loss of margin `--margin` and compare:

- clean accuracy, the exact bound L (product of spectral norms, after training) and the
  largest gradient norm actually found on a grid;
- **certified accuracy** at radius r: the fraction of points correctly classified with
  margin `y f(x) > r L`.

    python examples/lipschitz_groupsort.py --output-dir runs/lipschitz
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_moons

from kzoo.examples import batches, example_parser, save_figure
from kzoo.layers import GroupSort

parser = example_parser(__doc__)
parser.add_argument("--steps", type=int, default=4000)
parser.add_argument("--width", type=int, default=64)
parser.add_argument("--depth", type=int, default=4)
parser.add_argument("--margin", type=float, default=0.2, help="hinge margin: wanted certified radius")
args = parser.parse_args()
if args.quick:
    args.steps, args.width, args.depth = 300, 32, 3

points, labels = make_moons(1000, noise=0.08, random_state=0)
points = (2.0 * points).astype("float32")  # scaled so that the classes are about 1 apart
test_points, test_labels = make_moons(1000, noise=0.08, random_state=1)
test_points = (2.0 * test_points).astype("float32")
signs = 2.0 * test_labels - 1.0

"""
## Three networks
"""


def network(constrained, activation):
    def dense(units):
        layer = keras.layers.Dense(units)
        return keras.layers.SpectralNormalization(layer, power_iterations=3) if constrained else layer

    layers = [keras.Input((2,))]
    for _ in range(args.depth):
        layers += [dense(args.width), GroupSort(2) if activation == "groupsort" else keras.layers.ReLU()]
    return keras.Sequential([*layers, dense(1)])


def margin_hinge(labels, scores):
    # Zero once every point is on its side by `margin`: for a 1-Lipschitz f, a certified radius of `margin`.
    signed = (2.0 * keras.ops.cast(labels, scores.dtype) - 1.0) * scores
    return keras.ops.mean(keras.ops.relu(args.margin - signed))


def lipschitz_bound(model):
    kernels = [w for w in model.weights if "kernel" in w.path and len(w.shape) == 2]
    return float(np.prod([np.linalg.norm(k.numpy(), 2) for k in kernels]))


grid = np.stack(np.meshgrid(np.linspace(-3, 5, 200), np.linspace(-2.5, 3.5, 150)), -1).reshape(-1, 2)
grid = grid.astype("float32")


def gradient_norms(model):
    inputs = tf.constant(grid)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        scores = model(inputs, training=False)
    return tf.norm(tape.gradient(scores, inputs), axis=1).numpy()


variants = {
    "unconstrained ReLU": (False, "relu"),
    "spectral norm + ReLU": (True, "relu"),
    "spectral norm + GroupSort": (True, "groupsort"),
}
radii = np.linspace(0, 0.5, 26)
figure, axes = plt.subplots(1, 4, figsize=(18, 4))
for index, (name, (constrained, activation)) in enumerate(variants.items()):
    keras.utils.set_random_seed(0)
    model = network(constrained, activation)
    model.compile(keras.optimizers.Adam(3e-3), margin_hinge, steps_per_execution=50)
    model.fit(batches(points, labels.astype("float32"), 128), steps_per_epoch=args.steps, epochs=1, verbose=0)
    scores = model.predict(test_points, verbose=0)[:, 0]
    bound, largest_gradient = lipschitz_bound(model), gradient_norms(model).max()
    certified = [float((signs * scores > radius * bound).mean()) for radius in radii]
    print(
        f"{name:<26} test accuracy {(signs * scores > 0).mean():.4f}, Lipschitz bound {bound:.3g}, largest "
        f"gradient norm on the grid {largest_gradient:.3f}, certified accuracy at r=0.1 {certified[5]:.4f}, "
        f"r=0.3 {certified[15]:.4f}"
    )
    field = model.predict(grid, batch_size=8192, verbose=0)[:, 0].reshape(150, 200) / bound
    axis = axes[index]
    image = axis.contourf(field, levels=np.linspace(-1, 1, 21), extent=(-3, 5, -2.5, 3.5), cmap="RdBu_r", extend="both")
    axis.contour(field, levels=[0], extent=(-3, 5, -2.5, 3.5), colors="k")
    axis.scatter(test_points[::4, 0], test_points[::4, 1], c=test_labels[::4], cmap="RdBu_r", s=4)
    axis.set_title(f"{name}\nf(x) / L (certified radius), L <= {bound:.3g}", fontsize=9)
    axes[3].plot(radii, certified, "o-", markersize=3, label=name)
figure.colorbar(image, ax=axes[2])
axes[3].set(xlabel="L2 radius r", ylabel="certified test accuracy", title="Certified accuracy", ylim=(0, 1.02))
axes[3].legend(fontsize=8)
save_figure(figure, args.output_dir, "lipschitz_groupsort.png")
