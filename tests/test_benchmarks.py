"""benchmarks/run.py (arguments; a real run of one tiny model, its JSON, Markdown and FLOP count) and TimeToAccuracy."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import kzoo
from kzoo import registry
from kzoo.callbacks import TimeToAccuracy
from kzoo.errors import InvalidArgumentError

from conftest import requires_data

RUNNER = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("kzoo_benchmark_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--batch", "0"], "--batch: expected a positive integer, received 0"),
        (["--xla", "maybe"], "--xla: expected 'on', 'off' or 'on,off'"),
        (["--precisions", "float8"], "--precisions: expected names from"),
    ],
)
def test_runner_rejects_bad_arguments(runner, argv, message, capsys):
    with pytest.raises(SystemExit):
        runner.parse_args(argv)
    assert message in capsys.readouterr().err


def test_runner_rejects_unknown_models(runner):
    with pytest.raises(SystemExit, match="expected registered names or patterns, received 'no_such_model'"):
        runner.main(["--models", "no_such_model"])


def test_runner_measures_one_model_and_writes_json_and_markdown(runner, tmp_path):
    # The real thing: the worker runs in its own subprocess, and so does the FLOP count (XLA's
    # cost analysis, on JAX), as in a full benchmark run; only the sizes are a smoke run's.
    json_path, markdown_path = tmp_path / "out.json", tmp_path / "out.md"
    argv = ["--models", "lenet5", "--quick", "--xla", "off", "--precisions", "float32", "--steps", "1"]
    argv += ["--warmup", "0", "--batch", "2"]
    assert runner.main([*argv, "--json", str(json_path), "--markdown", str(markdown_path)]) == 0
    results = json.loads(json_path.read_text())
    measured = results["models"]["lenet5"]
    assert "error" not in measured, measured.get("error")
    (run,) = measured["runs"]
    assert run["precision"] == "float32" and run["xla"] == "off"
    assert run["forward_items_s"] > 0 and run["train_items_s"] > 0 and run["train_first_s"] > 0
    assert measured["peak_memory_mib"] > 0 and measured["wall_s"] > 0
    assert measured["input_shapes"] == [[28, 28, 1]]
    # XLA's count against one from the layer shapes: a train step is about 3 forward passes
    # (forward, and the gradients of inputs and weights), 2 FLOPs a multiply-add.
    assert measured.get("flops_error") is None, measured["flops_error"]
    expected = 3 * 2 * _multiply_adds(kzoo.get("lenet5", **registry.spec("lenet5").test_kwargs), batch=2)
    assert 0.7 * expected < measured["train_flops"] < 2 * expected, (measured["train_flops"], expected)
    table = markdown_path.read_text().splitlines()
    assert table[0].startswith("| model | precision | XLA |") and len(table) == 3
    assert table[2].startswith("| lenet5 | float32 | off |")
    assert runner.main(["--render", str(json_path)]) == 0  # the table again, from the saved results


def _multiply_adds(model, batch: int) -> int:
    """Multiply-adds of the convolutions and dense layers of a forward pass, from their shapes."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.shape  # (kh, kw, in, out)
            _, height, width, _ = layer.output.shape
            total += kernel[0] * kernel[1] * kernel[2] * kernel[3] * height * width
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return batch * total


def test_markdown_shows_ratios_to_the_reference_and_errors(runner):
    run = {"precision": "float32", "xla": "on", "forward_items_s": 30.0, "train_items_s": 10.0}
    run.update(forward_first_s=1.0, train_first_s=2.0, train_step_s=0.8, mfu=0.25)
    reference_run = {**run, "forward_items_s": 20.0, "train_items_s": 10.0}
    reference = {"label": "keras.applications.VGG16", "runs": [reference_run], "peak_memory_mib": 80.0}
    results = {
        "models": {
            "vgg16": {"runs": [run], "peak_memory_mib": 100.0, "train_flops": 2e9, "reference": reference},
            "broken": {"error": "timed out after 5 s"},
        }
    }
    table = runner.markdown(results)
    assert (
        "| vgg16 | float32 | on | 30.0 | 10.0 | 1.00 | 2.00 | 2 | 25.0% | 100 "
        "| 1.50, 1.00, 1.25 (keras.applications.VGG16) |" in table
    )
    assert "| broken | error: timed out after 5 s |" in table


