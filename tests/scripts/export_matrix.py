"""Exports every registered model (its tiny test configuration) to every format and runs each file.

    python tests/scripts/export_matrix.py OUT.json [NAME ...] [--formats saved_model,onnx]

For each model and format this calls ``kzoo.export`` (which runs the file in its own runtime
and compares with Keras' outputs) and records ``"ok"`` with the measured max |difference|,
or the converter's reason. ``tests/test_export.py`` runs it and checks the results against
``kzoo/export_support.json``; ``--write`` rewrites that file and the README's export table
from the results.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import kzoo  # noqa: E402
from kzoo import errors, registry  # noqa: E402
from kzoo.export import FORMATS, export  # noqa: E402


def build(name):
    keras.utils.set_random_seed(0)
    spec = registry.spec(name)
    raw_pixels = spec.task in registry.IMAGE_TASKS
    return kzoo.get(name, include_preprocessing=True if raw_pixels else None, **spec.test_kwargs)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    out, names = args[0], args[1:] or kzoo.list_models()
    formats = FORMATS
    for a in argv:
        if a.startswith("--formats="):
            formats = tuple(a.split("=", 1)[1].split(","))
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for name in names:
            model = build(name)
            results[name] = {}
            for fmt in formats:
                suffix = {"saved_model": "", "litert": ".tflite", "onnx": ".onnx", "openvino": ".xml"}[fmt]
                path = os.path.join(directory, f"{name}_{fmt}{suffix}")
                started = time.perf_counter()
                try:
                    result = export(model, path, format=fmt, sequence_length=16)
                    entry = {"status": "ok", "max_abs_difference": result.max_abs_difference}
                except errors.ExportError as error:
                    entry = {"status": "unsupported", "reason": str(error)}
                entry["seconds"] = round(time.perf_counter() - started, 2)
                results[name][fmt] = entry
                print(name, fmt, entry, flush=True)
    with open(out, "w") as handle:
        json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
