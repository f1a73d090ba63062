"""Time to 99% MNIST test accuracy: kzoo's LeNet-5 recipe against Keras' "Simple MNIST convnet".

Both recipes train from scratch in fresh subprocesses on the same machine, alternating, and
each stops as soon as its test accuracy reaches the target (evaluated every half epoch with
:class:`kzoo.callbacks.TimeToAccuracy`, whose clock starts before the data is loaded,
includes compilation and excludes the evaluations). Prints each run's time, the medians and
their ratio (reference / kzoo: how many times faster kzoo's recipe gets there).

- kzoo: ``examples/train_lenet5_mnist.py --fast`` (LeNet-5, ReLU + max pooling, batch 128,
  label smoothing 0.1, Adam with a 2-epoch one-cycle learning rate, no augmentation, and
  ``kzoo.finetune``'s precision, XLA and steps-per-execution choices for this device).
- Reference: the keras-io example "Simple MNIST convnet" as its text describes it:
  Conv(32, 3x3, ReLU) - max pool - Conv(64, 3x3, ReLU) - max pool - flatten - dropout 0.5 -
  dense softmax, Adam at its default rate, batch 128, up to 15 epochs on 90% of the training
  images, compiled with Keras' defaults.

    python benchmarks/time_to_accuracy.py                  # 2 rounds, target 0.99
    python benchmarks/time_to_accuracy.py --rounds 3 --target 0.99

Both read MNIST from the shared data directory (``KZOO_DATA_DIR``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
MARKER = "TIME_TO_ACCURACY "

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--rounds", type=int, default=2, help="runs of each recipe, alternating")
parser.add_argument("--target", type=float, default=0.99)
parser.add_argument("--reference-epochs", type=int, default=15)
parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)  # run the reference recipe here
args = parser.parse_args()


def reference_recipe() -> None:
    """Keras' "Simple MNIST convnet" recipe, timed to the target."""
    import keras

    import kzoo
    from kzoo.callbacks import TimeToAccuracy

    keras.utils.set_random_seed(1337)
    data_loading_started = time.perf_counter()  # the clock includes loading the data, as kzoo's does
    images, labels = kzoo.data.load_mnist("train")
    test_images, test_labels = kzoo.data.load_mnist("test")
    train_size = int(0.9 * len(images))  # the example's validation_split=0.1 holds out the last 10%
    x = images[:train_size, ..., None].astype("float32") / 255
    x_test = test_images[..., None].astype("float32") / 255
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    y = keras.utils.to_categorical(labels[:train_size], 10)
    timer = TimeToAccuracy(x_test, test_labels, target=args.target, per_epoch=2, started_at=data_loading_started)
    model.fit(x, y, batch_size=128, epochs=args.reference_epochs, verbose=2, callbacks=[timer])
    print(MARKER + json.dumps({"seconds": timer.seconds, "history": timer.history}))


def run(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1][len(MARKER) :])


def describe(result: dict) -> str:
    steps = ", ".join(f"{seconds:.0f}s:{accuracy:.4f}" for seconds, _, accuracy in result["history"])
    reached = f"{result['seconds']:.1f} s" if result["seconds"] is not None else "not reached"
    return f"{reached:>12}   (train s: test accuracy) {steps}"


if args.reference:
    reference_recipe()
    raise SystemExit(0)

commands = {
    "kzoo LeNet-5 --fast": lambda out: [
        sys.executable,
        "examples/train_lenet5_mnist.py",
        "--fast",
        "--stop-at",
        str(args.target),
        "--output-dir",
        out,
    ],
    "keras-io Simple MNIST convnet": lambda out: [
        sys.executable,
        __file__,
        "--reference",
        "--target",
        str(args.target),
    ],
}
times: dict[str, list[float]] = {name: [] for name in commands}
print(f"target {args.target:.4f} MNIST test accuracy; {args.rounds} rounds, alternating; {os.cpu_count()} CPUs")
with tempfile.TemporaryDirectory() as scratch:
    for round_index in range(args.rounds):
        for name, command in commands.items():
            result = run(command(scratch))
            print(f"round {round_index + 1}  {name:30} {describe(result)}", flush=True)
            if result["seconds"] is not None:
                times[name].append(result["seconds"])
ours, reference = (times[name] for name in commands)
for name, values in times.items():
    if values:
        spread = f"min {min(values):.1f}, max {max(values):.1f}"
        print(f"{name:30} median {statistics.median(values):.1f} s over {len(values)} runs ({spread})")
if ours and reference:
    ratio = statistics.median(reference) / statistics.median(ours)
    print(
        f"ratio reference / kzoo (median times): {ratio:.2f}x   (min/max-based range {min(reference) / max(ours):.2f}"
        f"-{max(reference) / min(ours):.2f}x)"
    )
else:
    print("ratio: n/a (a recipe did not reach the target; see the histories above)")
