"""Deploy a kzoo model: SavedModel, LiteRT, ONNX and OpenVINO files checked by their own runtimes.

    >>> import kzoo
    >>> model = kzoo.get("lenet5", pretrained=True)
    >>> kzoo.export(model, "lenet5.tflite", format="litert")          # doctest: +SKIP
    ExportResult(format='litert', path=PosixPath('lenet5.tflite'), max_abs_difference=2.4e-07, ...)

The converters are the maintained ones: Keras' ``model.export`` (which drives TensorFlow's
SavedModel writer, the LiteRT converter, tf2onnx and OpenVINO's ``convert_model``). kzoo adds
what they leave to the caller:

- **Inference graph.** The model is called with ``training=False``, so augmentation,
  dropout and noise layers (the denoiser's corruption) contribute no ops to the file.
  Mixed-precision models are exported from a float32 copy (ONNX requires it, and the
  parity check compares float32 against float32).
- **Recurrent layers.** The LiteRT and OpenVINO converters cannot lower TensorFlow's
  ``TensorList`` while-loops (Keras' LSTM/GRU on the TensorFlow backend). For those formats
  kzoo exports a copy whose RNN layers are unrolled over a fixed ``sequence_length`` (the
  model's ``max_length``, or the argument). ONNX and SavedModel keep the loop and any length.
- **Raw inputs.** The exported graph takes what the model takes: 0-255 pixels for image
  models whose preprocessing is in the model. A text model's SavedModel gets a second
  signature, ``serve_text``, that takes strings and tokenizes them in the graph with the
  model's own vocabulary. The other formats take token ids; the vocabulary is written beside
  the file with a README whose ``tokenize`` snippet makes the ids.
- **Checked before it is written.** Every export runs the new file in its own runtime
  (``tf.saved_model.load``, ``ai_edge_litert``'s interpreter, ``onnxruntime``, OpenVINO) on
  a fixed input and compares with Keras' outputs. A float file that differs by more than
  ``tolerance`` (1e-4, times the largest output once that exceeds 1) is not written:
  :class:`kzoo.errors.ExportError` says by how much. A model a converter cannot take raises
  ``ExportError`` with the converter's reason. Files appear
  only when everything passed, and an existing path is never touched unless ``overwrite=True``.
- **int8.** ``quantize="int8"`` with ``format="litert"`` is full-integer post-training
  quantization (weights and activations int8, float32 inputs and outputs) calibrated on up to
  200 examples of ``calibration`` (a :class:`kzoo.data.Datasets`, whose training split is
  used, a batched ``tf.data.Dataset`` or an array).
  With ``format="saved_model"`` it is Keras' ``model.quantize("int8")`` (int8 weights of the
  Dense, EinsumDense and Embedding layers) on a copy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kzoo import identity as identity_lib
from kzoo.errors import ExportError, InvalidArgumentError, KzooError, did_you_mean, expected_received
from kzoo.inputs import _by_input
from kzoo.layers.crf import decoding as crf_decoding

FORMATS = ("saved_model", "litert", "onnx", "openvino")
_KERAS_FORMAT = {"saved_model": "tf_saved_model", "litert": "litert", "onnx": "onnx", "openvino": "openvino"}
_SUFFIX = {"saved_model": "", "litert": ".tflite", "onnx": ".onnx", "openvino": ".xml"}
# What each format needs beyond kzoo's own dependencies: (import name, pip name), converter and runtime.
REQUIREMENTS = {
    "saved_model": (),
    "litert": (("ai_edge_litert", "ai-edge-litert"),),
    "onnx": (("tf2onnx", "tf2onnx"), ("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
    "openvino": (("openvino", "openvino"),),
}
QUANTIZE = (None, "int8")
TOLERANCE = 1e-4
_RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")
SUPPORT_FILE = Path(__file__).resolve().parent / "export_support.json"


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote and measured.

    Args:
        format: The format written.
        path: The artefact (a directory for ``saved_model``).
        files: Every file written (the artefact, its README, vocabulary and metadata).
        size_bytes: Size of the artefact on disk (all its files).
        max_abs_difference: Largest |artefact - Keras| over every output on the check input,
            measured by the format's runtime (for int8, the quantization error).
        quantize: ``None`` or ``"int8"``.
        sequence_length: The fixed sequence length of an unrolled recurrent export, else ``None``.
    """

    format: str
    path: Path
    files: tuple[Path, ...]
    size_bytes: int
    max_abs_difference: float
    quantize: str | None = None
    sequence_length: int | None = None


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def require(format: str) -> None:  # noqa: A002  (the argument is named as in Keras' model.export)
    """Raises :class:`ExportError` naming the pip command when ``format``'s packages are missing."""
    missing = []
    for module, package in REQUIREMENTS[format]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ExportError(
            expected_received(
                f"export to {format}",
                f"the packages {', '.join(missing)} installed (the converter and the runtime that checks the file)",
                "not installed",
                "pip install 'kzoo[export]' (or pip install " + " ".join(missing) + ").",
            )
        )


