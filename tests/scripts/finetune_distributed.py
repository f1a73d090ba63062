"""kzoo.finetune under a tf.distribute strategy; prints one JSON line with what happened.

Usage: finetune_distributed.py mirrored [LOG_DIR]     (2 logical CPU devices in this process)
       finetune_distributed.py multiworker [LOG_DIR]  (TF_CONFIG set by the caller; one process per worker)
       finetune_distributed.py single [LOG_DIR]       (MultiWorkerMirroredStrategy with one local worker)
       finetune_distributed.py none [LOG_DIR]         (no strategy: one device, the reference)
"""

import json
import sys

import tensorflow as tf

mode = sys.argv[1]
log_dir = sys.argv[2] if len(sys.argv) > 2 else None
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
elif mode == "none":
    strategy = None
else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kzoo  # noqa: E402

keras.utils.set_random_seed(0)
images, labels = kzoo.data.load_uci_digits()
chosen = np.random.default_rng(0).choice(len(labels), 320, replace=False)  # 256 training, 64 validation: whole batches
model = kzoo.get("lenet5", pretrained=True)
before = [w.copy() for w in model.get_weights()]
data = kzoo.data.arrays(images[chosen], labels[chosen], model=model, batch_size=32)
# float32 on every device: the check is that a strategy takes the same steps as one device,
# which bfloat16's rounding of the replicas' half batches would blur (test_precision.py covers "auto").
result = kzoo.finetune(
    model, data, epochs=2, strategy="full", distribution=strategy, log_dir=log_dir, mixed_precision=None, verbose=0
)
print(
    json.dumps(
        {
            "replicas": strategy.num_replicas_in_sync if strategy is not None else 1,
            "loss": result.history["loss"],
            "val_loss": result.history.get("val_loss"),
            "log_dir": str(result.log_dir),
            "changed": any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())),
            "checksum": float(sum(np.abs(w).sum() for w in model.get_weights())),
            "finite": all(bool(np.isfinite(w).all()) for w in model.get_weights()),
        }
    )
)
