"""Bad calls (issue #21, hardening): each raises a kzoo error, before any work, that says what was
expected, what was received and how to fix it; the valid calls next to them behave as before."""

from __future__ import annotations

import hashlib
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo import errors, segmentation, text

from helpers import run_cli


def _message(caught) -> str:
    return str(caught.value)


def _assert_expected_received(message: str, *fragments: str) -> None:
    assert "expected" in message and "received" in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# ----------------------------------------------------------------------------------------
# kzoo.data.image_folder: corrupt and unreadable images
# ----------------------------------------------------------------------------------------


def _good_folder(root, per_class=6, size=(20, 24)):
    """Two classes of small PNG and JPEG images, class 1 brighter than class 0."""
    rng = np.random.default_rng(0)
    for index, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.clip(rng.normal(60 + 120 * index, 10, (*size, 3)), 0, 255).astype(np.uint8)
            encode = tf.io.encode_png if i % 2 else tf.io.encode_jpeg
            (root / name / f"{i}.{'png' if i % 2 else 'jpg'}").write_bytes(encode(image).numpy())
    return root


def _add_bad_files(root):
    """A truncated PNG, a zero-byte JPEG and a text file named .png."""
    png = tf.io.encode_png(np.full((20, 24, 3), 128, np.uint8)).numpy()
    truncated = root / "cat" / "truncated.png"
    truncated.write_bytes(png[: len(png) // 2])
    empty = root / "dog" / "empty.jpg"
    empty.write_bytes(b"")
    notes = root / "dog" / "notes.png"
    notes.write_text("not an image, just notes\n")
    return [truncated, empty, notes]


def _fingerprint(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture
def bad_folder(tmp_path):
    root = _good_folder(tmp_path / "photos")
    return root, _add_bad_files(root)


def test_image_folder_names_every_corrupt_image_when_the_pipeline_is_built(bad_folder):
    root, bad = bad_folder
    before = _fingerprint(root)
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.image_folder(root, image_size=(16, 16), batch_size=4)
    message = _message(caught)
    _assert_expected_received(message, "3 of 15", 'on_error="skip"', "Remove or re-save")
    for path in bad:
        assert str(path) in message
    # The reasons: the decoder's for the truncated PNG, the header check's for the other two.
    assert "Invalid PNG data" in message and "an empty file" in message and "no image signature" in message
    assert _fingerprint(root) == before  # the check reads the files, it never touches them


def test_image_folder_skips_corrupt_images_on_request_and_counts_them(bad_folder, caplog):
    root, bad = bad_folder
    before = _fingerprint(root)
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        data = kzoo.data.image_folder(root, image_size=(16, 16), batch_size=4, on_error="skip", seed=3)
    assert data.skipped == 3 and sorted(data.skipped_files) == sorted(str(p) for p in bad)
    assert "skipped 3" in caplog.text and str(bad[0]) in caplog.text
    assert data.train_size + data.validation_size == 12
    counted = {}
    for name, split in (("train", data.train), ("validation", data.validation)):
        counted[name] = sum(int(x.shape[0]) for x, _ in split)
    assert counted == {"train": data.train_size, "validation": data.validation_size}
    # The labels still belong to the images (class 1 is brighter).
    x, y = (np.concatenate(parts) for parts in zip(*[(x.numpy(), y.numpy()) for x, y in data.train]))
    assert x[y == 0].mean() < x[y == 1].mean()
    assert _fingerprint(root) == before


def test_image_folder_without_bad_files_reports_none_skipped(tmp_path):
    root = _good_folder(tmp_path / "good")
    for on_error in ("raise", "skip"):
        data = kzoo.data.image_folder(root, image_size=(16, 16), batch_size=4, validation_split=0.0, on_error=on_error)
        assert data.skipped == 0 and data.skipped_files == () and data.train_size == 12


def test_image_folder_skip_still_refuses_a_class_left_without_images(tmp_path):
    root = _good_folder(tmp_path / "photos", per_class=2)
    for path in (root / "dog").iterdir():
        path.write_bytes(b"")
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.image_folder(root, image_size=(16, 16), on_error="skip")
    _assert_expected_received(_message(caught), "'dog'", "2 unreadable")


def test_image_folder_on_error_is_checked(tmp_path):
    root = _good_folder(tmp_path / "photos", per_class=2)
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.image_folder(root, on_error="ignore")
    _assert_expected_received(_message(caught), "'raise' or 'skip'", "'ignore'")


def test_finetune_cli_explains_a_corrupt_png_without_a_traceback(tmp_path, capfd):
    root = _good_folder(tmp_path / "photos")
    truncated = _add_bad_files(root)[0]  # its header is a PNG's: only decoding it finds the damage
    (root / "dog" / "empty.jpg").unlink()
    (root / "dog" / "notes.png").unlink()
    result = run_cli(capfd, "finetune", "lenet5", str(root), "--log-dir", str(tmp_path / "run"), "--epochs", "1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(truncated) in result.stderr and "Invalid PNG data" in result.stderr
    assert not (tmp_path / "run" / "model.keras").exists()


# ----------------------------------------------------------------------------------------
# kzoo.data.arrays: non-finite and non-numeric images, labels
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_value, fragment",
    [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")],
)
def test_arrays_refuses_non_finite_images(bad_value, fragment):
    images = np.zeros((6, 8, 8, 1), np.float32)
    images[2, 3, 4, 0] = bad_value
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.arrays(images, np.array([0, 1, 0, 1, 0, 1]))
    _assert_expected_received(_message(caught), "finite", fragment, "image 2")


def test_arrays_refuses_object_images_holding_none():
    images = np.zeros((4, 8, 8, 1)).astype(object)
    images[1, 0, 0, 0] = None
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.arrays(images, np.array([0, 1, 0, 1]))
    _assert_expected_received(_message(caught), "numbers", "object")


def test_arrays_refuses_non_finite_validation_images_and_bad_validation_labels():
    images, labels = np.zeros((4, 8, 8, 1), np.float32), np.array([0, 1, 0, 1])
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.arrays(images, labels, validation=(bad, labels))
    _assert_expected_received(_message(caught), "validation images", "nan")
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.arrays(images, labels, validation=(images, np.array([0, 1, 2, 1])), class_names=["a", "b"])
    _assert_expected_received(_message(caught), "validation labels", "[0, 2)", "2")


@pytest.mark.parametrize(
    "labels, class_names, fragments",
    [
        (np.array([0, 1, 0, 2]), ["a", "b"], ("[0, 2)", "0 to 2")),
        (np.array([0, -1, 0, 1]), None, ("[0, 2)", "-1 to 1")),
        (np.array([0.0, 1.5, 0.0, 1.0]), None, ("integer labels", "float64")),
        (np.array([None, 1, 0, 1], dtype=object), None, ("integer labels", "object")),
    ],
)
def test_arrays_refuses_labels_that_are_not_integers_in_range(labels, class_names, fragments):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.arrays(np.zeros((4, 8, 8, 1), np.float32), labels, class_names=class_names)
    _assert_expected_received(_message(caught), *fragments)


def test_arrays_refuses_empty_images():
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.arrays(np.zeros((0, 8, 8, 1), np.float32), np.zeros(0, np.int64))
    _assert_expected_received(_message(caught), "at least one image", "(0, 8, 8, 1)")


def test_arrays_valid_calls_are_unchanged():
    images = np.arange(4 * 8 * 8).reshape(4, 8, 8, 1).astype(np.uint8)
    data = kzoo.data.arrays(images, np.array([0, 1, 0, 1]), validation_split=0.0, batch_size=4)
    x, y = next(iter(data.train))
    assert sorted(np.asarray(x).sum(axis=(1, 2, 3)).tolist()) == sorted(images.astype("float32").sum(axis=(1, 2, 3)))
    assert data.class_names == ("0", "1") and data.skipped == 0


# ----------------------------------------------------------------------------------------
# kzoo.list_models and unknown model names
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"pattern": 123}, ("a string", "123")),
        ({"pattern": None}, ("a string", "None")),
        ({"pretrained": "yes"}, ("True, False or None", "'yes'")),
        ({"pretrained": 1}, ("True, False or None", "1")),
        ({"task": 5}, ("one of", "5")),
    ],
)
def test_list_models_checks_its_arguments(kwargs, fragments):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.list_models(**kwargs)
    _assert_expected_received(_message(caught), *fragments)