def _check_format(format: str) -> str:  # noqa: A002
    if format not in FORMATS:
        hint = did_you_mean(str(format), FORMATS)
        raise InvalidArgumentError(
            expected_received("format", f"one of {FORMATS}", format, hint.capitalize() if hint else None)
        )
    return format


def _check_path(path: str | os.PathLike, format: str, overwrite: bool) -> Path:  # noqa: A002
    path = Path(path)
    suffix = _SUFFIX[format]
    if suffix and path.suffix != suffix:
        raise InvalidArgumentError(
            expected_received(f"path for format={format!r}", f"a file name ending in {suffix}", str(path))
        )
    if format == "saved_model" and path.suffix in (".tflite", ".onnx", ".xml", ".keras", ".h5"):
        raise InvalidArgumentError(
            expected_received(
                "path for format='saved_model'",
                "a directory name",
                str(path),
                f"Did you mean format={_format_of(path)!r}?" if path.suffix in (".tflite", ".onnx", ".xml") else None,
            )
        )
    taken = [p for p in _targets(path, format) if p.exists()]
    if taken and not overwrite:
        raise InvalidArgumentError(
            expected_received(
                "export path",
                "a path that does not exist yet",
                str(taken[0]),
                "Nothing was written. Pass overwrite=True (kzoo export --overwrite) to replace it.",
            )
        )
    return path


def _targets(path: Path, format: str) -> list[Path]:  # noqa: A002
    """The main artefact and the sidecar files an export of ``format`` to ``path`` may write."""
    if format == "saved_model":
        return [path]
    stem = path.with_suffix("")
    targets = [path, Path(f"{stem}.README.md"), Path(f"{stem}.kzoo.json"), Path(f"{stem}.vocab.txt")]
    if format == "openvino":
        targets.append(path.with_suffix(".bin"))
    return targets


# --------------------------------------------------------------------------------------
# The inference model
# --------------------------------------------------------------------------------------


def _has_rnn(config: dict) -> bool:
    text = json.dumps(config)
    return any(f'"class_name": "{name}"' in text for name in _RNN_CLASSES)


def _unroll(layer_config: dict) -> None:
    """Sets ``unroll=True`` on every RNN layer in one layer's config (Bidirectional included)."""
    if layer_config.get("class_name") in _RNN_CLASSES:
        layer_config["config"]["unroll"] = True
    for value in layer_config.get("config", {}).values():
        if isinstance(value, dict) and "class_name" in value:
            _unroll(value)


@contextlib.contextmanager
def _backward_masks_fixed() -> Iterator[None]:
    """Corrects Keras' unrolled, masked, backward RNN on the TensorFlow backend while tracing.

    Keras 3.15's TensorFlow ``rnn(..., unroll=True, go_backwards=True, mask=m,
    zero_output_for_mask=True)`` (the backward half of a ``Bidirectional`` layer that returns
    sequences) zeroes its reversed outputs with the *unreversed* mask, so the unrolled copy
    kzoo exports for LiteRT/OpenVINO would differ from the model on every padded batch (we
    measured 0.02 on the tagger). Only in that case this calls Keras' function without the
    zeroing and zeroes with the reversed mask, as the while-loop path does; it is patched on
    ``keras.src.backend`` only while kzoo traces the export.
    """
    from keras.src import backend as keras_backend

    original = keras_backend.rnn

    def rnn(step_function, inputs, initial_states, go_backwards=False, mask=None, constants=None, unroll=False,
            input_length=None, time_major=False, zero_output_for_mask=False, return_all_outputs=True):  # fmt: skip
        broken = unroll and go_backwards and zero_output_for_mask and mask is not None
        last, outputs, states = original(
            step_function, inputs, initial_states, go_backwards=go_backwards, mask=mask, constants=constants,
            unroll=unroll, input_length=input_length, time_major=time_major,
            zero_output_for_mask=zero_output_for_mask and not broken, return_all_outputs=return_all_outputs,
        )  # fmt: skip
        if broken:
            import tensorflow as tf

            time_axis = 0 if time_major else 1
            keep = tf.reverse(tf.cast(mask, tf.bool), axis=[time_axis])
            while len(keep.shape) < len(outputs.shape):
                keep = keep[..., None]
            outputs = tf.where(keep, outputs, tf.zeros_like(outputs))
            last_keep = keep[-1] if time_major else keep[:, -1]
            last = tf.where(last_keep, last, tf.zeros_like(last))
        return last, outputs, states

    keras_backend.rnn = rnn
    try:
        yield
    finally:
        keras_backend.rnn = original


def _time_dimension_free(model: keras.Model) -> bool:
    return any(len(t.shape) >= 2 and t.shape[1] is None for t in model.inputs)


def default_sequence_length(model: keras.Model) -> int | None:
    """The fixed length a recurrent model is unrolled to: its text ``max_length``, if any."""
    identity = identity_lib.of(model)
    if identity is not None and identity.text:
        return identity.text.get("max_length")
    return None


