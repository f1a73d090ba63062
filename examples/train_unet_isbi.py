"""
Title: U-Net on the ISBI 2012 EM membranes (recipe of kzoo's `unet_modern.isbi2012` weights)
Description: Train a U-Net to separate cells from membranes in electron-microscopy slices, as in the U-Net paper.
Model: unet_modern (base_filters=16)
Data: ISBI 2012 EM segmentation challenge, 30 labelled 512x512 slices from the shared data directory.
Runtime: about 2 minutes on one GPU (KERAS_BACKEND=jax); `--quick` checks the script in under a minute on CPU.
Tags: segmentation, u-net, electron microscopy, isbi 2012
Figure: slice25_image_mask_prediction.png
Shared-data: isbi2012_em

## What this shows

The U-Net paper won the ISBI 2012 challenge with 30 training slices, heavy elastic
augmentation and a pixel-weighted cross-entropy that makes the thin membranes between
touching cells count. This recipe does the same with kzoo's pieces:

- `kzoo.segmentation.unet_weight_map`: the paper's border weights (w0=10, sigma=5);
- `kzoo.segmentation.augmentation`: flips, rotations and elastic deformation applied
  identically to image, mask and weight map;
- `kzoo.segmentation.predict_tiled`: the overlap-tile strategy, so the 256x256 network
  segments whole 512x512 slices;
- held-out slices 25-29 (never trained on) measure foreground IoU and pixel error.

The data pipeline is NumPy + `keras.utils.PyDataset`, so the script runs on any Keras
backend: `KERAS_BACKEND=jax` on a GPU machine without TensorFlow, or TensorFlow on CPU.

    python examples/train_unet_isbi.py --output-dir runs/unet            # train + evaluate + figures
    python examples/train_unet_isbi.py --publish                         # ... and ship the weights
    python examples/train_unet_isbi.py --quick --output-dir /tmp/unet    # a short check
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from PIL import Image

import kzoo
from kzoo import segmentation
from kzoo import weights as kzoo_weights
from kzoo.examples import write_metrics

"""
## Settings
"""

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--steps-per-epoch", type=int, default=50)
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--crop", type=int, default=256, help="training tile size (the network's input)")
parser.add_argument("--base-filters", type=int, default=16)
parser.add_argument("--learning-rate", type=float, default=2e-3)
parser.add_argument("--validation-slices", type=int, default=5, help="last N slices held out")
parser.add_argument("--seed", type=int, default=2015)
parser.add_argument("--output-dir", default="runs/unet_isbi")
parser.add_argument("--log-dir", default=None, help="TensorBoard logs with prediction images (TensorFlow backend)")
parser.add_argument("--quick", action="store_true", help="2 short epochs on 4 slices, on CPU; never publishes")
parser.add_argument("--publish", action="store_true", help="write the weights and manifest entry to zoo_weights/")
args = parser.parse_args()
if args.quick:
    args.epochs, args.steps_per_epoch, args.batch_size, args.publish = 2, 3, 2, False

keras.utils.set_random_seed(args.seed)
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Data: 25 slices to train on, 5 held out

The weight maps are computed once per slice (about a second each). During training
every example is a random crop whose image, mask and weights are augmented together.
"""

images, masks = kzoo.data.load_isbi2012("train")
split = len(images) - args.validation_slices
preprocessing = kzoo_weights.Preprocessing(scale=1.0 / 255.0, channel_order="grayscale")
started = time.perf_counter()
trained = min(split, 4) if args.quick else split  # the weight maps take most of a quick run
weight_maps = np.stack([segmentation.unet_weight_map(m) for m in masks[:trained]])
print(f"weight maps for {trained} slices in {time.perf_counter() - started:.0f} s")


class RandomTiles(keras.utils.PyDataset):
    """Random augmented crops: (image, mask, pixel weights) batches."""

    def __init__(self, steps: int, seed: int) -> None:
        super().__init__()
        self.steps, self.rng = steps, np.random.default_rng(seed)
        self.augment = segmentation.augmentation(seed=seed)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int):
        picks = self.rng.integers(0, trained, args.batch_size)
        tops = self.rng.integers(0, 512 - args.crop + 1, args.batch_size)
        lefts = self.rng.integers(0, 512 - args.crop + 1, args.batch_size)
        window = [np.s_[p, t : t + args.crop, c : c + args.crop] for p, t, c in zip(picks, tops, lefts)]
        x = np.stack([preprocessing(images[w].astype("float32")) for w in window])[..., None]
        w = np.stack([weight_maps[s] for s in window])[..., None]
        y = np.stack([masks[s] for s in window])[..., None].astype("float32")
        # Weights ride along as a second image channel so they move with the pixels.
        out = self.augment({"images": np.concatenate([x, w], axis=-1), "segmentation_masks": y}, training=True)
        both = keras.ops.convert_to_numpy(out["images"])
        mask = keras.ops.convert_to_numpy(out["segmentation_masks"])
        return both[..., :1], (mask > 0.5).astype("float32"), np.maximum(both[..., 1], 0.0)


