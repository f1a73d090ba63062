"""kzoo.finetune's run directory resumes after a SIGKILL at any moment (issue #21, "Hardening").

The kills are real but one: tests/scripts/finetune_killed.py SIGKILLs itself after an epoch, at
the two-phase boundary, once the run file records a phase (before its backup is removed) or
after the run file says "finished" (the state a kill during the run
file's first write leaves is laid out by hand), and the next start of the same run must end
where an uninterrupted run ends, training no epoch twice; a finished run started again returns
the uninterrupted call's result.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import kzoo
from kzoo import atomic, errors

SCRIPT = Path(__file__).resolve().parent / "scripts" / "finetune_killed.py"


def run_script(run: Path, marks: Path, out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    arguments = [sys.executable, str(SCRIPT), str(run), str(marks), str(out), *([kill_at] if kill_at else [])]
    return subprocess.run(arguments, capture_output=True, text=True, timeout=300, env=environment)


def killed(process: subprocess.CompletedProcess) -> bool:
    return process.returncode == -signal.SIGKILL


def epochs_in(marks: Path) -> list[int]:
    return [int(line) for line in marks.read_text().split()] if marks.is_file() else []


def run_file(run: Path) -> dict:
    return json.loads((run / "kzoo_run.json").read_text())


def hidden_files(run: Path) -> list[str]:
    """kzoo writes no hidden file in a run directory but the temporary files of its atomic writes."""
    return sorted(str(p.relative_to(run)) for p in run.rglob(".*"))


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
        )
    return arrays


def assert_same_history(rows: list[dict], reference: list[dict]) -> None:
    assert [row["epoch"] for row in rows] == [row["epoch"] for row in reference]
    for row, expected in zip(rows, reference):
        assert row.keys() == expected.keys()
        for key in expected:
            assert row[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), (row["epoch"], key)


def arrays_of(model, result) -> dict[str, np.ndarray]:
    """What tests/scripts/finetune_killed.py writes to its RESULT_OUT, for a call made here."""
    return {
        **{f"weight_{i}": w for i, w in enumerate(model.get_weights())},
        **{f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)},
        **{f"history_{key}": np.asarray(values) for key, values in result.history.items()},
        "epochs": np.asarray(result.epochs),
        "best_epoch": np.asarray(-1 if result.best_epoch is None else result.best_epoch),
        "best_value": np.asarray(np.nan if result.best_value is None else result.best_value),
        "compiled": np.asarray(model.compiled),
    }


def assert_same_result(got, expected, *, history: bool = True) -> None:
    got, expected = dict(got), dict(expected)
    keys = [k for k in expected if history or not (k.startswith("history_") or k == "epochs")]
    assert sorted(got) == sorted(expected)
    assert any(k.startswith("weight_") for k in keys) and any(k.startswith("optimizer_") for k in keys)
    for key in keys:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its directory, marks and result."""
    root = tmp_path_factory.mktemp("reference")
    run, marks, out = root / "run", root / "marks.txt", root / "result.npz"
    process = run_script(run, marks, out)
    assert process.returncode == 0, process.stderr[-3000:]
    assert epochs_in(marks) == [0, 1, 2]
    # The best epoch is the last one: the optimizer state the model ends with is then the run's
    # last (the best checkpoint holds it), which the resumed runs must reproduce too.
    assert int(np.load(out)["best_epoch"]) == 2
    return run, marks, out


def test_atomic_temporary_names_are_recognised_and_nothing_else(tmp_path):
    with atomic.destination(tmp_path / "kzoo_run.json") as name:
        assert atomic.is_temporary(name, "kzoo_run.json")
    for suffix in (".weights.h5", ".keras"):
        with atomic.destination(tmp_path / f"x{suffix}", suffix=suffix) as other:
            assert atomic.is_temporary(other, f"x{suffix}", suffix) and not atomic.is_temporary(other, "kzoo_run.json")
    for foreign in (
        "kzoo_run.json",
        ".kzoo_run.json.tmp",
        ".kzoo_run.json.abcdefgh.tmp.keep",
        ".kzoo_run.json.ABCDEFGH.tmp",
        ".kzoo_run.json.abc.tmp",
        "kzoo_run.json.abcdefgh.tmp",
        ".other.json.abcdefgh.tmp",
    ):
        assert not atomic.is_temporary(foreign, "kzoo_run.json"), foreign


