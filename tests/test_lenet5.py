"""LeNet-5's shipped MNIST weights and their recipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import kzoo
from kzoo import weights as weights_lib

from conftest import requires_data

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
def test_recipe_runs_in_quick_mode_without_touching_the_shipped_weights(tmp_path):
    manifest = (weights_lib.shipped_dir() / "manifest.json").read_bytes()
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "train_lenet5_mnist.py"), "--quick", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.85  # 3 short epochs on 5,000 images
    assert (tmp_path / "lenet5_mnist.weights.h5").is_file()
    assert (tmp_path / "lenet5_mnist_training.png").is_file()  # the example's main figure
    assert (weights_lib.shipped_dir() / "manifest.json").read_bytes() == manifest
    model = kzoo.get("lenet5", pretrained=tmp_path / "lenet5_mnist.weights.h5")
    assert np.isfinite(model.get_weights()[0]).all()
