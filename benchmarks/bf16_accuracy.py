"""Does bfloat16 keep accuracy? The same kzoo.finetune jobs in float32 and mixed_bfloat16, same seeds.

Each job runs once per seed and precision, alternating, with everything else equal (XLA off in
both, so only the precision differs), and the script prints each run's held-out accuracy, the
mean and standard error per precision, and whether the bfloat16 mean lies within one standard
error of float32's (the difference of means against the float32 standard error).

Jobs:

- ``lenet5_mnist``: LeNet-5 from scratch on the 60,000 MNIST training images (the last 6,000
  validate and pick the best epoch), 3 epochs, batch 128, Adam 1e-3; accuracy on the 10,000
  test images (read only for this report).
- ``transfer_digits``: the MNIST-pretrained LeNet-5 (kzoo's weights) fine-tuned with
  ``strategy="two-phase"`` on 200 UCI digits (scikit-learn's copy), 6 epochs; accuracy on the
  other 1,597.

    python benchmarks/bf16_accuracy.py                       # both jobs, seeds 0 1 2
    python benchmarks/bf16_accuracy.py --jobs lenet5_mnist --seeds 0 1 2 3 4

MNIST is read from the shared data directory (``KZOO_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--jobs", default="lenet5_mnist,transfer_digits")
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
args = parser.parse_args()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kzoo  # noqa: E402

PRECISIONS = {"float32": None, "bfloat16": "mixed_bfloat16"}


def accuracy(model, images, labels) -> float:
    """Top-1 accuracy, with the inputs the model expects (it may scale raw pixels itself)."""
    identity = kzoo.identity.of(model)
    pixels = images[..., None].astype("float32")
    x = pixels if identity.preprocessing_in_model else identity.preprocessing_object()(pixels)
    return float(np.mean(model.predict(x, batch_size=256, verbose=0).argmax(-1) == labels))


def lenet5_mnist(seed: int, policy: str | None) -> float:
    keras.utils.set_random_seed(seed)
    images, labels = kzoo.data.load_mnist("train")
    test_images, test_labels = kzoo.data.load_mnist("test")
    model = kzoo.get("lenet5", num_classes=10)
    data = kzoo.data.arrays(images, labels, model=model, batch_size=128, validation_split=0.1, seed=seed)
    kzoo.finetune(
        model, data, epochs=3, strategy="full", learning_rate=1e-3, jit_compile=False, mixed_precision=policy, verbose=0
    )
    return accuracy(model, test_images, test_labels)


def transfer_digits(seed: int, policy: str | None) -> float:
    keras.utils.set_random_seed(seed)
    images, labels = kzoo.data.load_uci_digits()
    order = np.random.default_rng(seed).permutation(len(labels))
    train, held_out = order[:200], order[200:]
    model = kzoo.get("lenet5", pretrained=True, num_classes=10)
    data = kzoo.data.arrays(images[train], labels[train], model=model, batch_size=32, validation_split=0.2, seed=seed)
    kzoo.finetune(
        model, data, epochs=6, strategy="two-phase", learning_rate=1e-3, jit_compile=False, mixed_precision=policy,
        verbose=0,
    )  # fmt: skip
    return accuracy(model, images[held_out], labels[held_out])


JOBS = {"lenet5_mnist": lenet5_mnist, "transfer_digits": transfer_digits}
for job in [name.strip() for name in args.jobs.split(",") if name.strip()]:
    scores: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    for seed in args.seeds:
        for name, policy in PRECISIONS.items():
            started = time.perf_counter()
            scores[name].append(JOBS[job](seed, policy))
            print(f"{job} seed {seed} {name:8} accuracy {scores[name][-1]:.4f} ({time.perf_counter() - started:.0f} s)")
            keras.backend.clear_session()
    mean = {name: statistics.mean(values) for name, values in scores.items()}
    sem = {name: statistics.stdev(values) / len(values) ** 0.5 for name, values in scores.items()}
    difference = mean["bfloat16"] - mean["float32"]
    print(
        f"{job}: float32 {mean['float32']:.4f} ± {sem['float32']:.4f} (s.e.), bfloat16 {mean['bfloat16']:.4f} ± "
        f"{sem['bfloat16']:.4f}; difference {difference:+.4f}, "
        f"{'within' if abs(difference) <= sem['float32'] else 'outside'} one float32 standard error",
        flush=True,
    )
