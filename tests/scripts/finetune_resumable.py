"""A two-phase kzoo.finetune run that tests kill and resume.

Usage: finetune_resumable.py RUN_DIR MARKS_FILE STATE_OUT. Appends each finished epoch to
MARKS_FILE; with KZOO_TEST_HANG_AFTER_EPOCH=N it writes "hang" after epoch N and waits to be
killed. The training batches come in one fixed order (no shuffle; LeNet-5 has no dropout), so a
resumed run and an uninterrupted one see the same steps. At the end it writes the weights the
run kept and the optimizer's variables to STATE_OUT (.npz), for the test to compare.
"""

import os
import sys
import time

import keras
import numpy as np
from fixed_digits import fixed_digits

import kzoo

run_dir, marks, state_out = sys.argv[1], sys.argv[2], sys.argv[3]
hang_after = os.environ.get("KZOO_TEST_HANG_AFTER_EPOCH")


class Marks(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with open(marks, "a") as handle:
            handle.write(f"{epoch}\n")
            if hang_after is not None and epoch == int(hang_after):
                handle.write("hang\n")
        if hang_after is not None and epoch == int(hang_after):
            time.sleep(3600)


model, train, validation = fixed_digits(200)
result = kzoo.finetune(
    model,
    train,
    validation,
    epochs=6,
    head_epochs=2,
    strategy="two-phase",
    log_dir=run_dir,
    callbacks=[Marks()],
    verbose=0,
)
optimizer = [np.asarray(v) for v in model.optimizer.variables]
np.savez(
    state_out,
    **{f"weight_{i}": w for i, w in enumerate(model.get_weights())},
    **{f"optimizer_{i}": v for i, v in enumerate(optimizer)},
    best_epoch=np.array(result.best_epoch),
)
