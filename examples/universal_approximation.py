"""
Title: The universal approximation theorem, by construction
Description: One-hidden-layer networks built by hand approximate a 1-D function; the error falls with width.
Model: keras.Sequential, Dense(N, relu) + Dense(1) and Dense(N, sigmoid) + Dense(1) with hand-set weights
Data: the function f(x) = sin(3x) + 0.3 x^2 on [-2, 2] (no data files).
Runtime: under a minute on 2 CPU cores (measured 43 s on a shared, busy machine; `--quick`: seconds).
Tags: regression, mlp, theory, universal approximation
Figure: universal_approximation.png

## What this shows

A network with one hidden layer can approximate any continuous function on an interval as
closely as we like (Cybenko 1989; Hornik 1991). The proof is a construction, and we can
write its weights down instead of training:

- **ReLU, piecewise linear**: with knots `x_0 < ... < x_N`, the network
  `f(x_0) + sum_i (s_i - s_{i-1}) relu(x - x_i)` (slopes `s_i` of the chords, `s_{-1} = 0`)
  is exactly the linear interpolation of `f`: its error falls like `1/N^2`.
- **Sigmoid, staircase**: a very steep sigmoid `sigmoid(k (x - x_i))` is a step; a sum of
  steps with heights `f(x_i) - f(x_{i-1})` is a staircase, error falling like `1/N`.

Then a network of the same width trained by Adam, for comparison: gradient descent finds
*some* weights, not necessarily as good as the construction's.

    python examples/universal_approximation.py --output-dir runs/universal
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np

from kzoo.examples import batches, example_parser, save_figure

parser = example_parser(__doc__)
parser.add_argument("--train-steps", type=int, default=4000, help="Adam steps of the trained comparison")
args = parser.parse_args()
if args.quick:
    args.train_steps = 400


def target(x):
    return np.sin(3 * x) + 0.3 * x**2


x_test = np.linspace(-2, 2, 2001, dtype="float32")[:, None]
y_test = target(x_test)

"""
## The two constructions, as Keras models with hand-set weights
"""


def one_hidden_layer(units, activation, hidden_kernel, hidden_bias, output_kernel, output_bias):
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(units, activation=activation), keras.layers.Dense(1)]
    )
    model.layers[0].set_weights([hidden_kernel[None, :], hidden_bias])
    model.layers[1].set_weights([output_kernel[:, None], np.array([output_bias])])
    return model


def relu_interpolation(units):
    knots = np.linspace(-2, 2, units + 1)
    slopes = np.diff(target(knots)) / np.diff(knots)  # one chord slope per segment
    changes = np.diff(slopes, prepend=0.0)  # relu(x - x_i) switches the slope change on at knot i
    # hidden unit i: relu(1 * x - x_i); output: f(x_0) + sum_i change_i * unit_i
    return one_hidden_layer(units, "relu", np.ones(units), -knots[:-1], changes, target(knots[0]))


def sigmoid_staircase(units, steepness=2000.0):
    knots = np.linspace(-2, 2, units + 1)
    middles = (knots[:-1] + knots[1:]) / 2  # step i jumps halfway between knots i and i+1
    heights = np.diff(target(knots))
    return one_hidden_layer(
        units, "sigmoid", np.full(units, steepness), -steepness * middles, heights, target(knots[0])
    )


def max_error(model):
    return float(np.abs(model.predict(x_test, batch_size=4096, verbose=0) - y_test).max())


def trained(units, activation):
    keras.utils.set_random_seed(0)
    # Random biases spread the kinks -b/w over the interval; Keras' zero biases would put every kink at x = 0.
    spread = keras.initializers.RandomUniform(-2, 2)
    hidden = keras.layers.Dense(units, activation=activation, bias_initializer=spread)
    model = keras.Sequential([keras.Input((1,)), hidden, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse", steps_per_execution=100)
    x_train = np.random.default_rng(0).uniform(-2, 2, (2000, 1)).astype("float32")
    model.fit(batches(x_train, target(x_train), 128), steps_per_epoch=args.train_steps, epochs=1, verbose=0)
    return model


"""
## Error against width
"""

widths = [2, 4, 8, 16, 32, 64, 128] if not args.quick else [2, 8, 32]
errors = {"ReLU construction": [], "sigmoid construction": [], "ReLU trained (Adam)": []}
for units in widths:
    errors["ReLU construction"].append(max_error(relu_interpolation(units)))
    errors["sigmoid construction"].append(max_error(sigmoid_staircase(units)))
    errors["ReLU trained (Adam)"].append(max_error(trained(units, "relu")))
    print(f"{units:>4} hidden units: " + ", ".join(f"{name} max error {e[-1]:.4f}" for name, e in errors.items()))

figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.plot(x_test, y_test, "k", linewidth=3, alpha=0.3, label="f(x) = sin(3x) + 0.3x^2")
for units, style in zip(widths[1:3], ["--", "-"]):
    left.plot(x_test, relu_interpolation(units).predict(x_test, verbose=0), f"C0{style}", label=f"ReLU, {units} units")
    left.plot(
        x_test, sigmoid_staircase(units).predict(x_test, verbose=0), f"C1{style}", label=f"sigmoid, {units} units"
    )
left.set(title="Hand-built one-hidden-layer networks", xlabel="x")
left.legend(fontsize=8)
for name, values in errors.items():
    right.loglog(widths, values, "o-", label=name)
right.loglog(widths, [4.0 / n**2 for n in widths], "k:", label="1/N^2 (guide)")
right.loglog(widths, [2.0 / n for n in widths], "k--", alpha=0.5, label="1/N (guide)")
right.set(title="Max error on [-2, 2] vs hidden units N", xlabel="hidden units N", ylabel="max |error|")
right.legend(fontsize=8)
save_figure(figure, args.output_dir, "universal_approximation.png")
