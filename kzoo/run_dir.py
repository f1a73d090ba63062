"""The run directory of kzoo.finetune: one run per ``log_dir``, resumable at any moment, never overwritten.

``kzoo_run.json`` records the run's settings (its fingerprint), the phases finished, the best
epoch so far and every epoch's logged values; it is rewritten atomically after every epoch
and at every phase boundary. Started again with the same settings, the run in ``log_dir``
goes on from wherever a kill stopped it:

- killed during the run file's first write (the directory then holds nothing but that
  write's temporary file): the run starts afresh;
- killed within a phase: the phase resumes after its last finished epoch (its backup);
- killed at a phase boundary: a phase's backup is removed only once the run file records
  the phase as done, so the phase is never trained again (at worst its backup is restored
  and zero epochs run);
- finished (killed after the run file said so, or simply started again): nothing trains;
  ``kzoo.finetune`` reports completion and rebuilds its result from the run file and the
  best checkpoint.

Temporary files that kzoo's own writes leave when killed before their rename (see
:func:`kzoo.atomic.is_temporary`) are removed whenever a run starts, resumes or is reported
finished, and so are the backups of phases the run file records as done; no other file is
touched. A directory holding another run's settings (finished or not) or files that are not a
kzoo run is refused and left untouched.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras

from kzoo import atomic
from kzoo.errors import InvalidArgumentError, KzooError, expected_received

logger = logging.getLogger("kzoo")

RUN_FILE = "kzoo_run.json"
MODEL_FILE = "model.keras"
BEST_WEIGHTS = Path("checkpoints") / "best.weights.h5"  # kzoo.callbacks.default_callbacks' layout
BACKUP_FILES = ("latest.weights.h5", "training_metadata.json")  # Keras' BackupAndRestore layout


def backup_dir(log_dir: Path, phase: str) -> Path:
    """Where a phase's resume backup (:class:`kzoo.callbacks.BackupAndRestore`) lives."""
    return log_dir / "backup" / phase


def phase_weights(log_dir: Path, phase: str) -> Path:
    """The weights a phase ended with, which the next phase starts from."""
    return log_dir / "phases" / f"{phase}.weights.h5"


def _written(phases: Iterable[str]) -> list[tuple[Path, str, str]]:
    """Every file kzoo writes atomically in a run directory: ``(folder, name, temporary suffix)``."""
    files = [
        (Path("."), RUN_FILE, ".tmp"),
        (Path("."), MODEL_FILE, ".keras"),
        (BEST_WEIGHTS.parent, BEST_WEIGHTS.name, ".weights.h5"),
        (BEST_WEIGHTS.parent, f"{BEST_WEIGHTS.name}.json", ".tmp"),  # AtomicCheckpoint's record
    ]
    for phase in phases:
        files.append((Path("phases"), f"{phase}.weights.h5", ".weights.h5"))
        backup = Path("backup") / phase
        files += [(backup, "latest.weights.h5", ".weights.h5"), (backup, "training_metadata.json", ".tmp")]
        files += [(backup, "latest.weights.h5.bkp", ".bkp"), (backup, "training_metadata.json.bkp", ".bkp")]
    return files


def remove_temporaries(log_dir: Path, phases: Iterable[str]) -> list[Path]:
    """Removes the temporary files killed writes of this run left (nothing else); returns them."""
    removed = []
    for folder, name, suffix in _written(phases):
        directory = log_dir / folder
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.is_file() and not entry.is_symlink() and atomic.is_temporary(entry, name, suffix):
                entry.unlink()
                removed.append(entry)
    if removed:
        logger.info("kzoo: removed %d temporary file(s) of killed writes in %s.", len(removed), log_dir)
    return removed


def remove_backup(log_dir: Path, phase: str) -> None:
    """Removes a finished phase's backup: Keras' two files (and their ``.bkp`` copies), then the empty folders."""
    directory = backup_dir(log_dir, phase)
    for name in BACKUP_FILES:
        for path in (directory / name, directory / f"{name}.bkp"):
            if path.is_file():
                path.unlink()
    for folder in (directory, directory.parent):
        try:
            folder.rmdir()  # only when empty: whatever else is there stays
        except OSError:
            pass


