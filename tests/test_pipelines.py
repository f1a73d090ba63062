"""kzoo.data pipelines: image folders, arrays, text files and TFDS, and their errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo import errors

from conftest import requires_data


def write_image_folder(root, classes=("cat", "dog", "owl"), per_class=10, size=(30, 34), seed=0):
    """Class folders of mixed PNG/JPEG, grayscale/RGB images; class c is brighter with c."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            channels = 3 if i % 2 else 1
            base = 40 + 80 * index
            image = np.clip(rng.normal(base, 20, (*size, channels)), 0, 255).astype(np.uint8)
            if i % 3:
                (root / name / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
            else:
                (root / name / f"{i}.JPG").write_bytes(tf.io.encode_jpeg(image).numpy())
    return root


@pytest.fixture
def folder(tmp_path):
    return write_image_folder(tmp_path / "photos")


@pytest.fixture
def lenet3():
    return kzoo.get("lenet5", pretrained=True, num_classes=3)


def test_image_folder_is_sized_split_and_preprocessed_for_the_model(folder, lenet3):
    data = kzoo.data.image_folder(folder, model=lenet3, batch_size=4, validation_split=0.2, seed=1)
    assert data.class_names == ("cat", "dog", "owl")
    assert (data.train_size, data.validation_size) == (24, 6)
    assert data.input_shape == (28, 28, 1)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in data.train])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (24, 28, 28, 1) and x.dtype == np.float32
    # The pretrained model scales pixels itself, so the pipeline hands it raw 0-255 pixels.
    assert 0.0 <= x.min() and 1.0 < x.max() <= 255.0
    assert set(y.tolist()) <= {0, 1, 2}
    # Brightness encodes the class, so the labels really belong to the images.
    means = [x[y == c].mean() for c in range(3)]
    assert means[0] < means[1] < means[2]


def test_split_is_reproducible_with_the_seed(folder, lenet3):
    def validation_labels(seed):
        data = kzoo.data.image_folder(folder, model=lenet3, seed=seed, batch_size=64)
        return sorted(np.concatenate([y.numpy() for _, y in data.validation]).tolist()), data

    first, data = validation_labels(3)
    again, _ = validation_labels(3)
    assert first == again
    batches = [np.concatenate([x.numpy() for x, _ in data.validation]) for _ in range(2)]
    np.testing.assert_array_equal(*batches)  # validation: same order every epoch


def test_decoded_images_are_cached_after_the_first_epoch(tmp_path, lenet3):
    root = write_image_folder(tmp_path / "cached", per_class=4)
    data = kzoo.data.image_folder(root, model=lenet3, validation_split=0.0, batch_size=5)
    first = sum(int(x.shape[0]) for x, _ in data.train)
    shutil.rmtree(root)  # a second epoch must not read the files again
    second = sum(int(x.shape[0]) for x, _ in data.train)
    assert first == second == 12


def test_augmentation_changes_training_batches_only(folder, lenet3):
    data = kzoo.data.image_folder(
        folder,
        model=lenet3,
        validation_split=0.2,
        batch_size=64,
        augment=["flip", "crop", "rotation", "zoom", "noise", "grayscale"],
    )
    train_epochs = [np.sort(np.concatenate([x.numpy() for x, _ in data.train]).ravel()) for _ in range(2)]
    assert not np.allclose(*train_epochs)
    validation_epochs = [np.concatenate([x.numpy() for x, _ in data.validation]) for _ in range(2)]
    np.testing.assert_array_equal(*validation_epochs)
    assert validation_epochs[0].shape[1:] == (28, 28, 1)  # centre crop back to the model's size


def test_rgb_model_gets_three_channels(folder):
    model = kzoo.get("lenet5", num_classes=3, input_shape=(32, 32, 3))
    data = kzoo.data.image_folder(folder, model=model, batch_size=8)
    x, _ = next(iter(data.train))
    assert tuple(x.shape[1:]) == (32, 32, 3)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda root: None, "a directory of class-named subfolders"),
        (lambda root: (root / "only").mkdir(parents=True), "at least two class subfolders"),
        (lambda root: [(root / c).mkdir(parents=True) for c in ("a", "b")], "in class folder 'a'"),
    ],
)
def test_bad_folders_are_explained(tmp_path, make, fragment):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(errors.InvalidArgumentError, match=fragment):
        kzoo.data.image_folder(root)


def test_unreadable_image_is_named(folder):
    broken = folder / "dog" / "notes.png"
    broken.write_text("not an image")
    with pytest.raises(errors.InvalidArgumentError) as caught:
        kzoo.data.image_folder(folder)
    assert str(broken) in str(caught.value) and "Remove or re-save it" in str(caught.value)


def test_class_count_mismatch_names_the_fix(folder):
    model = kzoo.get("lenet5", pretrained=True)  # 10 classes, folder has 3
    with pytest.raises(errors.InvalidArgumentError, match=r"num_classes=3"):
        kzoo.data.image_folder(folder, model=model)