def test_kill_during_the_first_run_file_write_then_mid_phase_resume_to_the_uninterrupted_result(tmp_path, reference):
    run, marks, out = tmp_path / "run", tmp_path / "marks.txt", tmp_path / "result.npz"

    # 1. The state a kill during the first write of kzoo_run.json leaves (tests/scripts/
    # finetune_killed.py's "first-run-file" does it for real, but a process start costs the time
    # of a whole test here): the new directory holds that write's temporary file, named as
    # kzoo.atomic.destination names it, and nothing else.
    run.mkdir()
    with tempfile.NamedTemporaryFile(dir=run, prefix=".kzoo_run.json.", suffix=".tmp", delete=False) as handle:
        handle.write(b'{\n  "run_id": "5d1e')
    leftovers = [p.name for p in run.iterdir()]
    assert len(leftovers) == 1 and atomic.is_temporary(leftovers[0], "kzoo_run.json"), leftovers

    # 2. Started again: a fresh run (no "holds no kzoo run" refusal), killed once epoch 0 ended.
    second = run_script(run, marks, out, "after-epoch-0")
    assert killed(second), second.stderr[-3000:]
    assert not (run / leftovers[0]).exists()
    assert epochs_in(marks) == [0]
    state = run_file(run)
    assert state["status"] == "running" and state["phases_done"] == [] and [r["epoch"] for r in state["history"]] == [0]

    # 3. Started again: epoch 1 finishes the head phase, epoch 2 is the fine phase; no epoch runs
    # twice (Keras' restored initial epoch must not leak into the fine phase's fit).
    third = run_script(run, marks, out)
    assert third.returncode == 0, third.stderr[-3000:]
    assert epochs_in(marks) == [0, 1, 2]
    state, expected = run_file(run), run_file(reference[0])
    assert state["status"] == "finished" and state["phases_done"] == ["head", "fine"]
    assert_same_history(state["history"], expected["history"])
    assert state["best_epoch"] == expected["best_epoch"]
    assert_same_result(
        np.load(out), np.load(reference[2]), history=False
    )  # the resumed call's history holds epochs 1-2 only
    assert np.load(out)["epochs"].tolist() == [1, 2]
    assert hidden_files(run) == [] and not (run / "backup").exists()


