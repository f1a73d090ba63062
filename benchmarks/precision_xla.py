"""XLA on/off x float32/bfloat16 through ``kzoo.finetune``: which combination trains fastest here.

For each model (one of each family kzoo ships: convolutional, recurrent, transformer) this
times ``kzoo.finetune(..., strategy="full")`` on synthetic data of the model's input shape,
in one process, alternating the settings round by round, and prints train items/s (the best
round of each setting, from the second epoch's time, so compilation is left out) and each
ratio to float32 with XLA off. ``default`` is ``kzoo.finetune``'s own choice on this device
(``jit_compile=None, mixed_precision="auto"``), and the column says what it resolved to.

    python benchmarks/precision_xla.py                              # the family table
    python benchmarks/precision_xla.py --models lenet5 --batch 128 --steps 40 --rounds 3

The README's precision table and ``kzoo.finetune``'s defaults come from this script's
output; rerun it on another machine before trusting them there (the ratios are the point;
the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> builder arguments (input sizes kept small enough for 2 CPU cores).
MODELS = {
    "lenet5": {},
    "resnet18": {"input_shape": [96, 96, 3], "num_classes": 10},
    "unet_modern": {"input_shape": [96, 96, 1]},  # U-Net with 32 base filters, same padding, BatchNorm
    "bilstm_classifier": {},
    "bert_tiny_classifier": {},
}
# The four combinations run one batch per compiled call; "default" is kzoo.finetune's own
# choice of all three (precision, XLA, steps_per_execution). The ratios are to float32 with
# XLA off and one batch per call, which is what Keras itself defaults to on a CPU-only
# machine (its jit_compile="auto" turns XLA off there); kzoo's default before this table
# was float32 with XLA on.
SETTINGS = {
    "float32, XLA off": {"mixed_precision": None, "jit_compile": False, "steps_per_execution": 1},
    "float32, XLA on": {"mixed_precision": None, "jit_compile": True, "steps_per_execution": 1},
    "bfloat16, XLA off": {"mixed_precision": "mixed_bfloat16", "jit_compile": False, "steps_per_execution": 1},
    "bfloat16, XLA on": {"mixed_precision": "mixed_bfloat16", "jit_compile": True, "steps_per_execution": 1},
    "default": {},
}

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--models", default=",".join(MODELS), help="comma-separated registry names")
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--steps", type=int, default=12, help="batches per epoch (2 epochs per run)")
parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best is kept")
parser.add_argument("--kwargs", default=None, help="JSON builder arguments for every model (replaces the table's)")
parser.add_argument("--json", default=None, help="write the results here")
args = parser.parse_args()

import importlib  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kzoo  # noqa: E402
from kzoo import precision, registry  # noqa: E402

finetune_lib = importlib.import_module("kzoo.finetune")  # the module; kzoo.finetune is the function


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = [*getattr(self, "times", []), time.perf_counter() - self.started]


def dataset(model, spec) -> tf.data.Dataset:
    """``--steps`` batches of the model's sample inputs with random labels of its output's shape."""
    rng = np.random.default_rng(0)
    x = spec.sample_inputs(model, batch_size=args.batch * args.steps, seed=0)
    out = model.outputs[0].shape
    if out[-1] == 1:
        y = rng.integers(0, 2, size=(args.batch * args.steps, *out[1:])).astype("float32")
    else:
        y = rng.integers(0, out[-1], size=(args.batch * args.steps, *out[1:-1])).astype("int64")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch).cache()


def measure(name: str, kwargs: dict, setting: dict) -> tuple[float, str]:
    keras.utils.set_random_seed(0)
    model = kzoo.get(name, **kwargs)
    data = dataset(model, registry.spec(name))
    timer = EpochTimes()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("kzoo")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        kzoo.finetune(model, data, epochs=2, strategy="full", metrics=(), verbose=0, callbacks=[timer], **setting)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    resolved = finetune_lib.resolve_jit_compile(model, setting.get("jit_compile"))
    policy, _ = precision.resolve(
        setting.get("mixed_precision", "auto"), on_gpu=finetune_lib._on_gpu(), jit_compile=resolved
    )
    steps = finetune_lib.resolve_steps_per_execution(data, setting.get("steps_per_execution"))
    low = "bfloat16" if policy == "mixed_bfloat16" else policy or "float32"
    chosen = f"{low}, XLA {'on' if resolved else 'off'}, {steps} batches/call"
    del model
    keras.backend.clear_session()
    return args.batch * args.steps / timer.times[-1], chosen


names = [name.strip() for name in args.models.split(",") if name.strip()]
results: dict = {}
print(
    f"kzoo.finetune train items/s, batch {args.batch}, {args.steps} steps/epoch, best of {args.rounds} "
    f"alternating rounds; bfloat16 CPU flags: {precision.cpu_bf16_flags() or 'none'}; {os.cpu_count()} CPUs"
)
for name in names:
    kwargs = json.loads(args.kwargs) if args.kwargs else MODELS.get(name, {})
    best: dict[str, float] = {}
    chosen = ""
    for _ in range(args.rounds):
        for label, setting in SETTINGS.items():
            items, resolved = measure(name, kwargs, setting)
            best[label] = max(best.get(label, 0.0), items)
            chosen = resolved if label == "default" else chosen
    base = best["float32, XLA off"]
    results[name] = {"items_s": best, "default_is": chosen, "kwargs": kwargs}
    row = "  ".join(f"{label}: {items:7.1f} ({items / base:4.2f}x)" for label, items in best.items())
    print(f"{name:22} {row}   [default = {chosen}]", flush=True)
if args.json:
    with open(args.json, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=1)