def _mixed(model: keras.Model) -> bool:
    return any(getattr(layer.dtype_policy, "name", "float32") != "float32" for layer in model.layers)


def inference_model(model: keras.Model, format: str, sequence_length: int | None = None) -> tuple[Any, int | None]:  # noqa: A002
    """The model the converter sees, and the fixed sequence length it was unrolled to.

    A float32 copy of a mixed-precision model; for LiteRT and OpenVINO, a copy with its RNN
    layers unrolled over ``sequence_length`` time steps (see the module docstring).
    """
    config = model.get_config() or {}
    mixed = _mixed(model)
    needs_unroll = "layers" in config and format in ("litert", "openvino") and _has_rnn(config)
    if not mixed and not needs_unroll:
        return model, None
    length = None
    if needs_unroll and _time_dimension_free(model):
        length = sequence_length or default_sequence_length(model)
        if not length:
            raise ExportError(
                expected_received(
                    f"{model.name}: sequence_length for {format}",
                    "a fixed number of time steps (the converter cannot lower TensorFlow's RNN while-loop, "
                    "so kzoo unrolls the recurrent layers)",
                    None,
                    "Pass sequence_length=N (kzoo export --sequence-length N); inputs are padded to N tokens.",
                )
            )
    for layer_config in config["layers"]:
        if mixed and layer_config["class_name"] != "InputLayer":
            layer_config["config"]["dtype"] = "float32"
        if needs_unroll:
            _unroll(layer_config)
            if layer_config["class_name"] == "InputLayer" and length:
                shape = list(layer_config["config"]["batch_shape"])
                if len(shape) >= 2 and shape[1] is None:
                    shape[1] = int(length)
                layer_config["config"]["batch_shape"] = shape
    return _functional_copy(model, f"a float32 / unrolled {format} export", config), length


# --------------------------------------------------------------------------------------
# Check inputs
# --------------------------------------------------------------------------------------


def input_names(model: keras.Model) -> list[str]:
    """The model's input names, in the order of ``model.inputs``."""
    return [t.name.split(":")[0] for t in model.inputs]


def check_inputs(model: keras.Model, batch_size: int = 2, sequence_length: int | None = None, seed: int = 0) -> dict:
    """A fixed input for ``model``, by input name: what the parity check feeds every runtime.

    Raw 0-255 pixels for image models with preprocessing in the graph, values inside the
    weights' input range for autoencoders and GANs, the registry's sample inputs for other
    kzoo models, small token ids otherwise. Free time dimensions get ``sequence_length``.
    """
    from kzoo import registry

    rng = np.random.default_rng(seed)
    identity = identity_lib.of(model)
    names = input_names(model)
    length = sequence_length or 12
    sample = None
    if identity is not None and identity.name in registry.list_models():
        sample = registry.spec(identity.name).sample_inputs(model, batch_size=batch_size, seed=seed)
        if isinstance(sample, dict):
            sample = [sample[n] for n in names]
        elif not isinstance(sample, (list, tuple)):
            sample = [sample]
    arrays = {}
    for index, (name, tensor) in enumerate(zip(names, model.inputs)):
        shape = [batch_size, *[length if d is None else d for d in tensor.shape[1:]]]
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if identity is not None and identity.preprocessing_in_model and len(shape) == 4:
            value = rng.integers(0, 256, shape).astype(dtype)
        elif identity is not None and identity.input_range is not None and "float" in dtype:
            low, high = identity.input_range
            value = rng.uniform(low, high, shape).astype(dtype)
        elif sample is not None:
            value = _fit_length(np.asarray(sample[index]), shape).astype(dtype)
        elif "int" in dtype:
            value = rng.integers(0, 2, shape).astype(dtype)
        else:
            value = rng.standard_normal(shape).astype(dtype)
        arrays[name] = value
    return arrays


def _fit_length(value: np.ndarray, shape: list[int]) -> np.ndarray:
    """``value`` cropped or zero-padded along axis 1 to ``shape[1]``."""
    if value.ndim < 2 or value.shape[1] == shape[1]:
        return value
    if value.shape[1] > shape[1]:
        return value[:, : shape[1]]
    pad = [(0, 0)] * value.ndim
    pad[1] = (0, shape[1] - value.shape[1])
    return np.pad(value, pad)


def keras_outputs(model: keras.Model, arrays: dict) -> list[np.ndarray]:
    outputs = model(_by_input(model, arrays), training=False)
    return [np.asarray(keras.ops.convert_to_numpy(o), "float32") for o in keras.tree.flatten(outputs)]


# --------------------------------------------------------------------------------------
# Runtimes: each format's own
# --------------------------------------------------------------------------------------


