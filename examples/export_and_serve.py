"""
Title: Export a fine-tuned model to LiteRT int8 and ONNX, and serve it with their runtimes
Description: Fine-tune LeNet-5 on a folder of digit PNGs, export it to int8 LiteRT and ONNX, and serve held-out images.
Model: lenet5 (pretrained tag `mnist`)
Data: a folder of class-named subfolders of PNGs written from scikit-learn's UCI handwritten digits (no download).
Runtime: about 20 seconds on 2 CPU cores with the default flags; `--quick` about 15 seconds.
Tags: deployment, export, litert, onnx, int8, quantization, fine-tuning, image folder, lenet5, uci digits
Figure: export_and_serve.png

## What this shows

The last step of a project: from "my folder of photos" to files a phone or a server runs
without Keras. Four calls do it:

    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.image_folder("digits/", model=model)
    kzoo.finetune(model, data, epochs=8)
    kzoo.export(model, "digits_int8.tflite", format="litert", quantize="int8", calibration=data)
    kzoo.export(model, "digits.onnx", format="onnx")

`quantize="int8"` is LiteRT's full-integer post-training quantization: weights *and*
activations become int8, their ranges measured on training images (`calibration=data`
uses the training split). The file takes float32 raw 0-255 pixels like the Keras model.
Every export is run by its own runtime before it is written; `kzoo.export.load` gives the
same runtimes to your serving code:

    run = kzoo.export.load("digits_int8.tflite", threads=1)    # ai_edge_litert interpreter
    logits = run({"input_layer": images})[0]

The held-out images are written to a separate folder and read back from their PNG files:
they are never seen by training, by the validation split that picks the best epoch, or
by the calibration.

    python examples/export_and_serve.py                        # 60 training images per digit
    python examples/export_and_serve.py --per-class 20 --epochs 5
    python examples/export_and_serve.py --quick --output-dir /tmp/serve
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

import kzoo
from kzoo.examples import save_figure
from kzoo.export import input_names, load

"""
## Settings
"""

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--per-class", type=int, default=60, help="training images per digit written to the folder")
parser.add_argument("--held-out", type=int, default=500, help="images kept apart for the final comparison")
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--calls", type=int, default=200, help="timed single-image calls per runtime")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument(
    "--folder", default=None, help="where to write the digit folders (default: a temporary one, removed)"
)
parser.add_argument("--quick", action="store_true", help="20 images per digit, 2 epochs, 200 held out")
parser.add_argument("--output-dir", default="runs/export_and_serve", help="exported files and the figure go here")
args = parser.parse_args()
if args.quick:
    args.per_class, args.held_out, args.epochs, args.calls = 20, 200, 2, 50
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## A folder of digit photos, and a held-out folder

The 1,797 UCI digits (8x8 scans, framed 28x28 like MNIST) become PNG files in
`train/<digit>/` and `held_out/<digit>/`, as a user's own collection would look.
"""

images, labels = kzoo.data.load_uci_digits(size=28)
order = np.random.default_rng(args.seed).permutation(len(images))
held_out, rest = order[: args.held_out], order[args.held_out :]
training = np.concatenate([rest[labels[rest] == digit][: args.per_class] for digit in range(10)])
folder = Path(args.folder or tempfile.mkdtemp(prefix="kzoo_digit_photos_"))
for split, indices in (("train", training), ("held_out", held_out)):
    for index in indices:
        path = folder / split / str(labels[index]) / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(path)
print(f"wrote {len(training)} training and {len(held_out)} held-out PNGs under {folder}")

"""
## Fine-tune the pretrained LeNet-5 on the folder

The folder's classes are `0` ... `9`, in the order of the MNIST head, so all of the
pretrained weights are kept. The pipeline feeds raw 0-255 pixels: the model scales them.
"""

