"""The shared data setting and the dataset readers."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import kzoo
from kzoo import errors

from conftest import requires_data


def test_kzoo_data_dir_setting_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("KZOO_DATA_DIR", str(tmp_path))
    assert kzoo.data.data_dir() == tmp_path
    assert not kzoo.data.has_data("mnist")


def test_missing_dataset_names_the_path_and_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("KZOO_DATA_DIR", str(tmp_path))
    with pytest.raises(errors.DataNotFoundError) as caught:
        kzoo.data.load_mnist("test")
    assert str(tmp_path / "mnist") in str(caught.value)
    assert "KZOO_DATA_DIR" in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)


def test_bad_split_is_an_argument_error():
    with pytest.raises(errors.InvalidArgumentError, match="'train' or 'test'"):
        kzoo.data.load_mnist("validation")


def test_damaged_idx_file_is_reported(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    with gzip.open(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(b"\x00\x00\x08\x01" + b"\x00" * 12)  # a label-file magic number
    with gzip.open(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(b"\x00\x00\x08\x01" + b"\x00" * 4)
    monkeypatch.setenv("KZOO_DATA_DIR", str(tmp_path))
    with pytest.raises(errors.DataNotFoundError, match="magic number 2051"):
        kzoo.data.load_mnist("test")


@requires_data("mnist")
def test_mnist_test_split_matches_its_manifest():
    images, labels = kzoo.data.load_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_uci_digits_are_framed_like_mnist():
    images, labels = kzoo.data.load_uci_digits()
    assert images.shape == (1797, 28, 28) and images.dtype == np.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    # Like MNIST: a 20x20 digit centred by mass in a 28x28 field, so the border holds little ink.
    border = images[:, :3].sum() + images[:, -3:].sum() + images[:, :, :3].sum() + images[:, :, -3:].sum()
    assert border / images.sum() < 0.02
    rows = np.arange(28)
    centre = (images.sum(axis=2) * rows).sum(axis=1) / images.sum(axis=(1, 2))
    assert np.all(np.abs(centre - 14) < 2)
