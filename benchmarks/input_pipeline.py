"""Does the input pipeline keep up? Training steps/s through kzoo.data against in-memory tensors.

One compiled LeNet-5 trains at a fixed batch on:

- ``in-memory``: one batch of tensors repeated (``tf.data.Dataset.from_tensors(...).repeat()``),
  the upper bound where the input costs nothing;
- ``kzoo.data.arrays``: MNIST's 60,000 training images from NumPy (shuffle, batch, preprocess,
  prefetch), as ``kzoo.data.arrays(images, labels, model=model)`` builds it;
- ``kzoo.data.image_folder``: MNIST digits written as PNG files into class folders in a temporary
  directory, decoded by ``kzoo.data.image_folder(directory, model=model)``, with its default
  in-memory cache and with ``cache=False`` (every epoch decodes the files again).

The measurements alternate for ``--rounds`` rounds; each times ``--steps`` steps after
``--warmup`` untimed ones (compilation, the first pass that fills the cache). Prints the median
steps/s of each and its ratio to ``in-memory`` (the goal: 0.95 or more), with the spread, and the
same per CPU-second of this process (training plus the pipeline's threads), which other people's
load on a shared machine disturbs less.

    python benchmarks/input_pipeline.py
    python benchmarks/input_pipeline.py --batch 256 --steps 200 --rounds 5

Reads MNIST from the shared data directory (``KZOO_DATA_DIR``).
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

import kzoo

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--batch", type=int, default=128)
parser.add_argument("--steps", type=int, default=100, help="timed steps per measurement")
parser.add_argument("--warmup", type=int, default=60, help="untimed steps first (must exceed one pass over the folder)")
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("--folder-images", type=int, default=3000, help="PNG files written for the folder pipeline")
args = parser.parse_args()


def cpu_seconds() -> float:
    """CPU time of this process (every thread: training and the tf.data workers)."""
    times = os.times()
    return times.user + times.system


class StepTimer(keras.callbacks.Callback):
    """Wall and CPU seconds taken by the training steps after the first ``warmup``."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.started, self.seconds = warmup, None, None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.warmup:
            self.started = (time.perf_counter(), cpu_seconds())

    def on_train_end(self, logs=None):
        self.seconds = (time.perf_counter() - self.started[0], cpu_seconds() - self.started[1])


def steps_per_second(model: keras.Model, dataset) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second)."""
    timer = StepTimer(args.warmup)
    model.fit(dataset.repeat(), steps_per_epoch=args.warmup + args.steps, epochs=1, verbose=0, callbacks=[timer])
    wall, cpu = timer.seconds
    return args.steps / wall, args.steps / cpu


def write_folder(images: np.ndarray, labels: np.ndarray, root: Path) -> None:
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / str(label)
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{index}.png")


keras.utils.set_random_seed(0)
images, labels = kzoo.data.load_mnist("train")
model = kzoo.get("lenet5")
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
with tempfile.TemporaryDirectory() as scratch:
    write_folder(images[: args.folder_images], labels[: args.folder_images], Path(scratch))
    arrays = kzoo.data.arrays(images, labels, model=model, batch_size=args.batch, validation_split=0.0)
    x, y = next(iter(arrays.train))
    folder = {"cache": True, "batch_size": args.batch, "validation_split": 0.0, "model": model}
    pipelines = {
        "in-memory": tf.data.Dataset.from_tensors((x, y)),
        "kzoo.data.arrays (MNIST)": arrays.train,
        "kzoo.data.image_folder (PNG, cache)": kzoo.data.image_folder(scratch, **folder).train,
        "kzoo.data.image_folder (PNG, no cache)": kzoo.data.image_folder(scratch, **{**folder, "cache": False}).train,
    }
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    cpu_rates: dict[str, list[float]] = {name: [] for name in pipelines}
    print(f"LeNet-5, batch {args.batch}, XLA; {args.steps} timed steps after {args.warmup}; {args.rounds} rounds")
    for round_index in range(args.rounds):
        for name, dataset in pipelines.items():
            wall, cpu = steps_per_second(model, dataset)
            rates[name].append(wall)
            cpu_rates[name].append(cpu)
        print(f"round {round_index + 1}: " + ", ".join(f"{values[-1]:.1f}" for values in rates.values()), flush=True)

baseline, cpu_baseline = statistics.median(rates["in-memory"]), statistics.median(cpu_rates["in-memory"])
print(f"\n{'pipeline':40} {'steps/s':>8} {'ratio':>6}  {'min-max':>11}  {'steps/CPU-s':>11} {'ratio':>6}")
for name, values in rates.items():
    wall, cpu = statistics.median(values), statistics.median(cpu_rates[name])
    spread = f"{min(values):.1f}-{max(values):.1f}"
    print(f"{name:40} {wall:8.1f} {wall / baseline:6.2f}  {spread:>11}  {cpu:11.1f} {cpu / cpu_baseline:6.2f}")
print(
    "steps/s: wall clock, what training sees (noisy on a shared machine); steps/CPU-s: this process's CPU time,"
    "\nwhich also counts the pipeline's own threads and is steadier under other people's load. Medians of the rounds."
)