model = kzoo.get("lenet5", pretrained=True)
data = kzoo.data.image_folder(folder / "train", model=model, batch_size=32, validation_split=0.2, seed=args.seed)
result = kzoo.finetune(
    model,
    data,
    epochs=args.epochs,
    strategy="full",
    learning_rate=5e-4,
    verbose=2,
    jit_compile=False if args.quick else None,  # a smoke run skips the XLA compile
)
print(f"best validation accuracy {max(result.history['val_accuracy']):.3f} (epoch {result.best_epoch})")

"""
## Export: LiteRT int8 (calibrated on the training split) and ONNX
"""

# The .keras file of an uncompiled copy: the weights and the model's identity, no optimizer state.
keras_file = output_dir / "lenet5_digits.keras"
inference = type(model).from_config(model.get_config())
inference.set_weights(model.get_weights())
inference.save(keras_file)
litert = kzoo.export(
    model, output_dir / "lenet5_digits_int8.tflite", format="litert", quantize="int8", calibration=data, overwrite=True
)
onnx = kzoo.export(model, output_dir / "lenet5_digits.onnx", format="onnx", overwrite=True)
for exported in (litert, onnx):
    difference = exported.max_abs_difference
    print(f"{exported.path.name}: {exported.size_bytes:,} bytes, max |difference| to Keras {difference:.3g}")

"""
## Serve the held-out images with each runtime

The images are read back from their PNG files; each runtime gets one image per call,
the way a server answers requests (Keras: an eager `model(x)` call). Latency is the
median over `--calls` calls, with one thread for LiteRT and ONNX Runtime.
"""

paths = sorted((folder / "held_out").glob("*/*.png"))
x_test = np.stack([np.asarray(Image.open(p), np.float32)[..., None] for p in paths])
y_test = np.array([int(p.parent.name) for p in paths])
name = input_names(model)[0]
runtimes = {
    "Keras": lambda arrays: [model(arrays[name], training=False)],
    "LiteRT int8": load(litert.path, threads=1),
    "ONNX Runtime": load(onnx.path, threads=1),
}
sizes = {"Keras": keras_file.stat().st_size, "LiteRT int8": litert.size_bytes, "ONNX Runtime": onnx.size_bytes}
rows = []
for label, run in runtimes.items():
    predictions = np.array([np.argmax(run({name: x_test[i : i + 1]})[0]) for i in range(len(x_test))])
    times = []
    for i in range(args.calls):
        started = time.perf_counter()
        run({name: x_test[i % len(x_test) : i % len(x_test) + 1]})
        times.append(time.perf_counter() - started)
    rows.append((label, float(np.mean(predictions == y_test)), sizes[label], 1000 * float(np.median(times))))
print(f"\n{'runtime':<13} {'held-out accuracy':>17} {'file bytes':>11} {'ms / image':>10}")
for label, accuracy, size, milliseconds in rows:
    print(f"{label:<13} {accuracy:>17.4f} {size:>11,} {milliseconds:>10.3f}")

"""
## The table, plotted
"""

figure, axes = plt.subplots(1, 3, figsize=(12, 3.6))
names, colours = [r[0] for r in rows], ["tab:blue", "tab:orange", "tab:green"]
for axis, column, title, fmt in zip(
    axes,
    (1, 2, 3),
    (f"held-out accuracy ({len(x_test)} images)", "file size (KB)", "latency, 1 image, 1 thread (ms)"),
    ("{:.3f}", "{:.0f}", "{:.3f}"),
):
    values = [r[column] / (1024 if column == 2 else 1) for r in rows]
    bars = axis.bar(names, values, color=colours)
    axis.bar_label(bars, [fmt.format(v) for v in values], fontsize=9)
    axis.set_title(title, fontsize=10)
    axis.tick_params(axis="x", labelsize=9)
axes[0].set_ylim(min(r[1] for r in rows) - 0.05, 1.005)
axes[2].set_yscale("log")  # Keras' eager call is ~100x the runtimes'
figure.suptitle(f"LeNet-5 fine-tuned on {len(training)} digit PNGs: Keras vs LiteRT int8 vs ONNX", fontsize=11)
save_figure(figure, output_dir, "export_and_serve.png")
if args.folder is None:
    shutil.rmtree(folder)  # the demo photos; pass --folder DIR to keep them
