"""kzoo on the JAX backend of a machine without TensorFlow (a GPU box with only JAX installed).

The checks run in a subprocess with ``KERAS_BACKEND=jax`` where TensorFlow and its satellite
packages cannot be imported, whatever backend runs this test file: shipped weights load, the
custom train steps train, TensorFlow-only features say why. That every registered model builds,
runs forward and gets a gradient for every weight there is the JAX pass of the CI (README):
``KERAS_BACKEND=jax KZOO_TEST_WITHOUT_TENSORFLOW=1 python -m pytest tests/test_models.py ...``,
with TensorFlow unimportable (tests/conftest.py, checked by test_the_jax_pass_runs_without_tensorflow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TENSORFLOW_PACKAGES

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parent.parent

# Runs in the subprocess; prints one JSON report on its last line.
SCRIPT = r"""
import json, sys

# As if not installed: `import tensorflow` raises ImportError, importlib's find_spec returns None.
for name in BLOCKED:
    sys.modules[name] = None

import keras
import numpy as np

import kzoo
from kzoo import generative, weights
from kzoo.errors import BackendError

report = {"backend": keras.backend.backend(), "pretrained": [], "errors": {}}

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

def judge():
    inputs = keras.Input((24, 24, 1))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))

judges = (judge(), judge())
semantic = generative.CycleGAN(
    generator(), generator(), discriminator(), discriminator(), pool_size=4, seed=0,
    semantic_weight=1.0, semantic_classifier_x=judges[0], semantic_classifier_y=judges[1],
)
semantic.compile()
watched = {"judges": judges[0].variables + judges[1].variables, "generator": semantic.generator_g.trainable_variables}
before = {k: [np.array(v) for v in vs] for k, vs in watched.items()}
history = semantic.fit(x, y, batch_size=2, epochs=1, verbose=0).history
report["semantic"] = {"semantic_loss": [float(v) for v in history["semantic_loss"]]}
for key, variables in watched.items():
    report["semantic"][f"{key}_moved"] = sum(not np.array_equal(np.array(v), b) for v, b in zip(variables, before[key]))
report["semantic"]["generator_of"] = len(watched["generator"])

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
        [sys.executable, "-c", f"BLOCKED = {TENSORFLOW_PACKAGES!r}\n" + SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path_factory.mktemp("cwd"),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_shipped_weights_load_on_jax_without_tensorflow(jax_report):
    from kzoo import weights

    assert jax_report["backend"] == "jax"
    assert jax_report["tensorflow_modules"] == []
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
    semantic = jax_report["semantic"]  # CyCADA's loss on JAX: it is paid, and it moves only the generators
    assert semantic["semantic_loss"][0] > 0
    assert semantic["judges_moved"] == 0 and semantic["generator_moved"] == semantic["generator_of"] > 0
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
