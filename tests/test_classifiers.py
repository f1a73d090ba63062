"""VGG and ResNet families: reference parameter counts, parity with keras.applications,
the official weights' format and records, adaptation, and multi-scale features."""

from __future__ import annotations

import hashlib
import logging

import keras
import numpy as np
import pytest

import kzoo
from kzoo import errors
from kzoo import weights as weights_lib

from helpers import run_example


def trainable_count(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize(
    "name, total",
    [
        ("vgg16", 138_357_544),
        ("vgg19", 143_667_240),
        ("resnet50", 25_636_712),
        ("resnet101", 44_707_176),
        ("resnet152", 60_419_944),
        ("alexnet", 60_965_224),  # the paper's two towers (grouped convolutions), 227x227
        ("alexnet_onetower", 61_100_840),  # torchvision's alexnet
    ],
)
def test_parameter_counts_match_keras_applications(name, total):
    assert kzoo.get(name).count_params() == total  # Keras counts BatchNorm statistics too


@pytest.mark.parametrize("name, learnable", [("resnet18", 11_689_512), ("resnet34", 21_797_672)])
def test_parameter_counts_match_torchvision(name, learnable):
    assert trainable_count(kzoo.get(name)) == learnable  # torchvision counts learnable weights only


def test_cifar_resnet20_has_the_papers_0_27m_parameters():
    model = kzoo.get("resnet20_cifar")
    assert model.output_shape == (None, 10)
    assert trainable_count(model) == 269_722
    assert 0.265e6 < trainable_count(model) < 0.275e6  # He et al. 2015, Table 6: 0.27M


PARITY = [
    ("vgg16", keras.applications.VGG16, (224, 224, 3)),
    ("vgg19", keras.applications.VGG19, (224, 224, 3)),
    ("resnet50", keras.applications.ResNet50, (64, 64, 3)),
    ("resnet101", keras.applications.ResNet101, (64, 64, 3)),
    ("resnet50v2", keras.applications.ResNet50V2, (64, 64, 3)),
]


@pytest.mark.parametrize("name, reference, shape", PARITY, ids=[p[0] for p in PARITY])
def test_same_outputs_as_keras_applications_with_the_same_weights(name, reference, shape):
    theirs = reference(weights=None, input_shape=shape, classifier_activation=None)
    ours = kzoo.get(name, input_shape=shape)
    their_layers = {layer.name: layer for layer in theirs.layers if layer.weights}
    assert set(their_layers) == {layer.name for layer in ours.layers if layer.weights}
    for layer in ours.layers:
        if layer.weights:
            layer.set_weights(their_layers[layer.name].get_weights())
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_official_records_pin_the_publishers_url_and_md5(kzoo_home, monkeypatch):
    record = weights_lib.records_for("vgg16")[0]
    assert record.tag == "imagenet" and record.default and record.include_top
    assert record.url == (
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    )
    assert record.md5 == "64373286793e3c8b2b4e3219cbf3544b" and record.format == "h5-legacy"
    assert record.preprocessing.channel_order == "bgr" and record.preprocessing.mean == (103.939, 116.779, 123.68)
    notop = {r.tag: r for r in weights_lib.records_for("resnet50v2")}["imagenet_notop"]
    assert notop.md5 == "fac2f116257151a9d068a22e544a4917" and notop.url.endswith(
        "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    assert notop.preprocessing.scale == pytest.approx(1 / 127.5) and notop.preprocessing.offset == -1.0
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    with pytest.raises(errors.OfflineError) as caught:
        kzoo.get("vgg16", pretrained=True)
    assert str(kzoo_home / "weights" / record.file) in str(caught.value) and record.url in str(caught.value)


def _legacy_weights_file(model: keras.Model, path) -> bytes:
    """Writes weights the way keras.applications' official files are laid out (Keras 2 HDF5)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    return path.read_bytes()


@pytest.fixture(scope="module")
def official_resnet50(tmp_path_factory):
    keras.utils.set_random_seed(5)
    theirs = keras.applications.ResNet50(weights=None, classifier_activation=None)
    body = _legacy_weights_file(theirs, tmp_path_factory.mktemp("official") / "resnet50.h5")
    return theirs, body


def test_official_format_served_locally_loads_by_name(
    official_resnet50, kzoo_home, http_files, temporary_registry, caplog
):
    theirs, body = official_resnet50
    url = http_files.add("resnet50_weights_tf_dim_ordering_tf_kernels.h5", body)
    record = weights_lib.records_for("resnet50")[0]
    import dataclasses

    local = dataclasses.replace(record, tag="local_official", url=url, md5=hashlib.md5(body).hexdigest(), default=False)
    temporary_registry.weights(local)
    # include_preprocessing=False: keras.applications' graph, which takes preprocessed inputs.
    ours = kzoo.get("resnet50", pretrained="local_official", include_preprocessing=False)
    x = np.random.default_rng(1).standard_normal((2, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    # By default the model takes raw pixels and applies the weights' caffe preprocessing once,
    # as keras.applications.resnet50.preprocess_input does.
    raw = np.random.default_rng(2).integers(0, 256, (2, 224, 224, 3)).astype("uint8")
    expected = theirs.predict(keras.applications.resnet50.preprocess_input(raw.astype("float32")), verbose=0)
    np.testing.assert_allclose(
        kzoo.get("resnet50", pretrained="local_official").predict(raw, verbose=0), expected, rtol=1e-4, atol=1e-4
    )

    # New head and grayscale input from the same file: everything else loads, both adaptations are
    # logged, and the model is built once (the file is read layer by layer straight into it).
    spec = kzoo.registry.spec("resnet50")
    builder, builds = spec.builder, []
    object.__setattr__(spec, "builder", lambda **kwargs: builds.append(kwargs) or builder(**kwargs))
    try:
        with caplog.at_level(logging.WARNING, logger="kzoo"):
            adapted = kzoo.get("resnet50", pretrained="local_official", num_classes=5, input_shape=(160, 160, 1))
    finally:
        object.__setattr__(spec, "builder", builder)
    assert len(builds) == 1
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "loaded all weights but the head (predictions)" in messages
    assert "adapted conv1_conv from 3 to 1 input channels" in messages
    assert adapted.output_shape == (None, 5)
    np.testing.assert_allclose(
        adapted.get_layer("conv1_conv").get_weights()[0],
        theirs.get_layer("conv1_conv").get_weights()[0].sum(axis=2, keepdims=True),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(
        adapted.get_layer("conv5_block3_3_conv").get_weights()[0],
        theirs.get_layer("conv5_block3_3_conv").get_weights()[0],
    )
    assert http_files.requests == ["/resnet50_weights_tf_dim_ordering_tf_kernels.h5"]  # cached after the first


def test_legacy_file_for_another_architecture_is_refused(tmp_path):
    small = kzoo.get("vgg11", input_shape=(32, 32, 3), fc_units=8, width_multiplier=0.0625, num_classes=3)
    _legacy_weights_file(small, tmp_path / "vgg11.h5")
    target = kzoo.get("vgg13", input_shape=(32, 32, 3), fc_units=8, width_multiplier=0.0625, num_classes=3)
    with pytest.raises(errors.WeightsError, match="layers missing from the file"):
        weights_lib.load_weights_file(target, tmp_path / "vgg11.h5", format="h5-legacy")


def test_feature_extractor_returns_every_stage():
    features = kzoo.feature_extractor(kzoo.get("resnet18", include_top=False, input_shape=(64, 64, 3)))
    outputs = features.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0)
    assert {k: v.shape[1:3] for k, v in outputs.items()} == {
        "conv1": (32, 32),
        "conv2": (16, 16),
        "conv3": (8, 8),
        "conv4": (4, 4),
        "conv5": (2, 2),
    }
    vgg = kzoo.feature_extractor(kzoo.get("vgg16", include_top=False, input_shape=(64, 64, 3)), stages=["block1"])
    assert vgg.output["block1"].shape[1:] == (64, 64, 64)  # before pooling
    with pytest.raises(errors.InvalidArgumentError, match="names from"):
        kzoo.feature_extractor(kzoo.get("resnet18", include_top=False), stages=["conv9"])
    with pytest.raises(errors.InvalidArgumentError, match="built by kzoo.get"):
        kzoo.feature_extractor(keras.applications.MobileNetV3Small(weights=None))


def test_saliency_gradcam_occlusion_example_writes_its_figure(tmp_path, capfd):
    result = run_example(capfd, "saliency_gradcam_occlusion.py", "--count", "3", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    figure = tmp_path / "lenet5_saliency_gradcam_occlusion.png"
    from PIL import Image

    assert Image.open(figure).size == (4 * 112, 3 * 112)  # 3 rows of image | saliency | Grad-CAM | occlusion


def test_finetune_resnet_folder_example_quick_run(tmp_path, capfd):
    import json

    run_dir = tmp_path / "run"
    arguments = ("--quick", "--log-dir", str(run_dir), "--output-dir", str(tmp_path))
    result = run_example(capfd, "finetune_resnet_folder.py", *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best validation accuracy" in result.stdout
    assert json.loads((run_dir / "kzoo_run.json").read_text())["status"] == "finished"
    assert (run_dir / "model.keras").is_file()
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert (tmp_path / "finetune_curves.png").is_file()  # the example's main figure


def test_decode_predictions_names_classes_from_the_class_index(kzoo_home, http_files, monkeypatch, caplog):
    """The class index is fetched like weights (official URL, pinned MD5); offline, WordNet IDs stand in."""
    import dataclasses
    import json

    from kzoo import imagenet

    ids = imagenet.wordnet_ids()
    assert len(ids) == 1000 and ids[0] == "n01440764" and list(ids) == sorted(ids)
    assert kzoo.info("vgg16").weights[0].class_names == ids  # attached to the official weights
    index = json.dumps({str(i): [wnid, f"class_{i}"] for i, wnid in enumerate(ids)}).encode()
    url = http_files.add("imagenet_class_index.json", index)
    monkeypatch.setattr(
        imagenet, "CLASS_INDEX", dataclasses.replace(imagenet.CLASS_INDEX, url=url, md5=hashlib.md5(index).hexdigest())
    )
    imagenet._names.cache_clear()
    logits = np.zeros((2, 1000))
    logits[0, [7, 3]] = [5.0, 4.0]
    logits[1, 999] = 9.0
    top = kzoo.decode_predictions(logits, top=2)
    assert [c[:2] for c in top[0]] == [(ids[7], "class_7"), (ids[3], "class_3")]
    expected = np.exp(5.0) / (np.exp(5.0) + np.exp(4.0) + 998)
    assert top[0][0][2] == pytest.approx(expected) and top[1][0][:2] == (ids[999], "class_999")
    assert kzoo.decode_predictions(np.full((1, 1000), 1e-3), top=1)[0][0][2] == pytest.approx(
        1e-3
    )  # probabilities kept

    monkeypatch.setenv("KZOO_OFFLINE", "1")
    monkeypatch.setenv("KZOO_HOME", str(kzoo_home / "empty"))
    imagenet._names.cache_clear()
    with caplog.at_level(logging.WARNING, logger="kzoo"):
        assert kzoo.decode_predictions(logits, top=1)[0][0][:2] == (ids[7], ids[7])
    assert any("named by WordNet ID" in r.getMessage() for r in caplog.records)
    imagenet._names.cache_clear()
    with pytest.raises(errors.InvalidArgumentError, match=r"\(batch, 1000\)"):
        kzoo.decode_predictions(np.zeros((2, 10)))
