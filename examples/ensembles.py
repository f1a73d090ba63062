"""
Title: Deep ensembles: averaging independently trained networks
Description: Ensembles of MLPs beat their members on real digits (accuracy and log-loss) and show where they are unsure.
Model: keras.Sequential MLPs, trained from different random initialisations and averaged
Data: scikit-learn's make_moons and UCI handwritten digits (8x8; 500 to train, 1,297 to test; no shared data needed).
Runtime: about 1.5 minutes on 2 CPU cores (measured 87 s on a shared, busy machine; `--quick`: seconds).
Tags: classification, ensembles, uncertainty, uci digits, toy 2-D
Figure: ensemble_moons.png

## What this shows

Train the same network several times from different random initialisations (and data
orders) and average their predicted probabilities (Lakshminarayanan et al. 2017):

- the members make different mistakes, so the average is more accurate than a typical
  member and, above all, better calibrated: its log-loss (negative log-likelihood) drops;
- where the members disagree, the ensemble is unsure. On the two moons, a single network
  is confident almost everywhere, far from any data; the ensemble's spread marks the
  regions nobody has seen.

    python examples/ensembles.py --output-dir runs/ensembles
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits, make_moons

from kzoo.examples import batches, example_parser, plot_decision_boundary, save_figure

parser = example_parser(__doc__)
parser.add_argument("--members", type=int, default=8)
parser.add_argument("--steps", type=int, default=1500, help="training steps per member")
args = parser.parse_args()
if args.quick:
    args.members, args.steps = 2, 150


def train_member(seed, inputs, labels, classes, width):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((inputs.shape[1],)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", steps_per_execution=50)
    model.fit(batches(inputs, labels, 64, seed=seed), steps_per_epoch=args.steps, epochs=1, verbose=0)
    return model


"""
## Two moons: where are the members unsure?
"""

moons, moon_labels = make_moons(300, noise=0.25, random_state=0)
moons = moons.astype("float32")
members = [train_member(seed, moons, moon_labels, 2, 64) for seed in range(args.members)]


def member_probability(model):
    return lambda grid: model.predict(grid, batch_size=8192, verbose=0)[:, 1]


def ensemble_probability(grid):
    return np.mean([member_probability(model)(grid) for model in members], axis=0)


def ensemble_spread(grid):  # standard deviation of the members' probabilities, rescaled to [0, 1]
    return 2 * np.std([member_probability(model)(grid) for model in members], axis=0)


figure, axes = plt.subplots(1, 3, figsize=(13, 4))
plot_decision_boundary(axes[0], member_probability(members[0]), moons, moon_labels, title="one member: p(class 1)")
plot_decision_boundary(axes[1], ensemble_probability, moons, moon_labels, title=f"{args.members} members averaged")
plot_decision_boundary(axes[2], ensemble_spread, moons, moon_labels, title="members' disagreement (2 x std)")
save_figure(figure, args.output_dir, "ensemble_moons.png")

"""
## UCI digits: accuracy and log-loss against ensemble size
"""

digits = load_digits()
order = np.random.default_rng(0).permutation(len(digits.target))
images, labels = (digits.data[order] / 16.0).astype("float32"), digits.target[order]
x_train, y_train, x_test, y_test = images[:500], labels[:500], images[500:], labels[500:]
probabilities = []
for seed in range(args.members):
    member = train_member(100 + seed, x_train, y_train, 10, 128)
    probabilities.append(member.predict(x_test, verbose=0))


def scores(probability):
    accuracy = float((probability.argmax(1) == y_test).mean())
    log_loss = float(-np.log(np.clip(probability[np.arange(len(y_test)), y_test], 1e-7, 1)).mean())
    return accuracy, log_loss


sizes = np.arange(1, args.members + 1)
ensemble_scores = np.array([scores(np.mean(probabilities[:size], axis=0)) for size in sizes])
member_scores = np.array([scores(probability) for probability in probabilities])
print(
    f"members: accuracy {member_scores[:, 0].mean():.4f} +- {member_scores[:, 0].std():.4f}, "
    f"log-loss {member_scores[:, 1].mean():.4f}"
)
print(f"ensemble of {args.members}: accuracy {ensemble_scores[-1, 0]:.4f}, log-loss {ensemble_scores[-1, 1]:.4f}")

figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for axis, column, name in zip(axes, (0, 1), ("test accuracy", "test log-loss (NLL)")):
    axis.plot(sizes, ensemble_scores[:, column], "o-", label="ensemble of the first k members")
    axis.axhline(member_scores[:, column].mean(), color="gray", linestyle="--", label="average single member")
    axis.set(xlabel="ensemble size k", ylabel=name, title=f"UCI digits, {len(y_test)} test images")
axes[0].legend(fontsize=8)
save_figure(figure, args.output_dir, "ensemble_size.png")