def load(path: str | os.PathLike, format: str | None = None, threads: int | None = None) -> Callable[[dict], list]:  # noqa: A002
    """The exported file, loaded in its own runtime: ``run(arrays_by_input_name) -> [outputs]``.

    ``saved_model``: ``tf.saved_model.load`` (the ``serve`` endpoint); ``litert``:
    ``ai_edge_litert.interpreter.Interpreter`` (``threads`` CPU threads); ``onnx``:
    ``onnxruntime.InferenceSession``; ``openvino``: ``openvino.Core().compile_model``.
    Outputs come back as float NumPy arrays, in the Keras model's output order.
    """
    path = Path(path)
    format = format or _format_of(path)
    _check_format(format)
    require(format)
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        spec = loaded.serve.concrete_functions[0].structured_input_signature[0][0]

        def run(arrays: dict) -> list:
            if isinstance(spec, dict):
                feed = {key: tf.constant(arrays[key]) for key in spec}
            elif isinstance(spec, (list, tuple)):
                feed = [tf.constant(arrays[s.name]) for s in spec]
            else:
                feed = tf.constant(arrays[spec.name] if spec.name in arrays else next(iter(arrays.values())))
            return [np.asarray(o) for o in tf.nest.flatten(loaded.serve(feed))]

        run.artefact = loaded
        return run
    if format == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        runner = interpreter.get_signature_runner()
        outputs = sorted(runner.get_output_details())  # output_0, output_1, ... (Keras' output order)

        def run(arrays: dict) -> list:
            result = runner(**{name: arrays[name] for name in runner.get_input_details()})
            return [np.asarray(result[name]) for name in sorted(outputs, key=_natural)]

        run.artefact = interpreter
        return run
    if format == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(arrays: dict) -> list:
            return [np.asarray(o) for o in session.run(None, {i.name: arrays[i.name] for i in session.get_inputs()})]

        run.artefact = session
        return run
    import openvino

    core = openvino.Core()
    # f32: on CPUs with AMX or AVX-512 BF16 OpenVINO otherwise computes in bfloat16 (a 2e-3 error on LeNet-5).
    config = {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)

    def run(arrays: dict) -> list:
        feed = {port.get_any_name(): arrays[port.get_any_name()] for port in compiled.inputs}
        result = compiled(feed)
        return [np.asarray(result[port]) for port in compiled.outputs]

    run.artefact = compiled
    return run


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _format_of(path: Path) -> str:
    by_suffix = {suffix: fmt for fmt, suffix in _SUFFIX.items() if suffix}
    if path.suffix in by_suffix:
        return by_suffix[path.suffix]
    if (path / "saved_model.pb").exists():
        return "saved_model"
    raise InvalidArgumentError(
        expected_received("exported file", "a .tflite, .onnx, .xml file or a SavedModel directory", str(path))
    )


# --------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------


CALIBRATION_EXAMPLES = 200