def test_list_models_valid_calls_are_unchanged():
    assert kzoo.list_models("lenet*", pretrained=True) == ["lenet5"]
    assert kzoo.list_models(pretrained=None) == kzoo.list_models()


@pytest.mark.parametrize("call", [lambda: kzoo.get("resnet5"), lambda: kzoo.registry.spec("resnet5")])
def test_unknown_model_name_says_what_was_expected(call):
    with pytest.raises(errors.UnknownModelError) as caught:
        call()
    _assert_expected_received(
        _message(caught), "a registered model name", "received 'resnet5'", "did you mean 'resnet50'", "list_models()"
    )


def test_unknown_model_name_without_close_matches_still_says_what_was_expected():
    with pytest.raises(errors.UnknownModelError) as caught:
        kzoo.get("zzzzqqqq")
    message = _message(caught)
    _assert_expected_received(message, "a registered model name", "received 'zzzzqqqq'", "list_models()")
    assert "did you mean" not in message


# ----------------------------------------------------------------------------------------
# Text models given strings, vectorizer and end_to_end arguments
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bilstm():
    return kzoo.get("bilstm_classifier", vocab_size=50)


@pytest.fixture(scope="module")
def bert_tiny():
    return kzoo.get("bert_tiny_classifier")


STRINGS = [
    pytest.param(lambda: ["a charming film"], id="list"),
    pytest.param(lambda: "a charming film", id="str"),
    pytest.param(lambda: np.array(["a charming film"]), id="numpy"),
    pytest.param(lambda: tf.constant(["a charming film"]), id="tf.string"),
]


