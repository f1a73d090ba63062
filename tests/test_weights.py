"""The weights store: records, the download cache against a real local HTTP server,
integrity checks, strict loading of malformed files, head and channel adaptation."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import kzoo
from kzoo import errors, registry
from kzoo import weights as weights_lib

from helpers import tiny_net, tiny_spec

REPO = Path(__file__).resolve().parent.parent
EXPECTED_OUTPUTS = Path(__file__).resolve().parent / "expected_outputs.json"


# ----------------------------------------------------------------------------------------
# Schema of every weights record, and numeric regression of shipped weights
# ----------------------------------------------------------------------------------------

RECORDS = weights_lib.all_records()


def test_there_are_shipped_weights():
    assert any(r.shipped for r in RECORDS)


def _configuration(model_spec, record) -> dict:
    parameters = inspect.signature(model_spec.builder).parameters
    wanted = {"input_shape": record.input_shape, "num_classes": record.num_classes, "include_top": record.include_top}
    return {k: v for k, v in wanted.items() if v is not None and k in parameters}


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.key)
def test_weights_record_schema(record):
    assert record.model in kzoo.list_models(), "weights for an unregistered model"
    assert record.tag and record.tag.replace("_", "").replace("-", "").isalnum()
    assert record.format in ("keras", "h5-legacy")
    # Shipped files always know their size; a publisher may pin only a hash (keras.applications pins md5).
    assert (isinstance(record.size, int) and record.size > 0) or (not record.shipped and record.size is None)
    assert record.dataset and record.license and record.recipe and record.source
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in record.metrics.values())
    # kzoo's own weights always carry a measured figure; a publisher's may be "not measured" here.
    assert record.metrics or (not record.shipped and "not measured" in record.eval_split)
    assert record.eval_split, "metrics must say which held-out data they were measured on"
    task = registry.spec(record.model).task
    # Classes are recorded for every model that has them; generators, autoencoders and masked
    # language models have none, nor do files that hold another head than the model's (BERT's
    # masked-LM file serves the classifier and the tagger with their heads newly initialised).
    model_spec = registry.spec(record.model)
    own_head = model_spec.kwargs.get("head")
    head_in_file = record.builder_kwargs.get("head", own_head) == own_head
    takes_classes = "num_classes" in inspect.signature(model_spec.builder).parameters
    if takes_classes and task != "masked-language-modeling" and head_in_file:
        assert isinstance(record.num_classes, int) and record.num_classes > 0
    else:
        assert record.num_classes is None and record.class_names is None
    if record.class_names is not None:
        assert len(record.class_names) == record.num_classes
    if task.startswith("image") or record.input_shape is not None:
        assert record.input_shape and all(isinstance(d, int) and d > 0 for d in record.input_shape)
        assert isinstance(record.preprocessing, weights_lib.Preprocessing)
        assert record.preprocessing.channel_order in ("rgb", "bgr", "grayscale")
    if "vocabulary" in record.text:  # a text model's vocabulary ships beside it, pinned by its own hash
        vocabulary = weights_lib.shipped_dir() / record.text["vocabulary"]
        assert weights_lib.file_hashes(vocabulary)["sha256"] == record.text["vocabulary_sha256"]
        if record.text.get("tokenizer") == "wordpiece":
            assert isinstance(record.text["lowercase"], bool) and record.text["max_length"] > 0
        else:
            assert record.text["standardize"] and record.text["split"]
    defaults = [r for r in RECORDS if r.model == record.model and r.default]
    assert len(defaults) == 1, f"{record.model} needs exactly one default tag"
    # num_params is the model's in the configuration the file was saved from (built without
    # initialising its variables), and for kzoo's own files what the file holds.
    saved = {**model_spec.defaults, **model_spec.kwargs, **record.builder_kwargs, **_configuration(model_spec, record)}
    with keras.StatelessScope():
        assert record.num_params == model_spec.builder(**saved).count_params()
    if record.shipped:
        assert record.num_params == weights_lib.count_file_params(weights_lib.shipped_dir() / record.file)
    if record.shipped:
        assert record.sha256 and len(record.sha256) == 64
        path = weights_lib.shipped_dir() / record.file
        assert path.is_file()
        assert path.stat().st_size == record.size <= 10 * 1024 * 1024
        assert weights_lib.file_hashes(path)["sha256"] == record.sha256
        script = record.recipe.split()[0]
        assert (REPO / script).is_file(), f"recipe {script} is not in the repository"
    else:
        assert record.url.startswith("https://")
        assert record.sha256 or record.md5


def _fixed_input(model: keras.Model) -> np.ndarray:
    origin = registry.origin(model)
    if "int" in str(model.inputs[0].dtype) or len(model.inputs) > 1:  # token ids; [noise or image, label]
        return origin.spec.sample_inputs(model, batch_size=4, seed=1998)
    raw = np.random.default_rng(1998).integers(0, 256, size=(4, *model.inputs[0].shape[1:]))
    if kzoo.identity.of(model).preprocessing_in_model:
        return raw.astype("uint8")  # the model applies the weights' preprocessing itself
    return np.asarray(origin.weights.preprocessing(raw.astype("float32")), "float32")


@pytest.mark.parametrize("record", [r for r in RECORDS if r.shipped], ids=lambda r: r.key)
def test_shipped_weights_give_stored_outputs(record):
    """Regenerate after retraining with: KZOO_REGEN_EXPECTED=1 pytest tests/test_weights.py -k stored_outputs"""
    # Seeded: weights that hold an encoder only (BERT's masked-LM file for the classifier)
    # leave the head to a random but then fixed initialisation.
    keras.utils.set_random_seed(1998)
    model = kzoo.get(record.model, pretrained=record.tag)
    outputs = model.predict(_fixed_input(model), verbose=0)
    # Large outputs (segmentation maps) are compared at 32 evenly spaced positions per example.
    flat = outputs.reshape(len(outputs), -1)
    outputs = flat[:, np.linspace(0, flat.shape[1] - 1, min(32, flat.shape[1])).astype(int)]
    stored = json.loads(EXPECTED_OUTPUTS.read_text()) if EXPECTED_OUTPUTS.is_file() else {}
    entry = {"sha256": record.sha256, "outputs": np.round(outputs, 5).tolist()}
    if os.environ.get("KZOO_REGEN_EXPECTED") == "1":
        stored[record.key] = entry
        EXPECTED_OUTPUTS.write_text(json.dumps(stored, indent=1) + "\n")
    assert record.key in stored, "no stored outputs: run with KZOO_REGEN_EXPECTED=1"
    assert stored[record.key]["sha256"] == record.sha256, "weights changed: regenerate the stored outputs"
    # Tolerance: GPUs compute float32 convolutions in TF32 (about 1e-3 relative, seen on an
    # H100 with the JAX backend); damaged or different weights move logits far more.
    np.testing.assert_allclose(outputs, np.asarray(stored[record.key]["outputs"]), rtol=2e-3, atol=2e-3)


# ----------------------------------------------------------------------------------------
# Downloads against a real http.server on 127.0.0.1
# ----------------------------------------------------------------------------------------


@pytest.fixture
def tiny_file(tmp_path):
    """A real Keras 3 weights file of a small 3-channel model and the model that wrote it."""
    keras.utils.set_random_seed(7)
    model = tiny_net(num_classes=4)
    path = tmp_path / "tiny_source.weights.h5"
    model.save_weights(path)
    return path.read_bytes(), model


def _remote_record(served, body: bytes, *, name="tiny_web", mode="good", path="tiny.weights.h5", **changes):
    url = served.add(path, body, mode)
    record = weights_lib.WeightsRecord(
        model=name,
        tag="web",
        file=f"{name}-{hashlib.sha256(body).hexdigest()[:8]}.weights.h5",
        url=url,
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        dataset="random",
        metrics={"none": 0.0},
        eval_split="none",
        num_classes=4,
        input_shape=(8, 8, 3),
        license="test",
        recipe="tests",
        default=True,
    )
    return dataclasses.replace(record, **changes) if changes else record


def _leftovers(home: Path) -> list[str]:
    """The cache's files, but the folder of (empty) per-entry lock files that kzoo.download keeps."""
    folder = home / "weights"
    return sorted(p.name for p in folder.iterdir() if p.name != ".locks") if folder.is_dir() else []


