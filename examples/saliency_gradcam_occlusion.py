"""
Title: What does the network look at? Saliency, Grad-CAM and occlusion maps
Description: Three ways to explain a classifier's decision, on real images and real pretrained weights.
Model: lenet5 (pretrained `mnist`) on handwritten digits; vgg16 (ImageNet) on photos when its weights are cached.
Data: scikit-learn's UCI digits; scikit-learn's sample photos (china.jpg, flower.jpg) for `--model vgg16`.
Runtime: under a minute on 2 CPU cores for lenet5 (`--quick`: 2 digits, seconds).
Tags: classification, explainability, saliency, grad-cam, lenet5, uci digits
Figure: lenet5_saliency_gradcam_occlusion.png

## What this shows

- **Saliency** (Simonyan et al. 2013): the gradient of the class logit with respect to
  each input pixel; large where a small change would change the score most.
- **Grad-CAM** (Selvaraju et al. 2017): a convolutional layer's feature maps weighted by
  the average gradient of the class logit over each map; coarse, but class-specific.
- **Occlusion** (Zeiler & Fergus 2014): slide a grey patch over the image and record how
  much the probability of the predicted class drops; no gradients at all.

    python examples/saliency_gradcam_occlusion.py                          # lenet5 on 6 digits
    python examples/saliency_gradcam_occlusion.py --model vgg16 --layer block5_conv3

Each row of the saved figure is image | saliency | Grad-CAM | occlusion.
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

import kzoo

parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
parser.add_argument("--model", default="lenet5", choices=["lenet5", "vgg16"])
parser.add_argument("--layer", default=None, help="convolution for Grad-CAM (default: c3_conv / block5_conv3)")
parser.add_argument("--count", type=int, default=6, help="digits to explain (lenet5)")
parser.add_argument("--patch", type=int, default=None, help="occlusion patch side (default: image side / 7)")
parser.add_argument("--output-dir", default="runs/explain")
parser.add_argument("--quick", action="store_true", help="explain 2 digits only (lenet5)")
args = parser.parse_args()
if args.quick:
    args.count = 2
output_dir = Path(args.output_dir)
output_dir.mkdir(parents=True, exist_ok=True)

"""
## Model and images
"""

if args.model == "lenet5":
    # include_preprocessing=False: the graph takes preprocessed inputs, whose gradients the maps show.
    model = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)
    images, labels = kzoo.data.load_uci_digits()
    chosen = np.random.default_rng(0).choice(len(images), args.count, replace=False)
    raw = images[chosen, ..., None].astype("float32")
    layer_name = args.layer or "c3_conv"
else:
    from sklearn.datasets import load_sample_images

    try:
        model = kzoo.get("vgg16", pretrained=True, include_preprocessing=False)
    except kzoo.errors.KzooError as error:
        raise SystemExit(
            f"The ImageNet weights of vgg16 are not available here ({error}). Explaining a randomly "
            "initialised network would show nothing; run this on a machine that can download them."
        ) from None
    photos = load_sample_images().images
    raw = np.stack([keras.ops.convert_to_numpy(keras.ops.image.resize(p, (224, 224))) for p in photos])
    labels, chosen = None, np.arange(len(raw))
    layer_name = args.layer or "block5_conv3"
record = kzoo.registry.origin(model).weights
x = np.asarray(record.preprocessing(raw), "float32")
probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(x, verbose=0)))
predicted = probabilities.argmax(-1)
print("predicted:", predicted.tolist(), "confidence:", np.round(probabilities.max(-1), 3).tolist())
if labels is not None:
    print("true:     ", labels[chosen].tolist())

"""
## Saliency: |d logit / d pixel|
"""


def saliency(inputs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    inputs = tf.convert_to_tensor(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        logits = model(inputs, training=False)
        chosen_logits = tf.gather(logits, classes, batch_dims=1)
    return np.abs(tape.gradient(chosen_logits, inputs).numpy()).max(axis=-1)


"""
## Grad-CAM: feature maps weighted by their mean gradient
"""


def grad_cam(inputs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    # One model returning both the chosen layer's maps and the logits.
    probe = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])
    with tf.GradientTape() as tape:
        maps, logits = probe(inputs, training=False)
        chosen_logits = tf.gather(logits, classes, batch_dims=1)
    gradients = tape.gradient(chosen_logits, maps)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()
    return np.stack([np.asarray(Image.fromarray(c).resize(inputs.shape[2:0:-1], Image.BILINEAR)) for c in cams])


"""
## Occlusion: how much does hiding a patch cost?
"""


def occlusion(inputs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    side = inputs.shape[1]
    patch = args.patch or max(2, side // 7)
    grey = np.asarray(record.preprocessing(np.full((1, 1, 1, raw.shape[-1]), 127.5, "float32")))
    maps = np.zeros(inputs.shape[:3], "float32")
    counts = np.zeros(inputs.shape[1:3], "float32")
    stride = max(1, patch // 2)
    for top in range(0, side - patch + 1, stride):
        for left in range(0, inputs.shape[2] - patch + 1, stride):
            hidden = inputs.copy()
            hidden[:, top : top + patch, left : left + patch] = grey
            p = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(hidden, verbose=0)))
            drop = probabilities[np.arange(len(inputs)), classes] - p[np.arange(len(inputs)), classes]
            maps[:, top : top + patch, left : left + patch] += drop[:, None, None]
            counts[top : top + patch, left : left + patch] += 1
    return maps / np.maximum(counts, 1)


"""
## Figure
"""


def to_uint8(values: np.ndarray) -> np.ndarray:
    values = values - values.min()
    return (255 * values / max(values.max(), 1e-12)).astype(np.uint8)


panels = [saliency(x, predicted), grad_cam(x, predicted), occlusion(x, predicted)]
scale = max(1, 112 // raw.shape[1])
rows = []
for index in range(len(x)):
    picture = raw[index].astype(np.uint8)
    picture = picture[..., 0] if picture.shape[-1] == 1 else picture
    tiles = [Image.fromarray(picture).convert("RGB")] + [
        Image.fromarray(to_uint8(p[index])).convert("RGB") for p in panels
    ]
    rows.append(
        np.concatenate([np.asarray(t.resize((t.width * scale, t.height * scale), Image.NEAREST)) for t in tiles], 1)
    )
figure = output_dir / f"{args.model}_saliency_gradcam_occlusion.png"
Image.fromarray(np.concatenate(rows, axis=0)).save(figure)
print(f"wrote {figure} (rows: image | saliency | Grad-CAM on {layer_name} | occlusion)")