def test_kill_at_the_phase_boundary_after_recording_it_and_after_finishing_resume_without_redoing_anything(
    tmp_path, reference, caplog
):
    run, marks, out = tmp_path / "run", tmp_path / "marks.txt", tmp_path / "result.npz"

    # 1. Killed when the head phase's fit ended: its two epochs ran, the run file lists no phase done.
    first = run_script(run, marks, out, "head-end")
    assert killed(first), first.stderr[-3000:]
    assert epochs_in(marks) == [0, 1]
    state = run_file(run)
    assert state["status"] == "running" and state["phases_done"] == []

    # Temporary files of killed writes, kzoo's own naming, beside files that are not kzoo's.
    planted = [
        ".kzoo_run.json.k1ll3d_0.tmp",
        ".model.keras.k1ll3d_0.keras",
        "checkpoints/.best.weights.h5.k1ll3d_0.weights.h5",
        "checkpoints/.best.weights.h5.json.k1ll3d_0.tmp",
        "phases/.head.weights.h5.k1ll3d_0.weights.h5",
        "backup/head/.latest.weights.h5.k1ll3d_0.weights.h5",
        "backup/head/.training_metadata.json.k1ll3d_0.tmp",
    ]
    foreign = ["notes.txt", ".model.keras.mine", "checkpoints/.best.weights.h5.k1ll3d_0.weights.h5.keep"]
    for name in planted + foreign:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(b"partial")

    # 2. Started again: the head phase has no epoch left (its backup says so); a kill right after
    # the run file records it as done, before its backup is removed.
    second = run_script(run, marks, out, "head-recorded")
    assert killed(second), second.stderr[-3000:]
    assert epochs_in(marks) == [0, 1]
    assert [name for name in planted if (run / name).exists()] == []
    assert run_file(run)["phases_done"] == ["head"] and (run / "backup" / "head").is_dir()

    # 3. Started again: the recorded phase's backup is removed, not restored (the head phase does
    # not train again), only the fine phase's epoch trains, then a kill after the run file says
    # "finished" and before finetune returns.
    third = run_script(run, marks, out, "finished")
    assert killed(third), third.stderr[-3000:]
    assert epochs_in(marks) == [0, 1, 2]
    assert not (run / "backup" / "head").exists()
    assert all((run / name).read_bytes() == b"partial" for name in foreign)
    for name in foreign:
        (run / name).unlink()
    state, expected = run_file(run), run_file(reference[0])
    assert state["status"] == "finished" and state["phases_done"] == ["head", "fine"]
    assert_same_history(state["history"], expected["history"])
    for phase in ("head", "fine"):  # the weights (and optimizer state) each phase ended with
        got, want = (
            h5_arrays(run / "phases" / f"{phase}.weights.h5"),
            h5_arrays(reference[0] / "phases" / f"{phase}.weights.h5"),
        )
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=f"{phase}: {key}")

    # 4. Started again with the same settings (here, in this process: no training to wait for):
    # completion reported, nothing trained or written, and the call returns what the
    # uninterrupted call returned, its model holding the same weights and optimizer state.
    snapshot = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    call, model, _ = small_call(run)
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        result = call()
    assert "holds this run, finished" in caplog.text and "nothing to train" in caplog.text
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == snapshot
    assert result.log_dir == run and not result.stopped_on_nan and model.compiled
    assert_same_result(arrays_of(model, result), np.load(reference[2]))
    assert result.epochs == [0, 1, 2] and result.best_epoch == 2
    assert hidden_files(run) == [] and not (run / "backup").exists()


def small_call(log_dir: Path, epochs: int = 3):
    images, labels = kzoo.data.load_uci_digits()
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(images[:64], labels[:64], model=model, batch_size=32)
    before = [w.copy() for w in model.get_weights()]

    def call():
        return kzoo.finetune(
            model, data, epochs=epochs, head_epochs=2, strategy="two-phase", log_dir=log_dir, verbose=0
        )

    return call, model, before


def test_a_finished_run_with_other_settings_is_refused_and_left_untouched(tmp_path, reference):
    run = tmp_path / "run"
    shutil.copytree(reference[0], run)
    snapshot = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    call, model, before = small_call(run, epochs=4)
    with pytest.raises(errors.KzooError, match=r"already holds a finished run .* with other settings") as raised:
        call()
    assert "'epochs': 3" in str(raised.value) and "'epochs': 4" in str(raised.value)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == snapshot
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


@pytest.mark.parametrize(
    "entries",
    [
        {"notes.txt": b"mine", ".kzoo_run.json.abcdefgh.tmp": b"{"},  # a run-file-like temp among foreign files
        {".kzoo_run.json.tmp": b"{"},  # not kzoo's naming
    ],
)
def test_a_foreign_directory_is_refused_and_left_untouched(tmp_path, entries):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for name, content in entries.items():
        (foreign / name).write_bytes(content)
    call, _, _ = small_call(foreign)
    with pytest.raises(errors.KzooError, match="not empty and holds no kzoo run"):
        call()
    assert {p.name: p.read_bytes() for p in foreign.iterdir()} == entries
