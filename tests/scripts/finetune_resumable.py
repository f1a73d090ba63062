"""A two-phase kzoo.finetune run that tests kill and resume.

Usage: finetune_resumable.py RUN_DIR MARKS_FILE. Appends each finished epoch to MARKS_FILE;
with KZOO_TEST_HANG_AFTER_EPOCH=N it writes "hang" after epoch N and waits to be killed.
"""

import os
import sys
import time

import keras
import numpy as np

import kzoo

run_dir, marks = sys.argv[1], sys.argv[2]
hang_after = os.environ.get("KZOO_TEST_HANG_AFTER_EPOCH")


class Marks(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        with open(marks, "a") as handle:
            handle.write(f"{epoch}\n")
            if hang_after is not None and epoch == int(hang_after):
                handle.write("hang\n")
        if hang_after is not None and epoch == int(hang_after):
            time.sleep(3600)


keras.utils.set_random_seed(0)
images, labels = kzoo.data.load_uci_digits()
chosen = np.random.default_rng(0).choice(len(labels), 200, replace=False)
model = kzoo.get("lenet5", pretrained=True)
data = kzoo.data.arrays(images[chosen], labels[chosen], model=model, batch_size=32)
kzoo.finetune(
    model, data, epochs=6, head_epochs=2, strategy="two-phase", log_dir=run_dir, callbacks=[Marks()], verbose=0
)
