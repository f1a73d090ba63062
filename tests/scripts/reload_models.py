"""Reloads saved kzoo models in a fresh process and reports what each one is and does.

    python reload_models.py JOBS.json RESULTS.npz

``JOBS.json`` lists ``{"key", "path", "inputs"}``: a ``.keras`` file and either an ``.npz``
of input arrays or a JSON list of raw texts. For each model this process (which never
built it) loads the file with ``safe_mode=True`` and records its kzoo identity, its
outputs on the inputs, its layers' names, the first validation batch ``kzoo.data.arrays`` makes for it (image
models) and the layers ``kzoo.freeze`` freezes.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kzoo  # noqa: E402  (registers kzoo's layers and model class before loading)

jobs = json.loads(open(sys.argv[1]).read())
arrays, report = {}, {}
for job in jobs:
    key = job["key"]
    model = keras.saving.load_model(job["path"], safe_mode=True)
    identity = kzoo.identity.of(model)
    entry = {"class": type(model).__name__, "identity": identity.to_config() if identity else None}
    entry["layers"] = [layer.name for layer in model.layers]
    if job.get("texts") is not None:
        outputs = model.predict(job["texts"], batch_size=256, verbose=0)
    else:
        loaded = np.load(job["inputs"])
        names = sorted(k for k in loaded.files if k.startswith("input_"))
        inputs = [loaded[n] for n in names]
        feed = inputs if len(inputs) > 1 else inputs[0]
        if isinstance(model._inputs_struct, dict):  # BERT: inputs by name, in the model's key order
            feed = dict(zip(model._inputs_struct, inputs))
        # A direct call: predict() would trace a tf.function per model (most of this script's time).
        outputs = model(feed, training=False)
        if job.get("data"):
            pixels = loaded["pixels"]
            datasets = kzoo.data.arrays(pixels, np.zeros(len(pixels), "int64"), model=model, validation_split=0.5)
            arrays[f"{key}/data"] = np.asarray(next(iter(datasets.validation))[0])
    for index, output in enumerate(keras.tree.flatten(outputs)):
        arrays[f"{key}/output_{index}"] = np.asarray(output)
    entry["frozen"] = kzoo.freeze(model) if identity is not None else None
    report[key] = entry
np.savez(sys.argv[2], **arrays)
with open(sys.argv[2] + ".json", "w") as handle:
    json.dump(report, handle)
