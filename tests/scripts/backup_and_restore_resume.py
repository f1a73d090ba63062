"""Trains a tiny model for 6 epochs with kzoo.callbacks.BackupAndRestore; used by test_callbacks.py.

Usage: backup_and_restore_resume.py BACKUP_DIR RECORD_FILE WEIGHTS_OUT RUN_LABEL [--pause-after-epoch N]

Appends "RUN_LABEL EPOCH" to RECORD_FILE after each epoch (after the backup of that epoch is
written). With --pause-after-epoch N it sleeps after epoch N, so the test can SIGKILL it there.
On completion it saves the final weights and the optimizer's variables (Adam's moments and
step count), flattened, to WEIGHTS_OUT (.npy): a resumed run must end where an uninterrupted
one does, which it cannot if the backup lost the weights or the optimizer state.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from kzoo.callbacks import BackupAndRestore


class RecordEpochs(keras.callbacks.Callback):
    def __init__(self, path: str, label: str, pause_after_epoch: int | None):
        super().__init__()
        self.path, self.label, self.pause_after_epoch = path, label, pause_after_epoch

    def on_epoch_end(self, epoch, logs=None):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{self.label} {epoch}\n")
            f.flush()
            os.fsync(f.fileno())
        if epoch == self.pause_after_epoch:
            time.sleep(3600)  # the test kills the process during this sleep


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backup_dir")
    parser.add_argument("record_file")
    parser.add_argument("weights_out")
    parser.add_argument("run_label")
    parser.add_argument("--pause-after-epoch", type=int, default=None)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    callbacks = [
        BackupAndRestore(args.backup_dir),
        RecordEpochs(args.record_file, args.run_label, args.pause_after_epoch),
    ]
    model.fit(x, y, batch_size=16, epochs=6, shuffle=False, callbacks=callbacks, verbose=0)
    state = [*model.get_weights(), *(np.asarray(v) for v in model.optimizer.variables)]
    np.save(args.weights_out, np.concatenate([np.ravel(v).astype("float64") for v in state]))


if __name__ == "__main__":
    main()