def open_run(log_dir: Path, fingerprint: dict[str, Any], phases: Iterable[str] = ()) -> dict[str, Any]:
    """Starts a run in ``log_dir``, resumes the unfinished one or reports the finished one.

    Returns the run's state (the run file's contents); ``state["status"] == "finished"`` means
    there is nothing left to train. ``phases`` are the names of the run's phases (their
    backups' temporary files are tidied too).

    Raises:
        KzooError: ``log_dir`` holds a run with other settings, or files that are not a kzoo
            run; nothing was changed.
    """
    phases = list(phases)
    state_path = log_dir / RUN_FILE
    if log_dir.exists() and not log_dir.is_dir():
        raise InvalidArgumentError(expected_received("log_dir", "a directory path", str(log_dir)))
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        finished = state.get("status") == "finished"
        if state.get("fingerprint") != fingerprint:
            if finished:
                raise KzooError(
                    f"log_dir {log_dir} already holds a finished run ({state.get('run_id')}) with other settings; "
                    "nothing was changed. "
                    + expected_received(
                        "settings",
                        f"the run's own, {state.get('fingerprint')}",
                        fingerprint,
                        "Start it with the same settings to get its result, or choose a new log_dir for a new run.",
                    )
                )
            raise KzooError(
                f"log_dir {log_dir} holds an unfinished run with other settings: expected {state.get('fingerprint')}, "
                f"received {fingerprint}. Resume it with the same settings, or choose a new log_dir."
            )
        remove_temporaries(log_dir, phases)
        for phase in state.get("phases_done", []):  # killed after recording a phase, before removing its backup
            remove_backup(log_dir, phase)
        if finished:
            logger.warning(
                "kzoo: %s holds this run, finished %s; nothing to train, returning its result (best epoch %s).",
                log_dir,
                state.get("finished", ""),
                state.get("best_epoch"),
            )
        else:
            logger.warning("kzoo: resuming the unfinished run in %s.", log_dir)
        return state
    if log_dir.is_dir():
        entries = list(log_dir.iterdir())
        # A first write of the run file killed before its rename leaves its temporary file alone.
        ours = [e for e in entries if e.is_file() and not e.is_symlink() and atomic.is_temporary(e, RUN_FILE)]
        if len(ours) != len(entries):
            raise KzooError(
                f"log_dir {log_dir} is not empty and holds no kzoo run; nothing was changed. "
                "Choose a new or empty log_dir."
            )
        for entry in ours:
            entry.unlink()
    log_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "run_id": uuid.uuid4().hex[:12],
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "fingerprint": fingerprint,
        "phases_done": [],
        "best_value": None,
        "best_epoch": None,
        "history": [],
    }
    atomic.write_json(state_path, state)
    return state


def recorded_history(state: dict[str, Any]) -> tuple[dict[str, list[float]], list[int]]:
    """The run file's per-epoch values as ``(history, epochs)``, the way ``FinetuneResult`` holds them."""
    rows = state.get("history") or []
    history: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "epoch":
                history.setdefault(key, []).append(math.nan if value is None else float(value))
    return history, [int(row["epoch"]) for row in rows]


class RunState(keras.callbacks.Callback):
    """Records the best epoch so far and the epoch's logged values in the run file after every epoch.

    It runs before the phase's :class:`kzoo.callbacks.BackupAndRestore`, so the run file is
    never behind the backup: an epoch a kill makes run again replaces its row.
    """

    def __init__(self, path: Path | None, state: dict, checkpoint: Any) -> None:
        super().__init__()
        self.path, self.state, self.checkpoint = path, state, checkpoint

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        best = getattr(self.checkpoint, "best", None)
        if best is not None and math.isfinite(best):
            self.state["best_value"] = float(best)
            self.state["best_epoch"] = getattr(self.checkpoint, "best_epoch", None)
        row: dict[str, Any] = {"epoch": int(epoch)}
        for key, value in (logs or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            row[key] = number if math.isfinite(number) else None  # the run file stays strict JSON
        rows = [previous for previous in self.state.get("history", []) if previous["epoch"] < epoch]
        self.state["history"] = [*rows, row]
        if self.path is not None:
            atomic.write_json(self.path, self.state)
