"""Mixed precision per device: the bfloat16 probe, ``mixed_precision="auto"``, XLA's CPU default,
what stays float32 (head, outputs), and steps_per_execution."""

from __future__ import annotations

import importlib
import logging

import keras
import numpy as np
import pytest

import kzoo
from kzoo import precision

finetune_lib = importlib.import_module("kzoo.finetune")  # the module; kzoo.finetune is the function

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme sse2 avx2 avx512f {extra} rdpid
bogomips\t: 4000.00

processor\t: 1
flags\t\t: fpu vme sse2 avx2 avx512f {extra} rdpid
"""


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("amx_bf16 amx_tile avx512_bf16", ("amx_bf16", "avx512_bf16")),
        ("avx512_bf16", ("avx512_bf16",)),
        ("avx512_vnni amx_int8", ()),  # AMX without its bf16 unit, VNNI (int8) alone: no bfloat16
        ("", ()),
    ],
)
def test_cpu_bfloat16_flags_are_read_from_cpuinfo(tmp_path, extra, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    assert precision.cpu_bf16_flags(str(cpuinfo)) == expected
    assert precision.cpu_bf16_flags(str(tmp_path / "missing")) == ()


def test_the_cpu_probe_agrees_with_numpys_cpuid():
    # NumPy asks CPUID itself (its dispatch table), an independent reader of the same feature.
    features = pytest.importorskip("numpy._core._multiarray_umath").__cpu_features__
    if "AVX512BF16" not in features:
        pytest.skip("this NumPy does not report AVX512BF16")
    assert ("avx512_bf16" in precision.cpu_bf16_flags()) == features["AVX512BF16"]


def test_auto_picks_bfloat16_only_where_it_pays(monkeypatch):
    monkeypatch.setattr(precision, "native_bfloat16", lambda: "the CPU has bfloat16 arithmetic (amx_bf16)")
    assert precision.resolve("auto", on_gpu=False, jit_compile=False) == (
        "mixed_bfloat16",
        "the CPU has bfloat16 arithmetic (amx_bf16)",
    )
    policy, why = precision.resolve("auto", on_gpu=False, jit_compile=True)  # XLA's CPU backend
    assert policy is None and "XLA" in why
    assert precision.resolve("auto", on_gpu=True, jit_compile=True)[0] == "mixed_bfloat16"
    for off in (None, "float32"):
        assert precision.resolve(off, on_gpu=True, jit_compile=False) == (None, "as asked")
    assert precision.resolve("mixed_float16", on_gpu=False, jit_compile=True) == ("mixed_float16", "as asked")
    monkeypatch.setattr(precision, "native_bfloat16", lambda: None)
    assert precision.resolve("auto", on_gpu=False, jit_compile=False) == (None, "this device has no native bfloat16")


class Dtypes(keras.callbacks.Callback):
    """What the model that trains computes in, and whether it runs under XLA."""

    def on_train_batch_end(self, batch, logs=None):
        self.seen = {layer.name: (layer.compute_dtype, layer.variable_dtype) for layer in self.model.layers}
        self.jit = self.model.jit_compile


@pytest.fixture(scope="module")
def digits():
    images, labels = kzoo.data.load_uci_digits()
    return images[:96], labels[:96]


@pytest.mark.parametrize("native", [True, False])
def test_finetune_default_on_a_cpu_with_and_without_bfloat16(monkeypatch, caplog, digits, native):
    """LeNet-5 (convolutions) on a CPU: XLA off; bfloat16 exactly where the CPU has it, said in the log."""
    if finetune_lib._on_gpu():
        pytest.skip("the CPU defaults; this machine has a GPU")
    reason = "the CPU has bfloat16 arithmetic (amx_bf16)" if native else None
    monkeypatch.setattr(precision, "native_bfloat16", lambda: reason)
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)
    dtypes = Dtypes()
    with caplog.at_level(logging.INFO, logger="kzoo"):
        kzoo.finetune(model, data, epochs=1, strategy="full", verbose=0, callbacks=[dtypes])
    messages = [record.getMessage() for record in caplog.records]
    assert dtypes.jit is False and any("XLA is off for lenet5" in m for m in messages)
    low = "bfloat16" if native else "float32"
    assert dtypes.seen["c1_conv"] == dtypes.seen["f6_dense"] == (low, "float32")
    assert dtypes.seen["predictions"] == ("float32", "float32")
    said = [m for m in messages if m.startswith("kzoo: lenet5 trains in")]
    assert len(said) == 1
    if native:
        assert said[0].startswith("kzoo: lenet5 trains in mixed_bfloat16: the CPU has bfloat16 arithmetic (amx_bf16)")
        assert "mixed_precision=None turns it off" in said[0]
    else:
        assert said[0].startswith("kzoo: lenet5 trains in float32: this device has no native bfloat16")
    assert keras.backend.standardize_dtype(model(np.zeros((1, 28, 28, 1))).dtype) == "float32"


@pytest.mark.parametrize("off", [None, "float32"])
def test_mixed_precision_none_or_float32_turns_auto_off(monkeypatch, caplog, digits, off):
    monkeypatch.setattr(precision, "native_bfloat16", lambda: "the CPU has bfloat16 arithmetic (amx_bf16)")
    model = kzoo.get("lenet5", pretrained=True)
    data = kzoo.data.arrays(*digits, model=model, batch_size=32)
    dtypes = Dtypes()
    with caplog.at_level(logging.INFO, logger="kzoo"):
        kzoo.finetune(model, data, epochs=1, strategy="full", mixed_precision=off, verbose=0, callbacks=[dtypes])
    assert dtypes.seen["c1_conv"] == ("float32", "float32")
    assert not any("trains in" in r.getMessage() and "float" in r.getMessage() for r in caplog.records)


def test_xla_default_per_model_family_on_a_cpu():
    if finetune_lib._on_gpu():
        pytest.skip("the CPU defaults; this machine has a GPU")
    assert finetune_lib.resolve_jit_compile(kzoo.get("lenet5")) is False  # convolutions: oneDNN is faster
    assert finetune_lib.resolve_jit_compile(kzoo.get("lenet5"), True) is True  # asked for
    assert finetune_lib.resolve_jit_compile(kzoo.get("bilstm_classifier", vocab_size=50, embedding_dim=8)) is True


def test_steps_per_execution_is_a_tenth_of_the_epoch_within_bounds():
    import tensorflow as tf

    batches = lambda n: tf.data.Dataset.range(n).batch(1)  # noqa: E731
    assert finetune_lib.resolve_steps_per_execution(batches(50), None) == 5
    assert finetune_lib.resolve_steps_per_execution(batches(1000), None) == finetune_lib.MAX_STEPS_PER_EXECUTION
    assert finetune_lib.resolve_steps_per_execution(batches(7), None) == 1
    unknown = batches(100).filter(lambda x: True)  # tf.data cannot say how many batches remain
    assert finetune_lib.resolve_steps_per_execution(unknown, None) == 1
    assert finetune_lib.resolve_steps_per_execution(batches(100).repeat(), None) == 1  # endless
    assert finetune_lib.resolve_steps_per_execution(batches(100), 3) == 3  # asked for
    assert finetune_lib.resolve_steps_per_execution(batches(100), None, distribution=object()) == 1


def _fixed_batches(images, labels, model, poison_from=None):
    import tensorflow as tf

    pixels = images[..., None].astype("float32")
    if poison_from is not None:
        pixels[poison_from * 8 :] = np.nan
    return tf.data.Dataset.from_tensor_slices((pixels, labels.astype("int64"))).batch(8)


def test_several_steps_per_execution_make_the_same_updates(digits):
    images, labels = digits
    trained = []
    for steps in (1, 4):
        keras.utils.set_random_seed(0)
        model = kzoo.get("lenet5", pretrained=True)
        data = _fixed_batches(images, labels, model)  # 12 batches: 4 does not divide them
        result = kzoo.finetune(
            model, data, epochs=2, strategy="full", jit_compile=False, mixed_precision=None,
            steps_per_execution=steps, verbose=0,
        )  # fmt: skip
        trained.append((model.get_weights(), result.history["loss"]))
    (one, loss_one), (four, loss_four) = trained
    np.testing.assert_allclose(loss_four, loss_one, rtol=1e-5)
    for a, b in zip(one, four):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_the_nan_guard_stops_within_one_execution(digits):
    images, labels = digits
    model = kzoo.get("lenet5", pretrained=True)
    before = model.get_weights()
    data = _fixed_batches(images, labels, model, poison_from=5)  # batches 5.. are NaN
    guard_batches = []

    class Seen(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            guard_batches.append(batch)

    result = kzoo.finetune(
        model, data, epochs=3, strategy="full", jit_compile=False, mixed_precision=None, steps_per_execution=4,
        verbose=0, callbacks=[Seen()],
    )  # fmt: skip
    assert result.stopped_on_nan and result.epochs == [0]  # stopped in the first epoch
    # Batch hooks run once per execution of 4 batches (at its last batch), and the run stops in
    # the execution that met the NaN (batches 4-7), never reaching batch 11.
    assert set(guard_batches) <= {3, 7} and 3 in guard_batches and 11 not in guard_batches
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # no finite epoch: as it was


def test_the_bfloat16_copy_of_bert_normalises_attention_in_float32():
    keras.utils.set_random_seed(0)
    model = kzoo.get("bert_tiny_classifier", vocab_size=500, max_sequence_length=32)
    copy = precision.with_dtype_policy(model, "mixed_bfloat16", precision.float32_layers(model, ("predictions",)))

    def attentions(m):
        return [
            layer for layer in m._flatten_layers(recursive=True) if isinstance(layer, keras.layers.MultiHeadAttention)
        ]

    assert attentions(copy) and all(layer.compute_dtype == "bfloat16" for layer in attentions(copy))
    rng = np.random.default_rng(0)
    x = keras.ops.cast(rng.standard_normal((2, 32, 128)) * 4, "bfloat16")  # peaked scores, long rows
    _, scores = attentions(copy)[0](x, x, return_attention_scores=True)
    assert keras.ops.convert_to_numpy(scores).dtype == np.float32
    row_sums = keras.ops.convert_to_numpy(keras.ops.sum(scores, axis=-1))
    assert np.abs(row_sums - 1).max() < 1e-5  # bfloat16 probabilities are off by up to ~4e-3
    # The layer as Keras builds it under the same policy rounds them: what the swap avoids.
    plain = keras.layers.MultiHeadAttention(2, 64, dropout=0.1, dtype="mixed_bfloat16")
    _, plain_scores = plain(x, x, return_attention_scores=True)
    assert keras.ops.convert_to_numpy(plain_scores).dtype != np.float32
    # The user's float32 model is untouched and the copy still gives its outputs, to bfloat16 rounding.
    assert all(layer._softmax.compute_dtype == "float32" for layer in attentions(model))
    ids = rng.integers(1, 500, size=(4, 32)).astype("int32")
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(copy(inputs)), keras.ops.convert_to_numpy(model(inputs)), atol=0.1
    )
