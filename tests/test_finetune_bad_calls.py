"""Bad calls of kzoo.finetune (issue #21, hardening): each is refused with a kzoo error that says what was
expected, what was received and how to fix it, before any work (the run directory is never created);
the valid calls next to them train as before."""

from __future__ import annotations

import importlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo import errors

finetune_lib = importlib.import_module("kzoo.finetune")  # the module; kzoo.finetune is the function


@pytest.fixture(scope="module")
def digits():
    images, labels = kzoo.data.load_uci_digits()
    return images[:40], labels[:40]


@pytest.fixture(scope="module")
def lenet(digits):
    """A 10-class LeNet-5 and its data (refused calls change neither, so the tests share them)."""
    model = kzoo.get("lenet5")
    return model, kzoo.data.arrays(*digits, model=model, batch_size=16)


@pytest.fixture(scope="module")
def five(digits):
    """A 5-class LeNet-5 and data of 5 classes for it."""
    model = kzoo.get("lenet5", num_classes=5)
    images, labels = digits
    return model, kzoo.data.arrays(images, labels % 5, model=model, batch_size=16)


def batches(images, labels=None, batch=8):
    elements = images.astype("float32") if labels is None else (images.astype("float32"), labels)
    return tf.data.Dataset.from_tensor_slices(elements).batch(batch)


def refused(model, train, tmp_path, *fragments, error=errors.InvalidArgumentError, **kwargs):
    """Calls finetune, expects ``error`` whose message holds expected/received and ``fragments``, and no run dir."""
    run = tmp_path / "run"
    kwargs.setdefault("epochs", 1)
    kwargs.setdefault("strategy", "head")
    with pytest.raises(error) as caught:
        kzoo.finetune(model, train, log_dir=run, verbose=0, **kwargs)
    message = str(caught.value)
    assert isinstance(caught.value, errors.KzooError)
    assert "expected" in message and "received" in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not run.exists()
    return message


# ----------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------

TWO_PHASE = {"strategy": "two-phase", "epochs": 2}

