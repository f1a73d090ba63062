"""The `kzoo` command: its parser and commands through ``kzoo.cli.main`` (in this process), and
the console command itself once, in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import kzoo
import kzoo.cli

from helpers import run_cli


def kzoo_command(*args: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(environment or {})}
    command = [sys.executable, "-m", "kzoo.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)


def test_the_command_runs_as_a_user_runs_it():
    result = kzoo_command("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kzoo {kzoo.__version__}"
    # TensorFlow's C++ start-up lines (oneDNN, CUDA stub, CPU features, the absl banner) stay off the
    # terminal; they print whatever TF_CPP_MIN_LOG_LEVEL says, so the environment here does not hide them.
    assert result.stderr == "", result.stderr[-2000:]
    unknown = kzoo_command("info", "lenet", environment={"KZOO_TF_LOGS": "1"})
    assert unknown.returncode == 2 and "did you mean 'lenet5'" in unknown.stderr and "Traceback" not in unknown.stderr
    # KZOO_TF_LOGS=1 shows the lines: the filter is what hid them. The absl banner prints on every
    # machine; the oneDNN line only where TensorFlow turns oneDNN on (not on an AMD EPYC).
    assert "All log messages before absl::InitializeLog() is called" in unknown.stderr, unknown.stderr[-2000:]


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


def test_bad_values_are_usage_errors_naming_the_bounds(capfd, tmp_path):
    tune = ("finetune", "lenet5", str(tmp_path), "--log-dir", str(tmp_path / "r"))
    for args, message in (
        (("demo", "--show", "-1"), "argument --show: expected a value from 0 to 10, received -1"),
        (("demo", "--show", "100000"), "argument --show: expected a value from 0 to 10, received 100000"),
        (("demo", "--show", "many"), "argument --show: expected an integer, received 'many'"),
        ((*tune, "--epochs", "0"), "argument --epochs: expected a value of at least 1, received 0"),
        ((*tune, "--learning-rate", "-1"), "argument --learning-rate: expected a value above 0, received -1"),
        ((*tune, "--validation-split", "1"), "expected a value from 0 to 0.9, received 1"),
    ):
        result = run_cli(capfd, *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()  # refused before any work


def test_an_unwritable_log_dir_is_refused_before_any_work(capfd, tmp_path):
    folder = tmp_path / "photos"
    (folder / "a").mkdir(parents=True)
    result = run_cli(capfd, "finetune", "lenet5", str(folder), "--log-dir", "/proc/kzoo_run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--log-dir: expected a new or empty directory kzoo can create and write, received '/proc/kzoo_run'" in (
        result.stderr
    )
    (tmp_path / "file").write_text("mine")
    on_a_file = run_cli(capfd, "finetune", "lenet5", str(folder), "--log-dir", str(tmp_path / "file"))
    assert on_a_file.returncode == 2 and "is a file" in on_a_file.stderr
    assert (tmp_path / "file").read_text() == "mine"


def test_an_unexpected_error_is_one_line_unless_kzoo_debug(capfd, monkeypatch):
    from kzoo import registry

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("something kzoo did not foresee\nsecond line")

    monkeypatch.setattr(registry, "info", broken)
    result = run_cli(capfd, "info", "lenet5")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "kzoo: error: RuntimeError: something kzoo did not foresee (set KZOO_DEBUG=1 for the traceback, "
        "and report it if it is kzoo's fault)"
    ]
    monkeypatch.setenv("KZOO_DEBUG", "1")
    with pytest.raises(RuntimeError, match="did not foresee"):
        kzoo.cli.main(["info", "lenet5"])


def test_tensorflow_start_up_lines_are_filtered_and_everything_else_kept(capfd):
    from kzoo import _quiet

    capfd.readouterr()
    with _quiet.native_stderr():
        os.write(2, b"I0000 00:00:1796170031.130188     652 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"a user's warning\n")
        os.write(2, b"W0000 00:00:1796170031.1 652 op.cc:1] a TensorFlow warning\n")
    assert capfd.readouterr().err == "a user's warning\nW0000 00:00:1796170031.1 652 op.cc:1] a TensorFlow warning\n"
    with pytest.raises(ValueError), _quiet.native_stderr():  # a failing block hides nothing
        os.write(2, b"I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on.\n")
        raise ValueError("import failed")
    assert "oneDNN" in capfd.readouterr().err
