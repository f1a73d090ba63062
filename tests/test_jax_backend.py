"""kzoo on the JAX backend of a machine without TensorFlow (a GPU box with only JAX installed).

The check runs in a subprocess with ``KERAS_BACKEND=jax`` where TensorFlow and its satellite
packages cannot be imported, whatever backend runs this test file. The registry-wide tests
run on JAX as well: ``KERAS_BACKEND=jax python -m pytest tests/test_models.py`` (README, CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parent.parent

# Runs in the subprocess; prints one JSON report on its last line.
SCRIPT = r"""
import json, sys

# As if not installed: `import tensorflow` raises ImportError, importlib's find_spec returns None.
for name in ("tensorflow", "tensorflow_hub", "tensorflow_datasets", "tensorflow_text", "tf_keras"):
    sys.modules[name] = None

import jax
import keras
import numpy as np

import kzoo
from kzoo import generative, registry, weights
from kzoo.errors import BackendError

report = {"backend": keras.backend.backend(), "built": [], "differentiated": {}, "pretrained": [], "errors": {}}


def outputs_of(result):
    if isinstance(result, dict):
        return list(result.values())
    return list(result) if isinstance(result, (list, tuple)) else [result]


def value_and_gradients(model, inputs):
    def loss_fn(trainable, non_trainable):
        result, _ = model.stateless_call(trainable, non_trainable, inputs, training=True)
        return sum(keras.ops.mean(keras.ops.square(o)) for o in outputs_of(result))

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    return jax.jit(jax.value_and_grad(loss_fn))(trainable, non_trainable)


# Every registered model builds; the first of each family also runs forward and backward
# (tests/test_models.py does every model on JAX).
families = set()
for name in kzoo.list_models():
    spec = registry.spec(name)
    keras.utils.set_random_seed(0)
    model = kzoo.get(name, **spec.test_kwargs)
    report["built"].append(name)
    if spec.family in families:
        continue
    families.add(spec.family)
    inputs = spec.sample_inputs(model, batch_size=4)  # as tests/test_models.py: batch norm needs a few
    forward = [keras.ops.convert_to_numpy(o) for o in outputs_of(model(inputs))]
    loss, gradients = value_and_gradients(model, inputs)
    gradients = [np.asarray(g) for g in gradients]
    report["differentiated"][name] = {
        "finite": bool(np.isfinite(float(loss)) and all(np.all(np.isfinite(o)) for o in forward)),
        "gradients": len(gradients),
        "trainable": len(model.trainable_variables),
        "nonzero": sum(bool(np.any(g != 0)) for g in gradients),
    }

# Every set of weights shipped with kzoo loads (offline).
for record in weights.all_records():
    if record.shipped:
        model = kzoo.get(record.model, pretrained=record.tag)
        report["pretrained"].append(f"{record.model}.{record.tag}")

# The custom train steps train on JAX (compiled), from NumPy arrays.
def fit_report(model, *arrays, **kwargs):
    before = [np.array(v) for v in model.trainable_variables]
    history = model.fit(*arrays, verbose=0, **kwargs).history
    moved = [not np.array_equal(np.array(v), b) for v, b in zip(model.trainable_variables, before)]
    return {"history": {k: [float(x) for x in v] for k, v in history.items()}, "moved": sum(moved), "of": len(moved)}

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
images = rng.uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
tiny = {"input_shape": (8, 8, 1), "base_filters": 2}
gan = generative.GAN(kzoo.get("dcgan_generator", latent_dim=4, **tiny), kzoo.get("dcgan_discriminator", **tiny), seed=0)
gan.compile()
report["gan"] = fit_report(gan, images, batch_size=4, epochs=3)
report["gan"]["iterations"] = [int(gan.generator_optimizer.iterations), int(gan.discriminator_optimizer.iterations)]

def generator():
    return kzoo.get("cyclegan_generator_resnet6", input_shape=(24, 24, 1), base_filters=2)

def discriminator():
    return kzoo.get("patchgan_discriminator", input_shape=(24, 24, 1), base_filters=2)