BAD_ARGUMENTS = {
    "train None": ({"train": None}, ["train:", "kzoo.data.Datasets", "tf.data.Dataset", "None", "kzoo.data.arrays"]),
    "train list": ({"train": [1, 2, 3]}, ["train:", "kzoo.data.Datasets", "a list of 3", "kzoo.data.arrays"]),
    "train images alone": (
        {"train": np.zeros((4, 28, 28, 1))},
        ["train:", "a NumPy array of shape (4, 28, 28, 1)", "without labels", "kzoo.data.arrays(images, labels"],
    ),
    "train (images, labels)": (
        {"train": (np.zeros((4, 28, 28, 1)), np.zeros(4, "int64"))},
        ["train:", "a tuple of 2", "kzoo.data.arrays(images, labels"],
    ),
    "train path string": ({"train": "digits/"}, ["train:", "'digits/'", "kzoo.data.image_folder('digits/'"]),
    "train Path": ({"train": Path("digits")}, ["train:", "PosixPath", "kzoo.data.image_folder"]),
    "train csv": ({"train": "reviews.csv"}, ["train:", "kzoo.data.text_file('reviews.csv'"]),
    "unfreeze_stages -1": ({"unfreeze_stages": -1, **TWO_PHASE}, ["unfreeze_stages", "a positive int", "-1"]),
    "unfreeze_stages 0": ({"unfreeze_stages": 0, **TWO_PHASE}, ["unfreeze_stages", "a positive int", "0"]),
    "unfreeze_stages float": ({"unfreeze_stages": 1.5, **TWO_PHASE}, ["unfreeze_stages", "1.5"]),
    "learning_rate negative": ({"learning_rate": -1.0}, ["learning_rate", "a finite number > 0", "-1.0"]),
    "learning_rate zero": ({"learning_rate": 0}, ["learning_rate", "> 0", "received 0"]),
    "learning_rate nan": ({"learning_rate": float("nan")}, ["learning_rate", "nan"]),
    "learning_rate inf": ({"learning_rate": float("inf")}, ["learning_rate", "inf"]),
    "learning_rate string": ({"learning_rate": "1e-3"}, ["learning_rate", "'1e-3'", "learning_rate=0.001"]),
    "learning_rate bool": ({"learning_rate": True}, ["learning_rate", "True"]),
    "fine_tune_learning_rate negative": (
        {"fine_tune_learning_rate": -1e-4, **TWO_PHASE},
        ["fine_tune_learning_rate", "None or a finite number > 0", "-0.0001"],
    ),
    "fine_tune_learning_rate zero": ({"fine_tune_learning_rate": 0.0, **TWO_PHASE}, ["fine_tune_learning_rate", "0.0"]),
    "schedule without fine_tune_learning_rate": (
        {"learning_rate": keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9), **TWO_PHASE},
        ["fine_tune_learning_rate", "a tenth of a schedule", "fine_tune_learning_rate="],
    ),
    "epochs 0": ({"epochs": 0}, ["epochs", "a positive int", "0"]),
    "epochs float": ({"epochs": 1.5}, ["epochs", "1.5"]),
    "epochs string": ({"epochs": "3"}, ["epochs", "'3'"]),
    "epochs bool": ({"epochs": True}, ["epochs", "True"]),
    "two-phase one epoch": ({"strategy": "two-phase", "epochs": 1}, ["at least 2 for strategy='two-phase'"]),
    "head_epochs 0": ({"head_epochs": 0, **TWO_PHASE}, ["head_epochs", "0"]),
    "head_epochs all": ({"head_epochs": 2, **TWO_PHASE}, ["head_epochs", "between 1 and epochs - 1 = 1", "2"]),
    "head_epochs float": ({"head_epochs": 1.5, "strategy": "two-phase", "epochs": 3}, ["head_epochs", "1.5"]),
    "head_epochs negative, head strategy": ({"head_epochs": -1}, ["head_epochs", "-1"]),
    "patience negative": ({"patience": -1}, ["patience", "None or a non-negative int", "-1"]),
    "patience float": ({"patience": 2.5}, ["patience", "2.5"]),
    "lora_rank 0": ({"strategy": "lora", "lora_rank": 0}, ["lora_rank", "a positive int", "0"]),
    "lora_rank float": ({"strategy": "lora", "lora_rank": 2.5}, ["lora_rank", "2.5"]),
    "strategy misspelt": ({"strategy": "two_phase"}, ["strategy", "'full', 'two-phase', 'lora'", "'two-phase'?"]),
    "strategy None": ({"strategy": None}, ["strategy", "None"]),
    "strategy list": ({"strategy": ["head"]}, ["strategy", "['head']"]),
    "mixed_precision float16": (
        {"mixed_precision": "float16"},
        ["mixed_precision", "'mixed_float16'", "'float16'", "Did you mean 'mixed_float16'"],
    ),
    "mixed_precision True": ({"mixed_precision": True}, ["mixed_precision", "True"]),
    "monitor unknown": (
        {"monitor": "val_nosuch"},
        ["monitor", "'loss', 'accuracy', 'val_loss', 'val_accuracy'", "'val_nosuch'"],
    ),
    "monitor typo": ({"monitor": "val_acuracy"}, ["monitor", "'val_acuracy'", "Did you mean 'val_accuracy'"]),
    "monitor metric not compiled": (
        {"monitor": "val_accuracy", "metrics": ()},
        ["monitor", "'loss', 'val_loss'", "'val_accuracy'", "metrics="],
    ),
    "monitor not a string": ({"monitor": 3}, ["monitor", "3"]),
    "metrics a string": ({"metrics": "accuracy"}, ["metrics", "a list or tuple", "'accuracy'", "metrics=['accuracy']"]),
    "callbacks not a list": ({"callbacks": keras.callbacks.History()}, ["callbacks", "a list", "History"]),
    "callbacks holding a non-callback": ({"callbacks": [print]}, ["callbacks", "keras.callbacks.Callback", "print"]),
    "log_dir a number": ({"log_dir_value": 3}, ["log_dir", "None or a directory path", "3"]),
    "log_dir empty": ({"log_dir_value": ""}, ["log_dir", "''"]),
}


