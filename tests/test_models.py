"""Registry-wide model tests: every registered model, in its own tiny test configuration.

No model is named here; each ModelSpec declares ``test_kwargs`` and, where random floats
are not valid input, ``make_inputs``.
"""

from __future__ import annotations

import copy
import functools
import os
import sys

import keras
import numpy as np
import pytest

import kzoo
from kzoo import registry

MODELS = kzoo.list_models()


def _build(name: str) -> tuple[registry.ModelSpec, keras.Model]:
    keras.utils.set_random_seed(0)  # the same initial weights whatever ran before
    spec = registry.spec(name)
    return spec, kzoo.get(name, **spec.test_kwargs)


@functools.cache
def _shared(name: str) -> tuple[registry.ModelSpec, keras.Model]:
    """One build per model for the tests that only call it or read it (forward, gradient,
    config, declared layers): building the registry costs 15 s on TensorFlow, 30 s on JAX. A
    training-mode call moves batch-norm statistics, which none of those tests depends on; the
    XLA and mixed-precision tests, which train or change policies, build their own."""
    return _build(name)


def _outputs(result) -> list:
    return (
        list(result)
        if isinstance(result, (list, tuple))
        else list(result.values())
        if isinstance(result, dict)
        else [result]
    )


def _scalar(model: keras.Model, outputs) -> object:
    """A scalar of every output: the mean square, or for a CRF tagger its own loss (the CRF's
    transition scores enter only through it, kzoo.layers.crf), on tag 0 everywhere."""
    from kzoo.layers.crf import CRFLoss, crf_layers

    if crf_layers(model):
        (output,) = _outputs(outputs)
        return CRFLoss(crf_layers(model)[0])(keras.ops.zeros(keras.ops.shape(output)[:2], "int32"), output)
    return sum(keras.ops.mean(keras.ops.square(o)) for o in _outputs(outputs))


