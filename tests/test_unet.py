"""U-Net variants, segmentation losses and metrics, the weight map, tiled inference,
mask-aware augmentation, and the shipped ISBI 2012 weights."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

import kzoo
from kzoo import errors, segmentation
from kzoo.models.unet import output_size

from conftest import requires_data

REPO = Path(__file__).resolve().parent.parent


def test_paper_unet_maps_572_to_388_with_31m_parameters():
    model = kzoo.get("unet")
    assert model.input_shape == (None, 572, 572, 1)
    assert model.output_shape == (None, 388, 388, 2)
    assert model.count_params() == 31_030_658


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("unet", {"input_shape": (188, 252, 3), "base_filters": 2, "num_classes": 3}, (4, 68, 3)),
        ("unet", {"input_shape": (140, 140, 1), "base_filters": 2, "depth": 3}, (52, 52, 2)),
        ("unet_modern", {"input_shape": (64, 96, 1), "base_filters": 2}, (64, 96, 1)),
        ("unet_modern", {"input_shape": (40, 40, 3), "base_filters": 2, "depth": 3, "num_classes": 4}, (40, 40, 4)),
        ("unet_modern", {"input_shape": (32, 32, 1), "base_filters": 2, "include_top": False}, (32, 32, 2)),
    ],
)
def test_output_shapes(name, kwargs, expected):
    model = kzoo.get(name, **kwargs)
    assert model.output_shape[1:] == expected
    outputs = model.predict(np.zeros((1, *kwargs["input_shape"]), "float32"), verbose=0)
    assert outputs.shape[1:] == expected


def test_sizes_the_network_cannot_take_are_explained():
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.get("unet", input_shape=(570, 570, 1))
    assert "572" in str(caught.value) and "570" in str(caught.value)  # the nearest valid size, and what was given
    with pytest.raises(errors.InvalidArgumentError, match=r"\[48, 64\]|\[64, 48\]"):
        kzoo.get("unet_modern", input_shape=(50, 50, 1))
    with pytest.raises(errors.InvalidArgumentError, match="None"):
        kzoo.get("unet_modern", pooling="avg")
    assert output_size(572, 4, "valid") == 388 and output_size(570, 4, "valid") is None


# ----------------------------------------------------------------------------------------
# Losses and metrics against hand-computed values
# ----------------------------------------------------------------------------------------

Y = np.array([[[1], [0]], [[1], [1]]], "float32")[None]  # (1, 2, 2, 1)
P = np.array([[[0.9], [0.2]], [[0.6], [0.3]]], "float32")[None]


def test_dice_and_jaccard_losses_by_hand():
    # overlap 0.9 + 0.6 + 0.3 = 1.8; sum(p) = 2.0; sum(t) = 3
    dice = segmentation.DiceLoss(from_logits=False, smooth=1.0)(Y, P)
    assert float(dice) == pytest.approx(1 - (2 * 1.8 + 1) / (2.0 + 3 + 1), abs=1e-6)
    jaccard = segmentation.JaccardLoss(from_logits=False, smooth=1.0)(Y, P)
    assert float(jaccard) == pytest.approx(1 - (1.8 + 1) / (2.0 + 3 - 1.8 + 1), abs=1e-6)
    logits = np.log(P / (1 - P))
    assert float(segmentation.DiceLoss()(Y, logits)) == pytest.approx(float(dice), abs=1e-5)


def test_multiclass_dice_averages_classes():
    labels = np.array([[0, 1], [2, 2]])[None]
    probabilities = np.zeros((1, 2, 2, 3), "float32")
    probabilities[0, 0, 0, 0] = probabilities[0, 0, 1, 1] = probabilities[0, 1, 0, 2] = 1.0
    probabilities[0, 1, 1, 0] = 1.0  # wrong: class 0 instead of 2
    # class 0: overlap 1, |p|=2, |t|=1; class 1: 1,1,1; class 2: 1,1,2 (smooth 0)
    expected = 1 - np.mean([2 * 1 / 3, 2 * 1 / 2, 2 * 1 / 3])
    loss = segmentation.DiceLoss(from_logits=False, smooth=0.0)(labels, probabilities)
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_focal_loss_by_hand():
    p, y = P.ravel(), Y.ravel()
    cross_entropy = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    zero = segmentation.SparseFocalLoss(gamma=0.0, from_logits=False)(Y, P)
    assert float(zero) == pytest.approx(cross_entropy.mean(), rel=1e-4)
    p_true = np.where(y == 1, p, 1 - p)
    focal = segmentation.SparseFocalLoss(gamma=2.0, from_logits=False)(Y, P)
    assert float(focal) == pytest.approx(np.mean((1 - p_true) ** 2 * -np.log(p_true)), rel=1e-4)


def test_iou_and_pixel_error_by_hand():
    mask = np.array([[1, 1, 0], [0, 1, 0]], bool)
    prediction = np.array([[1, 0, 0], [1, 1, 0]], bool)
    assert segmentation.foreground_iou(mask, prediction) == pytest.approx(2 / 4)
    assert segmentation.pixel_error(mask, prediction) == pytest.approx(2 / 6)
    metric = segmentation.segmentation_metrics(1)[0]
    metric.update_state(mask[None, ..., None].astype("float32"), np.where(prediction, 3.0, -3.0)[None, ..., None])
    assert float(metric.result()) == pytest.approx(0.5)


def test_weight_map_emphasises_gaps_between_touching_objects():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 2:12] = True
    mask[5:15, 14:24] = True  # a 2-pixel gap at columns 12-13
    weights = segmentation.unet_weight_map(mask, w0=10, sigma=5, balance=False)
    # In the gap: d1 = 1, d2 = 2 from pixel column 12 (objects end at 11 and start at 14).
    assert weights[10, 12] == pytest.approx(1 + 10 * np.exp(-((1 + 2) ** 2) / 50), rel=1e-5)
    assert weights[10, 5] == pytest.approx(1.0)  # inside an object: no border term
    assert weights[10, 12] > weights[10, 27] > 1.0  # the gap outweighs open background
    balanced = segmentation.unet_weight_map(mask, balance=True)
    assert balanced[10, 5] == pytest.approx(0.5 / mask.mean())


# ----------------------------------------------------------------------------------------
# Overlap-tile inference and augmentation
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [keras.layers.Identity(), keras.layers.Cropping2D(10)])
def test_tiled_inference_reconstructs_images_exactly(layer):
    inputs = keras.Input((64, 64, 2))
    model = keras.Model(inputs, layer(inputs))  # same-size identity, or a valid-style centre crop
    image = np.random.default_rng(0).random((150, 171, 2)).astype("float32")
    np.testing.assert_array_equal(segmentation.predict_tiled(model, image), image)
    np.testing.assert_array_equal(segmentation.predict_tiled(model, image[:20, :30]), image[:20, :30])


def test_tiled_inference_checks_its_arguments():
    inputs = keras.Input((64, 64, 1))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    with pytest.raises(errors.InvalidArgumentError, match="even number"):
        segmentation.predict_tiled(model, np.zeros((80, 80, 1)), overlap=7)
    with pytest.raises(errors.InvalidArgumentError, match=r"\(height, width, 1\)"):
        segmentation.predict_tiled(model, np.zeros((80, 80, 3)))


def test_augmentation_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    masks = (rng.random((4, 64, 64, 1)) > 0.5).astype("float32")
    masks = np.repeat(np.repeat(masks[:, ::8, ::8], 8, axis=1), 8, axis=2)  # 8x8 blocks
    out = segmentation.augmentation(seed=3)({"images": masks.copy(), "segmentation_masks": masks}, training=True)
    images = keras.ops.convert_to_numpy(out["images"])
    moved = keras.ops.convert_to_numpy(out["segmentation_masks"])
    assert set(np.unique(moved)) <= {0.0, 1.0}  # labels stay labels
    assert not np.array_equal(moved, masks)  # something moved
    assert np.mean((images > 0.5) == (moved > 0.5)) > 0.95  # ... and the image moved with it


# ----------------------------------------------------------------------------------------
# Shipped ISBI 2012 weights
# ----------------------------------------------------------------------------------------


@requires_data("isbi2012_em")
def test_pretrained_unet_reaches_its_recorded_held_out_iou(monkeypatch):
    monkeypatch.setenv("KZOO_OFFLINE", "1")
    model = kzoo.get("unet_modern", pretrained=True)
    record = kzoo.registry.origin(model).weights
    images, masks = kzoo.data.load_isbi2012("train")
    scores, errors = [], []
    for index in range(25, 30):  # the held-out slices
        logits = segmentation.predict_tiled(model, images[index].astype("float32"))  # raw: the model scales
        scores.append(segmentation.foreground_iou(masks[index], logits[..., 0] > 0))
        errors.append(np.mean(masks[index] != (logits[..., 0] > 0)))  # pixel error, by hand (masks are boolean)
    assert np.mean(scores) == pytest.approx(record.metrics["foreground_iou"], abs=2e-3)
    assert np.mean(scores) > 0.8
    assert np.mean(errors) == pytest.approx(record.metrics["pixel_error"], abs=2e-3)


@requires_data("isbi2012_em")
def test_isbi_recipe_runs_in_quick_mode_and_reports_the_figures_of_the_file_it_wrote(tmp_path, quiet_examples):
    """examples/train_unet_isbi.py --quick. Its 2 short epochs leave the network near "all cell"
    (pixel error about 0.199, the all-cell figure), so the manifest has no quick range for it
    (``kzoo reproduce unet_modern:isbi2012`` is the full rerun); what is checked is that the
    figures it reports are those of the weights file it wrote, re-measured here."""
    code, _, _ = kzoo.examples.run_example(
        "train_unet_isbi", quick=True, output_dir=tmp_path, extra_args=["--log-dir", str(tmp_path / "tensorboard")]
    )
    assert code == 0
    reported = json.loads((tmp_path / "metrics.json").read_text())["records"]["unet_modern.isbi2012"]
    model = kzoo.get("unet_modern", base_filters=16, pretrained=tmp_path / "unet_modern_isbi2012.weights.h5")
    images, masks = kzoo.data.load_isbi2012("train")
    predictions = [segmentation.predict_tiled(model, images[i].astype("float32"))[..., 0] > 0 for i in range(25, 30)]
    errors = [segmentation.pixel_error(masks[25 + i], p) for i, p in enumerate(predictions)]
    ious = [segmentation.foreground_iou(masks[25 + i], p) for i, p in enumerate(predictions)]
    assert reported["pixel_error"] == pytest.approx(np.mean(errors), abs=1e-3)
    assert reported["foreground_iou"] == pytest.approx(np.mean(ious), abs=1e-3)
    assert len(list(tmp_path.glob("slice*_image_mask_prediction.png"))) == 5  # slice25_... is the main figure
    # Prediction maps are logged to TensorBoard during training (read back with its own reader).
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard" / "train"))
    accumulator.Reload()
    assert "samples/reconstructions" in accumulator.Tags()["tensors"]


def test_encoder_unets_take_pretrained_encoder_weights_by_tag(tmp_path, kzoo_home, http_files, temporary_registry):
    import hashlib

    from kzoo import weights as weights_lib

    keras.utils.set_random_seed(11)
    source = kzoo.get("resnet18", include_top=False, input_shape=(64, 64, 3), width=8)
    path = tmp_path / "encoder.weights.h5"
    source.save_weights(path)
    body = path.read_bytes()
    temporary_registry.weights(
        weights_lib.WeightsRecord(
            model="resnet18",
            tag="test_encoder",
            file="resnet18_test_encoder.weights.h5",
            url=http_files.add("encoder.weights.h5", body),
            sha256=hashlib.sha256(body).hexdigest(),
            size=len(body),
            num_classes=1000,
            input_shape=(64, 64, 3),
            include_top=False,
            builder_kwargs={"width": 8},
        )
    )
    model = kzoo.get(
        "unet_resnet18",
        input_shape=(64, 64, 1),
        encoder_weights="test_encoder",
        encoder_kwargs={"width": 8},
        decoder_filters=(8, 8, 8, 8, 8),
    )
    assert model.output_shape == (None, 64, 64, 1)
    np.testing.assert_array_equal(
        model.get_layer("conv4_block2_2_conv").get_weights()[0],
        source.get_layer("conv4_block2_2_conv").get_weights()[0],
    )
    np.testing.assert_allclose(  # grayscale input: the RGB stem summed over its channels
        model.get_layer("conv1_conv").get_weights()[0],
        source.get_layer("conv1_conv").get_weights()[0].sum(axis=2, keepdims=True),
        rtol=1e-6,
    )
    frozen = kzoo.freeze(model, until="conv5")
    assert "conv5_block2_2_conv" in frozen and not any(name.startswith("dec") for name in frozen)
