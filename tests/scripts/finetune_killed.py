"""A two-phase kzoo.finetune run (LeNet-5, epochs 0-1 head, epoch 2 fine) that SIGKILLs itself at a chosen moment.

Usage: finetune_killed.py RUN_DIR MARKS_FILE RESULT_OUT [KILL_AT], KILL_AT one of:

- ``first-run-file``: during the first write of ``kzoo_run.json`` (its temporary file is written
  and synced, the rename has not happened);
- ``after-epoch-0``: once epoch 0 has ended (every callback of it done), inside the head phase;
- ``head-end``: when the head phase's fit ends (its last epoch done, before ``finetune`` records
  the phase);
- ``head-recorded``: right after the run file records the head phase as done, before its backup
  is removed;
- ``finished``: right after the run file says "finished", before ``finetune`` returns.

Each epoch trained is appended to MARKS_FILE. A run that returns writes RESULT_OUT (.npz): the
weights and optimizer state the model holds, the result's history, epochs, best epoch and value. The batches come in
one fixed order and LeNet-5 has no dropout, so every run sees the same steps (as in
finetune_resumable.py).
"""

import os
import signal
import sys

import keras
import numpy as np
from fixed_digits import fixed_digits

import kzoo
from kzoo import atomic

run_dir, marks, result_out = sys.argv[1], sys.argv[2], sys.argv[3]
kill_at = sys.argv[4] if len(sys.argv) > 4 else None


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if kill_at == "first-run-file":
    fsync = atomic._fsync

    def fsync_then_die(path):  # destination(): the temporary file is complete, the rename comes next
        fsync(path)
        name = os.path.basename(path)
        if name.startswith(".kzoo_run.json.") and not os.path.exists(os.path.join(run_dir, "kzoo_run.json")):
            die()

    atomic._fsync = fsync_then_die
elif kill_at in ("head-recorded", "finished"):
    write_json = atomic.write_json

    def write_json_then_die(path, data):
        written = write_json(path, data)
        if os.path.basename(path) == "kzoo_run.json":
            if kill_at == "finished" and data.get("status") == "finished":
                die()
            if kill_at == "head-recorded" and data.get("phases_done") == ["head"]:
                die()
        return written

    atomic.write_json = write_json_then_die


class Marks(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with open(marks, "a") as handle:
            handle.write(f"{epoch}\n")
        if kill_at == "after-epoch-0" and epoch == 0:
            die()

    def on_train_end(self, logs=None):
        if kill_at == "head-end":  # the first fit is the head phase's
            die()


model, train, validation = fixed_digits(160)
result = kzoo.finetune(
    model,
    train,
    validation,
    epochs=3,
    head_epochs=2,
    strategy="two-phase",
    log_dir=run_dir,
    callbacks=[Marks()],
    jit_compile=False,  # XLA's compiles would double the run time; resuming does not depend on them
    verbose=0,
)
np.savez(
    result_out,
    **{f"weight_{i}": w for i, w in enumerate(model.get_weights())},
    **{f"optimizer_{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)},
    **{f"history_{key}": np.asarray(values) for key, values in result.history.items()},
    epochs=np.asarray(result.epochs),
    best_epoch=np.asarray(-1 if result.best_epoch is None else result.best_epoch),
    best_value=np.asarray(np.nan if result.best_value is None else result.best_value),
    compiled=np.asarray(model.compiled),
)