def test_download_verifies_caches_and_loads(kzoo_home, http_files, temporary_registry, tiny_file, capsys):
    body, source = tiny_file
    temporary_registry.model(tiny_spec("tiny_web"))
    record = temporary_registry.weights(_remote_record(http_files, body))
    model = kzoo.get("tiny_web", pretrained="web")
    assert "Downloading tiny_web.web" in capsys.readouterr().out  # the progress bar
    for a, b in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert _leftovers(kzoo_home) == [record.file]
    assert (kzoo_home / "weights" / record.file).read_bytes() == body
    kzoo.get("tiny_web", pretrained=True)  # second call: from the cache
    assert http_files.requests == ["/tiny.weights.h5"]


def test_publisher_md5_pin_is_enough(kzoo_home, http_files, tiny_file):
    body, _ = tiny_file
    record = _remote_record(http_files, body, sha256=None, md5=hashlib.md5(body).hexdigest())
    assert weights_lib.fetch(record, progress=False).read_bytes() == body


def test_wrong_bytes_are_rejected_and_never_cached(kzoo_home, http_files, tiny_file):
    body, _ = tiny_file
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0x01
    record = _remote_record(http_files, bytes(flipped), sha256=hashlib.sha256(body).hexdigest())
    with pytest.raises(errors.IntegrityError, match="expected sha256"):
        weights_lib.fetch(record, progress=False)
    assert _leftovers(kzoo_home) == []