@pytest.mark.parametrize("strings", STRINGS)
def test_vocabulary_free_text_classifier_refuses_strings_with_the_fix(bilstm, strings):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        bilstm.predict(strings(), verbose=0)
    _assert_expected_received(_message(caught), "token ids", "text", "kzoo.text.end_to_end(model, vectorizer)")


@pytest.mark.parametrize("strings", STRINGS)
def test_bert_without_a_vocabulary_refuses_strings_with_the_fix(bert_tiny, strings):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        bert_tiny.predict(strings(), verbose=0)
    _assert_expected_received(_message(caught), "token_ids", "text", "kzoo.text.tokenizer_for(model)")


@pytest.mark.parametrize("how", ["call", "predict_on_batch"])
def test_calling_a_text_model_on_strings_raises_a_kzoo_error(bilstm, how):
    for strings in (tf.constant(["a charming film"]), ["a charming film"], np.array(["a charming film"])):
        with pytest.raises(errors.InvalidArgumentError) as caught:
            bilstm(strings) if how == "call" else bilstm.predict_on_batch(strings)
        _assert_expected_received(_message(caught), "kzoo.text.end_to_end(model, vectorizer)")


def test_check_call_is_ready_for_the_call_paths(bilstm, bert_tiny):
    from kzoo import inputs

    for model, fix in ((bilstm, "kzoo.text.end_to_end(model, vectorizer)"), (bert_tiny, "kzoo.text.tokenizer_for")):
        with pytest.raises(errors.InvalidArgumentError) as caught:
            inputs.check_call(model, tf.constant(["a charming film"]), "__call__")
        _assert_expected_received(_message(caught), fix)
    ids = np.array([[3, 4, 5]], np.int32)
    assert inputs.check_call(bilstm, ids, "__call__") is None  # token ids pass untouched


