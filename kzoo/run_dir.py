"""The run directory of kzoo.finetune: one run per ``log_dir``, resumable, never overwritten.

``kzoo_run.json`` records the run's settings (its fingerprint), the phases finished and the
best epoch so far; it is rewritten atomically after every epoch. A directory holding a
finished run, another run's settings or files that are not a kzoo run is refused and left
untouched; an unfinished run with the same settings is resumed.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from pathlib import Path
from typing import Any

import keras

from kzoo import atomic
from kzoo.errors import InvalidArgumentError, KzooError, expected_received

logger = logging.getLogger("kzoo")

RUN_FILE = "kzoo_run.json"


def open_run(log_dir: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Starts a run in ``log_dir`` or resumes the unfinished run with the same settings."""
    state_path = log_dir / RUN_FILE
    if log_dir.exists() and not log_dir.is_dir():
        raise InvalidArgumentError(expected_received("log_dir", "a directory path", str(log_dir)))
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("status") == "finished":
            raise KzooError(
                f"log_dir {log_dir} already holds a finished run ({state.get('run_id')}); nothing was changed. "
                "Choose a new log_dir for a new run."
            )
        if state.get("fingerprint") != fingerprint:
            raise KzooError(
                f"log_dir {log_dir} holds an unfinished run with other settings: expected {state.get('fingerprint')}, "
                f"received {fingerprint}. Resume it with the same settings, or choose a new log_dir."
            )
        logger.warning("kzoo: resuming the unfinished run in %s.", log_dir)
        return state
    if log_dir.is_dir() and any(log_dir.iterdir()):
        raise KzooError(
            f"log_dir {log_dir} is not empty and holds no kzoo run; nothing was changed. Choose a new or empty log_dir."
        )
    log_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "run_id": uuid.uuid4().hex[:12],
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "fingerprint": fingerprint,
        "phases_done": [],
        "best_value": None,
        "best_epoch": None,
    }
    atomic.write_json(state_path, state)
    return state


class RunState(keras.callbacks.Callback):
    """Records the best epoch so far in the run file after every epoch (for resuming)."""

    def __init__(self, path: Path | None, state: dict, checkpoint: Any) -> None:
        super().__init__()
        self.path, self.state, self.checkpoint = path, state, checkpoint

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        best = getattr(self.checkpoint, "best", None)
        if best is not None and math.isfinite(best):
            self.state["best_value"] = float(best)
            self.state["best_epoch"] = getattr(self.checkpoint, "best_epoch", None)
        if self.path is not None:
            atomic.write_json(self.path, self.state)