def test_truncated_body_is_rejected(kzoo_home, http_files, tiny_file):
    body, _ = tiny_file
    record = _remote_record(http_files, body, mode="truncated")
    with pytest.raises(errors.KzooError) as caught:
        weights_lib.fetch(record, progress=False)
    assert isinstance(caught.value, (errors.DownloadError, errors.IntegrityError))
    assert _leftovers(kzoo_home) == []


def test_404_names_the_url(kzoo_home, http_files, tiny_file):
    body, _ = tiny_file
    record = dataclasses.replace(_remote_record(http_files, body), url=http_files.url("nowhere.h5"))
    with pytest.raises(errors.DownloadError, match="HTTP 404") as caught:
        weights_lib.fetch(record, progress=False)
    assert record.url in str(caught.value)
    assert _leftovers(kzoo_home) == []


def test_unreachable_server_is_a_download_error(kzoo_home, http_files, tiny_file):
    body, _ = tiny_file
    # Port 9 (discard) on loopback: nothing listens there, the connection is refused.
    record = dataclasses.replace(_remote_record(http_files, body), url="http://127.0.0.1:9/tiny.weights.h5")
    with pytest.raises(errors.DownloadError, match="failed"):
        weights_lib.fetch(record, progress=False, timeout=5)


def test_offline_makes_no_request_and_names_the_cache_path(kzoo_home, http_files, tiny_file, monkeypatch):
    body, _ = tiny_file
    record = _remote_record(http_files, body)
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    with pytest.raises(errors.OfflineError) as caught:
        weights_lib.fetch(record, progress=False)
    assert str(kzoo_home / "weights" / record.file) in str(caught.value)
    assert http_files.requests == []


def test_offline_uses_a_good_cache_entry(kzoo_home, http_files, tiny_file, monkeypatch):
    body, _ = tiny_file
    record = _remote_record(http_files, body)
    weights_lib.fetch(record, progress=False)
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    assert weights_lib.fetch(record, progress=False).read_bytes() == body
    assert http_files.requests == ["/tiny.weights.h5"]


def test_corrupted_cache_entry_is_replaced_online(kzoo_home, http_files, tiny_file):
    body, _ = tiny_file
    record = _remote_record(http_files, body)
    cached = weights_lib.fetch(record, progress=False)
    damaged = bytearray(body)
    damaged[100] ^= 0xFF
    cached.write_bytes(bytes(damaged))
    assert weights_lib.fetch(record, progress=False).read_bytes() == body
    assert len(http_files.requests) == 2
    assert _leftovers(kzoo_home) == [record.file]