def test_text_model_valid_calls_are_unchanged(bilstm):
    ids = np.array([[3, 4, 5, 0]], np.int32)
    np.testing.assert_allclose(bilstm.predict(ids, verbose=0), np.asarray(bilstm(ids)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [text.vectorizer, lambda vocabulary: text.WordPieceTokenizer(vocabulary)])
def test_missing_vocabulary_file_is_a_kzoo_error(make, tmp_path):
    missing = tmp_path / "no" / "such.txt"
    with pytest.raises(errors.InvalidArgumentError) as caught:
        make(vocabulary=str(missing))
    _assert_expected_received(_message(caught), "one token a line", str(missing))
    with pytest.raises(errors.InvalidArgumentError) as caught:
        make(vocabulary=tmp_path)  # a folder, not a file
    _assert_expected_received(_message(caught), str(tmp_path))


def test_vocabulary_file_still_loads(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("film\ncharming\n", encoding="utf-8")
    layer = text.vectorizer(vocabulary=path)
    assert layer.get_vocabulary() == ["", "[UNK]", "film", "charming"]


@pytest.mark.parametrize("max_length", [0, -3, 2.5, True, "64"])
def test_end_to_end_checks_max_length(bilstm, max_length):
    vectorizer = text.vectorizer(["a charming film", "a dull film"], max_tokens=50)
    with pytest.raises(errors.InvalidArgumentError) as caught:
        text.end_to_end(bilstm, vectorizer, max_length=max_length)
    _assert_expected_received(_message(caught), "a positive int", repr(max_length))


# ----------------------------------------------------------------------------------------
# kzoo.segmentation.predict_tiled
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def identity_unet():
    inputs = keras.Input((32, 32, 1))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


@pytest.mark.parametrize(
    "image, fragment",
    [
        (np.zeros((0, 40, 1), np.float32), "(0, 40, 1)"),
        (np.zeros((40, 0), np.float32), "(40, 0, 1)"),
        (np.zeros((0, 0, 1), np.float32), "(0, 0, 1)"),
    ],
)
def test_predict_tiled_refuses_an_empty_image(identity_unet, image, fragment):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        segmentation.predict_tiled(identity_unet, image)
    _assert_expected_received(_message(caught), "at least one pixel", fragment)


def test_predict_tiled_refuses_non_finite_and_non_numeric_images(identity_unet):
    image = np.zeros((40, 40, 1), np.float32)
    image[5, 6, 0] = np.nan
    with pytest.raises(errors.InvalidArgumentError) as caught:
        segmentation.predict_tiled(identity_unet, image)
    _assert_expected_received(_message(caught), "finite", "nan")
    with pytest.raises(errors.InvalidArgumentError) as caught:
        segmentation.predict_tiled(identity_unet, np.array([[None, 1.0], [2.0, 3.0]]))
    _assert_expected_received(_message(caught), "numbers", "object")


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, None])
def test_predict_tiled_checks_batch_size(identity_unet, batch_size):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        segmentation.predict_tiled(identity_unet, np.zeros((40, 40, 1), np.float32), batch_size=batch_size)
    _assert_expected_received(_message(caught), "a positive int", repr(batch_size))


@pytest.mark.parametrize("overlap", [2.0, "4", True])
def test_predict_tiled_checks_the_overlap_type(identity_unet, overlap):
    with pytest.raises(errors.InvalidArgumentError) as caught:
        segmentation.predict_tiled(identity_unet, np.zeros((40, 40, 1), np.float32), overlap=overlap)
    _assert_expected_received(_message(caught), "an even number", repr(overlap))


def test_predict_tiled_valid_call_is_unchanged(identity_unet):
    image = np.random.default_rng(0).random((45, 37)).astype("float32")
    np.testing.assert_array_equal(segmentation.predict_tiled(identity_unet, image, batch_size=1), image[..., None])
