"""kzoo.finetune(strategy="lora"): Keras' LoRA on every capable layer but the head, parameter
counts, frozen weights, exact checkpoint restore, merging into a plain model, errors."""

from __future__ import annotations

import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo import errors, lora, registry
from kzoo.callbacks import BackupAndRestore
from kzoo.models.bert import bert_inputs

finetune_lib = importlib.import_module("kzoo.finetune")  # the module; kzoo.finetune is the function
RANK = 4
LORA_CLASSES = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding, keras.layers.Conv1D)
LORA_CLASSES += (keras.layers.Conv2D, keras.layers.Conv3D)


def _model_and_data(name: str):
    """A tiny-config model from the registry and a few batches it can train on."""
    keras.utils.set_random_seed(0)
    model = kzoo.get(name, **registry.spec(name).test_kwargs)
    classes = model.outputs[0].shape[-1]
    if len(model.inputs) == 1:  # an image model: real digits, resized by kzoo.data
        images, labels = kzoo.data.load_uci_digits()
        data = kzoo.data.arrays(images[:96], labels[:96] % classes, model=model, batch_size=16)
        probe = next(iter(data.validation))[0]
        return model, data, None, probe
    inputs = bert_inputs(model, 64, np.random.default_rng(0))
    labels = inputs["token_ids"][:, 1] % classes  # learnable from the second token
    train = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(16)
    probe = {key: value[:8] for key, value in inputs.items()}
    return model, train, train.take(1), probe


def _by_hand(model: keras.Model, head: tuple[str, ...], rank: int) -> tuple[int, int]:
    """LoRA factors (from each adapted kernel's shape) + head parameters, and the new total."""
    factors = 0
    for top in model.layers:
        if top.name in head:
            continue
        for layer in top._flatten_layers(include_self=True):
            if isinstance(layer, LORA_CLASSES):
                shape = tuple((layer.embeddings if isinstance(layer, keras.layers.Embedding) else layer.kernel).shape)
                factors += int(np.prod(shape[:-1])) * rank + rank * shape[-1]  # A: (..., r), B: (r, out)
    head_params = sum(model.get_layer(name).count_params() for name in head)
    return factors + head_params, model.count_params() + factors


@pytest.fixture(scope="module", params=["lenet5", "bert_tiny_classifier"])
def trained(request, tmp_path_factory):
    """One LoRA fine-tuning run per model, with what the tests compare it against."""
    model, train, validation, probe = _model_and_data(request.param)
    head = kzoo.identity.of(model).head_layers
    expected = _by_hand(model, head, RANK)
    before = {id(v): (v.path, np.array(v)) for v in model.weights}
    head_ids = {id(v) for name in head for v in model.get_layer(name).weights}
    run = tmp_path_factory.mktemp(request.param) / "run"
    result = kzoo.finetune(
        model, train, validation, epochs=2, strategy="lora", lora_rank=RANK, learning_rate=1e-2, log_dir=run,
        jit_compile=False if validation is not None else None, verbose=0,
    )  # fmt: skip
    return {"model": model, "result": result, "run": run, "probe": probe, "expected": expected}, before, head_ids


def test_trainable_parameters_are_the_factors_and_the_head(trained):
    state, _, _ = trained
    result, model = state["result"], state["model"]
    trainable, total = state["expected"]
    assert (result.trainable_params, result.total_params) == (trainable, total)
    assert result.trainable_ratio == pytest.approx(trainable / total) and result.trainable_ratio < 1
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == trainable


def test_only_the_factors_and_the_head_change(trained):
    state, before, head_ids = trained
    model = state["model"]
    changed = sorted(path for key, (path, value) in before.items() if not np.array_equal(value, _variable(model, key)))
    assert changed and all(key in head_ids for key, (path, _) in before.items() if path in changed)
    assert any(path.endswith("kernel") for path in changed)  # the head trained
    # The best checkpoint came back with its factors (Keras alone would zero them).
    adapted = lora.enabled_layers(model)
    assert adapted and all(layer.lora_rank == RANK for layer in adapted)
    assert any(np.abs(np.array(lora._variables(layer)[1])).max() > 0 for layer in adapted)
    assert not any(layer.name in kzoo.identity.of(model).head_layers for layer in adapted)


def _variable(model: keras.Model, key: int) -> np.ndarray:
    return next(np.array(v) for v in model.weights if id(v) == key)


def _outputs(model: keras.Model, probe) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(probe, training=False))


def test_merged_model_is_plain_and_gives_the_lora_outputs(trained, tmp_path):
    state, _, _ = trained
    model, probe = state["model"], state["probe"]
    merged = kzoo.merge_lora(model)
    assert type(merged) is type(model) and isinstance(merged, kzoo.KzooModel)
    assert kzoo.identity.of(merged) == kzoo.identity.of(model)
    assert not lora.enabled_layers(merged) and not any("lora" in v.path for v in merged.weights)
    np.testing.assert_allclose(_outputs(merged, probe), _outputs(model, probe), atol=1e-5)
    assert lora.enabled_layers(model)  # the LoRA model itself is untouched

    path = tmp_path / "merged.keras"
    merged.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert not lora.enabled_layers(reloaded) and kzoo.identity.of(reloaded) == kzoo.identity.of(model)
    np.testing.assert_allclose(_outputs(reloaded, probe), _outputs(model, probe), atol=1e-5)


