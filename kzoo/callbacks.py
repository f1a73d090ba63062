"""Training callbacks: TensorBoard views, crash-safe checkpoints, resume, a NaN guard, a time-to-accuracy timer.

:func:`default_callbacks` assembles the set :func:`kzoo.finetune` uses; each class also works
on its own with any ``keras.Model.fit``.

Every file these callbacks write goes to a unique temporary file in the destination's
directory first and is then renamed over the destination with :func:`os.replace`, which is
atomic on POSIX and Windows: a process killed mid-write leaves the previous checkpoint intact.
Weights that contain NaN or infinity are never written.

Example:
    >>> import kzoo
    >>> import kzoo.callbacks
    >>> model = kzoo.get("lenet5", num_classes=10)
    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    >>> callbacks = kzoo.callbacks.default_callbacks("runs/lenet5", patience=3)
    >>> model.fit(x, y, validation_split=0.1, epochs=10, callbacks=callbacks)
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from kzoo import atomic, lora
from kzoo.errors import InvalidArgumentError, expected_received, import_tensorflow

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger("kzoo")


def _tf() -> Any:
    return import_tensorflow("kzoo.callbacks.TensorBoard (tf.summary)")


# Substrings of metric names that are better when larger ("val_accuracy", "auc", "mean_iou").
_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "iou", "dice", "top_k")


# ---------------------------------------------------------------------------------------------
# Helpers: finiteness checks and atomic writes.
# ---------------------------------------------------------------------------------------------


def _is_finite_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _weights_are_finite(model: keras.Model) -> bool:
    """Whether every floating-point weight of ``model`` is finite (checked on the device)."""
    for variable in model.weights:
        if "float" not in keras.backend.standardize_dtype(variable.dtype):
            continue  # integer state (seed generators, counters) cannot be NaN
        if not bool(keras.ops.all(keras.ops.isfinite(variable))):
            return False
    return True


def _is_remote(path: str) -> bool:
    return "://" in path


def _higher_is_better(monitor: str, mode: str) -> bool:
    if mode != "auto":
        return mode == "max"
    name = monitor.removeprefix("val_").lower()
    return any(part in name for part in _HIGHER_IS_BETTER)


# ---------------------------------------------------------------------------------------------
# NaNGuard
# ---------------------------------------------------------------------------------------------


class NaNGuard(keras.callbacks.Callback):
    """Stops training in the batch whose loss becomes NaN or infinite.

    Under ``steps_per_execution=N`` (which :func:`kzoo.finetune` picks for small epochs) Keras
    calls batch hooks once per execution of N batches, with the last batch's logs: the guard
    then stops within that execution, and ``triggered_at`` names its last batch.

    ``keras.callbacks.TerminateOnNaN`` stops the same way but only prints to stdout; this
    callback also records where it happened (``triggered_at``) and logs one warning on the
    ``"kzoo"`` logger, so :func:`kzoo.finetune` and its users can report it. Put it first in
    the callback list, so that no later callback sees the NaN batch as a normal one.

    Args:
        monitor: The batch log entry to watch.

    Attributes:
        triggered_at: ``(epoch, batch)`` of the first non-finite value in the last ``fit``, or
            ``None``.

    Example:
        >>> import kzoo.callbacks
        >>> guard = kzoo.callbacks.NaNGuard()
        >>> model.fit(x, y, epochs=5, callbacks=[guard])
        >>> guard.triggered_at
        (2, 17)
    """

    def __init__(self, *, monitor: str = "loss"):
        super().__init__()
        self.monitor = monitor
        self.triggered_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.triggered_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.triggered_at is not None or not isinstance(logs, Mapping) or self.monitor not in logs:
            return
        value = logs[self.monitor]
        if _is_finite_number(value):
            return
        self.triggered_at = (self._epoch, batch)
        self.model.stop_training = True
        logger.warning(
            "Training stopped: %s became %s at epoch %d, batch %d. Lower the learning rate, check the "
            "data for NaN/inf values, or enable gradient clipping (e.g. optimizer clipnorm=1.0).",
            self.monitor,
            float(value),
            self._epoch,
            batch,
        )


# ---------------------------------------------------------------------------------------------
# AtomicCheckpoint
# ---------------------------------------------------------------------------------------------


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model's weights at epoch end without ever corrupting the previous file.

    Like ``keras.callbacks.ModelCheckpoint(save_weights_only=True)``, but Keras writes
    straight onto the destination, so a crash or a full disk mid-write destroys the best
    checkpoint so far. Here the weights go to a unique temporary file beside ``filepath`` and
    are renamed over it once complete. Nothing is saved when the monitored value is missing,
    NaN or infinite, or when any weight is non-finite.

    Args:
        filepath: Destination, ending in ``.weights.h5``. Its directory is created if needed.
        monitor: The epoch log entry that decides what "best" is.
        mode: ``"min"``, ``"max"``, or ``"auto"``: ``"max"`` for accuracy-like names
            (accuracy, auc, precision, recall, f1, iou, dice, top_k), ``"min"`` otherwise.
        save_best_only: Save only when ``monitor`` improves; otherwise every epoch.
        verbose: ``1`` logs each save on the ``"kzoo"`` logger.

    Each improvement is also recorded in ``<filepath>.json`` (monitor, value, epoch). A ``fit``
    that starts at an epoch above 0 (resumed by :class:`BackupAndRestore` or given
    ``initial_epoch``) continues that record, so a resumed run never replaces its best
    checkpoint with a worse one; a ``fit`` starting at epoch 0 is a new run and starts afresh.

    Attributes:
        best: The best monitored value saved so far (``None`` before the first save).
        best_epoch: The epoch (0-based) it was reached in.

    Example:
        >>> import kzoo.callbacks
        >>> checkpoint = kzoo.callbacks.AtomicCheckpoint("runs/a/best.weights.h5", monitor="val_accuracy")
        >>> model.fit(x, y, validation_split=0.1, epochs=5, callbacks=[checkpoint])
        >>> model.load_weights(checkpoint.filepath)
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        *,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best_only: bool = True,
        verbose: int = 0,
    ):
        super().__init__()
        filepath = os.fspath(filepath)
        if not filepath.endswith(".weights.h5"):
            raise InvalidArgumentError(
                expected_received(
                    "filepath",
                    "a path ending in '.weights.h5'",
                    filepath,
                    f"Use {os.path.splitext(filepath)[0]}.weights.h5 (Keras saves weights only to such names).",
                )
            )
        if mode not in ("auto", "min", "max"):
            raise InvalidArgumentError(expected_received("mode", "'auto', 'min' or 'max'", mode))
        self.filepath = filepath
        self.monitor = monitor
        self.mode = mode
        self.save_best_only = save_best_only
        self.verbose = verbose
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._higher_is_better = _higher_is_better(monitor, mode)
        self._record_path = filepath + ".json"
        self._first_epoch_pending = True

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self._higher_is_better else value < self.best

    def on_train_begin(self, logs=None):
        self._first_epoch_pending = True

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch_pending:
            return
        self._first_epoch_pending = False
        if epoch > 0 and self.best is None:
            self._continue_record(epoch)

    def _continue_record(self, epoch: int) -> None:
        """Takes ``best`` from the record a killed process left, if it is about this monitor."""
        try:
            with open(self._record_path, encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return
        if record.get("monitor") == self.monitor and _is_finite_number(record.get("best")):
            if isinstance(record.get("epoch"), int) and record["epoch"] < epoch:
                self.best, self.best_epoch = float(record["best"]), record["epoch"]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            logger.warning(
                "AtomicCheckpoint: not saving epoch %d, %r is not among the logged values %s.",
                epoch,
                self.monitor,
                sorted(logs),
            )
            return
        value = logs[self.monitor]
        if not _is_finite_number(value):
            logger.warning("AtomicCheckpoint: not saving epoch %d, %s is %s.", epoch, self.monitor, value)
            return
        value = float(value)
        improved = self._improves(value)
        if self.save_best_only and not improved:
            return
        if not _weights_are_finite(self.model):
            logger.warning("AtomicCheckpoint: not saving epoch %d, the weights contain NaN or inf.", epoch)
            return
        atomic.save_weights(self.model, self.filepath)
        if improved:
            self.best, self.best_epoch = value, epoch
            record = {"monitor": self.monitor, "best": value, "epoch": epoch}
            atomic.write_text(self._record_path, json.dumps(record))
        if self.verbose:
            logger.info("AtomicCheckpoint: epoch %d, %s=%.6g, saved %s", epoch, self.monitor, value, self.filepath)


# ---------------------------------------------------------------------------------------------
# BackupAndRestore
# ---------------------------------------------------------------------------------------------


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore``, made crash-safe and NaN-proof.

    Keras (3.15) writes ``latest.weights.h5`` and ``training_metadata.json`` in place, so a
    process killed mid-write leaves a truncated file and the run cannot resume. This subclass
    keeps Keras' resume logic and file layout but writes each file atomically (temporary file,
    then :func:`os.replace`), weights before metadata: a kill between the two renames at worst
    repeats one epoch, never skips one. A backup whose weights contain NaN or infinity is
    skipped (the last good one stays), and a run that ends with non-finite weights keeps its
    backup instead of deleting it, so it can be resumed from the last good state. A model with
    LoRA resumes with its factors and frozen kernels as they were (see :mod:`kzoo.lora`).

    Args:
        backup_dir: Directory for the backup; used by this callback alone.
        save_freq: ``"epoch"`` or a number of batches between backups.
        double_checkpoint: Also keep the previous backup (``*.bkp``) as a fallback.
        delete_checkpoint: Delete the backup when training ends normally.

    Example:
        >>> import kzoo.callbacks
        >>> backup = kzoo.callbacks.BackupAndRestore("runs/a/backup")
        >>> model.fit(x, y, epochs=10, callbacks=[backup])  # killed at epoch 4 ...
        >>> model.fit(x, y, epochs=10, callbacks=[backup])  # ... resumes at epoch 4
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: str | int = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ):
        super().__init__(
            os.fspath(backup_dir),
            save_freq=save_freq,
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )

    def _save_model(self):
        if not _weights_are_finite(self.model):
            logger.warning(
                "BackupAndRestore: skipping the backup after epoch %d, the weights contain NaN or inf; "
                "the last good backup in %s stays.",
                self._current_epoch - 1,
                self.backup_dir,
            )
            return
        if _is_remote(self.backup_dir):
            # os.replace cannot rename on object stores (gs://, s3://), whose uploads are
            # all-or-nothing anyway: Keras' own writer is the right one there.
            super()._save_model()
            return
        if self.double_checkpoint:
            for current, previous in (
                (self._weights_path, self._prev_weights_path),
                (self._training_metadata_path, self._prev_training_metadata_path),
            ):
                if os.path.exists(current):
                    atomic.copy(current, previous)
        atomic.save_weights(self.model, self._weights_path)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        atomic.write_text(self._training_metadata_path, json.dumps(metadata))

    def _load_model(self):
        super()._load_model()
        # Keras' load_weights zeroes LoRA factors (it keeps only merged kernels); put them back.
        if os.path.exists(self._weights_path) and not _is_remote(self.backup_dir):
            lora.restore_factors(self.model, self._weights_path)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and not _weights_are_finite(self.model):
            logger.warning(
                "BackupAndRestore: training ended with NaN/inf weights; keeping the last good backup "
                "in %s so the run can resume from it (e.g. with a lower learning rate).",
                self.backup_dir,
            )
            return
        super().on_train_end(logs)


# ---------------------------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------------------------


def _class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities (last axis) from a classifier's logits or probabilities.

    kzoo heads output logits, but user models may end in a softmax or sigmoid; outputs that
    already are distributions are kept, so a softmax is never applied twice. A single unit
    is a binary classifier and becomes two columns ``[1 - p, p]``.
    """
    outputs = np.asarray(outputs, dtype="float64")
    is_probability = outputs.size > 0 and outputs.min() >= 0.0 and outputs.max() <= 1.0
    if outputs.shape[-1] == 1:
        positive = outputs if is_probability else 1.0 / (1.0 + np.exp(-outputs))
        return np.concatenate([1.0 - positive, positive], axis=-1)
    if is_probability and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3):
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _label_indices(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Integer class indices from sparse or one-hot labels, shaped like ``probabilities[..., 0]``."""
    labels = np.asarray(labels)
    if labels.ndim == probabilities.ndim and labels.shape[-1] == probabilities.shape[-1] > 1:
        return labels.argmax(axis=-1)
    if labels.ndim == probabilities.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != probabilities.shape[:-1] or not np.all(np.equal(np.mod(labels, 1), 0)):
        raise InvalidArgumentError(
            expected_received(
                "labels",
                f"class indices of shape {probabilities.shape[:-1]} or one-hot labels of shape "
                f"{probabilities.shape} (the model's output)",
                f"array of shape {labels.shape} and dtype {labels.dtype}",
                "A confusion matrix and prediction table need a classifier's labels.",
            )
        )
    return labels.astype("int64")


def _display_images(images: np.ndarray) -> np.ndarray | None:
    """Scales each image to [0, 1] for display; ``None`` when the array is not images.

    Accepts ``(N, H, W)`` and ``(N, H, W, C)``. Channel counts other than 1, 3 or 4 (e.g. a
    segmentation model's per-class scores) are shown as their per-pixel argmax in gray.
    """
    images = np.asarray(images, dtype="float64")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        return None
    if images.shape[-1] not in (1, 3, 4):
        images = images.argmax(axis=-1)[..., np.newaxis].astype("float64")
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return (images - low) / span


def _image_grid(images: np.ndarray, padding: int = 2) -> np.ndarray:
    """Tiles ``(N, H, W, C)`` images into one ``(1, rows*H, cols*W, C)`` image, white between."""
    count, height, width, channels = images.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.ones(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels), dtype="float32"
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid[np.newaxis]


def _confusion_heatmap(matrix: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
    """Renders a confusion matrix as a ``(1, H, W, 3)`` image, rows normalized (recall).

    TensorBoard has no confusion-matrix view, so matplotlib (a kzoo dependency) draws one
    off-screen: white (0) to dark blue (1), true classes down, predicted classes across, each
    axis labelled with the class names (up to 40 classes; more would be unreadable) and each
    cell with its count (up to 15 classes). Exact counts are in the text table beside it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    totals = matrix.sum(axis=1, keepdims=True)
    fraction = np.divide(matrix, totals, out=np.zeros(matrix.shape, "float64"), where=totals > 0)
    count = len(matrix)
    names = [str(n) for n in (names if names is not None else range(count))]
    side = float(np.clip(2.5 + 0.35 * count, 3.5, 9.0))
    figure = Figure(figsize=(side, side), dpi=80)
    canvas = FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    axis.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    if count <= 40:
        axis.set_xticks(range(count), names, rotation=90 if count > 6 else 0, fontsize=8)
        axis.set_yticks(range(count), names, fontsize=8)
    if count <= 15:
        for row in range(count):
            for column in range(count):
                color = "white" if fraction[row, column] > 0.5 else "black"
                axis.text(column, row, int(matrix[row, column]), ha="center", va="center", color=color, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.tight_layout()
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].astype("float32") / 255.0
    return image[np.newaxis]


def _cell_centres(matrix: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
    """Pixel (row, column) of each cell's centre in :func:`_confusion_heatmap`'s image (for tests)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    count = len(matrix)
    side = float(np.clip(2.5 + 0.35 * count, 3.5, 9.0))
    figure = Figure(figsize=(side, side), dpi=80)
    canvas = FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    axis.imshow(np.zeros(matrix.shape), cmap="Blues", vmin=0.0, vmax=1.0)
    names = [str(n) for n in (names if names is not None else range(count))]
    if count <= 40:
        axis.set_xticks(range(count), names, rotation=90 if count > 6 else 0, fontsize=8)
        axis.set_yticks(range(count), names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.tight_layout()
    canvas.draw()
    height = canvas.get_width_height()[1]
    centres = np.zeros((count, count, 2), int)
    for row in range(count):
        for column in range(count):
            x, y = axis.transData.transform((column, row))
            centres[row, column] = (int(round(height - y)), int(round(x)))
    return centres


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _first_output(outputs: Any) -> np.ndarray | None:
    """The model's output as one array, or ``None`` for multi-output models."""
    if isinstance(outputs, Mapping):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            return None
        outputs = outputs[0]
    return np.asarray(outputs)


def _is_image_to_image(inputs: np.ndarray, outputs: np.ndarray) -> bool:
    """An autoencoder or U-Net: the output has the input's spatial shape."""
    return inputs.ndim >= 3 and outputs.ndim == inputs.ndim and outputs.shape[1:-1] == inputs.shape[1:-1]


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback plus sample predictions, a confusion matrix and hparams.

    Keras already logs the epoch losses and metrics, the learning rate (``epoch_learning_rate``)
    and, with ``histogram_freq``, weight histograms. On top of that, at the end of every epoch:

    - ``samples``: an image grid of the inputs (``samples/inputs``, each image scaled to [0, 1]
      for display) and, for classifiers, a markdown table ``samples/predictions`` of index,
      true label, predicted label and softmax confidence. For image-to-image models (the output
      has the input's height and width: autoencoders, U-Net) the outputs are shown as
      ``samples/reconstructions`` instead of the table.
    - ``confusion_data``: the confusion matrix over its first ``confusion_batches`` batches, as a
      heatmap image and a markdown table (``confusion_matrix/image``, ``confusion_matrix/table``).
      Segmentation models count every pixel.

    ``hparams`` are written once, when training first begins, for TensorBoard's HParams tab.
    Everything goes to Keras' own ``train`` writer under ``log_dir``.

    Args:
        log_dir: Directory for the event files (``train/`` and ``validation/`` inside).
        samples: ``(x, y)`` NumPy arrays in model-input form; the first ``num_samples`` are shown.
            ``y`` may be ``None`` for image-to-image models.
        class_names: Names of the classes, indexed by label; defaults to the indices.
        num_samples: How many samples to show.
        confusion_data: A ``tf.data.Dataset`` of ``(x, y)`` batches with class-index or one-hot
            labels (e.g. the validation set).
        confusion_batches: How many of its batches to evaluate each epoch.
        hparams: Hyperparameters to record, e.g. ``{"learning_rate": 1e-3, "model": "vgg16"}``.
            Values that are not bool, int, float or str are recorded as their ``str``.
        histogram_freq: Epochs between weight histograms (``0`` turns them off).
        **kwargs: Other ``keras.callbacks.TensorBoard`` arguments (``update_freq``, ...).

    Example:
        >>> import kzoo.callbacks
        >>> tensorboard = kzoo.callbacks.TensorBoard(
        ...     "runs/a/tensorboard", samples=(x_val[:8], y_val[:8]), class_names=["cat", "dog"],
        ...     confusion_data=val_dataset, hparams={"learning_rate": 1e-3})
        >>> model.fit(train_dataset, validation_data=val_dataset, epochs=5, callbacks=[tensorboard])
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        *,
        samples: tuple[np.ndarray, np.ndarray | None] | None = None,
        class_names: Sequence[str] | None = None,
        num_samples: int = 8,
        confusion_data: tf.data.Dataset | None = None,
        confusion_batches: int = 10,
        hparams: Mapping[str, Any] | None = None,
        histogram_freq: int = 1,
        **kwargs,
    ):
        _tf()  # fails here, saying why, where TensorFlow is missing (not at the first epoch's end)
        super().__init__(log_dir=os.fspath(log_dir), histogram_freq=histogram_freq, **kwargs)
        for name, value in (("num_samples", num_samples), ("confusion_batches", confusion_batches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(expected_received(name, "a positive integer", value))
        if samples is not None:
            if not isinstance(samples, (tuple, list)) or len(samples) != 2:
                raise InvalidArgumentError(
                    expected_received("samples", "a pair (x, y) of arrays", type(samples).__name__)
                )
            x, y = samples
            x = np.asarray(x)[:num_samples]
            y = None if y is None else np.asarray(y)[:num_samples]
            if y is not None and len(y) != len(x):
                raise InvalidArgumentError(
                    expected_received("samples", "x and y of the same length", f"{len(x)} and {len(y)}")
                )
            samples = (x, y)
        if confusion_data is not None and not isinstance(confusion_data, _tf().data.Dataset):
            raise InvalidArgumentError(
                expected_received(
                    "confusion_data",
                    "a tf.data.Dataset of (x, y) batches",
                    type(confusion_data).__name__,
                    "Wrap arrays with tf.data.Dataset.from_tensor_slices((x, y)).batch(32).",
                )
            )
        if hparams is not None and not isinstance(hparams, Mapping):
            raise InvalidArgumentError(expected_received("hparams", "a dict", type(hparams).__name__))
        self.samples = samples
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        self.num_samples = num_samples
        self.confusion_data = confusion_data
        self.confusion_batches = confusion_batches
        self.hparams = None if hparams is None else dict(hparams)
        self._hparams_written = False

    def _write_hparams(self, logs: Mapping[str, Any]) -> None:
        """The run's hparams and the metrics the HParams tab compares runs by.

        Written once, after the first epoch, when the logged metric names are known, to the
        log directory itself: TensorBoard's HParams tab reads a session's metrics from the
        runs below it, so ``train/`` and ``validation/`` both count (written to ``train/``,
        as before, the validation metrics were missing).
        """
        from tensorboard.plugins.hparams import api as hparams_api

        values = {str(key): _hparam_value(value) for key, value in self.hparams.items()}
        metrics = []
        for key in sorted(logs or {}):
            if key == "learning_rate":
                continue
            validation = key.startswith("val_")
            name = key[4:] if validation else key
            group = "validation" if validation else "train"
            metrics.append(hparams_api.Metric(f"epoch_{name}", group=group, display_name=f"{group} {name}"))
        writer = _tf().summary.create_file_writer(self.log_dir)
        with writer.as_default(), _tf().summary.record_if(True):
            hparams_api.hparams_config(hparams=[hparams_api.HParam(key) for key in values], metrics=metrics)
            hparams_api.hparams(values)
        writer.flush()
        writer.close()
        self._hparams_written = True

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.hparams and not self._hparams_written:
            self._write_hparams(logs)
        if self.samples is None and self.confusion_data is None:
            return
        # record_if(True): with an integer update_freq Keras leaves a batch-step filter active.
        with self._train_writer.as_default(), _tf().summary.record_if(True):
            if self.samples is not None:
                self._log_samples(epoch)
            if self.confusion_data is not None:
                self._log_confusion_matrix(epoch)
        self._train_writer.flush()

    def _class_name(self, index: int) -> str:
        if self.class_names is None:
            return str(index)
        if not 0 <= index < len(self.class_names):
            raise InvalidArgumentError(
                expected_received(
                    "class_names", f"a name for every class index (index {index} has none)", self.class_names
                )
            )
        return self.class_names[index]

    def _log_samples(self, epoch: int) -> None:
        x, y = self.samples
        outputs = _first_output(self.model.predict_on_batch(x))
        shown = _display_images(x)
        if shown is not None:
            _tf().summary.image("samples/inputs", _image_grid(shown), step=epoch)
        if outputs is None:
            return
        if _is_image_to_image(x, outputs):
            _tf().summary.image("samples/reconstructions", _image_grid(_display_images(outputs)), step=epoch)
            return
        if outputs.ndim != 2 or y is None:
            return  # neither a classifier nor an image model (e.g. a token tagger): nothing to tabulate
        probabilities = _class_probabilities(outputs)
        labels = _label_indices(y, probabilities)
        predicted = probabilities.argmax(axis=-1)
        rows = [
            (index, self._class_name(int(label)), self._class_name(int(guess)), f"{probabilities[index, guess]:.3f}")
            for index, (label, guess) in enumerate(zip(labels, predicted))
        ]
        table = _markdown_table(["index", "true", "predicted", "confidence"], rows)
        _tf().summary.text("samples/predictions", table, step=epoch)

    def _confusion_matrix(self) -> np.ndarray:
        matrix = None
        for batch in self.confusion_data.take(self.confusion_batches):
            x, y = batch[0], batch[1]  # a third element (sample weights) is ignored
            outputs = _first_output(self.model.predict_on_batch(x))
            if outputs is None:
                raise InvalidArgumentError(
                    expected_received("confusion_data", "a single-output classifier", "a multi-output model")
                )
            probabilities = _class_probabilities(outputs)
            labels = _label_indices(np.asarray(y), probabilities).ravel()
            predicted = probabilities.argmax(axis=-1).ravel()
            num_classes = probabilities.shape[-1]
            if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
                raise InvalidArgumentError(
                    expected_received(
                        "confusion_data labels", f"class indices in [0, {num_classes})", int(labels.max())
                    )
                )
            counts = np.bincount(labels * num_classes + predicted, minlength=num_classes**2)
            counts = counts.reshape(num_classes, num_classes)
            matrix = counts if matrix is None else matrix + counts
        if matrix is None:
            raise InvalidArgumentError(expected_received("confusion_data", "a non-empty dataset", "no batches"))
        return matrix

    def _log_confusion_matrix(self, epoch: int) -> None:
        matrix = self._confusion_matrix()
        names = [self._class_name(index) for index in range(len(matrix))]
        _tf().summary.image("confusion_matrix/image", _confusion_heatmap(matrix, names), step=epoch)
        rows = [[f"**{name}**", *row.tolist()] for name, row in zip(names, matrix)]
        table = _markdown_table(["true ↓ / predicted →", *names], rows)
        _tf().summary.text("confusion_matrix/table", table, step=epoch)


def _hparam_value(value: Any) -> bool | int | float | str:
    """TensorBoard's HParams accept bool, int, float and str only."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------
# default_callbacks
# ---------------------------------------------------------------------------------------------


def default_callbacks(
    log_dir: str | os.PathLike,
    *,
    monitor: str = "val_loss",
    mode: str = "auto",
    patience: int | None = None,
    samples: tuple[np.ndarray, np.ndarray | None] | None = None,
    class_names: Sequence[str] | None = None,
    confusion_data: tf.data.Dataset | None = None,
    hparams: Mapping[str, Any] | None = None,
    tensorboard: bool = True,
    backup: str | None = "backup",
) -> list[keras.callbacks.Callback]:
    """The callbacks kzoo trains with (``kzoo.finetune`` among them): NaN guard, TensorBoard,
    best checkpoint, resume.

    Layout under ``log_dir``: ``tensorboard/`` (event files), ``checkpoints/best.weights.h5``
    (the best weights by ``monitor``) and ``backup/`` (the resume state, deleted when training
    ends normally).

    Args:
        log_dir: The run's directory.
        monitor: What "best" means, for the checkpoint and early stopping.
        mode: ``"auto"``, ``"min"`` or ``"max"`` for ``monitor`` (see :class:`AtomicCheckpoint`).
        patience: Epochs without improvement before stopping; ``None`` never stops early.
        samples: Passed to :class:`TensorBoard`.
        class_names: Passed to :class:`TensorBoard`.
        confusion_data: Passed to :class:`TensorBoard`.
        hparams: Passed to :class:`TensorBoard`.
        tensorboard: Include the :class:`TensorBoard` callback (a multi-worker run's other
            workers leave it out).
        backup: Sub-directory of the resume state, or ``None`` for no :class:`BackupAndRestore`
            (``kzoo.finetune`` keeps one per phase).

    Returns:
        ``[NaNGuard, TensorBoard, AtomicCheckpoint, BackupAndRestore]`` plus
        ``keras.callbacks.EarlyStopping`` when ``patience`` is given. NaNGuard comes first so
        training stops before any other callback handles a NaN batch.

    Example:
        >>> import kzoo.callbacks
        >>> callbacks = kzoo.callbacks.default_callbacks("runs/a", monitor="val_accuracy", patience=3)
        >>> model.fit(x, y, validation_split=0.1, epochs=20, callbacks=callbacks)
    """
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 0):
        raise InvalidArgumentError(expected_received("patience", "None or a non-negative integer", patience))
    log_dir = Path(log_dir)
    callbacks: list[keras.callbacks.Callback] = [NaNGuard()]
    if tensorboard:
        callbacks.append(
            TensorBoard(
                log_dir / "tensorboard",
                samples=samples,
                class_names=class_names,
                confusion_data=confusion_data,
                hparams=hparams,
            )
        )
    callbacks.append(AtomicCheckpoint(log_dir / "checkpoints" / "best.weights.h5", monitor=monitor, mode=mode))
    if backup is not None:
        callbacks.append(BackupAndRestore(log_dir / backup))
    if patience is not None:
        early_mode = mode if mode != "auto" else ("max" if _higher_is_better(monitor, mode) else "min")
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=early_mode, patience=patience, restore_best_weights=False
            )
        )
    return callbacks


# ---------------------------------------------------------------------------------------------
# TimeToAccuracy
# ---------------------------------------------------------------------------------------------


class TimeToAccuracy(keras.callbacks.Callback):
    """Measures the training wall time until held-out accuracy first reaches a target, then stops.

    The clock starts when ``fit`` begins (or at ``started_at``, to count data loading too), so
    it includes tracing and XLA compilation, and it is paused while this callback evaluates,
    so the figure is training time only. Accuracy is the argmax of the model's outputs against
    integer labels, checked ``per_epoch`` times an epoch, evenly spaced, the last at the
    epoch's end. With ``steps_per_execution > 1`` Keras reports batches one execution at a
    time, so a check falls at the end of the execution that reaches its batch.

    Args:
        x: Held-out inputs.
        y: Their integer labels.
        target: Accuracy to reach, in (0, 1].
        per_epoch: Evaluations per epoch (more than 1 needs a known number of steps per epoch).
        batch_size: Evaluation batch size.
        started_at: A ``time.perf_counter()`` reading taken before the run's data loading;
            ``None`` starts the clock when ``fit`` begins. Only the first ``fit`` uses it.

    Attributes:
        seconds: Training seconds until ``target`` was first reached, or ``None``.
        history: ``(training seconds, steps, accuracy)`` of every evaluation.

    Example:
        >>> import kzoo.callbacks
        >>> timer = kzoo.callbacks.TimeToAccuracy(x_test, y_test, target=0.99, per_epoch=2)
        >>> model.fit(x, y, epochs=20, callbacks=[timer])
        >>> timer.seconds
        41.7
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        *,
        target: float,
        per_epoch: int = 1,
        batch_size: int = 1000,
        started_at: float | None = None,
    ):
        super().__init__()
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < target <= 1.0:
            raise InvalidArgumentError(expected_received("target", "an accuracy in (0, 1]", target))
        if isinstance(per_epoch, bool) or not isinstance(per_epoch, int) or per_epoch < 1:
            raise InvalidArgumentError(expected_received("per_epoch", "a positive integer", per_epoch))
        self.x, self.y = x, np.asarray(y).reshape(-1)
        if started_at is not None and (isinstance(started_at, bool) or not isinstance(started_at, (int, float))):
            raise InvalidArgumentError(expected_received("started_at", "a time.perf_counter() reading", started_at))
        if started_at is not None and started_at > time.perf_counter():
            raise InvalidArgumentError(
                expected_received("started_at", "a time.perf_counter() reading from the past", started_at)
            )
        self.target, self.per_epoch, self.batch_size = target, per_epoch, batch_size
        self.started_at = started_at
        self.seconds: float | None = None
        self.history: list[tuple[float, int, float]] = []

    def on_train_begin(self, logs=None):
        self.seconds, self.history, self._steps, self._elapsed = None, [], 0, 0.0
        steps = (self.params or {}).get("steps") or 0
        # Batch indices after which to evaluate inside an epoch (the epoch's end is always one).
        points = {round(k * steps / self.per_epoch) - 1 for k in range(1, self.per_epoch)}
        self._inside = sorted(points) if steps else []
        self._epoch_steps, self._last_batch = 0, -1
        self._started = time.perf_counter() if self.started_at is None else self.started_at
        self.started_at = None  # a second fit starts its clock when it begins

    def _evaluate(self) -> None:
        self._elapsed += time.perf_counter() - self._started
        predictions = np.asarray(self.model.predict(self.x, batch_size=self.batch_size, verbose=0))
        accuracy = float(np.mean(predictions.argmax(-1).reshape(-1) == self.y))
        self.history.append((self._elapsed, self._steps, accuracy))
        if accuracy >= self.target and self.seconds is None:
            self.seconds = self._elapsed
            self.model.stop_training = True
        self._started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_steps, self._last_batch = self._steps, -1

    def on_train_batch_end(self, batch, logs=None):
        # ``batch`` is the index of the last batch the call ran: one call may run several (Keras
        # names the end of a full call even when the epoch's last call runs fewer).
        steps = (self.params or {}).get("steps")
        batch = min(batch, steps - 1) if steps else batch
        previous, self._last_batch = self._last_batch, batch
        self._steps = self._epoch_steps + batch + 1
        if any(previous < inside <= batch for inside in self._inside):
            self._evaluate()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds is None:
            self._evaluate()