def test_corrupted_cache_entry_offline_is_removed_not_parsed(
    kzoo_home, http_files, tiny_file, temporary_registry, monkeypatch
):
    body, _ = tiny_file
    temporary_registry.model(tiny_spec("tiny_web"))
    record = temporary_registry.weights(_remote_record(http_files, body))
    cached = weights_lib.fetch(record, progress=False)
    cached.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * (len(body) - 8))  # same size, HDF5 signature
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    parsed = []
    monkeypatch.setattr(weights_lib, "load_weights_file", lambda *a, **k: parsed.append(a))
    with pytest.raises(errors.IntegrityError, match="failed the integrity check"):
        kzoo.get("tiny_web", pretrained=True)
    assert parsed == []
    assert not cached.exists()


# ----------------------------------------------------------------------------------------
# Malformed files given by path
# ----------------------------------------------------------------------------------------


@pytest.fixture
def lenet_file(tmp_path):
    keras.utils.set_random_seed(3)
    model = kzoo.get("lenet5", num_classes=5)
    path = tmp_path / "mine.weights.h5"
    model.save_weights(path)
    return path, model


def test_own_weights_file_round_trip(lenet_file):
    path, source = lenet_file
    model = kzoo.get("lenet5", pretrained=str(path), num_classes=5)
    for a, b in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_own_keras_file_loads_safely(tmp_path, lenet_file):
    _, source = lenet_file
    path = tmp_path / "mine.keras"
    source.save(path)
    model = kzoo.get("lenet5", pretrained=path, num_classes=5)
    for a, b in zip(model.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_truncated_file_raises_a_weights_error(tmp_path, lenet_file):
    path, _ = lenet_file
    broken = tmp_path / "truncated.weights.h5"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(errors.WeightsError, match="could not be loaded"):
        kzoo.get("lenet5", pretrained=broken, num_classes=5)


def test_bit_flipped_superblock_raises_a_weights_error(tmp_path, lenet_file):
    path, _ = lenet_file
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # inside the HDF5 superblock (addresses of the root group)
    broken = tmp_path / "flipped.weights.h5"
    broken.write_bytes(bytes(data))
    with pytest.raises(errors.WeightsError):
        kzoo.get("lenet5", pretrained=broken, num_classes=5)


def test_not_hdf5_raises_a_weights_error(tmp_path):
    path = tmp_path / "notes.weights.h5"
    path.write_text("these are not weights")
    with pytest.raises(errors.WeightsError, match="expected an HDF5 file"):
        kzoo.get("lenet5", pretrained=path)


def test_wrong_shapes_raise_a_weights_error(lenet_file):
    path, _ = lenet_file  # saved with 5 classes
    with pytest.raises(errors.WeightsError) as caught:
        kzoo.get("lenet5", pretrained=path)  # 10 classes
    assert "could not be loaded" in str(caught.value)


def test_file_from_another_model_raises_a_weights_error(tmp_path, tiny_file):
    body, _ = tiny_file
    path = tmp_path / "tiny.weights.h5"
    path.write_bytes(body)
    with pytest.raises(errors.WeightsError, match="expected 10 variables, received 4"):
        kzoo.get("lenet5", pretrained=path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(errors.WeightsError, match="an existing file"):
        kzoo.get("lenet5", pretrained=tmp_path / "absent.weights.h5")


def test_damaged_shipped_file_says_reinstall(tmp_path, monkeypatch):
    copy = tmp_path / "zoo_weights"
    shutil.copytree(weights_lib.shipped_dir(), copy)
    record = weights_lib.records_for("lenet5")[0]
    data = bytearray((copy / record.file).read_bytes())
    data[-100] ^= 0x10
    (copy / record.file).write_bytes(bytes(data))
    monkeypatch.setattr(weights_lib, "shipped_dir", lambda: copy)
    with pytest.raises(errors.IntegrityError, match="reinstall"):
        kzoo.get("lenet5", pretrained=True)


# ----------------------------------------------------------------------------------------
# Head and channel adaptation
# ----------------------------------------------------------------------------------------


def test_new_head_loads_everything_else_and_says_so(caplog):
    pretrained = kzoo.get("lenet5", pretrained=True)
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        model = kzoo.get("lenet5", pretrained=True, num_classes=5)
    lines = [r.getMessage() for r in caplog.records if "head" in r.getMessage()]
    assert len(lines) == 1 and "predictions" in lines[0]
    for layer in model.layers:
        if layer.weights and layer.name != "predictions":
            for a, b in zip(layer.get_weights(), pretrained.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    assert model.get_layer("predictions").kernel.shape == (84, 5)


def test_rgb_input_adapts_the_stem_and_keeps_predictions(caplog):
    gray = kzoo.get("lenet5", pretrained=True)
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        rgb = kzoo.get("lenet5", pretrained=True, input_shape=(28, 28, 3))
    assert any("adapted c1_conv from 1 to 3 input channels" in r.getMessage() for r in caplog.records)
    images = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(
        rgb.predict(np.repeat(images, 3, axis=-1), verbose=0), gray.predict(images, verbose=0), rtol=1e-4, atol=1e-5
    )


def test_grayscale_input_sums_an_rgb_stem(kzoo_home, http_files, temporary_registry, tiny_file, caplog):
    body, source = tiny_file
    temporary_registry.model(tiny_spec("tiny_web"))
    temporary_registry.weights(_remote_record(http_files, body))
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        model = kzoo.get("tiny_web", pretrained=True, input_shape=(8, 8, 1))
    kernel = model.get_layer("stem_conv").get_weights()[0]
    np.testing.assert_allclose(kernel, source.get_layer("stem_conv").get_weights()[0].sum(axis=2, keepdims=True))
    assert any("from 3 to 1 input channels" in r.getMessage() for r in caplog.records)


def test_other_input_sizes_keep_the_convolutions():
    pretrained = kzoo.get("lenet5", pretrained=True)
    features = kzoo.get("lenet5", pretrained=True, include_top=False, pooling="max", input_shape=(64, 64, 1))
    assert features.output_shape == (None, 120)
    for name in ("c1_conv", "c3_conv", "c5_conv"):
        for a, b in zip(features.get_layer(name).get_weights(), pretrained.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(errors.WeightsError, match=r"f6_dense.*trained with input_shape=\(28, 28, 1\)"):
        kzoo.get("lenet5", pretrained=True, input_shape=(32, 32, 1))  # F6 sees 2x2x120 features


def test_adapt_input_channels_rules():
    kernel = np.random.default_rng(0).standard_normal((3, 3, 3, 8))
    np.testing.assert_array_equal(registry.adapt_input_channels(kernel, 3), kernel)  # same channels: unchanged
    np.testing.assert_allclose(registry.adapt_input_channels(kernel, 1), kernel.sum(axis=2, keepdims=True))
    four = registry.adapt_input_channels(kernel, 4)
    assert four.shape == (3, 3, 4, 8)
    np.testing.assert_allclose(four[:, :, 3], kernel[:, :, 0] * 3 / 4)
    np.testing.assert_allclose(four.sum(axis=2), (kernel.sum(axis=2) + kernel[:, :, 0]) * 3 / 4)


def test_incompatible_weights_leave_no_half_loaded_model():
    source, target = tiny_net(width=3), tiny_net(width=5)
    before = [w.copy() for w in target.get_weights()]
    with pytest.raises(errors.WeightsError, match="expected weight shapes"):
        registry.transfer_weights(source, target, tiny_spec(), source_description="test weights")
    for a, b in zip(target.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_weights_for_another_configuration_name_the_file(kzoo_home, http_files, temporary_registry, tiny_file):
    body, _ = tiny_file
    temporary_registry.model(tiny_spec("tiny_web"))
    temporary_registry.weights(_remote_record(http_files, body))
    with pytest.raises(errors.WeightsError, match="could not be loaded into model"):
        kzoo.get("tiny_web", pretrained=True, width=5)  # the weights' stem has 3 filters


def test_compress_file_keeps_every_value_and_shrinks_zeros(tmp_path):
    model = keras.Sequential([keras.Input((2000,)), keras.layers.Dense(64), keras.layers.Dense(3)])
    kernel = model.layers[0].kernel
    kernel.assign(np.where(np.arange(2000)[:, None] < 1000, np.asarray(kernel), 0.0))  # half of the rows zero
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    size = path.stat().st_size
    weights_lib.compress_file(path)
    assert path.stat().st_size < 0.6 * size
    restored = keras.Sequential([keras.Input((2000,)), keras.layers.Dense(64), keras.layers.Dense(3)])
    restored.load_weights(path)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
