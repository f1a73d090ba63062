"""kzoo.callbacks: TensorBoard event contents, atomic checkpoints, NaN guard, crash-safe resume."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import kzoo.callbacks
from kzoo.callbacks import AtomicCheckpoint, BackupAndRestore, NaNGuard, TensorBoard, default_callbacks
from kzoo.errors import InvalidArgumentError

SCRIPTS = Path(__file__).parent / "scripts"
CLASS_NAMES = ["cat", "dog", "emu"]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _image_classifier() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _classification_data(n: int = 32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6, 6, 1)).astype("float32")
    y = rng.integers(0, 3, size=(n,)).astype("int64")
    return x, y


def _dense_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def _regression_data(n: int = 40):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True).astype("float32")


def _events(run_dir: Path) -> event_accumulator.EventAccumulator:
    """Reads a run's event files with TensorBoard's own reader, keeping every event."""
    guidance = {
        event_accumulator.COMPRESSED_HISTOGRAMS: 0,
        event_accumulator.IMAGES: 0,
        event_accumulator.AUDIO: 0,
        event_accumulator.SCALARS: 0,
        event_accumulator.HISTOGRAMS: 0,
        event_accumulator.TENSORS: 0,
    }
    accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance=guidance)
    accumulator.Reload()
    return accumulator


def _image(event) -> np.ndarray:
    """Decodes an image summary event (TF2 writes [width, height, png, ...] as strings)."""
    encoded = tf.make_ndarray(event.tensor_proto)
    return tf.io.decode_png(encoded[2]).numpy()


def _text(event) -> str:
    return tf.make_ndarray(event.tensor_proto).item().decode("utf-8")


def _table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def _weights_file_values(path: Path, model_factory) -> list[np.ndarray]:
    model = model_factory()
    model.load_weights(path)
    return model.get_weights()


def _assert_same_weights(left: list[np.ndarray], right: list[np.ndarray]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right):
        np.testing.assert_array_equal(a, b)


def _poison(model: keras.Model) -> None:
    kernel = model.layers[0].kernel
    kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


def _save_half_then_fail(model: keras.Model, monkeypatch) -> None:
    """Makes ``model.save_weights`` write half a real file, then raise (a crash mid-save)."""
    real_save = model.save_weights

    def broken_save(filepath, overwrite=True, **kwargs):
        real_save(filepath, overwrite=overwrite, **kwargs)
        size = os.path.getsize(filepath)
        with open(filepath, "r+b") as f:
            f.truncate(size // 2)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(model, "save_weights", broken_save)


# ---------------------------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------------------------


def test_tensorboard_logs_metrics_histograms_predictions_confusion_matrix_and_hparams(tmp_path):
    model = _image_classifier()
    x, y = _classification_data()
    confusion_data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # 4 batches; 2 are used
    callback = TensorBoard(
        tmp_path,
        samples=(x, y),
        num_samples=5,
        class_names=CLASS_NAMES,
        confusion_data=confusion_data,
        confusion_batches=2,
        hparams={"learning_rate": 0.01, "optimizer": "sgd", "widths": [2, 3], "seed": np.int64(0)},
    )
    model.fit(x, y, validation_data=(x, y), batch_size=8, epochs=2, callbacks=[callback], verbose=0)

    train = _events(tmp_path / "train")
    tags = set(train.Tags()["tensors"])
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate", "samples/inputs", "samples/predictions"):
        assert [event.step for event in train.Tensors(tag)] == [0, 1], tag
    assert "samples/reconstructions" not in tags
    assert any(tag.endswith("/histogram") and "conv" in tag for tag in tags)
    learning_rate = tf.make_ndarray(train.Tensors("epoch_learning_rate")[-1].tensor_proto)
    assert learning_rate == pytest.approx(0.01)
    assert "epoch_loss" in _events(tmp_path / "validation").Tags()["tensors"]

    # Five 6x6 grayscale samples tile 3 columns x 2 rows with 2-pixel borders.
    assert _image(train.Tensors("samples/inputs")[-1]).shape == (2 * 8 + 2, 3 * 8 + 2, 1)

    # The last table shows the final model's predictions (nothing trains after the last epoch end).
    probabilities = tf.nn.softmax(model.predict(x[:5], verbose=0)).numpy()
    rows = _table_rows(_text(train.Tensors("samples/predictions")[-1]))
    assert [row[0] for row in rows] == ["0", "1", "2", "3", "4"]
    assert [row[1] for row in rows] == [CLASS_NAMES[label] for label in y[:5]]
    assert [row[2] for row in rows] == [CLASS_NAMES[i] for i in probabilities.argmax(axis=1)]
    np.testing.assert_allclose([float(row[3]) for row in rows], probabilities.max(axis=1), atol=1e-3)

    # Confusion matrix over the first 2 batches (16 examples), from the final model.
    predicted = model.predict(x[:16], verbose=0).argmax(axis=1)
    expected = np.zeros((3, 3), dtype=int)
    np.add.at(expected, (y[:16], predicted), 1)
    table = _table_rows(_text(train.Tensors("confusion_matrix/table")[-1]))
    assert [row[0] for row in table] == [f"**{name}**" for name in CLASS_NAMES]
    np.testing.assert_array_equal([[int(cell) for cell in row[1:]] for row in table], expected)
    heatmap = _image(train.Tensors("confusion_matrix/image")[-1])
    unlabelled = kzoo.callbacks._confusion_heatmap(expected)[0]
    assert heatmap.shape == unlabelled.shape  # drawn with the class names, not the indices:
    assert np.abs(heatmap / 255.0 - kzoo.callbacks._confusion_heatmap(expected, CLASS_NAMES)[0]).max() < 2 / 255
    assert np.abs(heatmap / 255.0 - unlabelled).max() > 0.5

    # HParams, written once, to the log directory itself so that the HParams tab finds the
    # train and the validation metrics (in the runs below it).
    root = _events(tmp_path)
    content = root.PluginTagToContent("hparams")
    assert sorted(content) == ["_hparams_/experiment", "_hparams_/session_start_info"]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert {("train", "epoch_loss"), ("validation", "epoch_loss"), ("validation", "epoch_accuracy")} <= metrics
    assert "epoch_loss" in _events(tmp_path / "validation").Tags()["tensors"]  # what the metric points at
    plugin_data = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    logged = plugin_data.session_start_info.hparams
    assert logged["learning_rate"].number_value == pytest.approx(0.01)
    assert logged["optimizer"].string_value == "sgd"
    assert logged["widths"].string_value == "[2, 3]"
    assert logged["seed"].number_value == 0


def test_tensorboard_shows_reconstructions_for_image_to_image_models(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    outputs = keras.layers.Conv2D(1, 3, padding="same")(keras.layers.Conv2D(2, 3, padding="same")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).uniform(size=(4, 6, 6, 1)).astype("float32")

    model.fit(x, x, epochs=1, verbose=0, callbacks=[TensorBoard(tmp_path, samples=(x, x), histogram_freq=0)])

    train = _events(tmp_path / "train")
    tags = set(train.Tags()["tensors"])
    assert "samples/predictions" not in tags
    assert not any(tag.endswith("/histogram") for tag in tags)  # histogram_freq=0 is passed on
    shown = _image(train.Tensors("samples/reconstructions")[-1])[..., 0] / 255.0
    # 4 images in a 2x2 grid; each output is min-max scaled to [0, 1] on its own.
    reconstruction = model.predict(x, verbose=0)[..., 0]
    for index in range(4):
        row, column = divmod(index, 2)
        top, left = 2 + row * 8, 2 + column * 8
        tile = shown[top : top + 6, left : left + 6]
        image = reconstruction[index]
        expected = (image - image.min()) / (image.max() - image.min())
        np.testing.assert_allclose(tile, expected, atol=1.5 / 255)


def test_confusion_heatmap_is_row_normalized_from_white_to_dark():
    matrix = np.array([[40, 0], [10, 10]])
    image = kzoo.callbacks._confusion_heatmap(matrix, ["cat", "dog"])
    assert image.ndim == 4 and image.shape[-1] == 3 and 0.0 <= image.min() and image.max() <= 1.0
    centres = kzoo.callbacks._cell_centres(matrix, ["cat", "dog"])
    # Beside each centre (the count is written on it): 5 pixels left of it.
    cell = np.array([[image[0, r, c - 8] for r, c in row] for row in centres])
    assert cell[0, 1].min() > 0.95  # 0% of the true-cat row: white
    assert cell[0, 0].sum() < cell[1, 0].sum() < cell[0, 1].sum()  # 100% darker than 50%
    np.testing.assert_allclose(cell[1, 0], cell[1, 1], atol=1e-6)
    assert np.abs(image - kzoo.callbacks._confusion_heatmap(matrix, ["owl", "bat"])).max() > 0.5  # names drawn


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples": np.zeros((2, 4))}, "samples: expected a pair"),
        ({"samples": (np.zeros((3, 4)), np.zeros(2))}, "x and y of the same length"),
        ({"num_samples": 0}, "num_samples: expected a positive integer"),
        ({"confusion_data": [(1, 2)]}, "confusion_data: expected a tf.data.Dataset"),
    ],
)
def test_tensorboard_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        TensorBoard(tmp_path, **kwargs)


# ---------------------------------------------------------------------------------------------
# AtomicCheckpoint
# ---------------------------------------------------------------------------------------------


def test_atomic_checkpoint_requires_a_weights_h5_path(tmp_path):
    with pytest.raises(
        InvalidArgumentError, match=r"filepath: expected a path ending in '.weights.h5'.*best.weights.h5"
    ):
        AtomicCheckpoint(tmp_path / "best.h5")


def test_a_save_that_fails_midway_keeps_the_previous_best_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "best.weights.h5"
    model = _dense_model()
    checkpoint = AtomicCheckpoint(path)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_loss": 1.0})
    saved = model.get_weights()
    saved_bytes = path.read_bytes()

    model.layers[0].kernel.assign(np.ones(model.layers[0].kernel.shape, dtype="float32"))
    _save_half_then_fail(model, monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.on_epoch_end(1, {"val_loss": 0.5})

    assert path.read_bytes() == saved_bytes
    _assert_same_weights(_weights_file_values(path, _dense_model), saved)
    assert sorted(os.listdir(path.parent)) == ["best.weights.h5", "best.weights.h5.json"]
    assert (checkpoint.best, checkpoint.best_epoch) == (1.0, 0)


def test_checkpoint_never_saves_nan_monitor_missing_monitor_or_nan_weights(tmp_path, caplog):
    path = tmp_path / "best.weights.h5"
    model = _dense_model()
    checkpoint = AtomicCheckpoint(path, save_best_only=False)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_loss": 1.0})
    saved_bytes = path.read_bytes()
    model.layers[0].kernel.assign(np.ones(model.layers[0].kernel.shape, dtype="float32"))

    with caplog.at_level(logging.WARNING, logger="kzoo"):
        checkpoint.on_epoch_end(1, {"val_loss": float("nan")})
        checkpoint.on_epoch_end(2, {"val_loss": float("inf")})
        checkpoint.on_epoch_end(3, {"loss": 0.1})
        _poison(model)
        checkpoint.on_epoch_end(4, {"val_loss": 0.1})

    assert path.read_bytes() == saved_bytes
    assert (checkpoint.best, checkpoint.best_epoch) == (1.0, 0)
    assert len([r for r in caplog.records if "not saving epoch" in r.getMessage()]) == 4


@pytest.mark.parametrize(
    ("monitor", "mode", "values", "saved_at"),
    [
        ("val_loss", "auto", [1.0, 2.0, 0.5], [0, 2]),
        ("val_accuracy", "auto", [0.5, 0.4, 0.6], [0, 2]),
        ("val_top_k_categorical_accuracy", "auto", [0.5, 0.6, 0.55], [0, 1]),
        ("val_loss", "max", [1.0, 2.0, 0.5], [0, 1]),
    ],
)
def test_checkpoint_mode_decides_what_best_means(tmp_path, monitor, mode, values, saved_at):
    path = tmp_path / "best.weights.h5"
    model = _dense_model()
    checkpoint = AtomicCheckpoint(path, monitor=monitor, mode=mode)
    checkpoint.set_model(model)
    saves = []
    for epoch, value in enumerate(values):
        model.layers[-1].bias.assign([float(epoch)])  # makes each epoch's file distinguishable
        checkpoint.on_epoch_end(epoch, {monitor: value})
        if path.exists() and _weights_file_values(path, _dense_model)[-1][0] == epoch:
            saves.append(epoch)
    assert saves == saved_at
    assert checkpoint.best_epoch == saved_at[-1]
    assert checkpoint.best == values[saved_at[-1]]


def test_a_resumed_run_keeps_the_best_of_the_killed_run_and_a_new_run_starts_afresh(tmp_path):
    path = tmp_path / "best.weights.h5"
    model = _dense_model()

    def run_epochs(checkpoint: AtomicCheckpoint, epochs_and_values) -> None:
        checkpoint.set_model(model)
        checkpoint.on_train_begin()
        for epoch, value in epochs_and_values:
            model.layers[-1].bias.assign([float(epoch)])  # marks which epoch a saved file is from
            checkpoint.on_epoch_begin(epoch)
            checkpoint.on_epoch_end(epoch, {"val_loss": value})

    def saved_epoch() -> float:
        return float(_weights_file_values(path, _dense_model)[-1][0])

    run_epochs(AtomicCheckpoint(path), [(0, 1.0), (1, 0.5), (2, 0.7)])  # then the process is killed
    assert saved_epoch() == 1

    resumed = AtomicCheckpoint(path)  # a new process, resumed by BackupAndRestore at epoch 3
    run_epochs(resumed, [(3, 0.6)])
    assert (resumed.best, resumed.best_epoch) == (0.5, 1)
    assert saved_epoch() == 1
    run_epochs(resumed, [(4, 0.4)])
    assert saved_epoch() == 4

    fresh = AtomicCheckpoint(path)  # a new run in the same directory
    run_epochs(fresh, [(0, 0.9)])
    assert (fresh.best, fresh.best_epoch) == (0.9, 0)
    assert saved_epoch() == 0


# ---------------------------------------------------------------------------------------------
# NaNGuard
# ---------------------------------------------------------------------------------------------


class _CountBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches: list[tuple[int, int]] = []
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append((self._epoch, batch))


def test_nan_guard_stops_in_the_nan_batch_and_the_checkpoint_keeps_finite_weights(tmp_path, caplog):
    x, y = _regression_data(40)  # 10 batches of 4
    model = _dense_model()
    path = tmp_path / "best.weights.h5"
    # save_best_only=False: the checkpoint would save every epoch if nothing stopped it.
    checkpoint = AtomicCheckpoint(path, monitor="loss", save_best_only=False)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, callbacks=[checkpoint], verbose=0)
    finite = model.get_weights()

    x_bad = x.copy()
    x_bad[6 * 4 + 1, 2] = np.nan  # inside batch 6
    guard, counter = NaNGuard(), _CountBatches()
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        model.fit(x_bad, y, batch_size=4, epochs=3, shuffle=False, callbacks=[guard, counter, checkpoint], verbose=0)

    assert guard.triggered_at == (0, 6)
    assert counter.batches == [(0, batch) for batch in range(7)]
    assert not all(np.isfinite(w).all() for w in model.get_weights())  # the NaN did reach the weights
    _assert_same_weights(_weights_file_values(path, _dense_model), finite)
    guard_warnings = [r for r in caplog.records if r.name == "kzoo" and "Training stopped" in r.getMessage()]
    assert len(guard_warnings) == 1


def test_nan_guard_does_nothing_on_finite_losses():
    x, y = _regression_data(16)
    guard, counter = NaNGuard(), _CountBatches()
    _dense_model().fit(x, y, batch_size=4, epochs=2, callbacks=[guard, counter], verbose=0)
    assert guard.triggered_at is None
    assert len(counter.batches) == 8


# ---------------------------------------------------------------------------------------------
# BackupAndRestore
# ---------------------------------------------------------------------------------------------


def _backup(tmp_path: Path, model: keras.Model) -> BackupAndRestore:
    backup = BackupAndRestore(tmp_path / "backup")
    backup.set_model(model)
    return backup


def test_backup_skips_non_finite_weights_and_keeps_the_last_good_backup(tmp_path):
    model = _dense_model()
    backup = _backup(tmp_path, model)
    backup.on_epoch_end(0)
    good = model.get_weights()

    _poison(model)
    backup.on_epoch_end(1)

    _assert_same_weights(_weights_file_values(tmp_path / "backup" / "latest.weights.h5", _dense_model), good)
    assert (tmp_path / "backup" / "training_metadata.json").read_text() == '{"epoch": 1, "batch": 0}'

    # A run ending with NaN weights keeps its backup to resume from; a normal end deletes it.
    backup.on_train_end()
    assert (tmp_path / "backup" / "latest.weights.h5").exists()
    model.set_weights(good)
    backup.on_train_end()
    assert not (tmp_path / "backup").exists()


def test_backup_that_fails_midway_keeps_the_previous_backup(tmp_path, monkeypatch):
    model = _dense_model()
    backup = _backup(tmp_path, model)
    backup.on_epoch_end(0)
    before = {name: (tmp_path / "backup" / name).read_bytes() for name in os.listdir(tmp_path / "backup")}

    _save_half_then_fail(model, monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        backup.on_epoch_end(1)

    after = {name: (tmp_path / "backup" / name).read_bytes() for name in os.listdir(tmp_path / "backup")}
    assert after == before  # same files, same bytes: no temporary file left, nothing truncated
    assert sorted(after) == ["latest.weights.h5", "training_metadata.json"]


def _wait_for(predicate, process: subprocess.Popen, what: str, log: Path, limit_s: float = 240.0) -> None:
    """Polls ``predicate`` until true; fails if the process exits first or ``limit_s`` passes."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"the training script exited (code {process.returncode}) before {what}:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def _records(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(label, int(epoch)) for label, epoch in (line.split() for line in path.read_text().splitlines())]


