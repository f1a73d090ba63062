"""Segmentation tools: losses, metrics, the U-Net weight map, tiled inference, augmentation.

Everything here works on logits by default (as kzoo's heads output them): one channel
for binary segmentation (sigmoid), ``C`` channels for ``C`` classes (softmax), with
integer masks of shape ``(batch, height, width)`` or ``(batch, height, width, 1)``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import keras
import numpy as np
from keras import ops

from kzoo.errors import InvalidArgumentError, expected_received


def _probabilities_and_targets(y_true: Any, y_pred: Any, from_logits: bool) -> tuple[Any, Any]:
    """Per-class probabilities and one-hot targets, both (batch, pixels, classes)."""
    y_pred = ops.cast(y_pred, "float32")
    classes = y_pred.shape[-1]
    batch = ops.shape(y_pred)[0]
    if classes == 1:
        probabilities = ops.sigmoid(y_pred) if from_logits else y_pred
        targets = ops.reshape(ops.cast(y_true, "float32"), ops.shape(probabilities))
    else:
        probabilities = ops.softmax(y_pred, axis=-1) if from_logits else y_pred
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(probabilities)[:-1])
        targets = ops.one_hot(labels, classes)
    return ops.reshape(probabilities, (batch, -1, classes)), ops.reshape(targets, (batch, -1, classes))


@keras.saving.register_keras_serializable(package="kzoo")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss, ``1 - (2|P∩T| + s) / (|P| + |T| + s)`` per image, averaged over classes.

    ``keras.losses.Dice`` exists but takes probabilities of a single class; this one takes
    logits (``from_logits=True``), integer masks and several classes.

    Args:
        from_logits: ``y_pred`` are logits (sigmoid for one channel, softmax for more).
        smooth: Added to numerator and denominator; keeps empty masks defined.
        name: Loss name.
    """

    def __init__(self, from_logits: bool = True, smooth: float = 1.0, name: str = "dice_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.from_logits, self.smooth = from_logits, smooth

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probabilities, targets = _probabilities_and_targets(y_true, y_pred, self.from_logits)
        overlap = ops.sum(probabilities * targets, axis=1)
        total = ops.sum(probabilities, axis=1) + ops.sum(targets, axis=1)
        return 1.0 - ops.mean((2.0 * overlap + self.smooth) / (total + self.smooth), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="kzoo")
class JaccardLoss(keras.losses.Loss):
    """Soft Jaccard (IoU) loss, ``1 - (|P∩T| + s) / (|P∪T| + s)`` per image, averaged over classes.

    Args:
        from_logits: ``y_pred`` are logits.
        smooth: Added to numerator and denominator.
        name: Loss name.
    """

    def __init__(
        self, from_logits: bool = True, smooth: float = 1.0, name: str = "jaccard_loss", **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.from_logits, self.smooth = from_logits, smooth

    def call(self, y_true: Any, y_pred: Any) -> Any:
        probabilities, targets = _probabilities_and_targets(y_true, y_pred, self.from_logits)
        overlap = ops.sum(probabilities * targets, axis=1)
        union = ops.sum(probabilities, axis=1) + ops.sum(targets, axis=1) - overlap
        return 1.0 - ops.mean((overlap + self.smooth) / (union + self.smooth), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="kzoo")
class SparseFocalLoss(keras.losses.Loss):
    """Focal loss (Lin et al. 2017) for integer masks: Keras' focal losses wrapped for
    sparse labels (binary for one logit channel, categorical for more).

    Args:
        gamma: Focusing parameter; 0 gives plain cross-entropy.
        from_logits: ``y_pred`` are logits.
        name: Loss name.
    """

    def __init__(self, gamma: float = 2.0, from_logits: bool = True, name: str = "focal_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.gamma, self.from_logits = gamma, from_logits
        self._binary = keras.losses.BinaryFocalCrossentropy(gamma=gamma, from_logits=from_logits, reduction=None)
        self._categorical = keras.losses.CategoricalFocalCrossentropy(
            gamma=gamma, alpha=1.0, from_logits=from_logits, reduction=None
        )

    def call(self, y_true: Any, y_pred: Any) -> Any:
        classes = y_pred.shape[-1]
        if classes == 1:
            targets = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
            per_pixel = self._binary(targets, y_pred)
        else:
            labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
            per_pixel = self._categorical(ops.one_hot(labels, classes), y_pred)
        return ops.mean(ops.reshape(per_pixel, (ops.shape(y_pred)[0], -1)), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "from_logits": self.from_logits}


def segmentation_metrics(num_classes: int) -> list:
    """Keras metrics for logits: IoU of the foreground (binary) or mean IoU, and pixel accuracy."""
    if num_classes == 1:
        # threshold 0 on logits == probability 0.5
        return [
            keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.0, name="foreground_iou"),
            keras.metrics.BinaryAccuracy(threshold=0.0, name="pixel_accuracy"),
        ]
    return [
        keras.metrics.MeanIoU(num_classes=num_classes, sparse_y_pred=False, name="mean_iou"),
        keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
    ]


def foreground_iou(mask: np.ndarray, prediction: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    mask, prediction = np.asarray(mask, bool), np.asarray(prediction, bool)
    union = np.logical_or(mask, prediction).sum()
    return 1.0 if union == 0 else float(np.logical_and(mask, prediction).sum() / union)


def pixel_error(mask: np.ndarray, prediction: np.ndarray) -> float:
    """Fraction of pixels labelled wrongly (the ISBI 2012 challenge's pixel error)."""
    return float(np.mean(np.asarray(mask, bool) != np.asarray(prediction, bool)))


def unet_weight_map(mask: np.ndarray, *, w0: float = 10.0, sigma: float = 5.0, balance: bool = True) -> np.ndarray:
    """The U-Net paper's pixel weights: ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``.

    ``d1`` and ``d2`` are the distances to the nearest and second-nearest object (connected
    component of the foreground); the border term is added on background pixels, so thin
    separations between touching objects weigh most. ``w_c`` balances the class frequencies.

    Args:
        mask: Boolean ``(height, width)``: True on objects (cells), False on background (membranes).
        w0: Border weight (paper: 10).
        sigma: Border width in pixels (paper: about 5).
        balance: Add class-balancing weights ``w_c`` (inverse class frequency, mean 1).

    Returns:
        float32 ``(height, width)`` weights.
    """
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise InvalidArgumentError(expected_received("mask", "a 2-D boolean array", f"shape {mask.shape}"))
    weights = np.ones(mask.shape, np.float32)
    if balance:
        foreground = mask.mean()
        if 0 < foreground < 1:
            weights = np.where(mask, 0.5 / foreground, 0.5 / (1 - foreground)).astype(np.float32)
    labels, count = ndimage.label(mask)
    if count >= 2:
        # Distance of every pixel to each object; keep the two smallest per pixel.
        nearest = np.full(mask.shape, np.inf, np.float32)
        second = np.full(mask.shape, np.inf, np.float32)
        for index in range(1, count + 1):
            distance = ndimage.distance_transform_edt(labels != index).astype(np.float32)
            second = np.minimum(second, np.maximum(nearest, distance))
            nearest = np.minimum(nearest, distance)
        border = w0 * np.exp(-((nearest + second) ** 2) / (2 * sigma**2))
        weights = weights + np.where(mask, 0.0, border).astype(np.float32)
    return weights


def predict_tiled(
    model: keras.Model, image: np.ndarray, *, overlap: int | None = None, batch_size: int = 4
) -> np.ndarray:
    """Segments an image of any size tile by tile (the U-Net paper's overlap-tile strategy).

    The image is mirrored at its borders, cut into tiles of the model's input size, and the
    outputs are stitched. For a valid-padded model the output of each tile is its centre,
    so stitching is exact. For a same-padded model the outer ``overlap / 2`` pixels of each
    output tile (which saw zero padding) are dropped and the tiles overlap by ``overlap``.

    Args:
        model: A model with a fixed square-or-rectangular input size (``kzoo.get("unet")``).
        image: ``(height, width, channels)`` or ``(height, width)``, already preprocessed:
            finite numbers, at least one pixel.
        overlap: Pixels by which neighbouring tiles overlap (same-padded models; default
            an eighth of the tile, rounded to even). Ignored for valid-padded models.
        batch_size: Tiles per forward pass, a positive int.

    Returns:
        ``(height, width, output channels)`` float32 model outputs.

    Raises:
        InvalidArgumentError: ``batch_size`` is not a positive int; ``overlap`` is not an
            even int in ``[0, output tile size)``; the model's input size is not fixed; the
            image is not numbers, holds NaN or infinity, has no pixels, or does not have the
            model's channel count. All are checked before any tile is predicted.
    """
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidArgumentError(
            expected_received("batch_size", "a positive int (tiles per forward pass)", batch_size, "For example 4.")
        )
    if overlap is not None and (not isinstance(overlap, (int, np.integer)) or isinstance(overlap, bool)):
        raise InvalidArgumentError(
            expected_received("overlap", "an even number of pixels (an int), or None for the default", overlap)
        )
    raw, image = np.asarray(image), None
    # NumPy would turn None in an object array into NaN: such an array must hold numbers only.
    if raw.dtype.kind in "biuf" or (
        raw.dtype.kind == "O" and all(isinstance(v, (numbers.Real, np.bool_)) for v in raw.flat)
    ):
        image = raw.astype(np.float32)
    if image is None:
        raise InvalidArgumentError(
            expected_received("image", "numbers (an array of pixels)", f"an array of dtype {raw.dtype}")
        )
    if image.ndim == 2:
        image = image[..., None]
    in_h, in_w, in_c = model.inputs[0].shape[1:]
    out_h, out_w = model.outputs[0].shape[1:3]
    if None in (in_h, in_w, out_h, out_w):
        raise InvalidArgumentError(
            expected_received("model", "a fixed input size (build it with input_shape=...)", model.inputs[0].shape)
        )
    if image.ndim != 3 or image.shape[-1] != in_c:
        raise InvalidArgumentError(expected_received("image", f"(height, width, {in_c})", f"shape {image.shape}"))
    if not image.shape[0] or not image.shape[1]:
        raise InvalidArgumentError(
            expected_received("image", f"at least one pixel, shape (height, width, {in_c})", f"shape {image.shape}")
        )
    finite = np.isfinite(image)
    if not finite.all():
        row, col, _ = (int(i) for i in np.argwhere(~finite)[0])
        raise InvalidArgumentError(
            expected_received(
                "image",
                "finite values",
                f"{image[row, col][~finite[row, col]][0]} at pixel ({row}, {col}) ({int((~finite).sum())} in all)",
                "Repair the image (e.g. np.nan_to_num) before predicting.",
            )
        )
    same = (in_h, in_w) == (out_h, out_w)
    if overlap is None:
        overlap = 2 * (min(in_h, in_w) // 16) if same else 0
    if overlap % 2 or overlap < 0 or overlap >= min(out_h, out_w):
        raise InvalidArgumentError(
            expected_received("overlap", f"an even number of pixels in [0, {min(out_h, out_w)})", overlap)
        )
    crop = overlap // 2
    core_h, core_w = out_h - 2 * crop, out_w - 2 * crop  # pixels each tile contributes
    margin_h, margin_w = (in_h - out_h) // 2 + crop, (in_w - out_w) // 2 + crop
    height, width = image.shape[:2]
    rows, cols = math.ceil(height / core_h), math.ceil(width / core_w)
    padded = np.pad(
        image,
        (
            (margin_h, rows * core_h - height + in_h - core_h - margin_h),
            (margin_w, cols * core_w - width + in_w - core_w - margin_w),
            (0, 0),
        ),
        mode="symmetric",
    )
    positions = [(r, c) for r in range(rows) for c in range(cols)]
    tiles = np.stack([padded[r * core_h : r * core_h + in_h, c * core_w : c * core_w + in_w] for r, c in positions])
    outputs = np.asarray(model.predict(tiles, batch_size=batch_size, verbose=0), np.float32)
    result = np.zeros((rows * core_h, cols * core_w, outputs.shape[-1]), np.float32)
    for (r, c), output in zip(positions, outputs):
        result[r * core_h : (r + 1) * core_h, c * core_w : (c + 1) * core_w] = output[
            crop : crop + core_h, crop : crop + core_w
        ]
    return result[:height, :width]


def augmentation(
    *, flip: bool = True, rotation: float = 0.5, elastic: float = 1.0, seed: int | None = None
) -> keras.Sequential:
    """Mask-aware augmentation: the same random transform moves the image and its mask.

    Call it on ``{"images": x, "segmentation_masks": m}``. Masks are resampled with
    nearest-neighbour interpolation by Keras, so labels stay labels.

    Args:
        flip: Random horizontal and vertical flips.
        rotation: Random rotation as a fraction of a full turn (0 for none).
        elastic: Strength of the random elastic deformation, the paper's main augmentation
            (0 for none); passed to ``keras.layers.RandomElasticTransform`` as ``factor``.
        seed: Random seed.
    """
    layers = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal_and_vertical", seed=seed))
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed))
    if elastic:
        layers.append(keras.layers.RandomElasticTransform(factor=elastic, scale=0.1, seed=seed))
    return keras.Sequential(layers, name="segmentation_augmentation")