def calibration_batches(
    calibration: Any, model: keras.Model, limit: int = CALIBRATION_EXAMPLES
) -> Callable[[], Iterator[list]]:
    """A LiteRT ``representative_dataset``: up to ``limit`` examples of a kzoo Datasets (its
    training split), a batched tf.data.Dataset of ``(x, y)`` or an array of inputs."""
    from kzoo.data import Datasets

    if calibration is None:
        raise InvalidArgumentError(
            expected_received(
                "calibration for quantize='int8'",
                "inputs the quantizer measures activation ranges on: a kzoo.data.Datasets, a batched "
                "tf.data.Dataset of (x, y) or an array of inputs",
                None,
                "Pass calibration=kzoo.data.image_folder(...) or calibration=train_images[:200].",
            )
        )
    if isinstance(calibration, Datasets):
        calibration = calibration.train
    names = input_names(model)

    def example(values: dict) -> dict:  # one example, a batch of 1; floats as float32
        return {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in values.items()}

    def representative() -> Iterator[dict]:
        if isinstance(calibration, (np.ndarray, list, tuple)):
            for row in np.asarray(calibration)[:limit]:
                yield example({names[0]: row[None]})
            return
        seen = 0
        for batch in calibration:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = {names[0]: x} if not isinstance(x, dict) else x
            for i in range(int(np.shape(next(iter(x.values())))[0])):
                yield example({k: np.asarray(v[i : i + 1]) for k, v in x.items()})
                seen += 1
                if seen >= limit:
                    return

    return representative


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def export(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    format: str,  # noqa: A002  (named as in Keras' model.export)
    quantize: str | None = None,
    calibration: Any = None,
    sequence_length: int | None = None,
    overwrite: bool = False,
    tolerance: float = TOLERANCE,
    verbose: bool = False,
) -> ExportResult:
    """Writes ``model`` as a ``format`` file that its runtime has checked against Keras.

    Args:
        model: A model from :func:`kzoo.get`, a reloaded ``.keras`` model or any Keras model.
        path: Where to write: a directory for ``saved_model``, else a file ending in
            ``.tflite`` (``litert``), ``.onnx`` or ``.xml`` (``openvino``, with a ``.bin``).
        format: ``"saved_model"``, ``"litert"``, ``"onnx"`` or ``"openvino"``.
        quantize: ``None`` or ``"int8"`` (``litert``: full-integer post-training
            quantization; ``saved_model``: Keras' int8 weights for Dense/Embedding layers).
        calibration: For ``litert`` int8: the inputs activation ranges are measured on.
        sequence_length: Fixed length for unrolled recurrent layers (LiteRT, OpenVINO);
            defaults to the model's ``max_length``.
        overwrite: Replace an existing artefact (never done otherwise).
        tolerance: Largest |artefact - Keras| a float export may have, relative to
            ``max(1, max |Keras output|)``; int8 is not held to it.
        verbose: Print the converters' messages.

    Returns:
        An :class:`ExportResult` with the files, the size and the measured difference.

    Raises:
        InvalidArgumentError: An unknown format or quantization, a wrong path, a taken path.
        ExportError: A missing package, a converter that cannot take the model, or an
            artefact whose outputs differ from Keras'. Nothing is written then.
    """
    _check_format(format)
    if quantize not in QUANTIZE:
        raise InvalidArgumentError(expected_received("quantize", f"one of {QUANTIZE}", quantize))
    if quantize == "int8" and format not in ("litert", "saved_model"):
        raise InvalidArgumentError(
            expected_received(
                f"quantize='int8' with format={format!r}",
                "format 'litert' (full-integer post-training quantization) or 'saved_model' (Keras' int8 weights)",
                format,
            )
        )
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(expected_received("model", "a Keras model (from kzoo.get)", type(model).__name__))
    if quantize == "int8" and format == "litert":
        calibration_batches(calibration, model)  # refuses a missing calibration before any work
    path = _check_path(path, format, overwrite)
    require(format)
    if format != "saved_model" and keras.backend.backend() != "tensorflow":
        # Keras' LiteRT and tf2onnx routes trace a TensorFlow function.
        from kzoo.errors import BackendError

        raise BackendError(
            expected_received(
                f"export to {format}",
                "the TensorFlow backend",
                keras.backend.backend(),
                "Set KERAS_BACKEND=tensorflow.",
            )
        )
    identity = identity_lib.of(model)
    exported, length = inference_model(model, format, sequence_length)
    # A CRF tagger is exported decoding (Viterbi scores, as its predict gives): kzoo.layers.crf.
    with contextlib.ExitStack() as stack:
        for holder in (model, exported):
            stack.enter_context(crf_decoding(holder))
        # The reference is float32 Keras: a mixed-precision model is compared through its float32 copy.
        reference = inference_model(model, "saved_model")[0] if _mixed(model) else model
        stack.enter_context(crf_decoding(reference))
        if quantize == "int8" and format == "saved_model":
            exported = _keras_int8_copy(exported)
        arrays = check_inputs(exported, sequence_length=length)
        expected = keras_outputs(reference, arrays)

        parent = path.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.export-"))
        try:
            staged = staging / path.name
            if format == "saved_model" and _reads_vocabulary(exported, identity):
                _write_text_savedmodel(exported, staged, identity)
            else:
                _convert(exported, staged, format, quantize, calibration, verbose)
            try:
                got = load(staged, format)(arrays)
            except KzooError:
                raise
            except Exception as error:  # the runtimes raise their own types; kzoo reports their reason
                raise ExportError(
                    f"{exported.name} was converted to {format}, but its runtime cannot run the file: "
                    f"{type(error).__name__}: {runtime_reason(error)}. Nothing was written."
                ) from error
            difference = _max_difference(got, expected, exported.name, format)
            # float32 round-off grows with the outputs' size (a 110-layer ResNet's logits reach the
            # hundreds), so the bound is relative to the largest Keras output once that exceeds 1.
            scale = max([1.0] + [float(np.max(np.abs(e))) for e in expected if e.size])
            if quantize is None and not difference <= tolerance * scale:
                raise ExportError(
                    f"{exported.name} exported to {format}, but its runtime's outputs differ from Keras' by "
                    f"{difference:.3g} (more than tolerance={tolerance:g} x max(1, max |output|) = "
                    f"{tolerance * scale:.3g}) "
                    "on a fixed input. Nothing was written. Pass a larger tolerance= to accept it."
                )
            sidecars = _write_sidecars(exported, staged, format, identity, length, quantize, difference)
            files = _move_into_place(staging, path, format, sidecars, overwrite)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        size = _size(path) + (_size(path.with_suffix(".bin")) if format == "openvino" else 0)
    return ExportResult(format, path, tuple(files), size, float(difference), quantize, length)