def test_reference_table_is_pluggable_by_pattern(runner, monkeypatch):
    assert runner.reference_for("resnet50")[0] == "keras.applications.ResNet50"
    assert runner.reference_for("lenet5") is None
    monkeypatch.setitem(runner.REFERENCES, "bert_*", ("keras_hub.models.BertBackbone", None))
    assert runner.reference_for("bert_tiny")[0] == "keras_hub.models.BertBackbone"


def _tiny_classifier() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(
        optimizer=keras.optimizers.Adam(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def test_time_to_accuracy_stops_at_the_target_and_records_its_evaluations():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")  # separable: a linear model reaches the target quickly
    timer = TimeToAccuracy(x, y, target=0.95, per_epoch=4)
    model = _tiny_classifier()
    model.fit(x, y, batch_size=16, epochs=50, verbose=0, callbacks=[timer])
    assert timer.seconds is not None and timer.seconds > 0
    seconds, steps, accuracy = timer.history[-1]
    assert accuracy >= 0.95 and seconds == timer.seconds
    assert steps < 50 * 16  # stopped early
    assert all(a < 0.95 for _, _, a in timer.history[:-1])
    assert [s for _, s, _ in timer.history][:4] == [4, 8, 12, 16]  # four evaluations per 16-step epoch


def test_time_to_accuracy_checks_at_the_end_of_the_execution_that_reaches_each_point():
    x = np.zeros((16, 4), "float32")
    y = np.array([0, 1] * 8)  # 50% at best: never stops, so every check is recorded
    timer = TimeToAccuracy(x, y, target=0.9, per_epoch=4)
    model = _tiny_classifier()
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=3
    )
    model.fit(x, y, batch_size=1, epochs=2, verbose=0, callbacks=[timer])
    # 16 batches an epoch in calls of 3 end after batches 3, 6, 9, 12, 15, 16: the checks due
    # after batches 4, 8 and 12 fall at 6, 9 and 12, then the epoch's end; the step count runs on.
    assert [steps for _, steps, _ in timer.history] == [6, 9, 12, 16, 22, 25, 28, 32]


def test_time_to_accuracy_counts_from_started_at_when_given():
    import time

    x = np.zeros((8, 4), "float32")
    y = np.array([0, 1] * 4)
    before = time.perf_counter()
    time.sleep(0.5)  # stands for data loading before fit
    timer = TimeToAccuracy(x, y, target=0.9, started_at=before)
    _tiny_classifier().fit(x, y, epochs=1, verbose=0, callbacks=[timer])
    counted = timer.history[0][0]
    assert counted >= 0.5
    later = TimeToAccuracy(x, y, target=0.9)
    _tiny_classifier().fit(x, y, epochs=1, verbose=0, callbacks=[later])
    assert later.history[0][0] < counted - 0.4  # without started_at the sleep is not counted
    with pytest.raises(InvalidArgumentError, match="from the past"):
        TimeToAccuracy(x, y, target=0.9, started_at=time.perf_counter() + 60)


def test_time_to_accuracy_reports_an_unreached_target():
    x = np.zeros((8, 4), "float32")
    y = np.array([0, 1] * 4)  # identical inputs, alternating labels: 50% at best
    timer = TimeToAccuracy(x, y, target=0.9)
    _tiny_classifier().fit(x, y, epochs=2, verbose=0, callbacks=[timer])
    assert timer.seconds is None and len(timer.history) == 2


@pytest.mark.parametrize("kwargs", [{"target": 0.0}, {"target": 1.5}, {"target": 0.9, "per_epoch": 0}])
def test_time_to_accuracy_rejects_bad_arguments(kwargs):
    with pytest.raises(InvalidArgumentError, match="expected"):
        TimeToAccuracy(np.zeros((1, 4)), np.zeros(1), **kwargs)


def test_get_memory_script_measures_both_sides_and_prints_their_ratios(tmp_path):
    import subprocess
    import sys

    script = RUNNER.parent / "get_memory.py"
    json_path = tmp_path / "get_memory.json"
    argv = ["--quick", "--models", "vgg16", "--rounds", "1", "--workdir", str(tmp_path), "--json", str(json_path)]
    result = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(json_path.read_text())["models"]["vgg16"]
    ours, theirs = measured["kzoo"], measured["keras.applications"]
    for side in (ours, theirs):
        assert len(side["rounds"]) == 1
        assert side["peak_above_baseline_mb"] > 0 and side["peak_total_mb"] > 0 and side["seconds"] > 0
    # The printed ratios are kzoo / keras.applications of the figures in the JSON; no goal is asserted.
    (row,) = [line.split() for line in result.stdout.splitlines() if line.startswith("vgg16 ")]
    memory_ratio = ours["peak_above_baseline_mb"] / theirs["peak_above_baseline_mb"]
    assert row[3] == f"{memory_ratio:.2f}"
    assert row[6] == f"{ours['seconds'] / theirs['seconds']:.2f}"
    assert row[7] in ("yes", "no") and row[8] in ("yes", "no")


@requires_data("sst2")
def test_lora_vs_full_script_measures_both_runs_on_the_same_budget(tmp_path):
    spec = importlib.util.spec_from_file_location("kzoo_lora_vs_full", RUNNER.parent / "lora_vs_full.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    json_path = tmp_path / "lora_vs_full.json"
    argv = ["--train-size", "64", "--epochs", "1", "--batch-size", "16", "--max-length", "16", "--dev-size", "64"]
    argv += ["--jit-compile", "off"]  # 4 steps: two XLA compiles would be most of this test's time
    results = script.main([*argv, "--rank", "2", "--json", str(json_path)])
    assert json.loads(json_path.read_text())["steps"] == results["steps"] == 4
    full, lora = results["runs"]["full"], results["runs"]["lora"]
    assert full["trainable_params"] == full["total_params"]  # every weight trains
    assert 0 < lora["trainable_params"] < lora["total_params"] and lora["trainable_params"] < full["trainable_params"]
    assert lora["merged_params"] == full["total_params"]  # merged: the plain model again
    assert lora["merged_dev_accuracy"] == pytest.approx(lora["dev_accuracy"], abs=1 / 64)
    assert all(0 <= run["dev_accuracy"] <= 1 for run in (full, lora))


@requires_data("mnist")
def test_fast_recipe_settings_scores_each_candidate_on_both_validation_folds(capsys):
    """The recipe runs once per fold (its quick mode); the printed curves end at the finals they average."""
    path = RUNNER.parent / "fast_recipe_settings.py"
    spec = importlib.util.spec_from_file_location("kzoo_fast_recipe_settings", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    command = script.recipe_command("--learning-rate 0.005", "start", 7, "out", quick=True)
    assert command[command.index("--validation-from") + 1] == "start" and "--quick" in command
    assert command[command.index("--learning-rate") + 1] == "0.005" and command[command.index("--seed") + 1] == "7"
    results = script.main(["--quick", "--", "--learning-rate 0.005"])
    mean, finals = results["--learning-rate 0.005"]
    assert len(finals) == 2 and all(0.5 < accuracy <= 1.0 for accuracy in finals)
    assert mean == pytest.approx(sum(finals) / 2)
    printed = capsys.readouterr().out
    curves = [line.split(":")[1].split() for line in printed.splitlines() if " fold " in line]
    assert "fold end" in printed and "fold start" in printed and len(curves) == 2
    assert all(len(curve) % 2 == 0 and curve[-1] == f"{final:.4f}" for curve, final in zip(curves, finals))
    with pytest.raises(ValueError, match="no TIME_TO_ACCURACY"):
        script.validation_curve("Epoch 1/1\n")
