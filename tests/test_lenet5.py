"""LeNet-5's shipped MNIST weights and their recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kzoo
from kzoo import weights as weights_lib

from conftest import requires_data
from helpers import run_cli

REPO = Path(__file__).resolve().parent.parent


def test_card_states_the_classic_parameter_count():
    assert kzoo.info("lenet5").params == 61706  # 156 + 2,416 + 48,120 + 10,164 + 850


@requires_data("mnist")
def test_pretrained_lenet5_reaches_99_percent_on_mnist_test(monkeypatch):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    model = kzoo.get("lenet5", pretrained=True)
    record = kzoo.registry.origin(model).weights
    images, labels = kzoo.data.load_mnist("test")
    logits = model.predict(images[..., None], batch_size=1000, verbose=0)  # raw uint8 pixels
    accuracy = float((logits.argmax(axis=-1) == labels).mean())
    assert accuracy >= 0.99
    # The manifest records what was measured, not a hope.
    assert abs(accuracy - record.metrics["test_accuracy"]) < 5e-4


def test_pretrained_lenet5_reads_uci_digits():
    model = kzoo.get("lenet5", pretrained=True)
    images, labels = kzoo.data.load_uci_digits()
    logits = model.predict(images[..., None], verbose=0)
    assert float((logits.argmax(axis=-1) == labels).mean()) > 0.8  # another dataset, never trained on


@requires_data("mnist")
def test_recipe_reproduces_its_quick_figure_without_touching_the_shipped_weights(
    tmp_path, capfd, quiet_examples, examples_in_process
):
    """``kzoo reproduce lenet5:mnist --quick``: the recipe (examples/train_lenet5_mnist.py: 3 epochs
    on 6,000 images, run in this process: tests/helpers.py) must land in the manifest's quick
    range; the shipped files stay as they were."""
    manifest = (weights_lib.shipped_dir() / "manifest.json").read_bytes()
    shipped = (weights_lib.shipped_dir() / "lenet5_mnist.weights.h5").read_bytes()
    result = run_cli(capfd, "reproduce", "lenet5:mnist", "--quick", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert examples_in_process.ran == ["train_lenet5_mnist"]
    low, high = weights_lib.find_record("lenet5.mnist").reproduce["quick_range"]
    assert f"(expected {low:.4g} to {high:.4g}; quick run): reproduced" in result.stdout
    measured = json.loads((tmp_path / "metrics.json").read_text())["records"]["lenet5.mnist"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert measured["test_accuracy"] == round(summary["test_accuracy"], 4) and low <= measured["test_accuracy"]
    assert (tmp_path / "lenet5_mnist_training.png").is_file()  # the example's main figure
    assert (weights_lib.shipped_dir() / "manifest.json").read_bytes() == manifest
    assert (weights_lib.shipped_dir() / "lenet5_mnist.weights.h5").read_bytes() == shipped
    model = kzoo.get("lenet5", pretrained=tmp_path / "lenet5_mnist.weights.h5")
    images, labels = kzoo.data.load_mnist("test")
    scaled = images[..., None].astype("float32") / 255.0  # a file by path carries no preprocessing: the recipe's
    accuracy = float((model.predict(scaled, batch_size=1000, verbose=0).argmax(-1) == labels).mean())
    assert accuracy == pytest.approx(measured["test_accuracy"], abs=5e-4)  # the file written is the model scored
