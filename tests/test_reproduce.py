"""``kzoo reproduce NAME:TAG``: the recipe's command, the verdict, and every shipped record's check.

The recipes themselves run through ``kzoo reproduce --quick`` in tests/test_examples.py,
tests/test_lenet5.py and tests/test_unet.py; here the recipe run is replaced by one that
writes a chosen ``metrics.json``, so each verdict and error path is checked in seconds.
"""

from __future__ import annotations

import ast
import json

import pytest

import kzoo
from kzoo import examples, reproduce
from kzoo import weights as weights_lib
from kzoo.errors import InvalidArgumentError

from helpers import run_cli


def _record(**overrides) -> weights_lib.WeightsRecord:
    fields = {
        "model": "lenet5",
        "tag": "reproduce_test",
        "file": "lenet5_mnist.weights.h5",
        "sha256": "0" * 64,
        "metrics": {"test_accuracy": 0.95, "test_loss": 0.2},
        "recipe": "examples/train_lenet5_mnist.py --epochs 4 --publish --output-dir /somewhere/else --seed 3",
        "reproduce": {"metric": "test_accuracy", "tolerance": 0.01, "why": "a test", "quick_range": [0.8, 0.9]},
    }
    return weights_lib.WeightsRecord(**{**fields, **overrides})


def test_the_recipe_reruns_without_publish_or_its_output_dir():
    assert reproduce.recipe_command(_record()) == ("train_lenet5_mnist", ["--epochs", "4", "--seed", "3"])
    equals = _record(recipe="examples/train_word2vec.py --output-dir=/x --publish --architecture cbow")
    assert reproduce.recipe_command(equals) == ("train_word2vec", ["--architecture", "cbow"])
    with pytest.raises(InvalidArgumentError, match="kzoo reproduce reruns kzoo's own recipes"):
        reproduce.recipe_command(_record(recipe="keras.applications (ImageNet)", source="keras"))


@pytest.fixture
def fake_recipe(monkeypatch):
    """Replaces the recipe run by one that writes the given metrics.json; records what was asked."""
    calls = []

    def run(name, *, quick=False, output_dir=None, extra_args=None, report=None):
        calls.append({"name": name, "quick": quick, "flags": list(extra_args or [])})
        if state["code"] == 0 and state["metrics"] is not None:
            examples.write_metrics(output_dir, state["metrics"])
        return state["code"], output_dir, []

    state = {"code": 0, "metrics": None, "calls": calls}
    monkeypatch.setattr(examples, "run_example", run)
    return state


def test_verdicts_of_kzoo_reproduce(fake_recipe, temporary_registry, tmp_path, capfd):
    temporary_registry.weights(_record())
    fake_recipe["metrics"] = {"lenet5.reproduce_test": {"test_accuracy": 0.955, "test_loss": 0.3}}
    within = run_cli(capfd, "reproduce", "lenet5:reproduce_test", "--output-dir", str(tmp_path / "a"))
    assert within.returncode == 0, within.stderr
    assert "test_accuracy 0.955 (expected 0.94 to 0.96; recorded 0.95): reproduced" in within.stdout
    assert fake_recipe["calls"][-1] == {
        "name": "train_lenet5_mnist",
        "quick": False,
        "flags": ["--epochs", "4", "--seed", "3"],
    }

    fake_recipe["metrics"] = {"lenet5.reproduce_test": {"test_accuracy": 0.93}}
    outside = run_cli(capfd, "reproduce", "lenet5:reproduce_test", "--output-dir", str(tmp_path / "b"))
    assert outside.returncode == 1 and "NOT reproduced" in outside.stdout

    # --quick has its own range: 0.93 is outside the full band but the quick one is [0.8, 0.9].
    fake_recipe["metrics"] = {"lenet5.reproduce_test": {"test_accuracy": 0.85}}
    quick = run_cli(capfd, "reproduce", "lenet5:reproduce_test", "--quick", "--output-dir", str(tmp_path / "c"))
    assert quick.returncode == 0 and "(expected 0.8 to 0.9; quick run): reproduced" in quick.stdout
    assert fake_recipe["calls"][-1]["quick"] is True
    result = reproduce.reproduce("lenet5.reproduce_test", quick=True, output_dir=tmp_path / "d")
    assert result.passed and result.figure == 0.85 and result.metrics == {"test_accuracy": 0.85}
    assert result.command == ("examples/train_lenet5_mnist.py", "--epochs", "4", "--seed", "3", "--quick")


