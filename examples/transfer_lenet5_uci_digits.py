"""
Title: Transfer learning: MNIST LeNet-5 to the UCI handwritten digits
Description: Fine-tune the pretrained LeNet-5 on a few labelled UCI digits and compare with training from scratch.
Model: lenet5 (pretrained tag `mnist`)
Data: scikit-learn's UCI handwritten digits (1,797 images, 8x8, framed like MNIST by kzoo.data.load_uci_digits).
Runtime: under a minute on 2 CPU cores with the default flags (`--quick`: seconds).
Tags: classification, transfer learning, lenet5, uci digits
Figure: transfer_lenet5_uci_digits.png

## What this shows

The UCI digits are another real handwritten-digit dataset: different writers, scanned
at 8x8 instead of MNIST's 28x28. A LeNet-5 that learnt digits on MNIST already knows
strokes and shapes; fine-tuning it on only a handful of labelled UCI digits per class
beats the same network trained from scratch on the same handful, because the scratch
model must learn everything from those few images.

    python examples/transfer_lenet5_uci_digits.py                     # 10 labelled images per class
    python examples/transfer_lenet5_uci_digits.py --per-class 30 --log-dir runs/transfer
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.pyplot as plt
import numpy as np

import kzoo
from kzoo.examples import save_figure

"""
## Settings
"""

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--per-class", type=int, default=10, help="labelled training images per class")
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--log-dir", default=None, help="new directory for TensorBoard logs of the fine-tuned run")
parser.add_argument("--quick", action="store_true", help="8 epochs, to check that the script runs")
parser.add_argument("--output-dir", default="runs/transfer_lenet5_uci_digits", help="the figure goes here")
args = parser.parse_args()
if args.quick:
    args.epochs = 8

"""
## Data: a small labelled subset, and everything else held out

The labelled subset has `--per-class` images of each digit; 20% of it is the validation
split that picks the best epoch. The remaining ~1,700 images are only used once, at the
end, to measure both models.
"""

images, labels = kzoo.data.load_uci_digits()
rng = np.random.default_rng(args.seed)
chosen = np.concatenate([rng.choice(np.flatnonzero(labels == d), args.per_class, replace=False) for d in range(10)])
held_out = np.setdiff1d(np.arange(len(labels)), chosen)
print(f"{len(chosen)} labelled training images, {len(held_out)} held-out test images")


def test_accuracy(model: keras.Model) -> float:
    # What the model expects is part of it: the pretrained one scales raw pixels itself,
    # the scratch one gets the preprocessing kzoo.data applied in training.
    identity = kzoo.identity.of(model)
    pixels = images[held_out, ..., None].astype("float32")
    x = pixels if identity.preprocessing_in_model else identity.preprocessing_object()(pixels)
    return float((model.predict(x, verbose=0).argmax(-1) == labels[held_out]).mean())


"""
## Fine-tuning the pretrained model vs training from scratch

Both runs see the same images, epochs and augmentation; only the starting weights
differ. The pretrained one uses the "two-phase" strategy (head first, then the top
stages at a lower learning rate); the scratch one trains every layer.
"""

results = {}
for name, pretrained, strategy in (
    ("pretrained (MNIST) + fine-tuning", True, "two-phase"),
    ("from scratch", False, "full"),
):
    keras.utils.set_random_seed(args.seed)
    model = kzoo.get("lenet5", pretrained=pretrained)
    data = kzoo.data.arrays(
        images[chosen],
        labels[chosen],
        model=model,
        batch_size=16,
        validation_split=0.2,
        seed=args.seed,
        augment=["rotation", "zoom"],
    )
    log_dir = os.path.join(args.log_dir, "pretrained" if pretrained else "scratch") if args.log_dir else None
    kzoo.finetune(
        model,
        data,
        epochs=args.epochs,
        strategy=strategy,
        learning_rate=3e-3,
        log_dir=log_dir,
        verbose=0,
        jit_compile=False if args.quick else None,  # a smoke run skips the XLA compile
    )
    results[name] = test_accuracy(model)
    print(f"{name:<34} held-out accuracy {results[name]:.4f}")

"""
## Result
"""

gain = results["pretrained (MNIST) + fine-tuning"] - results["from scratch"]
print(f"Pretraining on MNIST adds {gain * 100:+.1f} points with {args.per_class} labelled images per class.")

figure, axis = plt.subplots(figsize=(6, 3.5))
bars = axis.bar(list(results), list(results.values()), color=["C0", "C1"])
axis.bar_label(bars, fmt="%.3f")
axis.set(ylim=(0, 1.05), ylabel=f"accuracy on {len(held_out)} held-out UCI digits")
axis.set_title(f"LeNet-5, {args.per_class} labelled UCI digits per class, {args.epochs} epochs")
save_figure(figure, Path(args.output_dir), "transfer_lenet5_uci_digits.png")
