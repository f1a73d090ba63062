"""The `kzoo` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import kzoo


def kzoo_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "kzoo.cli", *args], capture_output=True, text=True, timeout=300, env=environment
    )


def test_list_and_info():
    listing = kzoo_cli("list", "lenet*")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split()[0] == "lenet5" and "mnist" in listing.stdout
    assert kzoo_cli("list", "nothing*").returncode == 1
    card = kzoo_cli("info", "lenet5")
    assert card.returncode == 0 and "61,706" in card.stdout and "test_accuracy" in card.stdout


def test_errors_are_one_line_with_a_hint():
    result = kzoo_cli("info", "lenet")
    assert result.returncode == 2
    assert "did you mean 'lenet5'" in result.stderr and "Traceback" not in result.stderr


def test_download_verifies_shipped_weights_offline(tmp_path):
    result = kzoo_cli("download", "lenet5:mnist", env={"KZOO_OFFLINE": "1", "KZOO_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "lenet5.mnist" in result.stdout and "verified" in result.stdout
    assert kzoo_cli("download", "lenet5:imagenet").returncode == 2


def test_demo_runs_offline_and_reports_accuracy(tmp_path):
    result = kzoo_cli("demo", env={"KZOO_OFFLINE": "1", "KZOO_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "UCI handwritten digits" in result.stdout and "accuracy" in result.stdout
    if kzoo.data.has_data("mnist"):
        assert "MNIST test set (10,000 images): accuracy 0.99" in result.stdout


def test_version():
    result = kzoo_cli("--version")
    assert result.stdout.strip() == f"kzoo {kzoo.__version__}"
