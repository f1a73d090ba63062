"""
Title: Double descent: test error against model size on a small problem
Description: Random-feature models of growing width fitted to 200 real digits; the test error peaks at width = 200.
Model: a two-layer network (random Fourier features) with a frozen first layer and a least-squares output layer (NumPy)
Data: scikit-learn's UCI handwritten digits (8x8; 200 to train, 1,597 to test; no shared data needed).
Runtime: under 2 minutes on 2 CPU cores (measured 46 s of CPU, 129 s wall on a busy machine; `--quick`: seconds).
Tags: classification, generalization, double descent, uci digits
Figure: double_descent.png

## What this shows

Classical statistics says: past some size, a bigger model overfits more. Deep networks
seemed to contradict it; Belkin et al. (2019) reconciled the two with the *double-descent*
curve. The test error first follows the U of the bias-variance trade-off, peaks at the
**interpolation threshold** (as many parameters as training examples, where the one model
that fits the training data exactly is wild), then falls again as the model grows, because
among the many interpolating solutions least squares picks the one of smallest norm.

The model: `h = cos(W x + b)` with a random, frozen `W` of `p` rows (random Fourier
features, Rahimi & Recht 2007; the features of Belkin et al.'s experiments), then an output layer
fitted by minimum-norm least squares to one-hot labels (`numpy.linalg.lstsq`). We sweep
`p` across the number of training examples `n = 200`, take the median over a few random draws, and
compare with a small ridge penalty, which removes the peak.

    python examples/double_descent.py --output-dir runs/double_descent
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from kzoo.examples import example_parser, save_figure

parser = example_parser(__doc__)
parser.add_argument("--train-size", type=int, default=200)
parser.add_argument("--draws", type=int, default=3, help="random feature draws averaged per width")
parser.add_argument("--label-noise", type=float, default=0.1, help="fraction of training labels replaced at random")
parser.add_argument("--bandwidth", type=float, default=3.0, help="length scale of the random Fourier features")
parser.add_argument("--ridge", type=float, default=1e-1, help="penalty of the ridge comparison")
args = parser.parse_args()
widths = np.unique(
    np.geomspace(10, (20 if not args.quick else 4) * args.train_size, 40 if not args.quick else 8).astype(int)
)
if args.quick:
    args.draws = 1

"""
## Data

A little label noise on the training set (10% of labels redrawn) makes the peak sharper:
an interpolating model has to fit the wrong labels too.
"""

digits = load_digits()
rng = np.random.default_rng(0)
order = rng.permutation(len(digits.target))
inputs, labels = digits.data[order] / 16.0, digits.target[order]
x_train, x_test = inputs[: args.train_size], inputs[args.train_size :]
y_train, y_test = labels[: args.train_size].copy(), labels[args.train_size :]
noisy = rng.random(len(y_train)) < args.label_noise
y_train[noisy] = rng.integers(0, 10, noisy.sum())
targets = np.eye(10)[y_train]

"""
## Random features and the minimum-norm fit
"""


def fit_and_score(width, seed, ridge):
    draw = np.random.default_rng(seed)
    weights = draw.normal(0, 1 / args.bandwidth, (inputs.shape[1], width))
    bias = draw.uniform(0, 2 * np.pi, width)

    def features(x):
        return np.sqrt(2 / width) * np.cos(x @ weights + bias)

    train_features = features(x_train)
    if ridge:
        # The dual form: an n x n system (n = 200) instead of p x p, the same solution.
        gram = train_features @ train_features.T + ridge * np.eye(len(train_features))
        output = train_features.T @ np.linalg.solve(gram, targets)
    else:
        output = np.linalg.lstsq(train_features, targets, rcond=None)[0]  # minimum norm when width > n
    test_scores = features(x_test) @ output
    test_mse = float(((test_scores - np.eye(10)[y_test]) ** 2).sum(axis=1).mean())
    test_error = float((test_scores.argmax(1) != y_test).mean())
    train_error = float(((train_features @ output).argmax(1) != y_train).mean())
    return test_mse, test_error, train_error


results = {}
for name, ridge in (("minimum norm (no penalty)", 0.0), (f"ridge {args.ridge:g}", args.ridge)):
    runs = np.array([[fit_and_score(width, seed, ridge) for seed in range(args.draws)] for width in widths])
    results[name] = np.median(runs, axis=1)  # (widths, [test mse, test error, train error]), median over draws
    peak = int(np.argmax(results[name][:, 0]))
    print(
        f"{name}: test MSE peaks at width {widths[peak]} ({results[name][peak, 0]:.2f}); "
        f"best test error {results[name][:, 1].min():.3f} at width {widths[results[name][:, 1].argmin()]}"
    )

"""
## The curve
"""

figure, axes = plt.subplots(1, 2, figsize=(11, 4))
for index, (name, values) in enumerate(results.items()):
    axes[0].loglog(widths, values[:, 0], "o-", color=f"C{index}", markersize=3, label=name)
    axes[1].semilogx(widths, values[:, 1], "o-", color=f"C{index}", markersize=3, label=f"{name}: test")
    axes[1].semilogx(widths, values[:, 2], ":", color=f"C{index}", label=f"{name}: train")
for axis in axes:
    axis.axvline(args.train_size, color="k", linestyle="--", linewidth=1)
    axis.set_xlabel("random features p (dashed line: p = n training examples)")
axes[0].set(ylabel="test squared error", title=f"Double descent, n = {args.train_size} digits")
axes[1].set(ylabel="classification error", title="error rate")
axes[0].legend(fontsize=8)
axes[1].legend(fontsize=7)
save_figure(figure, args.output_dir, "double_descent.png")