def test_kzoo_reproduce_refuses_what_it_cannot_judge(fake_recipe, temporary_registry, tmp_path, capfd):
    temporary_registry.weights(_record(tag="no_quick", reproduce={"metric": "test_accuracy", "tolerance": 0.01}))
    temporary_registry.weights(_record(tag="no_check", reproduce={}))
    temporary_registry.weights(_record(tag="official", recipe="", source="keras.applications"))

    no_quick = run_cli(capfd, "reproduce", "lenet5:no_quick", "--quick", "--output-dir", str(tmp_path / "a"))
    assert no_quick.returncode == 2 and "run `kzoo reproduce lenet5:no_quick` without --quick" in no_quick.stderr
    no_check = run_cli(capfd, "reproduce", "lenet5:no_check", "--output-dir", str(tmp_path / "b"))
    assert no_check.returncode == 2 and "expected reproduce.metric naming one of its metrics" in no_check.stderr
    official = run_cli(capfd, "reproduce", "lenet5:official", "--output-dir", str(tmp_path / "c"))
    assert official.returncode == 2 and "these weights come from keras.applications" in official.stderr
    assert fake_recipe["calls"] == []  # refused before any run

    unknown = run_cli(capfd, "reproduce", "lenet5:nosuch")
    assert unknown.returncode == 2 and "received 'nosuch'" in unknown.stderr and "Traceback" not in unknown.stderr

    temporary_registry.weights(_record(tag="runs"))
    fake_recipe["code"] = 3
    failed = run_cli(capfd, "reproduce", "lenet5:runs", "--output-dir", str(tmp_path / "d"))
    assert failed.returncode == 2 and "exited with code 3" in failed.stderr
    fake_recipe["code"], fake_recipe["metrics"] = 0, {"lenet5.other": {"test_accuracy": 0.95}}
    silent = run_cli(capfd, "reproduce", "lenet5:runs", "--output-dir", str(tmp_path / "e"))
    assert silent.returncode == 2 and "records['lenet5.runs']['test_accuracy']" in silent.stderr


def _calls_write_metrics(path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "write_metrics"
        for node in ast.walk(tree)
    )


def test_every_record_kzoo_trained_has_a_reproduce_check():
    records = [record for record in weights_lib.all_records() if record.source == "kzoo"]
    assert len(records) >= 20
    for record in records:
        spec = record.reproduce
        assert spec.get("metric") in record.metrics, record.key
        assert float(spec["tolerance"]) > 0 and spec.get("why"), record.key
        if record.metrics.get(f"{spec['metric']}_sd"):  # a tolerance tighter than the seeds' spread would be luck
            assert float(spec["tolerance"]) >= 2 * float(record.metrics[f"{spec['metric']}_sd"]), record.key
        if spec.get("quick_range"):
            low, high = spec["quick_range"]
            assert low < high, record.key
        name, _ = reproduce.recipe_command(record)
        script = kzoo.examples.get_example(name).path
        assert _calls_write_metrics(script), f"{script} never calls write_metrics"


def test_write_metrics_writes_the_records(tmp_path):
    path = examples.write_metrics(tmp_path / "out", {"lenet5.mnist": {"test_accuracy": 0.99}})
    assert json.loads(path.read_text()) == {"records": {"lenet5.mnist": {"test_accuracy": 0.99}}}
