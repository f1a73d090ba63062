"""A kzoo model keeps what it is: identity, preprocessing and vocabulary survive save, reload
in a new process, clone and fine-tuning; raw pixels and raw text go straight in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from export_parity import stored_signatures

import kzoo
from kzoo import errors, registry

from conftest import requires_data

SCRIPT = Path(__file__).resolve().parent / "scripts" / "reload_models.py"
MODELS = kzoo.list_models()


def _same_layers_as_a_smaller_model() -> dict[str, str]:
    """Models whose layer types and settings (their recorded export signatures,
    tests/export_signatures.json, which tests/test_export_matrix.py checks against the built
    models) are exactly those of a smaller model: the deeper ResNets, VGGs and BERTs. Saving
    and loading is layer by layer, so the new-process reload below takes each set once, by
    its smallest model (about half of its time went to these 21 models); every model's
    in-process config round trip stays in tests/test_models.py."""
    stored = stored_signatures()
    first, same = {}, {}
    for name in sorted(MODELS, key=lambda n: (registry.spec(n).num_params or 0, n)):
        same[name] = first.setdefault(stored.get(name, frozenset({(name,)})), name)
    return {name: smaller for name, smaller in same.items() if smaller != name}


SAME_AS_SMALLER = _same_layers_as_a_smaller_model()


def _reload_in_subprocess(jobs: list[dict], directory: Path) -> tuple[dict, dict]:
    jobs_file, results = directory / "jobs.json", directory / "results.npz"
    jobs_file.write_text(json.dumps(jobs))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(jobs_file), str(results)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    loaded = np.load(results)
    return {key: loaded[key] for key in loaded.files}, json.loads(Path(str(results) + ".json").read_text())


def _image_model(model: keras.Model) -> bool:
    return len(model.inputs) == 1 and len(model.inputs[0].shape) == 4


def _build(name: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    spec = registry.spec(name)
    # Image classifiers and segmentation models take raw pixels here, so the preprocessing
    # layer is saved and reloaded across the registry too.
    raw_pixels = spec.task in registry.IMAGE_TASKS
    return kzoo.get(name, include_preprocessing=True if raw_pixels else None, **spec.test_kwargs)


def _inputs(name: str, model: keras.Model) -> list[np.ndarray]:
    if _image_model(model) and kzoo.identity.of(model).preprocessing_in_model:
        shape = (2, *model.inputs[0].shape[1:])
        return [np.random.default_rng(3).integers(0, 256, shape).astype("float32")]
    sample = registry.spec(name).sample_inputs(model, batch_size=2, seed=3)
    if isinstance(sample, dict):
        return [sample[key] for key in model._inputs_struct]
    return list(sample) if isinstance(sample, (list, tuple)) else [sample]


@pytest.fixture(scope="module")
def registry_reloaded(tmp_path_factory):
    """Every registered model (one per set of layers: ``SAME_AS_SMALLER``), built, run and saved
    here, then reloaded in one new process.

    This is the registry's ``.keras`` round trip (``safe_mode=True``: outputs, layer names),
    stronger than the in-process one tests/test_models.py used to repeat."""
    directory = tmp_path_factory.mktemp("identity")
    jobs, here = [], {}
    for name in (name for name in MODELS if name not in SAME_AS_SMALLER):
        model = _build(name)
        inputs = _inputs(name, model)
        feed = inputs if len(inputs) > 1 else inputs[0]
        if isinstance(model._inputs_struct, dict):
            feed = dict(zip(model._inputs_struct, inputs))
        # Called, not predict()ed, on both sides: predict traces a tf.function per model.
        outputs = [np.asarray(o) for o in keras.tree.flatten(model(feed, training=False))]
        arrays = {f"input_{i}": x for i, x in enumerate(inputs)}
        data = None
        if _image_model(model):
            pixels = np.random.default_rng(4).integers(0, 256, (4, *model.inputs[0].shape[1:])).astype("uint8")
            arrays["pixels"] = pixels
            datasets = kzoo.data.arrays(pixels, np.zeros(4, "int64"), model=model, validation_split=0.5)
            data = np.asarray(next(iter(datasets.validation))[0])
        np.savez(directory / f"{name}.npz", **arrays)
        model.save(directory / f"{name}.keras")
        here[name] = {
            "identity": kzoo.identity.of(model).to_config(),
            "outputs": outputs,
            "data": data,
            "frozen": kzoo.freeze(model),
            "layers": [layer.name for layer in model.layers],
        }
        jobs.append(
            {
                "key": name,
                "path": str(directory / f"{name}.keras"),
                "inputs": str(directory / f"{name}.npz"),
                "data": data is not None,
            }
        )
    there, report = _reload_in_subprocess(jobs, directory)
    return here, there, report


@pytest.mark.parametrize("name", MODELS)
def test_reloaded_in_a_new_process_the_model_is_what_it_was(registry_reloaded, name):
    if name in SAME_AS_SMALLER:
        pytest.skip(f"the layers and settings of {SAME_AS_SMALLER[name]}, reloaded already")
    here, there, report = registry_reloaded
    assert report[name]["class"] == "KzooModel"
    assert report[name]["identity"] == here[name]["identity"]
    assert report[name]["identity"]["name"] == name
    for index, expected in enumerate(here[name]["outputs"]):
        np.testing.assert_allclose(there[f"{name}/output_{index}"], expected, rtol=1e-5, atol=1e-5)
    if here[name]["data"] is not None:  # kzoo.data prepares the same inputs for the reloaded model
        np.testing.assert_array_equal(there[f"{name}/data"], here[name]["data"])
    assert report[name]["frozen"] == here[name]["frozen"]
    assert report[name]["layers"] == here[name]["layers"]


def test_identity_survives_clone_mixed_precision_and_finetune_copies(tmp_path):
    model = kzoo.get("lenet5", pretrained=True)
    identity = kzoo.identity.of(model)
    assert identity.name == "lenet5" and identity.weights == "lenet5.mnist" and identity.preprocessing_in_model
    assert identity.class_names == tuple(str(d) for d in range(10))
    assert identity.stages == registry.spec("lenet5").stages
    assert kzoo.identity.of(keras.models.clone_model(model)) == identity
    assert kzoo.identity.of(keras.Model.from_config(model.get_config())) == identity
    assert kzoo.identity.of(keras.Model(model.inputs, model.outputs)) == identity
    images, labels = kzoo.data.load_uci_digits()
    data = kzoo.data.arrays(images[:64], labels[:64], model=model, batch_size=32)
    result = kzoo.finetune(
        model, data, epochs=1, strategy="full", mixed_precision="mixed_bfloat16", log_dir=tmp_path / "run", verbose=0
    )
    reloaded = keras.saving.load_model(result.log_dir / "model.keras", safe_mode=True)
    assert kzoo.identity.of(reloaded) == identity
    np.testing.assert_allclose(
        reloaded.predict(images[:8, ..., None], verbose=0),
        model.predict(images[:8, ..., None], verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )


# ----------------------------------------------------------------------------------------
# Raw pixels: the weights' preprocessing is applied exactly once on every path
# ----------------------------------------------------------------------------------------


def test_raw_pixels_give_the_same_logits_on_every_path(tmp_path):
    images, _ = kzoo.data.load_uci_digits()
    raw = images[:32, ..., None]  # uint8, 0-255
    # The reference: the graph without preprocessing, fed the record's preprocessing by hand.
    plain = kzoo.get("lenet5", pretrained=True, include_preprocessing=False)
    record = kzoo.registry.origin(plain).weights
    expected = plain.predict(record.preprocessing(raw.astype("float32")), verbose=0)
    model = kzoo.get("lenet5", pretrained=True)
    np.testing.assert_allclose(model.predict(raw, verbose=0), expected, rtol=1e-5, atol=1e-5)  # uint8
    np.testing.assert_allclose(model.predict(raw.astype("float32"), verbose=0), expected, rtol=1e-5, atol=1e-5)
    # kzoo.data pipelines built for either model feed it so that it gives the same logits:
    # raw pixels for the model that preprocesses, the record's preprocessing for the other.
    for candidate in (model, plain):
        data = kzoo.data.arrays(
            raw[16:], np.zeros(16, "int64"), model=candidate, validation=(raw[:16], np.zeros(16, "int64"))
        )
        batch = np.asarray(next(iter(data.validation))[0])
        np.testing.assert_allclose(candidate.predict(batch, verbose=0), expected[:16], rtol=1e-5, atol=1e-5)
    # After save and reload in a new process.
    model.save(tmp_path / "lenet5.keras")
    np.savez(tmp_path / "raw.npz", input_0=raw)
    there, _ = _reload_in_subprocess(
        [{"key": "lenet5", "path": str(tmp_path / "lenet5.keras"), "inputs": str(tmp_path / "raw.npz")}], tmp_path
    )
    np.testing.assert_allclose(there["lenet5/output_0"], expected, rtol=1e-5, atol=1e-5)


def test_pipelines_never_preprocess_twice():
    model = kzoo.get("lenet5", pretrained=True)
    with pytest.raises(errors.InvalidArgumentError, match="takes raw 0-255 pixels"):
        kzoo.data.arrays(np.zeros((4, 28, 28), "float32"), np.zeros(4, "int64"), model=model, preprocessed=True)
    with pytest.raises(errors.InvalidArgumentError, match="applies its own preprocessing"):
        kzoo.data.arrays(
            np.zeros((4, 28, 28), "uint8"),
            np.zeros(4, "int64"),
            model=model,
            preprocessing=kzoo.weights.Preprocessing(channel_order="grayscale"),
        )


def test_plain_keras_model_takes_its_preprocessing_as_an_argument(caplog):
    inputs = keras.Input((28, 28, 1))
    plain = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    pixels = np.full((4, 28, 28), 200, "uint8")
    with caplog.at_level("WARNING", logger="kzoo"):
        data = kzoo.data.arrays(pixels, np.zeros(4, "int64"), model=plain, validation_split=0.5)
    assert "preprocessing=kzoo.weights.Preprocessing" in caplog.text
    assert float(np.asarray(next(iter(data.validation))[0]).max()) == pytest.approx(200 / 255)
    scaled = kzoo.data.arrays(
        pixels,
        np.zeros(4, "int64"),
        model=plain,
        validation_split=0.5,
        preprocessing=kzoo.weights.Preprocessing(scale=2 / 255, offset=-1, channel_order="grayscale"),
    )
    assert float(np.asarray(next(iter(scaled.validation))[0]).max()) == pytest.approx(2 * 200 / 255 - 1)
    with pytest.raises(errors.InvalidArgumentError, match="declared="):
        kzoo.feature_extractor(plain)


def test_generative_weights_check_their_value_range():
    translator = kzoo.get("cyclegan_generator_resnet6", pretrained="uci_to_mnist")
    assert kzoo.identity.of(translator).input_range == (-1.0, 1.0)
    with pytest.raises(errors.InvalidArgumentError, match=r"values in \[-1, 1\]"):
        translator.predict(np.full((1, 28, 28, 1), 255.0, "float32"), verbose=0)
    assert translator.predict(np.zeros((1, 28, 28, 1), "float32"), verbose=0).shape == (1, 28, 28, 1)


def test_wrong_inputs_get_kzoo_errors():
    model = kzoo.get("lenet5", pretrained=True)
    with pytest.raises(errors.InvalidArgumentError, match="no vocabulary"):
        model.predict(["a seven"], verbose=0)
    with pytest.raises(errors.InvalidArgumentError, match=r"images\[None\]"):
        model.predict(np.zeros((28, 28, 1), "uint8"), verbose=0)
    with pytest.raises(errors.InvalidArgumentError, match=r"shape \(N, 28, 28, 1\)"):
        model.predict(np.zeros((2, 32, 32, 1), "uint8"), verbose=0)


# ----------------------------------------------------------------------------------------
# Raw text: every pretrained text model takes strings, before and after a reload
# ----------------------------------------------------------------------------------------


@requires_data("sst2")
@pytest.mark.parametrize("name", ["bilstm_classifier", "bert_tiny_classifier"])
def test_text_classifiers_reach_their_recorded_dev_accuracy_from_raw_strings(name, tmp_path):
    model = kzoo.get(name, pretrained="sst2")
    record = kzoo.registry.origin(model).weights
    texts, labels = kzoo.data.load_sst2("dev")
    logits = model.predict(texts, batch_size=256, verbose=0)  # a list of Python strings
    accuracy = float((logits.argmax(-1) == labels).mean())
    assert accuracy == pytest.approx(record.metrics["dev_accuracy"], abs=1.2e-3)  # one sentence is 1.1e-3
    as_array = model.predict(np.asarray(texts[:5]), verbose=0)
    np.testing.assert_allclose(as_array, logits[:5], rtol=1e-4, atol=1e-4)
    single = model.predict(texts[0], verbose=0)
    np.testing.assert_allclose(single, logits[:1], rtol=1e-4, atol=1e-4)
    loss, metric = _evaluate_on_text(model, texts, labels)
    assert metric == pytest.approx(accuracy, abs=1e-6)
    model.save(tmp_path / "m.keras")
    there, _ = _reload_in_subprocess([{"key": name, "path": str(tmp_path / "m.keras"), "texts": texts}], tmp_path)
    np.testing.assert_allclose(there[f"{name}/output_0"], logits, rtol=1e-4, atol=1e-4)


def _evaluate_on_text(model: keras.Model, texts: list[str], labels: np.ndarray) -> list[float]:
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model.evaluate(texts, labels, batch_size=256, verbose=0)


@requires_data("conll2003")
def test_tagger_reaches_its_recorded_test_f1_from_raw_sentences(tmp_path):
    model = kzoo.get("bilstm_tagger", pretrained=True)
    record = kzoo.registry.origin(model).weights
    sentences, tags = kzoo.data.load_conll2003("testb")
    logits = model.predict(sentences, batch_size=256, verbose=0)  # lists of tokens
    names = kzoo.identity.of(model).class_names
    guesses = [[names[i] for i in row[: len(s)]] for row, s in zip(logits.argmax(-1), sentences)]
    f1 = kzoo.text.conll_f1(tags, guesses)["f1"]
    assert f1 == pytest.approx(record.metrics["test_f1"], abs=0.01)
    assert kzoo.text.tag(model, " ".join(sentences[0])) == list(zip(sentences[0], guesses[0]))
    model.save(tmp_path / "tagger.keras")
    reloaded = keras.saving.load_model(tmp_path / "tagger.keras", safe_mode=True)
    assert kzoo.text.tag(reloaded, sentences[0]) == list(zip(sentences[0], guesses[0]))


def test_raw_strings_train_with_an_xla_compiled_step_and_string_pipelines_are_refused():
    model = kzoo.get("bilstm_classifier", pretrained="sst2")
    texts = ["a great movie", "boring and far too long", "wonderful acting", "a mess"] * 4
    labels = np.array([1, 0, 1, 0] * 4)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    history = model.fit(texts, labels, batch_size=8, epochs=2, validation_data=(texts[:4], labels[:4]), verbose=0)
    assert np.isfinite(history.history["loss"]).all() and "val_loss" in history.history
    import tensorflow as tf

    strings = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(4)
    with pytest.raises(errors.InvalidArgumentError, match="text_datasets"):
        model.fit(strings, epochs=1, verbose=0)
    with pytest.raises(errors.InvalidArgumentError, match="token ids"):
        model.predict(np.array([[0.5, 1.5]]), verbose=0)
    ids = kzoo.text.vectorizer_for(model)(["a great movie"]).to_tensor().numpy()
    np.testing.assert_allclose(model.predict(ids, verbose=0), model.predict(["a great movie"], verbose=0), atol=1e-5)


def test_bert_classifier_and_tagger_take_strings_and_keep_their_tokenizer(tmp_path):
    classifier = kzoo.get("bert_tiny_classifier", pretrained="sst2")
    assert classifier.predict(["a great movie", "dull"], verbose=0).shape == (2, 2)
    tagger = kzoo.get("bert_tiny_tagger", pretrained=True, num_classes=9)
    assert tagger.predict(["EU rejects German call"], verbose=0).shape == (1, 64 * 2, 9)
    tagger.save(tmp_path / "t.keras")
    reloaded = keras.saving.load_model(tmp_path / "t.keras", safe_mode=True)
    assert kzoo.text.tokenizer_for(reloaded).vocabulary == kzoo.text.tokenizer_for(tagger).vocabulary
    with pytest.raises(errors.InvalidArgumentError, match="fill_mask"):
        kzoo.get("bert_tiny", pretrained=True).predict(["the [MASK] sat"], verbose=0)


def test_with_text_gives_your_own_text_model_raw_strings(tmp_path):
    texts = ["good film", "bad film", "good acting", "bad plot"]
    vectorizer = kzoo.text.vectorizer(texts)
    model = kzoo.get("lstm_classifier", vocab_size=vectorizer.vocabulary_size(), **_tiny("lstm_classifier"))
    with pytest.raises(errors.InvalidArgumentError, match="no vocabulary"):
        model.predict(texts, verbose=0)
    kzoo.text.with_text(model, vectorizer)
    ids = vectorizer(texts).to_tensor().numpy()
    np.testing.assert_allclose(model.predict(texts, verbose=0), model.predict(ids, verbose=0), atol=1e-6)
    model.save(tmp_path / "own.keras")
    reloaded = keras.saving.load_model(tmp_path / "own.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(texts, verbose=0), model.predict(texts, verbose=0), atol=1e-6)


def _tiny(name: str) -> dict:
    return {k: v for k, v in registry.spec(name).test_kwargs.items() if k != "vocab_size"}