def _gradients(model: keras.Model, inputs) -> list:
    """Gradients of a scalar of every output with respect to every trainable weight."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = _scalar(model, model(inputs, training=True))
        return tape.gradient(loss, model.trainable_weights)
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_fn(values):
            result, _ = model.stateless_call(values, non_trainable, inputs, training=True)
            with keras.StatelessScope(state_mapping=list(zip(model.trainable_variables, values))):
                return _scalar(model, result)

        # Compiled, as Keras' JAX trainer runs a step: 2-8x faster here than op-by-op.
        return list(jax.jit(jax.grad(loss_fn))(trainable))
    pytest.skip(f"no gradient helper for backend {backend!r}")


def test_registry_is_not_empty():
    assert "lenet5" in MODELS


@pytest.mark.skipif(os.environ.get("KZOO_TEST_WITHOUT_TENSORFLOW") != "1", reason="the JAX pass of the CI only")
def test_the_jax_pass_runs_without_tensorflow():
    """What this pass proves (every model builds, runs and differentiates on JAX) holds where
    TensorFlow cannot be imported (tests/conftest.py); tests/test_jax_backend.py relies on it."""
    import importlib.util

    assert keras.backend.backend() == "jax"
    assert importlib.util.find_spec("tensorflow") is None
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401
    assert not any(name == "tensorflow" or name.startswith("tensorflow.") for name in sys.modules if sys.modules[name])


# Smallest first (the card's parameter count), as for XLA below.
BY_SIZE = sorted(MODELS, key=lambda n: (registry.spec(n).num_params or 0, n))
_RUN_FORWARD_ON_JAX: dict[frozenset, str] = {}


def _skip_if_done(done: dict[frozenset, str], types: frozenset, what: str) -> None:
    """Skips a model whose exact set of layer types a smaller model already took through this test."""
    if types in done:
        pytest.skip(f"same layer types as {done[types]}, {what} already")


@pytest.mark.parametrize("name", BY_SIZE)
def test_builds_and_runs_forward(name):
    spec, model = _shared(name)
    if keras.backend.backend() == "jax":
        # As for gradients below: whether JAX runs a model is a property of its layer types (each
        # model's output shapes are checked on TensorFlow), so the JAX pass runs each set of layer
        # types once, by its smallest model; eager JAX compiles each operation of ResNet-152 anew.
        types = _layer_types(model)
        _skip_if_done(_RUN_FORWARD_ON_JAX, types, "run on JAX")
    inputs = spec.sample_inputs(model, batch_size=2)
    outputs = _outputs(model(inputs, training=False))
    for output, declared in zip(outputs, model.outputs):
        assert tuple(output.shape)[0] == 2
        assert len(output.shape) == len(declared.shape)
        # A declared None (e.g. a sequence length) takes the length of the input.
        assert all(d is None or d == o for d, o in zip(tuple(declared.shape)[1:], tuple(output.shape)[1:]))
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))
    if keras.backend.backend() == "jax":
        _RUN_FORWARD_ON_JAX[types] = name  # only once it passed


_DIFFERENTIATED_ON_JAX: dict[frozenset, str] = {}


@pytest.mark.parametrize("name", BY_SIZE)
def test_every_trainable_weight_gets_a_gradient(name):
    spec, model = _shared(name)
    if keras.backend.backend() == "jax":
        # Whether JAX differentiates a model is a property of its layer types; that every weight
        # of every model is reached is checked on TensorFlow. So the JAX pass differentiates each
        # set of layer types once, by its smallest model: compiling ResNet-152's gradient costs
        # 40 s there, and it has the layer types of ResNet-50.
        types = _layer_types(model)
        _skip_if_done(_DIFFERENTIATED_ON_JAX, types, "differentiated on JAX")
        _DIFFERENTIATED_ON_JAX[types] = name
    inputs = spec.sample_inputs(model, batch_size=4)
    gradients = _gradients(model, inputs)
    assert len(gradients) == len(model.trainable_weights) > 0
    for variable, gradient in zip(model.trainable_weights, gradients):
        assert gradient is not None, f"no gradient reaches {variable.path}"
        values = keras.ops.convert_to_numpy(gradient)
        assert np.all(np.isfinite(values)), f"non-finite gradient for {variable.path}"
        assert np.any(values != 0), f"zero gradient for {variable.path}"


# The .keras round trip of every model (outputs, layer names, safe_mode=True) is in
# tests/test_identity.py, reloaded in a new process.


@pytest.mark.parametrize("name", MODELS)
def test_get_config_round_trip(name):
    spec, model = _shared(name)
    config = model.get_config()
    clone = model.__class__.from_config(copy.deepcopy(config))  # from_config consumes its argument
    assert clone.get_config() == config
    assert clone.count_params() == model.count_params()
    clone.set_weights(model.get_weights())
    inputs = spec.sample_inputs(model, batch_size=2)
    for a, b in zip(_outputs(clone(inputs)), _outputs(model(inputs))):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)


# XLA support is a property of the operations a model uses, not of its depth: each set of
# layer types is compiled once, by the smallest model (the card's parameter count) that has it
# (alphabetical order compiled ResNet-101 and ResNet-110 instead of ResNet-18 and ResNet-20).
# ResNet-152 adds no layer type to ResNet-50,
# and compiling its train step on CPU costs a minute and gigabytes. XLA lowers operation by
# operation, so a model whose every layer type some smaller model already compiled (the U-Nets
# on ResNet-18 and VGG16, the VGGs) is not compiled again either.
_COMPILED_BY: dict[str, str] = {}  # layer type -> the model that compiled it


def _layer_types(model: keras.Model) -> frozenset:
    return frozenset(type(layer).__name__ for layer in model._flatten_layers(include_self=False))


@pytest.mark.parametrize("name", BY_SIZE)
def test_compiles_with_xla(name):
    spec, model = _build(name)
    types = _layer_types(model)
    if types <= _COMPILED_BY.keys():
        pytest.skip(f"every layer type compiled with XLA already, by {sorted({_COMPILED_BY[t] for t in types})}")
    inputs = spec.sample_inputs(model, batch_size=4)
    from kzoo.layers.crf import CRFLoss, crf_layers

    targets = [np.zeros(tuple(o.shape), "float32") for o in _outputs(model(inputs))]
    loss = "mse"
    if crf_layers(model):  # a CRF trains through its own loss (tag ids), which reaches its transitions
        loss, targets = CRFLoss(), [np.zeros(tuple(targets[0].shape)[:2], "int32")]
    # Adam keeps steps small: plain SGD can blow up a 150-layer network two units wide.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=True)
    assert model.jit_compile is True
    before = [w.copy() for w in model.get_weights()]
    first = model.train_on_batch(inputs, targets[0] if len(targets) == 1 else targets)
    second = model.train_on_batch(inputs, targets[0] if len(targets) == 1 else targets)
    assert np.isfinite(first) and np.isfinite(second)
    if crf_layers(model):
        transitions = crf_layers(model)[0].transitions
        index = [w.path for w in model.weights].index(transitions.path)
        assert not np.array_equal(before[index], np.asarray(transitions))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    for layer_type in types:
        _COMPILED_BY.setdefault(layer_type, name)


# Which layers compute in float16 and which stay float32 is set per layer type (and the head
# by the builders), so, as for XLA, each set of layer types is built under the policy once, by
# its smallest model: the deeper ResNets and VGGs repeat the smaller ones' layers.
_MIXED_BY: dict[frozenset, str] = {}


@pytest.mark.parametrize("name", BY_SIZE)
def test_mixed_precision_keeps_float32_outputs(name):
    spec = registry.spec(name)
    types = _layer_types(_shared(name)[1])
    _skip_if_done(_MIXED_BY, types, "checked under mixed_float16")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = kzoo.get(name, **spec.test_kwargs)
        outputs = _outputs(model(spec.sample_inputs(model, batch_size=2)))
    finally:
        keras.config.set_dtype_policy(previous)
    assert all(keras.backend.standardize_dtype(o.dtype) == "float32" for o in outputs)
    # The layers with weights compute in float16 (those kept in float32 on purpose aside) and
    # keep float32 variables.
    weighted = [layer for layer in model._flatten_layers(include_self=False) if layer.weights]
    assert any(layer.compute_dtype == "float16" for layer in weighted), "no layer computes in float16"
    assert all(keras.backend.standardize_dtype(w.dtype) in ("float32", "int32") for w in model.weights)
    _MIXED_BY[types] = name  # only once it passed: a failure leaves the larger models to be checked


@pytest.mark.parametrize("name", MODELS)
def test_declared_layers_exist(name):
    spec, model = _shared(name)
    names = [layer.name for layer in model.layers]
    for head in spec.head_layers:
        assert head in names, f"head layer {head!r} is not in the model"
    if spec.stem_layer is not None:
        assert spec.stem_layer in names
    for stage in spec.stages:
        assert any(n == stage or n.startswith(f"{stage}_") for n in names), f"stage {stage!r} has no layers"
