"""
Title: Fine-tune a ResNet on a folder of images in one call
Description: kzoo.data.image_folder + kzoo.finetune on a folder of class-named subfolders, read in TensorBoard.
Model: resnet18 (or any registered classifier; pretrained when its weights are available)
Data: your folder (`--folder photos/`), or a demo folder of crops cut from scikit-learn's two sample photos.
Runtime: about 2 minutes on 2 CPU cores with the demo folder (`--quick`: seconds).
Tags: classification, fine-tuning, resnet, tensorboard, image folder
Figure: finetune_curves.png

## What this shows

The whole fine-tuning workflow of a kzoo user:

    model = kzoo.get("resnet18", num_classes=len(classes), input_shape=(64, 64, 3))
    data = kzoo.data.image_folder("photos/", model=model, augment=["flip", "crop"])
    kzoo.finetune(model, data, epochs=10, log_dir="runs/resnet_folder")

`image_folder` decodes PNG/JPEG of any size and colour into the model's input, splits off a
validation set with a seed, caches, shuffles, augments and prefetches; `finetune` compiles
with sensible defaults, logs to TensorBoard (scalars, samples with predictions, a confusion
matrix) and leaves the best epoch's weights in the model.

    python examples/finetune_resnet_folder.py                                 # demo folder
    python examples/finetune_resnet_folder.py --folder my_photos --model resnet50 --pretrained imagenet
    tensorboard --logdir runs/resnet_folder/tensorboard
"""

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

import kzoo
from kzoo.examples import save_figure

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--folder", default=None, help="folder/<class>/<images>; default: a demo folder")
parser.add_argument("--model", default="resnet18")
parser.add_argument("--pretrained", default=None, help="weights tag, e.g. imagenet (needs the download)")
parser.add_argument("--size", type=int, default=64)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs on 32x32 inputs, 20 crops a class")
parser.add_argument("--strategy", default=None, help="head/full/two-phase; default two-phase if pretrained, else full")
parser.add_argument("--log-dir", default=None, help="a new run directory; default a fresh temporary one")
parser.add_argument("--output-dir", default="runs/finetune_resnet_folder", help="the figure goes here")
args = parser.parse_args()
if args.quick:
    args.size, args.epochs = 32, 2

"""
## A folder of images

Without `--folder`, 80 crops of each of scikit-learn's two sample photos (a Chinese temple
and a flower) become a two-class folder, in JPEG and PNG, some of them grayscale.
"""

if args.folder is None:
    from sklearn.datasets import load_sample_images

    args.folder = tempfile.mkdtemp(prefix="kzoo_demo_photos_")
    rng = np.random.default_rng(0)
    for name, photo in zip(("temple", "flower"), load_sample_images().images):
        (Path(args.folder) / name).mkdir()
        for index in range(20 if args.quick else 80):
            side = int(rng.integers(80, 200))
            top, left = rng.integers(0, photo.shape[0] - side), rng.integers(0, photo.shape[1] - side)
            crop = Image.fromarray(photo[top : top + side, left : left + side])
            crop = crop.convert("L") if index % 5 == 0 else crop
            crop.save(Path(args.folder) / name / f"{index}.{'png' if index % 2 else 'jpg'}")
    print(f"demo folder: {args.folder}")

"""
## Model, data and fine-tuning
"""

classes, _ = kzoo.data.scan_image_folder(args.folder)
model = kzoo.get(
    args.model, pretrained=args.pretrained or False, num_classes=len(classes), input_shape=(args.size, args.size, 3)
)
data = kzoo.data.image_folder(args.folder, model=model, batch_size=16, augment=["flip", "crop"], seed=0)
print(f"{data.train_size} training and {data.validation_size} validation images of classes {list(classes)}")
log_dir = args.log_dir or tempfile.mkdtemp(prefix="kzoo_resnet_folder_")  # a new, empty run directory
strategy = args.strategy or ("two-phase" if args.pretrained else "full")
result = kzoo.finetune(
    model,
    data,
    epochs=args.epochs,
    strategy=strategy,
    log_dir=log_dir,
    verbose=2,
    jit_compile=False if args.quick else None,  # a smoke run skips the XLA compile
)

"""
## Result
"""

accuracy = max(result.history["val_accuracy"])
print(f"best validation accuracy {accuracy:.3f} (epoch {result.best_epoch}); run directory {result.log_dir}")
print(f"tensorboard --logdir {result.log_dir / 'tensorboard'}")

figure, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for axis, metric in zip(axes, ("loss", "accuracy")):
    axis.plot(result.epochs, result.history[metric], "--", label=f"training {metric}")
    axis.plot(result.epochs, result.history[f"val_{metric}"], "-", label=f"validation {metric}")
    axis.set(xlabel="epoch", title=f"{args.model} on {len(classes)} classes: {metric}")
    axis.legend()
save_figure(figure, args.output_dir, "finetune_curves.png")
