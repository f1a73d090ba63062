"""kzoo.export and `kzoo export`: pretrained models, run directories and .keras files become
files their own runtimes run like Keras; bad calls are refused and nothing is overwritten."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from export_parity import TABLE_END, TABLE_START, render_table, run_in_runtime

import kzoo
from kzoo import cli, errors
from kzoo.export import FORMATS, SUPPORT_FILE, input_names, load

from conftest import requires_data

export_module = sys.modules["kzoo.export"]  # kzoo.export the attribute is the function


def _digits(count: int = 64) -> tuple[np.ndarray, np.ndarray]:
    images, labels = kzoo.data.load_uci_digits()
    return images[:count, ..., None].astype("float32"), labels[:count]


# ----------------------------------------------------------------------------------------
# The three sources of `kzoo export`: NAME[:TAG], a finetune run directory, a .keras file
# ----------------------------------------------------------------------------------------


def test_cli_exports_a_pretrained_model_that_litert_runs_like_keras(tmp_path, capsys):
    out = tmp_path / "lenet5.tflite"
    assert cli.main(["export", "lenet5", str(out), "--format", "litert"]) == 0
    assert "max |difference|" in capsys.readouterr().out
    images, labels = _digits(200)
    model = kzoo.get("lenet5", pretrained=True)
    outputs = run_in_runtime(out, "litert", {"image": images})[0]
    np.testing.assert_allclose(outputs, model.predict(images, verbose=0), atol=1e-4)
    # Raw 0-255 pixels in, the pretrained accuracy out: the preprocessing went with the file.
    assert (outputs.argmax(-1) == labels).mean() > 0.8
    readme = (tmp_path / "lenet5.README.md").read_text()
    assert "raw 0-255 pixels" in readme
    metadata = json.loads((tmp_path / "lenet5.kzoo.json").read_text())
    assert metadata["identity"]["weights"] == "lenet5.mnist"


def test_cli_exports_a_finetune_run_directory_and_a_reloaded_keras_file(tmp_path):
    model = kzoo.get("lenet5", pretrained=True)
    images, labels = _digits(64)
    data = kzoo.data.arrays(images, labels, model=model, batch_size=32)
    result = kzoo.finetune(model, data, epochs=1, strategy="head", log_dir=tmp_path / "run", verbose=0)
    assert cli.main(["export", str(result.log_dir), str(tmp_path / "tuned.onnx"), "--format", "onnx"]) == 0
    reloaded = keras.saving.load_model(result.log_dir / "model.keras", safe_mode=True)
    expected = reloaded.predict(images, verbose=0)
    np.testing.assert_allclose(
        run_in_runtime(tmp_path / "tuned.onnx", "onnx", {"image": images})[0], expected, atol=1e-4
    )
    keras_file = result.log_dir / "model.keras"
    assert cli.main(["export", str(keras_file), str(tmp_path / "served"), "--format", "saved_model"]) == 0
    outputs = run_in_runtime(tmp_path / "served", "saved_model", {"image": images})[0]
    np.testing.assert_allclose(outputs, expected, atol=1e-4)


def test_cli_refuses_a_run_directory_without_a_model(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["export", str(tmp_path / "empty"), str(tmp_path / "x.onnx"), "--format", "onnx"]) == 2
    assert "model.keras" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


# ----------------------------------------------------------------------------------------
# Text: strings into the SavedModel; ids plus the vocabulary and a working snippet elsewhere
# ----------------------------------------------------------------------------------------


@requires_data("sst2")
def test_text_savedmodel_takes_strings_and_litert_takes_ids_from_the_readme_snippet(tmp_path):
    import tensorflow as tf

    model = kzoo.get("bilstm_classifier", pretrained="sst2")
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés", "ok"]
    expected = model.predict(texts, verbose=0)
    kzoo.export(model, tmp_path / "served", format="saved_model")
    served = tf.saved_model.load(str(tmp_path / "served"))
    strings = served.signatures["serve_text"](text=tf.constant(texts))
    np.testing.assert_allclose(next(iter(strings.values())).numpy(), expected, atol=1e-4)

    result = kzoo.export(model, tmp_path / "sst2.tflite", format="litert")
    assert result.sequence_length == kzoo.identity.of(model).text["max_length"]
    readme = (tmp_path / "sst2.README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme.split("## Text", 1)[1], re.S).group(1)
    snippet = snippet.replace("['a sentence to classify']", "TEXTS")
    namespace = {"TEXTS": texts}
    cwd = Path.cwd()
    try:
        import os

        os.chdir(tmp_path)
        exec(snippet, namespace)  # the README's own tokenize snippet, run as a user would
    finally:
        os.chdir(cwd)
    ids = namespace["ids"]
    assert ids.shape == (3, result.sequence_length)
    outputs = run_in_runtime(tmp_path / "sst2.tflite", "litert", {"tokens": ids})[0]
    np.testing.assert_allclose(outputs, expected, atol=1e-4)


# ----------------------------------------------------------------------------------------
# The inference graph
# ----------------------------------------------------------------------------------------


def test_training_only_layers_are_not_in_the_exported_graph(tmp_path):
    import onnx

    spec = kzoo.registry.spec("autoencoder_denoising")
    model = kzoo.get("autoencoder_denoising", **spec.test_kwargs)
    assert any(isinstance(layer, keras.layers.GaussianNoise) for layer in model.layers)
    kzoo.export(model, tmp_path / "denoiser.onnx", format="onnx")
    ops = {node.op_type for node in onnx.load(str(tmp_path / "denoiser.onnx")).graph.node}
    assert not ops & {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Dropout"}
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.inputs[0].shape[1:])).astype("float32")
    run = load(tmp_path / "denoiser.onnx")
    name = input_names(model)[0]
    first, second = run({name: x})[0], run({name: x})[0]
    np.testing.assert_array_equal(first, second)  # no noise: the same input gives the same output
    np.testing.assert_allclose(first, model.predict(x, verbose=0), atol=1e-5)


def test_a_mixed_precision_model_exports_from_its_float32_copy(tmp_path):
    model = kzoo.get("lenet5", pretrained=True)
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] not in ("InputLayer", "KzooIdentity", "ImagePreprocessing"):
            layer["config"]["dtype"] = "mixed_bfloat16"
    mixed = type(model).from_config(config)
    mixed.set_weights(model.get_weights())
    images, _ = _digits(16)
    result = kzoo.export(mixed, tmp_path / "mixed.onnx", format="onnx")
    assert result.max_abs_difference <= 1e-4
    np.testing.assert_allclose(
        run_in_runtime(tmp_path / "mixed.onnx", "onnx", {"image": images})[0],
        model.predict(images, verbose=0),
        atol=1e-4,
    )


# ----------------------------------------------------------------------------------------
# Bad calls: clear kzoo errors, nothing written or overwritten
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet():
    return kzoo.get("lenet5", pretrained=True)


def test_an_unknown_format_names_the_formats(lenet, tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="expected one of .*'litert'.*received 'tflite'"):
        kzoo.export(lenet, tmp_path / "x.tflite", format="tflite")
    assert not list(tmp_path.iterdir())


def test_a_path_that_exists_is_refused_and_left_as_it_was(lenet, tmp_path):
    target = tmp_path / "lenet5.onnx"
    target.write_bytes(b"the user's own file")
    with pytest.raises(errors.InvalidArgumentError, match="does not exist yet.*overwrite=True"):
        kzoo.export(lenet, target, format="onnx")
    assert target.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.onnx"]
    kzoo.export(lenet, target, format="onnx", overwrite=True)
    assert target.read_bytes() != b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5.README.md", "lenet5.kzoo.json", "lenet5.onnx"]


def test_a_wrong_file_ending_is_refused(lenet, tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match=r"ending in \.tflite"):
        kzoo.export(lenet, tmp_path / "lenet5.onnx", format="litert")
    with pytest.raises(errors.InvalidArgumentError, match="format='onnx'"):
        kzoo.export(lenet, tmp_path / "lenet5.onnx", format="saved_model")


def test_a_missing_extra_names_the_pip_command(lenet, tmp_path, monkeypatch):
    real_import = export_module.importlib.import_module

    def without_onnxruntime(name, *args):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args)

    monkeypatch.setattr(export_module.importlib, "import_module", without_onnxruntime)
    with pytest.raises(errors.ExportError, match=r"pip install 'kzoo\[export\]'.*onnxruntime"):
        kzoo.export(lenet, tmp_path / "lenet5.onnx", format="onnx")
    assert not list(tmp_path.iterdir())


def test_int8_is_refused_for_formats_without_it(lenet, tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="'litert'.*'saved_model'"):
        kzoo.export(lenet, tmp_path / "lenet5.onnx", format="onnx", quantize="int8")


def test_a_converter_failure_is_a_kzoo_error_with_its_reason_and_no_file(tmp_path):
    spec = kzoo.registry.spec("alexnet")
    model = kzoo.get("alexnet", include_preprocessing=True, **spec.test_kwargs)
    with pytest.raises(errors.ExportError, match="StatefulPartitionedCall.*Nothing was written"):
        kzoo.export(model, tmp_path / "alexnet.onnx", format="onnx")
    assert not list(tmp_path.iterdir())


def test_a_file_that_differs_from_keras_is_not_written(lenet, tmp_path, monkeypatch):
    real_load = export_module.load

    def off_by_a_little(path, format=None, threads=None):  # noqa: A002
        run = real_load(path, format, threads)
        return lambda arrays: [o + 0.5 for o in run(arrays)]

    monkeypatch.setattr(export_module, "load", off_by_a_little)
    with pytest.raises(errors.ExportError, match=r"differ from Keras' by 0\.5 \(more than tolerance=0\.0001 x max"):
        kzoo.export(lenet, tmp_path / "lenet5.tflite", format="litert")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------
# The support table: kzoo info and the README show what the matrix measured
# ----------------------------------------------------------------------------------------


def test_the_support_file_covers_every_model_and_format():
    table = json.loads(SUPPORT_FILE.read_text())
    assert sorted(table) == sorted(kzoo.list_models())
    for name, formats in table.items():
        assert sorted(formats) == sorted(FORMATS), name


def test_kzoo_info_and_the_readme_show_the_measured_table(capsys):
    table = json.loads(SUPPORT_FILE.read_text())
    assert cli.main(["info", "alexnet"]) == 0
    shown = capsys.readouterr().out
    ok = [fmt for fmt in FORMATS if table["alexnet"][fmt] == "ok"]
    assert f"exports to:   {', '.join(ok)}" in shown
    for fmt in FORMATS:
        if table["alexnet"][fmt] != "ok":
            assert f"no {fmt}:" in shown
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    assert block.strip() == render_table(table).strip()
