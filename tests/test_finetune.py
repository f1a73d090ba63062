"""kzoo.finetune, freeze/unfreeze, run directories, XLA, mixed precision and the CLI."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_pipelines import write_image_folder

import kzoo
from kzoo import errors

from helpers import run_example

SCRIPTS = Path(__file__).resolve().parent / "scripts"
finetune_lib = importlib.import_module("kzoo.finetune")  # the module; kzoo.finetune is the function


@pytest.fixture(scope="module")
def digits():
    """A small labelled subset of the UCI digits (real data shipped by scikit-learn)."""
    images, labels = kzoo.data.load_uci_digits()
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(labels), 240, replace=False)
    return images[chosen], labels[chosen]


def weights_by_layer(model):
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.weights}


def changed_layers(before, model):
    after = weights_by_layer(model)
    return sorted(name for name in before if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name])))


def test_freeze_and_unfreeze_by_stage():
    model = kzoo.get("lenet5")
    assert kzoo.freeze(model, until="c3") == ["c1_conv", "c3_conv"]
    assert [layer.name for layer in model.layers if layer.weights and not layer.trainable] == ["c1_conv", "c3_conv"]
    assert kzoo.unfreeze(model, from_stage="c3") == ["c3_conv", "c5_conv", "f6_dense", "predictions"]
    assert not model.get_layer("c1_conv").trainable and model.get_layer("c3_conv").trainable
    assert kzoo.freeze(model) == ["c1_conv", "c3_conv", "c5_conv", "f6_dense"]  # all but the head
    assert model.get_layer("predictions").trainable
    with pytest.raises(errors.InvalidArgumentError, match=r"one of the model's stages \['c1'"):
        kzoo.freeze(model, until="conv9")


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("head", ["predictions"]),
        ("full", ["c1_conv", "c3_conv", "c5_conv", "f6_dense", "predictions"]),
        ("two-phase", ["c5_conv", "f6_dense", "predictions"]),
    ],
)
def test_strategies_train_exactly_the_layers_they_should(strategy, expected, digits):
    keras.utils.set_random_seed(0)
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)
    before = weights_by_layer(model)
    result = kzoo.finetune(model, data, epochs=2, strategy=strategy, learning_rate=1e-3, verbose=0)
    assert changed_layers(before, model) == expected
    assert result.epochs == [0, 1] and len(result.history["loss"]) == 2
    assert "val_accuracy" in result.history and result.monitor == "val_loss"


def test_finetune_keeps_the_best_epoch_and_improves_on_new_data(digits):
    keras.utils.set_random_seed(1)
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)
    model.compile(loss=finetune_lib.default_loss(model), metrics=["accuracy"])
    _, accuracy_before = model.evaluate(data.validation, verbose=0)
    # float32 (not "auto"): the best validation loss is compared with a float32 evaluate below.
    result = kzoo.finetune(
        model, data, epochs=6, strategy="two-phase", learning_rate=3e-3, mixed_precision=None, verbose=0
    )
    best = int(np.argmin(result.history["val_loss"]))
    assert result.best_epoch == result.epochs[best]
    model.compile(loss=finetune_lib.default_loss(model), metrics=["accuracy"])
    loss, accuracy = model.evaluate(data.validation, verbose=0)
    assert loss == pytest.approx(result.best_value, rel=1e-3)  # the model holds the best epoch's weights
    assert accuracy > accuracy_before


def test_run_directory_holds_logs_checkpoint_and_model_and_a_finished_run_is_reported_not_rerun(tmp_path, digits):
    from tensorboard.backend.event_processing import event_accumulator

    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)
    run = tmp_path / "run"
    first = kzoo.finetune(model, data, epochs=2, strategy="head", log_dir=run, verbose=0)
    state = json.loads((run / "kzoo_run.json").read_text())
    assert state["status"] == "finished" and state["phases_done"] == ["head"]
    assert (run / "checkpoints" / "best.weights.h5").is_file()
    restored = keras.saving.load_model(run / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(restored.get_weights()[-1], model.get_weights()[-1])
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    accumulator = event_accumulator.EventAccumulator(str(run / "tensorboard" / "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    assert "epoch_loss" in accumulator.Tags()["tensors"]

    # The same call again: nothing trains, nothing in the run changes, and the run's result comes back.
    snapshot = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = kzoo.finetune(model, data, epochs=2, strategy="head", log_dir=run, verbose=0)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == snapshot
    assert (again.best_epoch, again.best_value) == (first.best_epoch, first.best_value)
    assert again.history == first.history
    # Other settings in a finished run are refused, and the run stays as it was.
    with pytest.raises(errors.KzooError, match="already holds a finished run"):
        kzoo.finetune(model, data, epochs=3, strategy="head", log_dir=run, verbose=0)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == snapshot

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(errors.KzooError, match="not empty and holds no kzoo run"):
        kzoo.finetune(model, data, epochs=1, strategy="head", log_dir=foreign, verbose=0)
    assert (foreign / "notes.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1


def test_finetune_uses_xla_when_asked_and_every_layer_supports_it(digits):
    # The default per device (off for convolutions on a CPU) is tested in test_precision.py.
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)

    class Jit(keras.callbacks.Callback):  # the model that trains may be a mixed-precision copy
        def on_train_batch_end(self, batch, logs=None):
            self.jit = self.model.jit_compile

    seen = Jit()
    kzoo.finetune(model, data, epochs=1, strategy="head", jit_compile=True, verbose=0, callbacks=[seen])
    assert seen.jit is True


def test_xla_is_refused_with_a_reason_for_string_lookups(caplog):
    inputs = keras.Input(shape=(), dtype="string")
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=4, name="vectorize")
    vectorize.adapt(["a b c", "d e"])
    outputs = keras.layers.Dense(2)(keras.layers.Embedding(20, 3)(vectorize(inputs)))
    model = keras.Model(inputs, outputs)
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        assert finetune_lib.resolve_jit_compile(model) is False
    assert any("vectorize (TextVectorization: host-side ops" in r.getMessage() for r in caplog.records)
    assert finetune_lib.resolve_jit_compile(kzoo.get("lenet5"), True) is True


def test_xla_refusal_names_the_cudnn_kernel_for_recurrent_layers(caplog):
    model = kzoo.get("bilstm_classifier", vocab_size=30, embedding_dim=4, units=4)
    assert finetune_lib.resolve_jit_compile(model) is True  # on CPU the LSTM is an XLA-compilable loop
    lstm = model.get_layer("rnn1").forward_layer
    lstm.supports_jit = False  # what Keras sets when the layer will run cuDNN (TensorFlow on a GPU)
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        assert finetune_lib.resolve_jit_compile(model) is False
    assert any("cuDNN kernel" in r.getMessage() and "use_cudnn=False" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_and_keeps_float32_outputs(policy, digits):
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)
    before = weights_by_layer(model)

    class Dtypes(keras.callbacks.Callback):  # what the model that trains computes in
        def on_train_batch_end(self, batch, logs=None):
            self.seen = {layer.name: (layer.compute_dtype, layer.variable_dtype) for layer in self.model.layers}

    dtypes = Dtypes()
    result = kzoo.finetune(
        model, data, epochs=1, strategy="full", mixed_precision=policy, verbose=0, callbacks=[dtypes]
    )
    low = policy.split("_")[1]
    assert dtypes.seen["c1_conv"] == dtypes.seen["f6_dense"] == (low, "float32")  # the convolutions and dense
    assert dtypes.seen["predictions"] == ("float32", "float32")  # the logits stay float32
    assert np.isfinite(result.history["loss"][0])
    assert changed_layers(before, model)  # trained weights came back into the user's model
    assert keras.config.dtype_policy().name == "float32"  # the global policy is untouched
    assert keras.backend.standardize_dtype(model(np.zeros((1, 28, 28, 1))).dtype) == "float32"


def test_nan_stops_the_run_and_never_keeps_nan_weights(digits):
    model = kzoo.get("lenet5", pretrained=True)
    images, labels = digits
    poisoned = images.astype("float32")
    poisoned[100:] = np.nan  # batches from the fourth on are NaN
    # kzoo.data.arrays refuses NaN images, so the poisoned pipeline is built by hand (in order, no
    # preprocessing: the pretrained LeNet-5 takes raw pixels), as a user's own tf.data pipeline would be.
    pixels = poisoned[..., None] if poisoned.ndim == 3 else poisoned
    data = tf.data.Dataset.from_tensor_slices((pixels, labels.astype("int64"))).batch(32)
    good = kzoo.data.arrays(*digits, model=model, batch_size=32)
    result = kzoo.finetune(model, data, good.validation, epochs=3, strategy="full", verbose=0)
    assert result.stopped_on_nan
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_bad_arguments_are_explained(digits):
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)
    with pytest.raises(errors.InvalidArgumentError, match="one of"):
        kzoo.finetune(model, data, epochs=1, strategy="everything")
    with pytest.raises(errors.InvalidArgumentError, match="a positive int"):
        kzoo.finetune(model, data, epochs=0)
    with pytest.raises(errors.InvalidArgumentError, match="between 1 and epochs - 1"):
        kzoo.finetune(model, data, epochs=2, head_epochs=2)
    with pytest.raises(errors.InvalidArgumentError, match=r"at least 2 for strategy='two-phase'.*strategy='head'"):
        kzoo.finetune(model, data, epochs=1)
    three = kzoo.get("lenet5", num_classes=3)
    with pytest.raises(errors.InvalidArgumentError, match="num_classes=10"):
        kzoo.finetune(three, data, epochs=1)


def run_script(*args, env=None, timeout=300):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=environment
    )


def test_sigkill_mid_run_resumes_from_the_last_finished_epoch(tmp_path):
    run, marks, state = tmp_path / "run", tmp_path / "epochs.txt", tmp_path / "resumed.npz"
    command = [sys.executable, str(SCRIPTS / "finetune_resumable.py"), run, marks, state]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KZOO_TEST_HANG_AFTER_EPOCH": "3"}
    # The same seeded job in one go, in its own directories, alongside (these processes compute on
    # one thread each under the CI's workers, so the two overlap instead of queueing).
    straight = tmp_path / "straight.npz"
    uninterrupted_command = [sys.executable, str(SCRIPTS / "finetune_resumable.py"), tmp_path / "run_straight"]
    uninterrupted_command += [tmp_path / "marks2.txt", straight]
    quiet = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(tmp_path / "straight.log", "wb") as log:
        third = subprocess.Popen(uninterrupted_command, env=quiet, stdout=log, stderr=subprocess.STDOUT)
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(600):  # the script hangs after epoch 3 (of 0..5) has ended
            if marks.is_file() and marks.read_text().split() and marks.read_text().split()[-1] == "hang":
                break
            if process.poll() is not None:
                pytest.fail(process.stderr.read().decode()[-3000:])
            import time

            time.sleep(0.5)
        process.kill()  # SIGKILL
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert json.loads((run / "kzoo_run.json").read_text())["status"] == "running"
    second = run_script(SCRIPTS / "finetune_resumable.py", run, marks, state)
    assert second.returncode == 0, second.stderr[-3000:]
    lines = marks.read_text().split()
    assert lines[: lines.index("hang")] == ["0", "1", "2", "3"]
    assert lines[lines.index("hang") + 1 :] == ["4", "5"]  # only the remaining epochs ran
    progress = json.loads((run / "kzoo_run.json").read_text())
    assert progress["status"] == "finished" and progress["phases_done"] == ["head", "fine"]

    # The same seeded job in one go keeps the same weights and ends with the same optimizer
    # state: the resume restored the weights and the optimizer of the fine-tuning phase, not
    # only the epoch counter.
    assert third.wait(timeout=300) == 0, (tmp_path / "straight.log").read_text()[-3000:]
    resumed, uninterrupted = np.load(state), np.load(straight)
    assert sorted(resumed.files) == sorted(uninterrupted.files)
    assert any(key.startswith("optimizer_") for key in resumed.files)
    assert int(resumed["best_epoch"]) == int(uninterrupted["best_epoch"])
    for key in resumed.files:
        np.testing.assert_allclose(resumed[key], uninterrupted[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_cli_finetune_writes_a_model_and_tensorboard_logs(tmp_path):
    folder = write_image_folder(tmp_path / "photos", per_class=8)
    run = tmp_path / "runs" / "x"
    result = run_script("-m", "kzoo.cli", "finetune", "lenet5", folder, "--epochs", "2", "--log-dir", run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Fine-tuning lenet5 (pretrained=True) on" in result.stdout and "Epoch 2/2" in result.stdout
    assert "shuffle=True" not in result.stderr  # the pipelines shuffle; Keras has nothing to warn about
    assert (run / "model.keras").is_file() and list((run / "tensorboard").rglob("events.out.tfevents.*"))
    # The run's model is still the pretrained lenet5 that takes raw pixels, in this process too.
    reloaded = keras.saving.load_model(run / "model.keras", safe_mode=True)
    identity = kzoo.identity.of(reloaded)
    assert identity.name == "lenet5" and identity.weights == "lenet5.mnist" and identity.preprocessing_in_model
    assert identity.class_names is None  # a new 3-class head: the MNIST digit names no longer apply
    # The HParams tab knows the model, its weights, the batch size and the validation metrics.
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    root = event_accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"tensors": 0})
    root.Reload()
    content = root.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    logged = start.session_start_info.hparams
    assert logged["model"].string_value == "lenet5" and logged["weights"].string_value == "lenet5.mnist"
    assert logged["batch_size"].number_value == 32 and logged["strategy"].string_value == "two-phase"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert ("validation", "epoch_accuracy") in {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    # Samples and the confusion matrix, every epoch, labelled with the folder's class names; the
    # matrix counts the whole validation split (the size the command printed).
    from test_callbacks import _events, _table_rows, _text

    validating = int(re.search(r"validating on (\d+);", result.stdout).group(1))
    train = _events(run / "tensorboard" / "train")
    for tag in ("samples/inputs", "samples/predictions", "confusion_matrix/table", "confusion_matrix/image"):
        assert [event.step for event in train.Tensors(tag)] == [0, 1], tag
    predictions = _table_rows(_text(train.Tensors("samples/predictions")[-1]))
    assert predictions and {row[1] for row in predictions} <= {"cat", "dog", "owl"}
    table = _table_rows(_text(train.Tensors("confusion_matrix/table")[-1]))
    assert [row[0] for row in table] == ["**cat**", "**dog**", "**owl**"]
    assert sum(int(cell) for row in table for cell in row[1:]) == validating > 0
    again = run_script("-m", "kzoo.cli", "finetune", "lenet5", folder, "--epochs", "2", "--log-dir", run)
    assert again.returncode == 0 and "Epoch 1/2" not in again.stdout  # finished: reported, not retrained
    best = [line for line in result.stdout.splitlines() if line.startswith("Best: ")]
    assert len(best) == 1 and best == [line for line in again.stdout.splitlines() if line.startswith("Best: ")]


def test_transfer_example_runs(tmp_path, capfd):
    """examples/transfer_lenet5_uci_digits.py --quick, in this process (tests/helpers.py says why)."""
    result = run_example(capfd, "transfer_lenet5_uci_digits.py", "--quick", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out accuracy" in result.stdout and "Pretraining on MNIST adds" in result.stdout
    assert (tmp_path / "transfer_lenet5_uci_digits.png").is_file()  # the example's main figure


def _last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def test_finetune_under_mirrored_strategy_on_two_logical_cpus():
    result = run_script(SCRIPTS / "finetune_distributed.py", "mirrored")
    assert result.returncode == 0, result.stderr[-3000:]
    report = _last_json(result.stdout)
    assert report["replicas"] == 2 and report["changed"] and report["finite"]
    assert len(report["loss"]) == 2
    # Two replicas of 16 images each sum their gradients of the global batch's mean loss: the
    # same job without a strategy, on one device, takes the same steps.
    alone = run_script(SCRIPTS / "finetune_distributed.py", "none")
    assert alone.returncode == 0, alone.stderr[-3000:]
    reference = _last_json(alone.stdout)
    assert reference["replicas"] == 1
    np.testing.assert_allclose(report["loss"], reference["loss"], rtol=1e-4)
    np.testing.assert_allclose(report["val_loss"], reference["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(report["checksum"], reference["checksum"], rtol=1e-4)


def test_finetune_with_two_multiworker_workers_on_loopback_matches_one_process(tmp_path):
    """Two real workers on 127.0.0.1 ports train together under MultiWorkerMirroredStrategy
    (kzoo works around keras-team/keras#20585); they end with the same weights as each other
    and as one process running the same global batches, and only the chief writes TensorBoard."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    workers = [f"127.0.0.1:{port}" for port in ports]
    run_dir = tmp_path / "run"
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(config)}
        processes.append(
            subprocess.Popen(
                [sys.executable, str(SCRIPTS / "finetune_distributed.py"), "multiworker", str(run_dir)],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=400)
            assert process.returncode == 0, err[-3000:]
            reports.append(_last_json(out))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    single = run_script(SCRIPTS / "finetune_distributed.py", "single")
    assert single.returncode == 0, single.stderr[-3000:]
    alone = _last_json(single.stdout)

    chief, worker = reports
    assert chief["replicas"] == worker["replicas"] == 2 and alone["replicas"] == 1
    assert chief["changed"] and chief["finite"] and len(chief["loss"]) == 2
    assert chief["loss"] == pytest.approx(worker["loss"]) and chief["checksum"] == pytest.approx(worker["checksum"])
    assert chief["loss"] == pytest.approx(alone["loss"], rel=1e-4)
    assert chief["val_loss"] == pytest.approx(alone["val_loss"], rel=1e-4)
    assert chief["checksum"] == pytest.approx(alone["checksum"], rel=1e-4)
    assert chief["log_dir"] == str(run_dir) and worker["log_dir"] == str(tmp_path / "run.worker1")
    assert (run_dir / "model.keras").is_file() and any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "run.worker1" / "kzoo_run.json").read_text())["status"] == "finished"
    assert not (tmp_path / "run.worker1" / "tensorboard").exists()