def test_training_killed_with_sigkill_resumes_at_the_next_epoch(tmp_path):
    script = SCRIPTS / "backup_and_restore_resume.py"
    backup_dir, record, weights = tmp_path / "backup", tmp_path / "epochs.txt", tmp_path / "final.npy"
    command = [sys.executable, str(script), str(backup_dir), str(record), str(weights)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}

    # The same seeded, unshuffled job, never interrupted, runs alongside in its own directories
    # (each process computes on one thread under the CI's workers: the two overlap, not queue).
    straight = tmp_path / "straight.npy"
    uninterrupted = [sys.executable, str(script), str(tmp_path / "backup_straight"), str(tmp_path / "straight.txt")]
    # Output goes to a file: a pipe nobody reads could fill up and block the script.
    with open(tmp_path / "straight.log", "wb") as log:
        third = subprocess.Popen([*uninterrupted, str(straight), "straight"], env=env, stdout=log, stderr=log)
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen([*command, "first", "--pause-after-epoch", "2"], env=env, stdout=log, stderr=log)
    try:
        _wait_for(lambda: ("first", 2) in _records(record), first, "epoch 2 ended", log=tmp_path / "first.log")
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    assert _records(record) == [("first", 0), ("first", 1), ("first", 2)]
    assert not weights.exists()

    second = subprocess.run([*command, "second"], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert [epoch for label, epoch in _records(record) if label == "second"] == [3, 4, 5]
    final = np.load(weights)
    assert final.size > 0 and np.isfinite(final).all()
    assert not backup_dir.exists()  # deleted after the run completed

    # The uninterrupted job ends with the same weights and the same optimizer state (Adam's
    # moments and step count): the backup restored both.
    assert third.wait(timeout=300) == 0, (tmp_path / "straight.log").read_text()[-3000:]
    uninterrupted_weights = np.load(straight)
    assert final.shape == uninterrupted_weights.shape
    np.testing.assert_allclose(final, uninterrupted_weights, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# default_callbacks
# ---------------------------------------------------------------------------------------------


def test_default_callbacks_order_paths_and_early_stopping(tmp_path):
    callbacks = default_callbacks(tmp_path, monitor="val_accuracy", patience=3, class_names=["a", "b"])
    assert [type(c) for c in callbacks] == [
        NaNGuard,
        TensorBoard,
        AtomicCheckpoint,
        BackupAndRestore,
        keras.callbacks.EarlyStopping,
    ]
    _, tensorboard, checkpoint, backup, early_stopping = callbacks
    assert Path(tensorboard.log_dir) == tmp_path / "tensorboard"
    assert tensorboard.class_names == ["a", "b"]
    assert Path(checkpoint.filepath) == tmp_path / "checkpoints" / "best.weights.h5"
    assert checkpoint.monitor == "val_accuracy"
    assert Path(backup.backup_dir) == tmp_path / "backup"
    assert early_stopping.monitor == "val_accuracy"
    assert early_stopping.patience == 3
    assert early_stopping.mode == "max"
    assert early_stopping.restore_best_weights is False

    assert [type(c) for c in default_callbacks(tmp_path)][-1] is BackupAndRestore
    with pytest.raises(InvalidArgumentError, match="patience"):
        default_callbacks(tmp_path, patience=-1)


def test_default_callbacks_in_a_fit_leave_logs_and_the_best_checkpoint(tmp_path):
    x, y = _regression_data(16)
    model = _dense_model()
    model.fit(x, y, validation_data=(x, y), batch_size=8, epochs=2, callbacks=default_callbacks(tmp_path), verbose=0)

    assert [event.step for event in _events(tmp_path / "tensorboard" / "train").Tensors("epoch_loss")] == [0, 1]
    assert (tmp_path / "checkpoints" / "best.weights.h5").exists()
    assert not (tmp_path / "backup").exists()