def test_channel_mismatch_is_refused(folder, lenet3):
    with pytest.raises(errors.InvalidArgumentError, match="to match the model's input"):
        kzoo.data.image_folder(folder, model=lenet3, channels=3)


def test_arrays_pipeline_and_its_errors(lenet3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 3, 50)
    data = kzoo.data.arrays(images, labels, model=lenet3, validation_split=0.2, batch_size=8)
    assert (data.train_size, data.validation_size) == (40, 10)
    x, _ = next(iter(data.validation))
    assert x.shape[1:] == (28, 28, 1) and 1.0 < float(tf.reduce_max(x)) <= 255.0  # raw: the model scales
    with pytest.raises(errors.InvalidArgumentError, match=r"shape \(N, 28, 28, 1\)"):
        kzoo.data.arrays(rng.integers(0, 256, (5, 32, 32, 1)), labels[:5], model=lenet3)
    with pytest.raises(errors.InvalidArgumentError, match=r"integers in \[0, 3\)"):
        kzoo.data.arrays(images[:5], np.array([0, 1, 2, 3, 1]), model=lenet3)
    with pytest.raises(errors.InvalidArgumentError, match="5 integer labels"):
        kzoo.data.arrays(images[:5], np.array([0, 1]), model=lenet3)


def test_text_file_tsv_and_csv(tmp_path):
    tsv = tmp_path / "reviews.tsv"
    tsv.write_text('sentence\tlabel\na "quoted" fine film \t1\ndull , slow \t0\nwonderful \t1\nbad \t0\n')
    data = kzoo.data.text_file(tsv, text_column="sentence", label_column="label", validation_split=0.25, batch_size=2)
    assert data.class_names == ("0", "1") and (data.train_size, data.validation_size) == (3, 1)
    texts = [t.decode() for batch, _ in data.train for t in batch.numpy()]
    assert 'a "quoted" fine film' in texts + [t.decode() for b, _ in data.validation for t in b.numpy()]
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text('text,label\n"great, really",pos\n"awful, truly",neg\nfine,pos\n')
    data = kzoo.data.text_file(csv_file, text_column="text", label_column="label", validation_split=0)
    assert data.class_names == ("neg", "pos")
    pairs = {t.decode(): int(y) for batch, labels in data.train for t, y in zip(batch.numpy(), labels.numpy())}
    assert pairs == {"great, really": 1, "awful, truly": 0, "fine": 1}


def test_text_file_errors(tmp_path):
    path = tmp_path / "one.tsv"
    path.write_text("sentence\tlabel\ngood\t1\nfine\t1\n")
    with pytest.raises(errors.InvalidArgumentError, match="at least two classes"):
        kzoo.data.text_file(path)
    with pytest.raises(errors.InvalidArgumentError, match=r"one of \['sentence', 'label'\]"):
        kzoo.data.text_file(path, text_column="text")
    with pytest.raises(errors.InvalidArgumentError, match="an existing CSV or TSV file"):
        kzoo.data.text_file(tmp_path / "absent.tsv")


@requires_data("sst2")
def test_sst2_through_text_file():
    root = kzoo.data.data_dir() / "sst2"
    data = kzoo.data.text_file(root / "train.tsv", validation_path=root / "dev.tsv", batch_size=256)
    assert (data.train_size, data.validation_size) == (67349, 872)
    assert data.class_names == ("0", "1")


def test_tfds_dataset_by_name_built_locally(tmp_path, lenet3):
    import tensorflow_datasets as tfds

    class KzooTestBlobs(tfds.core.GeneratorBasedBuilder):
        """Three classes of 20x20 RGB blobs, made by the test; no download."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(20, 20, 3)),
                        "label": tfds.features.ClassLabel(names=["red", "green", "blue"]),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(30, 0), "validation": self._generate_examples(9, 1)}

        def _generate_examples(self, count, seed):
            rng = np.random.default_rng(seed)
            for i in range(count):
                image = rng.integers(0, 60, (20, 20, 3)).astype(np.uint8)
                image[..., i % 3] += 150
                yield i, {"image": image, "label": i % 3}

    data = kzoo.data.tfds("kzoo_test_blobs", model=lenet3, data_dir=tmp_path, batch_size=8)
    assert data.class_names == ("red", "green", "blue")
    assert (data.train_size, data.validation_size) == (30, 9)
    x, y = next(iter(data.validation))
    assert tuple(x.shape[1:]) == (28, 28, 1) and 1.0 < float(tf.reduce_max(x)) <= 255.0  # raw: the model scales
    with pytest.raises(errors.InvalidArgumentError, match="registered TFDS name"):
        kzoo.data.tfds("kzoo_no_such_dataset", data_dir=tmp_path, download=False)