def _keras_int8_copy(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with Keras' int8 weight quantization (Dense, EinsumDense, Embedding)."""
    copy = _functional_copy(model, "quantize='int8'", model.get_config())
    copy.quantize("int8")
    return copy


def _functional_copy(model: keras.Model, purpose: str, config: dict | None) -> keras.Model:
    """``model`` rebuilt from ``config`` (its own, possibly edited) with its weights."""
    if not config or "layers" not in config:
        raise ExportError(
            expected_received(
                f"model for {purpose}",
                "a functional model (as kzoo.get returns) so kzoo can make a copy",
                type(model).__name__,
            )
        )
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _convert(
    model: keras.Model, staged: Path, format: str, quantize: str | None, calibration: Any, verbose: bool
) -> None:  # noqa: A002
    kwargs: dict[str, Any] = {}
    if format == "litert":
        import tensorflow as tf

        # Builtin ops only: SELECT_TF_OPS (Keras' default) needs the Flex delegate, which the
        # standalone LiteRT runtime (ai-edge-litert) does not ship, so the file would not load there.
        kwargs["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
        if quantize == "int8":
            kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
            kwargs["representative_dataset"] = calibration_batches(calibration, model)
            kwargs["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    input_signature = None
    if format in ("litert", "openvino", "onnx"):
        from keras.src.export.export_utils import get_input_signature

        input_signature = get_input_signature(model)
    patch = _backward_masks_fixed() if format in ("litert", "openvino") else contextlib.nullcontext()
    with _quiet(not verbose), patch:
        try:
            model.export(
                str(staged), format=_KERAS_FORMAT[format], verbose=verbose, input_signature=input_signature, **kwargs
            )
            if format == "openvino":
                _drop_dangling_outputs(staged, len(model.outputs))
        except KzooError:
            raise
        except Exception as error:  # the converters raise many types; kzoo reports their reason
            raise ExportError(
                f"{model.name} cannot be exported to {format}: the converter failed with "
                f"{type(error).__name__}: {converter_reason(error)}. Nothing was written."
            ) from error


def _drop_dangling_outputs(xml: Path, count: int) -> None:
    """Keeps only the model's outputs in an OpenVINO IR written from a TensorFlow function.

    ``openvino.convert_model`` on a concrete function also makes a result of every tensor no
    op consumes (an unrolled RNN's unused states, masks), so the IR had up to 10 outputs
    where the model has 1. The function's real outputs are its ``Identity``, ``Identity_1``, ...
    """
    import openvino

    core = openvino.Core()
    ir = core.read_model(str(xml))
    pattern = re.compile(r"Identity(?:_\d+)?(?::0)?")
    results = ir.get_results()  # one list: each call makes new Python wrappers
    real = [r for r in results if any(pattern.fullmatch(n) for n in r.input_value(0).get_names())]
    if len(results) == count or len(real) != count:
        return
    for result in results:
        if all(result is not r for r in real):
            ir.remove_result(result)
    ir.validate_nodes_and_infer_types()
    # A new name: the IR just read maps its .bin, which must not be written over while in use.
    trimmed = xml.with_name(f"trimmed-{xml.name}")
    openvino.save_model(ir, str(trimmed), compress_to_fp16=False)
    del ir, core
    os.replace(trimmed, xml)
    os.replace(trimmed.with_suffix(".bin"), xml.with_suffix(".bin"))


def runtime_reason(error: BaseException) -> str:
    """The runtime's reason for refusing a file, in one line."""
    text = str(error)
    if "No Op registered for StatefulPartitionedCall" in text:
        # Keras runs grouped convolutions (AlexNet's two towers) on CPU as an XLA-compiled
        # tf.function, and tf2onnx leaves such a call unconverted.
        return (
            "No Op registered for StatefulPartitionedCall (tf2onnx left a TensorFlow function call "
            "unconverted: Keras' XLA-compiled grouped convolution)"
        )
    match = re.search(r"(No Op registered for [A-Za-z0-9_]+)", text) or re.search(r"(Unsupported [^\n.]*)", text)
    if match:
        return match.group(1)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    return first[:300]


def converter_reason(error: BaseException) -> str:
    """The converter's own reason, in one line (its first informative sentence)."""
    text = str(error)
    patterns = (
        r"(No conversion rule found for operations: [^\n]*)",
        r"(failed to legalize operation '[^']*')",
        r"'(tf\.[A-Za-z]+)' op is neither a custom op nor a flex op",
        r"(Unsupported ops: [^\n]*)",
        r"(requires element_shape to be static)",
    )
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    return first[:300]


def _reads_vocabulary(model: keras.Model, identity: Any) -> bool:
    """A one-input model whose text is tokenized with a word vocabulary (TextVectorization)."""
    text = identity.text if identity is not None else None
    return bool(text) and text.get("kind") == "vocabulary" and len(model.inputs) == 1


def _write_text_savedmodel(model: keras.Model, staged: Path, identity: Any) -> None:
    """A SavedModel with Keras' ``serve`` endpoint (token ids) and ``serve_text`` (strings in).

    Written through Keras' ``ExportArchive``, as ``model.export`` does, with one endpoint more:
    ``serve_text`` runs the model's own vocabulary as a ``TextVectorization`` in the graph.
    WordPiece and hashed-token models get no string endpoint (token ids, with the vocabulary
    and a README beside the file).
    """
    import tensorflow as tf

    settings = identity.text
    archive = keras.export.ExportArchive()
    archive.track(model)
    name = input_names(model)[0]
    spec = keras.InputSpec(shape=model.inputs[0].shape, dtype=model.inputs[0].dtype, name=name)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
    vectorizer = keras.layers.TextVectorization(
        vocabulary=settings["vocabulary"], standardize=settings.get("standardize"), split=settings.get("split")
    )
    vectorizer(tf.constant(["built"]))  # built, so the archive can track its lookup table
    archive.track(vectorizer)
    limit = settings.get("max_length")

    def serve_text(texts: Any) -> Any:
        ids = vectorizer(texts)
        if limit:
            ids = ids[:, :limit]
        return model(tf.cast(ids, model.inputs[0].dtype), training=False)

    archive.add_endpoint("serve_text", serve_text, input_signature=[tf.TensorSpec((None,), tf.string, name="text")])
    with _quiet(True):
        try:
            archive.write_out(str(staged), verbose=False)
        except Exception as error:  # TensorFlow's saver raises many types; kzoo reports its reason
            raise ExportError(
                f"{model.name} cannot be exported to saved_model: {type(error).__name__}: "
                f"{converter_reason(error)}. Nothing was written."
            ) from error


def _max_difference(got: list, expected: list, name: str, format: str) -> float:  # noqa: A002
    if len(got) != len(expected):
        raise ExportError(f"{name} exported to {format} gives {len(got)} outputs; Keras gives {len(expected)}.")
    worst = 0.0
    for a, b in zip(got, expected):
        a = np.asarray(a, "float32")
        if a.shape != b.shape:
            raise ExportError(f"{name} exported to {format} gives an output of shape {a.shape}; Keras {b.shape}.")
        worst = max(worst, float(np.max(np.abs(a - b))) if a.size else 0.0)
    return worst


def _readme(
    model: keras.Model,
    path: Path,
    format: str,
    identity: Any,
    length: int | None,
    quantize: str | None,
    difference: float,
) -> str:  # noqa: A002
    names = input_names(model)
    inputs = "\n".join(
        f"- `{n}`: shape {tuple(t.shape)}, {keras.backend.standardize_dtype(t.dtype)}"
        for n, t in zip(names, model.inputs)
    )
    lines = [
        f"# {model.name} ({format}{', int8' if quantize else ''})",
        "",
        f"Written by `kzoo.export`. Checked in its runtime against Keras before writing: "
        f"max |difference| {difference:.3g} on a fixed input.",
        "",
        "## Inputs",
        inputs,
    ]
    if identity is not None and identity.preprocessing_in_model:
        lines += [
            "",
            "Images are raw 0-255 pixels (float32, RGB/grey as the shape says); the preprocessing is in the graph.",
        ]
    elif identity is not None and identity.preprocessing:
        lines += ["", f"Images are prepared outside the graph: {identity.preprocessing}."]
    if identity is not None and identity.input_range:
        lines += ["", f"Values must lie in {tuple(identity.input_range)}."]
    if length:
        lines += ["", f"Recurrent layers are unrolled: sequences are exactly {length} tokens (pad with 0, truncate)."]
    if identity is not None and identity.class_names:
        lines += [
            "",
            "## Outputs",
            f"Logits over {len(identity.class_names)} classes: {', '.join(identity.class_names[:20])}",
        ]
    if identity is not None and identity.text:
        lines += ["", "## Text", _tokenize_snippet(identity, path, format, length)]
    lines += ["", "## Run it", "```python", _run_snippet(path, format, names), "```", ""]
    return "\n".join(lines)


def _tokenize_snippet(identity: Any, path: Path, format: str, length: int | None) -> str:  # noqa: A002
    settings = identity.text
    kind = settings.get("kind")
    vocab = "vocab.txt" if format == "saved_model" else f"{path.with_suffix('').name}.vocab.txt"
    if format == "saved_model" and kind == "vocabulary":
        return "The `serve_text` signature takes strings (shape `(batch,)`) and tokenizes them in the graph."
    pad = length or settings.get("max_length")
    if kind == "vocabulary":
        return "\n".join(
            [
                f"Token ids index `{vocab}` (line i is id i; 0 is padding, 1 out-of-vocabulary).",
                "```python",
                "import keras, numpy as np",
                f"vocabulary = open('{vocab}', encoding='utf-8').read().split('\\n')",
                f"tokenize = keras.layers.TextVectorization(vocabulary=vocabulary[2:], "
                f"standardize={settings.get('standardize')!r}, split={settings.get('split')!r}"
                + (f", output_sequence_length={pad})" if pad else ")"),
                "ids = np.asarray(tokenize(['a sentence to classify']), 'int32')",
                "```",
            ]
        )
    if kind == "wordpiece":
        return "\n".join(
            [
                f"WordPiece ids over `{vocab}` (lower-cased: {settings.get('lowercase', True)}), "
                f"[CLS] text [SEP], padded to {pad} tokens.",
                "```python",
                "import kzoo",
                f"tokenize = kzoo.text.WordPieceTokenizer(open('{vocab}').read().split('\\n'), sequence_length={pad})",
                "inputs = tokenize(['a sentence to classify'])   # token_ids, segment_ids, padding_mask",
                "```",
            ]
        )
    if kind == "hashing":
        arguments = f"{settings.get('num_bins')}, {settings.get('max_word_length')}"
        if settings.get("normalize_digits"):
            arguments += ", normalize_digits=True"
        return "\n".join(
            [
                f"Each token is hashed: words into {settings.get('num_bins')} bins and characters (up to "
                f"{settings.get('max_word_length')} per word):",
                "```python",
                "import kzoo",
                f"features = kzoo.text.TokenFeatures({arguments})",
                "inputs = features(['EU', 'rejects', 'German', 'call'])   # words, chars",
                "```",
            ]
        )
    return "Token ids, as the model was trained on."


def _run_snippet(path: Path, format: str, names: list[str]) -> str:  # noqa: A002
    feed = "{" + ", ".join(f"'{n}': {n}" for n in names) + "}"
    if format == "saved_model":
        return (
            f"import tensorflow as tf\nmodel = tf.saved_model.load('{path.name}')\n"
            "outputs = model.serve(...)  # inputs as above"
        )
    if format == "litert":
        return (
            "from ai_edge_litert.interpreter import Interpreter\n"
            f"runner = Interpreter(model_path='{path.name}').get_signature_runner()\n"
            f"outputs = runner(**{feed})  # {{'output_0': ...}}"
        )
    if format == "onnx":
        return (
            f"import onnxruntime\nsession = onnxruntime.InferenceSession('{path.name}')\n"
            f"outputs = session.run(None, {feed})"
        )
    return (
        f"import openvino\ncompiled = openvino.Core().compile_model('{path.name}', 'CPU')\noutputs = compiled({feed})"
    )


def _write_sidecars(
    model: keras.Model,
    staged: Path,
    format: str,
    identity: Any,
    length: int | None,
    quantize: str | None,
    difference: float,
) -> dict[Path, Path]:  # noqa: A002
    """README, metadata and vocabulary, staged; returns {staged file: its name under the target}."""
    stem = staged.with_suffix("").name if format != "saved_model" else None
    where = (lambda name: staged / name) if format == "saved_model" else (lambda name: staged.parent / f"{stem}.{name}")
    written: dict[Path, Path] = {}
    readme = where("README.md")
    readme.write_text(_readme(model, staged, format, identity, length, quantize, difference), encoding="utf-8")
    written[readme] = readme
    metadata = where("kzoo.json")
    metadata.write_text(
        json.dumps(
            {
                "format": format,
                "quantize": quantize,
                "sequence_length": length,
                "inputs": {
                    n: {"shape": list(t.shape), "dtype": keras.backend.standardize_dtype(t.dtype)}
                    for n, t in zip(input_names(model), model.inputs)
                },
                "max_abs_difference": difference,
                "identity": identity.to_config() if identity is not None else None,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    written[metadata] = metadata
    vocabulary = (identity.text or {}).get("vocabulary") if identity is not None else None
    if vocabulary:
        vocab = where("vocab.txt")
        words = list(vocabulary)
        if identity.text.get("kind") == "vocabulary":
            words = ["", "[UNK]", *words]  # ids 0 and 1 are TextVectorization's padding and OOV
        vocab.write_text("\n".join(words), encoding="utf-8")
        written[vocab] = vocab
    return written


def _move_into_place(staging: Path, path: Path, format: str, sidecars: dict, overwrite: bool) -> list[Path]:  # noqa: A002
    """Renames the staged artefact and sidecars onto their targets (same filesystem)."""
    parent = path.absolute().parent
    staged_files = [staging / path.name]
    if format == "openvino":
        staged_files.append((staging / path.name).with_suffix(".bin"))
    if format != "saved_model":
        staged_files += [f for f in sidecars if f.parent == staging]
    moved = []
    for staged in staged_files:
        target = parent / staged.name
        if target.exists() and overwrite:
            aside = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.old-"))
            os.replace(target, aside / target.name)
            os.replace(staged, target)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.replace(staged, target)
        moved.append(target)
    if format == "saved_model":
        moved += [path / f.name for f in sidecars]
    return moved


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Silences the converters' prints and C++ logs (they write to the process's stdout/stderr)."""
    if not enabled:
        yield
        return
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def supported_formats(name: str) -> dict[str, str]:
    """``{format: "ok" or the converter's reason}`` for a registered model, as the parity test measured.

    Read from ``kzoo/export_support.json``, written by ``tests/scripts/export_matrix.py`` from
    fresh exports of every registered model; ``tests/test_export_matrix.py`` checks it in CI.
    """
    if not SUPPORT_FILE.exists():
        return {}
    measured = json.loads(SUPPORT_FILE.read_text()).get(name, {})
    return {fmt: measured[fmt] for fmt in FORMATS if fmt in measured}