def test_run_directory_holds_the_merged_model(trained):
    state, _, _ = trained
    model, run, probe = state["model"], state["run"], state["probe"]
    saved = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert not lora.enabled_layers(saved) and kzoo.identity.of(saved).name == kzoo.identity.of(model).name
    np.testing.assert_allclose(_outputs(saved, probe), _outputs(model, probe), atol=1e-5)
    # The best checkpoint is a Keras weights file: the plain model loads it with Keras alone.
    plain = kzoo.merge_lora(model)
    plain.load_weights(run / "checkpoints" / "best.weights.h5")
    np.testing.assert_allclose(_outputs(plain, probe), _outputs(model, probe), atol=1e-5)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # the backup's model never trained
def test_weights_files_keep_the_factors_for_resuming(tmp_path):
    keras.utils.set_random_seed(0)
    model = kzoo.get("lenet5", **registry.spec("lenet5").test_kwargs)
    lora.enable(model, RANK, exclude=("predictions",))
    for layer in lora.enabled_layers(model):
        layer.lora_kernel_b.assign(np.full(layer.lora_kernel_b.shape, 0.01, "float32"))
    backup = BackupAndRestore(tmp_path / "backup")
    backup.set_model(model)
    backup.on_epoch_end(0)  # writes latest.weights.h5 through kzoo.atomic

    keras.utils.set_random_seed(1)
    other = kzoo.get("lenet5", **registry.spec("lenet5").test_kwargs)
    lora.enable(other, RANK, exclude=("predictions",))
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # as fit has it
    resumed = BackupAndRestore(tmp_path / "backup")
    resumed.set_model(other)
    resumed.on_train_begin()
    for mine, theirs in zip(model.weights, other.weights):
        np.testing.assert_array_equal(np.array(mine), np.array(theirs), err_msg=mine.path)

    keras.utils.set_random_seed(2)
    plain_keras = kzoo.get("lenet5", **registry.spec("lenet5").test_kwargs)
    lora.enable(plain_keras, RANK, exclude=("predictions",))
    plain_keras.load_weights(tmp_path / "backup" / "latest.weights.h5")  # what Keras alone does: factors zeroed
    assert not np.array(plain_keras.get_layer("c1_conv").lora_kernel_b).any()
    # Factors saved from other LoRA layers are refused, naming both.
    fewer = kzoo.get("lenet5", **registry.spec("lenet5").test_kwargs)
    lora.enable(fewer, RANK, exclude=("predictions", "f6_dense"))
    with pytest.raises(errors.WeightsError, match="expected LoRA factors for .*received"):
        lora.load_weights(fewer, tmp_path / "backup" / "latest.weights.h5")


def test_mixed_precision_copy_brings_the_factors_back(tmp_path):
    model, data, _, probe = _model_and_data("lenet5")
    result = kzoo.finetune(
        model,
        data,
        epochs=1,
        strategy="lora",
        lora_rank=2,
        mixed_precision="mixed_bfloat16",
        jit_compile=False,
        verbose=0,
    )
    assert result.trainable_params < result.total_params
    adapted = lora.enabled_layers(model)
    assert [layer.lora_rank for layer in adapted] == [2] * len(adapted)
    assert any(np.array(layer.lora_kernel_b).any() for layer in adapted)
    assert [v.path for v in model.trainable_weights if "lora" not in v.path] == [
        "predictions/kernel",
        "predictions/bias",
    ]


@pytest.mark.parametrize("rank", [0, -2, 2.5, True, "8", None])
def test_lora_rank_must_be_a_positive_int(rank):
    model, data, _, _ = _model_and_data("lenet5")
    with pytest.raises(errors.InvalidArgumentError, match=r"lora_rank: expected a positive int .*, received"):
        kzoo.finetune(model, data, epochs=1, strategy="lora", lora_rank=rank)
    assert not lora.enabled_layers(model)


def test_a_model_without_lora_layers_is_refused_with_a_fix():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, name="predictions")(keras.layers.LayerNormalization()(inputs))
    model = keras.Model(inputs, outputs)  # its only Dense layer is the head
    train = tf.data.Dataset.from_tensor_slices((np.zeros((4, 4), "float32"), np.zeros(4, "int64"))).batch(2)
    with pytest.raises(
        errors.InvalidArgumentError, match=r"received \['LayerNormalization'\]\. Use strategy='head' or strategy='full'"
    ):
        kzoo.finetune(model, train, epochs=1, strategy="lora")


def test_plan_has_one_lora_phase_and_merge_lora_sits_beside_finetune():
    phases = finetune_lib.plan("lora", 3, learning_rate=0.01)
    assert [(p.name, p.start, p.end, p.learning_rate) for p in phases] == [("lora", 0, 3, 0.01)]
    assert "lora" in finetune_lib.STRATEGIES and finetune_lib.merge_lora is kzoo.merge_lora


def test_the_lora_run_directory_exports_and_its_runtime_matches_the_lora_model(trained, tmp_path):
    from kzoo.cli import main as kzoo_command
    from kzoo.export import load

    state, _, _ = trained
    model, run, probe = state["model"], state["run"], state["probe"]
    assert kzoo_command(["export", str(run), str(tmp_path / "tuned.onnx"), "--format", "onnx"]) == 0
    feed = probe if isinstance(probe, dict) else {model.inputs[0].name.split(":")[0]: np.asarray(probe)}
    outputs = load(tmp_path / "tuned.onnx")({k: np.asarray(v) for k, v in feed.items()})[0]
    np.testing.assert_allclose(outputs, _outputs(model, probe), atol=1e-4)