cyclegan = generative.CycleGAN(generator(), generator(), discriminator(), discriminator(), pool_size=4, seed=0)
cyclegan.compile()
x, y = (rng.uniform(-1, 1, (8, 24, 24, 1)).astype("float32") for _ in range(2))
report["cyclegan"] = fit_report(cyclegan, x, y, batch_size=2, epochs=2)
report["cyclegan"]["pool_count"] = int(cyclegan.pool_x.count.value)

vae = kzoo.get("vae", input_shape=(8, 8, 1), latent_dim=2, filters=(4,), hidden_units=(8,), seed=0)
vae.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
pixels = rng.uniform(0, 1, (32, 8, 8, 1)).astype("float32")
report["vae"] = fit_report(vae, pixels, pixels, batch_size=8, epochs=4)

# What needs TensorFlow says so.
for feature, call in {
    "kzoo.data.arrays": lambda: kzoo.data.arrays(images, np.zeros(16, "int64")),
    "kzoo.generative.unpaired": lambda: generative.unpaired(x, y),
    "kzoo.callbacks.TensorBoard": lambda: kzoo.callbacks.TensorBoard("logs"),
    "kzoo.hub.load": lambda: kzoo.hub.load("saved_model_dir"),
}.items():
    try:
        call()
        report["errors"][feature] = None
    except BackendError as error:
        report["errors"][feature] = str(error)

report["tensorflow_modules"] = sorted(m for m in sys.modules if m.startswith("tensorflow") and sys.modules[m])
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def jax_report(tmp_path_factory) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "KZOO_OFFLINE": "1",
        "KZOO_HOME": str(tmp_path_factory.mktemp("kzoo_home")),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, cwd=tmp_path_factory.mktemp("cwd")
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_model_builds_and_trains_on_jax_without_tensorflow(jax_report):
    import kzoo
    from kzoo import registry

    assert jax_report["backend"] == "jax"
    assert jax_report["tensorflow_modules"] == []
    assert jax_report["built"] == kzoo.list_models()
    families = {registry.spec(name).family for name in kzoo.list_models()}
    assert {registry.spec(name).family for name in jax_report["differentiated"]} == families
    for name, result in jax_report["differentiated"].items():
        assert result["finite"], name
        assert result["gradients"] == result["trainable"] > 0, name
        assert result["nonzero"] == result["trainable"], f"{name}: a trainable weight gets no gradient on JAX"


def test_shipped_weights_load_on_jax_without_tensorflow(jax_report):
    from kzoo import weights

    shipped = [f"{r.model}.{r.tag}" for r in weights.all_records() if r.shipped]
    assert shipped and jax_report["pretrained"] == shipped


def test_gan_cyclegan_and_vae_train_on_jax(jax_report):
    gan = jax_report["gan"]
    assert gan["iterations"] == [12, 12]  # 3 epochs of 4 batches, both optimizers
    assert gan["moved"] == gan["of"] > 0  # every weight of both networks trained
    for losses in gan["history"].values():
        assert len(losses) == 3 and all(np.isfinite(losses)) and losses[0] != losses[-1]

    cyclegan = jax_report["cyclegan"]
    assert cyclegan["moved"] == cyclegan["of"] > 0
    assert cyclegan["pool_count"] == 4  # the image pool's state came back from the compiled steps
    assert set(cyclegan["history"]) >= {"generator_loss", "cycle_loss", "discriminator_x_loss"}
    for losses in cyclegan["history"].values():
        assert all(np.isfinite(losses))

    vae = jax_report["vae"]
    assert vae["moved"] == vae["of"] > 0
    assert vae["history"]["loss"][-1] < vae["history"]["loss"][0]  # negative ELBO goes down


def test_tensorflow_only_features_say_why_on_jax(jax_report):
    errors = jax_report["errors"]
    assert set(errors) == {
        "kzoo.data.arrays",
        "kzoo.generative.unpaired",
        "kzoo.callbacks.TensorBoard",
        "kzoo.hub.load",
    }
    for feature in ("kzoo.data.arrays", "kzoo.generative.unpaired", "kzoo.callbacks.TensorBoard"):
        assert "expected TensorFlow installed" in errors[feature] and "pip install" in errors[feature], feature
    assert "expected 'tensorflow'" in errors["kzoo.hub.load"] and "KERAS_BACKEND=tensorflow" in errors["kzoo.hub.load"]
