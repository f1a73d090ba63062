"""The export parity matrix: every registered model exported to every format, each file run by
its own runtime (called here directly, not through kzoo.export.load) and compared with Keras'
``model.predict``. ``tests/test_export_matrix.py`` runs it in CI; ``tests/scripts/export_matrix.py``
runs it for every model and records the outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

import kzoo
from kzoo import errors, registry
from kzoo.export import FORMATS, SUPPORT_FILE, check_inputs, inference_model, input_names

SEQUENCE_LENGTH = 16
SUFFIX = {"saved_model": "", "litert": ".tflite", "onnx": ".onnx", "openvino": ".xml"}


def build(name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    spec = registry.spec(name)
    raw_pixels = spec.task in registry.IMAGE_TASKS
    return kzoo.get(name, include_preprocessing=True if raw_pixels else None, **spec.test_kwargs)


def support() -> dict:
    return json.loads(SUPPORT_FILE.read_text())


def run_in_runtime(path: Path, fmt: str, arrays: dict) -> list[np.ndarray]:
    """The file's own runtime, called with its documented API."""
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        outputs = loaded.signatures["serve"](**{k: tf.constant(v) for k, v in arrays.items()})
        return [np.asarray(outputs[k]) for k in sorted(outputs, key=lambda k: int(k.rsplit("_", 1)[-1]))]
    if fmt == "litert":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
        outputs = runner(**arrays)
        return [outputs[k] for k in sorted(outputs, key=lambda k: int(k.rsplit("_", 1)[-1]))]
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, arrays)
    import openvino

    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(arrays)
    return [result[port] for port in compiled.outputs]


# Layer settings that change what a converter emits (beyond the layer's type).
_SIGNATURE_KEYS = ("groups", "activation", "return_sequences", "go_backwards", "merge_mode", "padding", "data_format")


def export_signature(model: keras.Model) -> frozenset:
    """What the converters see of a model: each layer type with the settings that matter to them."""
    entries = set()
    for layer in model._flatten_layers(include_self=False):
        config = layer.get_config() if hasattr(layer, "get_config") else {}
        entries.add((type(layer).__name__, *(str(config.get(key)) for key in _SIGNATURE_KEYS)))
    return frozenset(entries)


SIGNATURES_FILE = Path(__file__).resolve().parent / "export_signatures.json"


def stored_signatures() -> dict[str, frozenset]:
    """Each model's export signature as ``tests/scripts/export_matrix.py`` last recorded it."""
    stored = json.loads(SIGNATURES_FILE.read_text())
    return {name: frozenset(tuple(entry) for entry in entries) for name, entries in stored.items()}


def signatures_json(signatures: dict[str, frozenset]) -> str:
    """One model per key, one layer entry per line."""
    blocks = []
    for name, entries in sorted(signatures.items()):
        lines = ",\n".join(f"  {json.dumps(list(entry))}" for entry in sorted(entries))
        blocks.append(f" {json.dumps(name)}: [\n{lines}\n ]")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def takes_every_format(table: dict) -> set[str]:
    """The models ``table`` (kzoo/export_support.json) records every format taking."""
    return {name for name, outcomes in table.items() if all(outcomes.get(fmt) == "ok" for fmt in FORMATS)}


def export_cover(signatures: dict[str, frozenset], table: dict) -> dict[str, str]:
    """The models CI exports, each with why: every model the support file records a format
    refusing (its refusal is checked again), and, among the models every format takes, a small
    set whose layer entries together cover every entry of those models.

    The cover is greedy (the textbook approximation of set cover): the model adding the most
    entries not yet covered goes next, the smaller model on a tie. Before this, each model with
    one new entry was exported in turn, smallest first (25 of 56 models; the cover needs 17)."""
    every_format = takes_every_format(table) & signatures.keys()
    chosen = {name: "a format refuses it (kzoo/export_support.json)" for name in signatures if name not in every_format}
    universe = frozenset().union(*(signatures[name] for name in every_format))
    covered: set = set()
    while covered != universe:
        best = max(
            sorted(every_format - chosen.keys()),
            key=lambda name: (len(signatures[name] - covered), -(registry.spec(name).num_params or 0)),
        )
        added = len(signatures[best] - covered)
        chosen[best] = f"adds {added} layer {'entry' if added == 1 else 'entries'} not yet covered"
        covered |= signatures[best]
    return chosen


def check(name: str, directory: Path, recorded: dict | None = None, model: keras.Model | None = None) -> dict[str, str]:
    """Exports ``name`` to every format and asserts each file's parity; returns {format: "ok" | reason}.

    With ``recorded`` (a model's entry of kzoo/export_support.json) it also asserts that what
    exported, and what did not, is what the file says.
    """
    model = model if model is not None else build(name)
    measured, references = {}, {}
    for fmt in FORMATS:
        path = directory / f"{name}_{fmt}{SUFFIX[fmt]}"
        copy, length = inference_model(model, fmt, SEQUENCE_LENGTH)
        if length not in references:  # one input (and one predict) per sequence length
            arrays = check_inputs(copy, sequence_length=length)
            feed = [arrays[n] for n in input_names(model)]
            if isinstance(model._inputs_struct, dict):
                feed = {k: arrays[k] for k in model._inputs_struct}
            predicted = model.predict(feed if len(feed) > 1 else feed[0], verbose=0)
            references[length] = arrays, [np.asarray(o) for o in keras.tree.flatten(predicted)]
        arrays, reference = references[length]
        try:
            result = kzoo.export(model, path, format=fmt, sequence_length=SEQUENCE_LENGTH)
        except errors.ExportError as error:
            measured[fmt] = str(error)
            assert not path.exists(), f"{name} {fmt}: a refused export left {path}"
            continue
        outputs = run_in_runtime(path, fmt, arrays)
        assert len(outputs) == len(reference), (name, fmt)
        worst = max(float(np.max(np.abs(np.asarray(a, "float32") - b))) for a, b in zip(outputs, reference))
        scale = max(1.0, max(float(np.max(np.abs(r))) for r in reference))
        assert worst <= 1e-4 * scale, f"{name} {fmt}: max |difference| {worst:.3g}, outputs up to {scale:.3g}"
        assert result.max_abs_difference <= 1e-4 * scale
        measured[fmt] = "ok"
    for fmt in FORMATS if recorded is not None else ():
        assert (measured[fmt] == "ok") == (recorded.get(fmt) == "ok"), (
            f"{name} {fmt}: measured {measured[fmt]!r}, kzoo/export_support.json says {recorded.get(fmt)!r}; "
            "rerun python tests/scripts/export_matrix.py --write"
        )
    return measured


TABLE_START, TABLE_END = "<!-- export-table:start -->", "<!-- export-table:end -->"


def render_table(table: dict) -> str:
    """The README's export table, from kzoo/export_support.json."""
    lines = [
        "| model | " + " | ".join(FORMATS) + " |",
        "|---|" + "---|" * len(FORMATS),
    ]
    reasons = []
    for name in sorted(table):
        cells = []
        for fmt in FORMATS:
            status = table[name].get(fmt, "not measured")
            if status == "ok":
                cells.append("yes")
            else:
                reasons.append(f"- `{name}` to {fmt}: {status}")
                cells.append("no (see below)")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    if reasons:
        lines += ["", *reasons]
    return "\n".join(lines)