@pytest.mark.parametrize("kwargs, fragments", list(BAD_ARGUMENTS.values()), ids=list(BAD_ARGUMENTS))
def test_bad_arguments_are_refused_before_any_work(kwargs, fragments, lenet, tmp_path):
    model, data = lenet
    kwargs = dict(kwargs)
    train = kwargs.pop("train", data)
    before = [w.copy() for w in model.get_weights()]
    if "log_dir_value" in kwargs:  # the run directory argument itself is what is wrong
        with pytest.raises(errors.InvalidArgumentError) as caught:
            kzoo.finetune(model, train, epochs=1, strategy="head", log_dir=kwargs.pop("log_dir_value"), verbose=0)
        message = str(caught.value)
        assert "expected" in message and "received" in message
        assert all(fragment in message for fragment in fragments), (fragments, message)
    else:
        refused(model, train, tmp_path, *fragments, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the model as it was


def test_a_model_that_is_not_a_keras_model_is_refused(lenet, tmp_path):
    _, data = lenet
    refused("lenet5", data, tmp_path, "model", "a Keras model", "'lenet5'", "kzoo.get('lenet5')")


def test_plan_refuses_non_integer_epochs_and_rates_on_its_own():
    with pytest.raises(errors.InvalidArgumentError, match=r"head_epochs: expected .*received 1\.5"):
        finetune_lib.plan("two-phase", 4, head_epochs=1.5)
    with pytest.raises(errors.InvalidArgumentError, match=r"learning_rate: expected .*received -0\.1"):
        finetune_lib.plan("head", 2, learning_rate=-0.1)
    with pytest.raises(errors.InvalidArgumentError, match=r"strategy: expected .*received 'frozen'"):
        finetune_lib.plan("frozen", 2)
    assert [(p.name, p.start, p.end, p.learning_rate) for p in finetune_lib.plan("two-phase", 4, 1, 0.01, 2e-3)] == [
        ("head", 0, 1, 0.01),
        ("fine", 1, 4, 2e-3),
    ]


# ----------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------


def test_validation_labels_out_of_range_for_the_head_are_refused(five, lenet, digits, tmp_path):
    model, data = five
    _, ten = lenet
    message = refused(model, data, tmp_path, "validation labels", "[0, 5)", validation=ten.validation)
    assert "in its first batch" in message and "num_classes=" in message
    images, labels = digits
    refused(model, data, tmp_path, "validation labels", "[0, 5)", "from 0 to 9", validation=(images[..., None], labels))
    refused(model, data.train, tmp_path, "validation labels", "[0, 5)", validation=batches(images[..., None], labels))
    negative = batches(images[:8, ..., None], -np.ones(8, "int64"))
    refused(model, data, tmp_path, "validation labels", "from -1 to -1", validation=negative)


def test_the_label_check_reads_one_batch_only(five, digits, tmp_path):
    model, data = five
    images, labels = digits
    first = batches(images[:8, ..., None], labels[:8] + 5)  # out of range for 5 classes
    # A second batch that fails when read: reading it would raise TensorFlow's error, not kzoo's.
    poison = batches(images[:8, ..., None], labels[:8]).map(
        lambda x, y: (tf.debugging.check_numerics(x * np.nan, "read past the first batch"), y)
    )
    refused(model, data, tmp_path, "validation labels", "[0, 5)", validation=first.concatenate(poison))


def test_validation_of_another_image_size_is_refused(lenet, tmp_path):
    model, data = lenet
    big = batches(np.zeros((8, 32, 32, 1)), np.zeros(8, "int64"))
    refused(model, data, tmp_path, "validation", "(None, 28, 28, 1)", "(None, 32, 32, 1)", validation=big)
    colour = batches(np.zeros((8, 28, 28, 3)), np.zeros(8, "int64"))
    refused(model, data, tmp_path, "validation", "(None, 28, 28, 1)", "(None, 28, 28, 3)", validation=colour)
    refused(model, data, tmp_path, "validation", "(8, 32, 32, 1)", validation=(np.zeros((8, 32, 32, 1)), np.zeros(8)))


def test_training_pipelines_of_another_size_unbatched_or_without_labels_are_refused(lenet, digits, tmp_path):
    model, _ = lenet
    images, labels = digits
    refused(model, batches(np.zeros((8, 32, 32, 1)), np.zeros(8, "int64")), tmp_path, "train", "(None, 32, 32, 1)")
    unbatched = tf.data.Dataset.from_tensor_slices((images[..., None].astype("float32"), labels))
    refused(model, unbatched, tmp_path, "train", "(28, 28, 1)", ".batch(")
    refused(model, batches(images[..., None]), tmp_path, "train", "(inputs, labels)", "labels")
    dicts = tf.data.Dataset.from_tensor_slices({"image": images[..., None], "label": labels}).batch(8)
    refused(model, dicts, tmp_path, "train", "(inputs, labels)", "a dict")


def test_validation_of_another_class_count_is_refused(five, lenet, digits, tmp_path):
    model, data = five
    _, ten = lenet
    images, labels = digits
    one_hot = batches(images[..., None], np.eye(10, dtype="float32")[labels])
    refused(model, data, tmp_path, "validation labels", "5 classes", "10", validation=one_hot)
    # A whole kzoo.data.Datasets as validation: its class count first, then which split to pass.
    refused(model, data, tmp_path, "validation", "5 classes", "10 classes", validation=ten)
    same = kzoo.data.arrays(images, labels % 5, model=model, batch_size=16)
    refused(model, data, tmp_path, "validation", "kzoo.data.Datasets", ".validation", validation=same)
    refused(model, data, tmp_path, "validation", "'digits/'", validation="digits/")


def test_valid_calls_still_train_with_an_explicit_validation_pipeline_and_a_named_metric(five, digits, tmp_path):
    model, data = five
    images, labels = digits
    validation = batches(images[..., None], labels % 5)
    top3 = keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3")
    run = tmp_path / "run"
    result = kzoo.finetune(
        model, data.train, validation, epochs=1, strategy="head", metrics=["accuracy", top3], monitor="val_top3",
        patience=0, log_dir=run, verbose=0, jit_compile=False,
    )  # fmt: skip
    assert result.monitor == "val_top3" and result.best_epoch == 0
    assert set(result.history) == {"loss", "accuracy", "top3", "val_loss", "val_accuracy", "val_top3"}
    assert (run / "kzoo_run.json").is_file()


def test_data_keras_takes_as_is_passes_the_checks(five, digits):
    """What fit takes today passes untouched: channel-less images (Keras adds the axis), sample weights,
    labels of shape (batch, 1), one-hot labels with a loss for them, PyDatasets, generators, arrays."""
    model, _ = five
    images, labels = digits
    labels = labels % 5
    weights = np.ones(len(labels), "float32")
    train_checks = [
        batches(images, labels),  # (None, 28, 28): Keras expands it to (None, 28, 28, 1)
        tf.data.Dataset.from_tensor_slices((images[..., None], labels, weights)).batch(8),
        batches(images[..., None], labels[:, None]),
        (x for x in [(images[:8, ..., None], labels[:8])]),
    ]

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return images[:8, ..., None], labels[:8]

    train_checks.append(Batches())
    for train in train_checks:
        finetune_lib._check_training_data(model, train, None)
    for validation in [*train_checks[:3], (images, labels), [images[..., None], labels, weights], Batches()]:
        finetune_lib._check_validation_data(model, validation, None)
    one_hot = batches(images[..., None], np.eye(5, dtype="float32")[labels])
    finetune_lib._check_validation_data(model, one_hot, keras.losses.CategoricalCrossentropy(from_logits=True))
