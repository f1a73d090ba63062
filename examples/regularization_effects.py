"""
Title: Regularization: dropout, batch normalization, weight decay and early stopping
Description: One over-sized MLP trained on 300 real digits with each regularizer in turn: curves and test accuracy.
Model: keras.Sequential MLP (2 x 512 ReLU) with Dropout, BatchNormalization, an L2 kernel penalty or EarlyStopping
Data: scikit-learn's UCI handwritten digits (8x8; 300 to train, 300 to validate, 1,197 to test; no shared data needed).
Runtime: under 2 minutes on 2 CPU cores (measured 96 s on a shared, busy machine; `--quick`: seconds).
Tags: classification, regularization, dropout, batch norm, uci digits
Figure: regularization_curves.png

## What this shows

With 300 training images and 400,000 parameters the MLP memorises its training set within
a few dozen epochs; after that the validation loss climbs while the training loss keeps
falling. Each regularizer fights this differently:

- **Dropout** (Srivastava et al. 2014) zeroes half the hidden units at random at each step;
- **Batch normalization** (Ioffe & Szegedy 2015) normalises each unit over the batch; its
  regularizing effect comes from the noise of batch statistics;
- **Weight decay**: an L2 penalty on the kernels keeps the weights small;
- **Early stopping** keeps the weights of the epoch with the lowest validation loss.

The test set is used once per model, at the end.

    python examples/regularization_effects.py --output-dir runs/regularization
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from kzoo.examples import batches, example_parser, save_figure

parser = example_parser(__doc__)
parser.add_argument("--epochs", type=int, default=150)
parser.add_argument("--train-size", type=int, default=300)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
if args.quick:
    args.epochs = 4

"""
## Data: a small training set
"""

digits = load_digits()
order = np.random.default_rng(args.seed).permutation(len(digits.target))
images, labels = (digits.data[order] / 16.0).astype("float32"), digits.target[order]
train = slice(0, args.train_size)
validation = slice(args.train_size, 2 * args.train_size)
test = slice(2 * args.train_size, None)

"""
## The same MLP, five ways
"""


def mlp(dropout=0.0, batch_norm=False, l2=0.0):
    layers = [keras.Input((64,))]
    for _ in range(2):
        layers.append(keras.layers.Dense(512, kernel_regularizer=keras.regularizers.L2(l2) if l2 else None))
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        layers.append(keras.layers.ReLU())
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential([*layers, keras.layers.Dense(10)])


variants = {
    "no regularization": ({}, []),
    "dropout 0.5": ({"dropout": 0.5}, []),
    "batch norm": ({"batch_norm": True}, []),
    "weight decay (L2 1e-3)": ({"l2": 1e-3}, []),
    "early stopping": ({}, [keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)]),
}
histories, test_accuracies = {}, {}
for name, (options, callbacks) in variants.items():
    keras.utils.set_random_seed(args.seed)
    model = mlp(**options)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        batches(images[train], labels[train], 32, seed=args.seed),
        steps_per_epoch=args.train_size // 32,
        epochs=args.epochs,
        validation_data=(images[validation], labels[validation]),
        callbacks=callbacks,
        verbose=0,
    )
    histories[name] = history.history
    test_accuracies[name] = model.evaluate(images[test], labels[test], verbose=0)[1]
    stopped = f" (stopped after {len(history.history['loss'])} epochs)" if callbacks else ""
    print(f"{name:<24} test accuracy {test_accuracies[name]:.4f}{stopped}")

"""
## Curves and results
"""

figure, axes = plt.subplots(1, 3, figsize=(15, 4))
for index, (name, history) in enumerate(histories.items()):
    axes[0].plot(history["loss"], color=f"C{index}", label=name)
    axes[1].plot(history["val_loss"], color=f"C{index}", label=name)
axes[0].set(yscale="log", xlabel="epoch", title="training loss (includes the L2 penalty)")
axes[1].set(xlabel="epoch", title="validation loss", ylim=(0, 1.5))
axes[1].legend(fontsize=8)
names = list(test_accuracies)
axes[2].barh(names, [test_accuracies[n] for n in names], color=[f"C{i}" for i in range(len(names))])
for index, name in enumerate(names):
    axes[2].text(test_accuracies[name], index, f" {test_accuracies[name]:.3f}", va="center", fontsize=8)
low = min(test_accuracies.values())
axes[2].set(xlim=(max(0.0, low - 0.05), 1.0), title=f"test accuracy ({len(labels[test])} digits)")
save_figure(figure, args.output_dir, "regularization_curves.png")