# Validation during training: the four 256x256 quadrants of each held-out slice.
half = 256
quadrants = [
    np.s_[s, r : r + half, c : c + half] for s in range(split, len(images)) for r in (0, 256) for c in (0, 256)
]
x_val = np.stack([preprocessing(images[q].astype("float32")) for q in quadrants])[..., None]
y_val = np.stack([masks[q] for q in quadrants])[..., None].astype("float32")

"""
## Model and training

The paper's loss: cross-entropy on logits with the weight map as per-pixel sample weights.
"""

model = kzoo.get("unet_modern", input_shape=(args.crop, args.crop, 1), base_filters=args.base_filters)
schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, args.epochs * args.steps_per_epoch, alpha=0.05)
model.compile(
    optimizer=keras.optimizers.Adam(schedule),
    loss=keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=segmentation.segmentation_metrics(1),
    jit_compile=not args.quick,  # a smoke run skips the XLA compile (test_models compiles each model)
)
callbacks = []
if args.log_dir:
    callbacks.append(kzoo.callbacks.TensorBoard(args.log_dir, samples=(x_val[:4], y_val[:4]), histogram_freq=0))
started = time.perf_counter()
history = model.fit(
    RandomTiles(args.steps_per_epoch, args.seed),
    validation_data=(x_val, y_val),
    epochs=args.epochs,
    callbacks=callbacks,
    verbose=2,
)
train_seconds = time.perf_counter() - started

"""
## Evaluation on the 5 held-out slices, whole, with the overlap-tile strategy
"""

scores, figures = [], []
for index in range(split, len(images)):
    logits = segmentation.predict_tiled(model, preprocessing(images[index].astype("float32")))[..., 0]
    prediction = logits > 0.0
    scores.append(
        (segmentation.foreground_iou(masks[index], prediction), segmentation.pixel_error(masks[index], prediction))
    )
    figures.append(np.concatenate([images[index], masks[index] * 255, prediction * 255], axis=1).astype(np.uint8))
iou, error = (float(np.mean(v)) for v in zip(*scores))
print(f"held-out slices {split}-{len(images) - 1}: foreground IoU {iou:.4f}, pixel error {error:.4f}")
print(f"({train_seconds:.0f} s of training on {keras.backend.backend()})")
metrics = {"foreground_iou": round(iou, 4), "pixel_error": round(error, 4)}
write_metrics(output_dir, {"unet_modern.isbi2012": metrics})  # what `kzoo reproduce unet_modern:isbi2012` reads
for number, figure in zip(range(split, len(images)), figures):
    Image.fromarray(figure).save(output_dir / f"slice{number}_image_mask_prediction.png")

inference = kzoo.get("unet_modern", input_shape=(args.crop, args.crop, 1), base_filters=args.base_filters)
inference.set_weights(model.get_weights())
weights_path = output_dir / "unet_modern_isbi2012.weights.h5"
inference.save_weights(weights_path)
summary = {"foreground_iou": iou, "pixel_error": error, "per_slice": scores, "train_seconds": train_seconds}
(output_dir / "summary.json").write_text(json.dumps({**summary, "args": vars(args)}, indent=2))
print(f"wrote {weights_path} and figures in {output_dir}")

"""
## Publishing (maintainers)
"""

if args.publish:
    target = kzoo_weights.publish_file(weights_path)
    record = kzoo_weights.WeightsRecord(
        model="unet_modern",
        tag="isbi2012",
        file=target.name,
        sha256=kzoo_weights.file_hashes(target)["sha256"],
        size=target.stat().st_size,
        format="keras",
        dataset=f"ISBI 2012 EM segmentation, training slices 0-{split - 1} (Cardona et al. 2010)",
        metrics=metrics,
        eval_split=f"ISBI 2012 training slices {split}-{len(images) - 1}, held out, whole 512x512 slices (tiled)",
        num_classes=1,
        class_names=("cell",),
        input_shape=(args.crop, args.crop, 1),
        include_top=True,
        preprocessing=preprocessing,
        license="Weights trained by kzoo; data without explicit licence (cite Cardona et al. 2010 and "
        "Arganda-Carreras et al. 2015)",
        source="kzoo",
        recipe="examples/train_unet_isbi.py " + " ".join(sys.argv[1:]),
        default=True,
        builder_kwargs={"base_filters": args.base_filters},
        notes=f"trained in {train_seconds:.0f} s on the {keras.backend.backend()} backend",
    )
    kzoo_weights.write_manifest_entry(record)
    print(f"published {target}")
