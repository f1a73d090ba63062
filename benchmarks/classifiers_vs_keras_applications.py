"""Forward and train-step throughput of kzoo's VGG16 and ResNet50 against keras.applications.

Both models are built in the same process with the same weights, then timed on the same
random batch, with XLA on and off. Prints images/second for each and the ratio
kzoo / keras.applications (1.00 = same speed). Compile time is excluded (warm-up steps).

    python benchmarks/classifiers_vs_keras_applications.py                  # defaults: CPU-sized
    python benchmarks/classifiers_vs_keras_applications.py --size 224 --batch 32 --steps 20
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import kzoo

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--size", type=int, default=112, help="input side (224 is ImageNet's)")
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
parser.add_argument("--warmup", type=int, default=2)
parser.add_argument("--models", default="vgg16,resnet50")
args = parser.parse_args()

REFERENCES = {"vgg16": keras.applications.VGG16, "resnet50": keras.applications.ResNet50}


def throughput(model: keras.Model, x: np.ndarray, y: np.ndarray, *, train: bool, jit: bool) -> float:
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="sparse_categorical_crossentropy", jit_compile=jit)
    step = (lambda: model.train_on_batch(x, y)) if train else (lambda: model.predict_on_batch(x))
    for _ in range(args.warmup):
        step()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps * len(x) / (time.perf_counter() - started)


rng = np.random.default_rng(0)
x = rng.standard_normal((args.batch, args.size, args.size, 3)).astype("float32")
y = rng.integers(0, 1000, args.batch)
print(f"backend {keras.backend.backend()}, batch {args.batch}, {args.size}x{args.size}, {args.steps} timed steps")
print(f"{'model':<10} {'mode':<8} {'xla':<5} {'kzoo img/s':>11} {'keras.app img/s':>16} {'ratio':>6}")
for name in args.models.split(","):
    include_top = args.size == 224 or name != "vgg16"  # VGG's dense head needs 224x224
    reference = REFERENCES[name](weights=None, input_shape=(args.size, args.size, 3), include_top=include_top)
    ours = kzoo.get(name, input_shape=(args.size, args.size, 3), include_top=include_top)
    # VGG without its top: add the same pooled classifier to both so the train step has a loss.
    if not include_top:
        reference = keras.Sequential([reference, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1000)])
        ours = keras.Sequential([ours, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1000)])
    ours.set_weights(reference.get_weights())
    for mode in ("forward", "train"):
        for jit in (False, True):
            a = throughput(ours, x, y, train=mode == "train", jit=jit)
            b = throughput(reference, x, y, train=mode == "train", jit=jit)
            print(f"{name:<10} {mode:<8} {str(jit):<5} {a:>11.1f} {b:>16.1f} {a / b:>6.2f}")
