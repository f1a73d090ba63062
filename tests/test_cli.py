"""The `kzoo` command: its parser and commands through ``kzoo.cli.main`` (in this process), and
the console command itself once, in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import kzoo

from helpers import run_cli


def kzoo_command(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "kzoo.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)


def test_the_command_runs_as_a_user_runs_it():
    result = kzoo_command("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kzoo {kzoo.__version__}"
    unknown = kzoo_command("info", "lenet")
    assert unknown.returncode == 2 and "did you mean 'lenet5'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_list_and_info(capfd):
    listing = run_cli(capfd, "list", "lenet*")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split()[0] == "lenet5" and "mnist" in listing.stdout
    assert run_cli(capfd, "list", "nothing*").returncode == 1
    card = run_cli(capfd, "info", "lenet5")
    assert card.returncode == 0 and "61,706" in card.stdout and "test_accuracy" in card.stdout


def test_errors_are_one_line_with_a_hint(capfd):
    result = run_cli(capfd, "info", "lenet")
    assert result.returncode == 2
    assert "did you mean 'lenet5'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    usage = run_cli(capfd, "list", "--bogus")  # argparse's own usage error
    assert usage.returncode == 2 and "unrecognized arguments: --bogus" in usage.stderr


def test_download_verifies_shipped_weights_offline(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    monkeypatch.setenv("KZOO_HOME", str(tmp_path))
    result = run_cli(capfd, "download", "lenet5:mnist")
    assert result.returncode == 0, result.stderr
    assert "lenet5.mnist" in result.stdout and "verified" in result.stdout
    assert run_cli(capfd, "download", "lenet5:imagenet").returncode == 2


def test_demo_runs_offline_and_reports_accuracy(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    monkeypatch.setenv("KZOO_HOME", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    result = run_cli(capfd, "demo")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "UCI handwritten digits" in result.stdout and "accuracy" in result.stdout
    if kzoo.data.has_data("mnist"):
        assert "MNIST test set (10,000 images): accuracy 0.99" in result.stdout
