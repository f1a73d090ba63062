"""kzoo.hub: SavedModel backbones through keras.layers.TFSMLayer, on a SavedModel the test writes."""

from __future__ import annotations

import hashlib
import shutil
import socket

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo.hub
from kzoo.errors import InvalidArgumentError, OfflineError

KERNEL = np.arange(12, dtype="float32").reshape(4, 3) / 10.0


class _Backbone(tf.Module):
    """A linear "backbone" with one variable and two signatures."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(KERNEL, name="kernel")

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="x")])
    def __call__(self, x):
        return {"features": tf.matmul(x, self.kernel)}

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="x")])
    def two_outputs(self, x):
        return {"a": tf.matmul(x, self.kernel), "b": 2.0 * tf.matmul(x, self.kernel)}


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    module = _Backbone()
    path = tmp_path_factory.mktemp("hub") / "backbone"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__, "two": module.two_outputs})
    return path


def _inputs(n: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4)).astype("float32")


def _reloaded_kernel(layer: keras.layers.Layer) -> np.ndarray:
    """The SavedModel's own variable (not a Keras copy) behind a loaded layer."""
    saved_model = layer.saved_model if isinstance(layer, kzoo.hub.HubOutput) else layer
    return saved_model._reloaded_obj.kernel.numpy()


def test_load_gives_the_module_outputs_inside_a_functional_model(saved_model_dir):
    layer = kzoo.hub.load(saved_model_dir, name="backbone")
    inputs = keras.Input((4,))
    features = layer(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(features))
    feature_model = keras.Model(inputs, features)

    x = _inputs()
    np.testing.assert_allclose(feature_model.predict(x, verbose=0), x @ KERNEL, rtol=1e-5, atol=1e-5)
    assert model.predict(x, verbose=0).shape == (8, 2)
    assert layer.name == "backbone"


@pytest.mark.parametrize("trainable", [True, False])
def test_one_fit_step_updates_the_saved_model_variables_only_when_trainable(saved_model_dir, trainable):
    layer = kzoo.hub.load(str(saved_model_dir), trainable=trainable)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = _reloaded_kernel(layer).copy()

    x = _inputs()
    model.fit(x, np.ones((8, 2), "float32"), batch_size=8, epochs=1, verbose=0)

    changed = not np.allclose(before, _reloaded_kernel(layer))
    assert changed is trainable
    assert len(layer.trainable_weights) == (1 if trainable else 0)


def test_dict_output_with_several_keys_needs_output_key(saved_model_dir):
    with pytest.raises(InvalidArgumentError, match=r"output_key: expected one of \['a', 'b'\]"):
        kzoo.hub.load(saved_model_dir, call_endpoint="two")
    with pytest.raises(InvalidArgumentError, match="did you mean 'a'"):
        kzoo.hub.load(saved_model_dir, call_endpoint="two", output_key="aa")

    layer = kzoo.hub.load(saved_model_dir, call_endpoint="two", output_key="b")
    x = _inputs()
    np.testing.assert_allclose(layer(x).numpy(), 2.0 * x @ KERNEL, rtol=1e-5, atol=1e-5)


def test_unknown_endpoint_lists_the_signatures(saved_model_dir):
    with pytest.raises(InvalidArgumentError, match=r"\['serving_default', 'two'\].*did you mean 'two'"):
        kzoo.hub.load(saved_model_dir, call_endpoint="tw")


def test_missing_directory_names_the_path(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(InvalidArgumentError, match=f"No directory exists at {missing}"):
        kzoo.hub.load(missing)


def test_directory_without_saved_model_pb_is_rejected(tmp_path):
    (tmp_path / "variables").mkdir()
    with pytest.raises(InvalidArgumentError, match="has no saved_model.pb"):
        kzoo.hub.load(tmp_path)


def _refuse_network(monkeypatch) -> list:
    """Records (and refuses) every outgoing connection attempt from now on."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture
def no_network(monkeypatch):
    return _refuse_network(monkeypatch)


def test_offline_remote_handle_raises_without_touching_the_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(OfflineError, match="KZOO_OFFLINE=1"):
        kzoo.hub.load("https://www.kaggle.com/models/google/example/TensorFlow2/default/1")
    assert no_network == []


def test_offline_remote_handle_uses_an_earlier_download(saved_model_dir, tmp_path, monkeypatch, no_network):
    handle = "https://www.kaggle.com/models/google/example/TensorFlow2/default/1"
    cache = tmp_path / "cache"
    # Where tensorflow_hub itself would have unpacked this handle's download.
    shutil.copytree(saved_model_dir, cache / hashlib.sha1(handle.encode()).hexdigest())
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))

    layer = kzoo.hub.load(handle)

    x = _inputs()
    np.testing.assert_allclose(layer(x).numpy(), x @ KERNEL, rtol=1e-5, atol=1e-5)
    assert no_network == []


def test_a_handle_url_downloads_the_archive_once_then_loads_offline_from_the_cache(
    saved_model_dir, tmp_path, monkeypatch, http_files
):
    """A TF-Hub-style handle served by a real HTTP server on 127.0.0.1: tensorflow_hub asks for
    the compressed archive, unpacks it into TFHUB_CACHE_DIR, and kzoo's offline look-up finds
    that very directory afterwards, with the network refused."""
    import io
    import tarfile

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for item in sorted(saved_model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    # tensorflow_hub appends this query to ask for the compressed SavedModel.
    http_files.add("/models/backbone/1?tf-hub-format=compressed", archive.getvalue())
    handle = http_files.url("models/backbone/1")
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KZOO_OFFLINE", raising=False)

    x = _inputs()
    online = kzoo.hub.load(handle)
    np.testing.assert_allclose(online(x).numpy(), x @ KERNEL, rtol=1e-5, atol=1e-5)
    assert http_files.requests == ["/models/backbone/1?tf-hub-format=compressed"]
    assert (tmp_path / "cache" / hashlib.sha1(handle.encode()).hexdigest() / "saved_model.pb").is_file()

    monkeypatch.setenv("KZOO_OFFLINE", "1")
    attempts = _refuse_network(monkeypatch)
    offline = kzoo.hub.load(handle)
    np.testing.assert_allclose(offline(x).numpy(), x @ KERNEL, rtol=1e-5, atol=1e-5)
    assert attempts == [] and len(http_files.requests) == 1


def test_keras_file_round_trip_needs_safe_mode_off(saved_model_dir, tmp_path):
    inputs = keras.Input((4,))
    backbone = kzoo.hub.load(saved_model_dir, call_endpoint="two", output_key="b")
    model = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs)))
    backbone.weights[0].assign(3.0 * KERNEL)  # as if fine-tuned: the .keras file, not the SavedModel, has it
    path = tmp_path / "model.keras"
    model.save(path)

    # A SavedModel is executable graph code: Keras refuses it unless the user opts in.
    with pytest.raises(ValueError, match="TFSMLayer"):
        keras.saving.load_model(path)
    reloaded = keras.saving.load_model(path, safe_mode=False)

    x = _inputs()
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert isinstance(reloaded.layers[1], kzoo.hub.HubOutput)
    assert reloaded.layers[1].output_key == "b"
    np.testing.assert_allclose(reloaded.layers[1].weights[0].numpy(), 3.0 * KERNEL)
