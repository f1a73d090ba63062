"""Datasets: the shared real datasets kzoo trains and evaluates on, read through one setting.

The shared data directory (MNIST, ISBI 2012, SST-2, CoNLL-2003, ...) is never part of
the package. kzoo finds it through ``KZOO_DATA_DIR``; without it, ``shared/data`` beside
the checkout (``../shared/data`` from the repository root) or beside the current
directory. Functions that need a missing dataset raise
:class:`kzoo.errors.DataNotFoundError` naming the path they looked at.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from kzoo.errors import DataNotFoundError, InvalidArgumentError, expected_received

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}


def data_dir() -> Path:
    """The shared data directory: ``$KZOO_DATA_DIR``, else ``../shared/data`` beside the checkout.

    The returned path may not exist; :func:`has_data` tells.
    """
    if os.environ.get("KZOO_DATA_DIR"):
        return Path(os.environ["KZOO_DATA_DIR"]).expanduser()
    checkout = Path(__file__).resolve().parent.parent
    candidates = [checkout.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def has_data(name: str) -> bool:
    """True when the shared dataset directory ``name`` (e.g. ``"mnist"``) is present."""
    return (data_dir() / name).is_dir()


def _require(name: str) -> Path:
    path = data_dir() / name
    if not path.is_dir():
        raise DataNotFoundError(
            f"dataset {name!r} not found: expected the directory {path}. Set KZOO_DATA_DIR to the folder "
            "that holds the shared datasets (the one with MANIFEST.md)."
        )
    return path


def _read_idx(path: Path, offset: int, magic: int) -> np.ndarray:
    if not path.is_file():
        raise DataNotFoundError(f"expected the file {path}; the shared MNIST copy is incomplete.")
    raw = gzip.open(path).read()
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataNotFoundError(expected_received(f"idx file {path}", f"magic number {magic}", found))
    return np.frombuffer(raw, np.uint8, offset=offset)


def load_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST from the shared data directory.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).

    Returns:
        ``(images, labels)``: uint8 arrays of shape ``(N, 28, 28)`` and ``(N,)``.

    Example:
        >>> import kzoo
        >>> images, labels = kzoo.data.load_mnist("test")  # doctest: +SKIP
    """
    if split not in _MNIST_FILES:
        raise InvalidArgumentError(expected_received("load_mnist(split)", "'train' or 'test'", split))
    folder = _require("mnist")
    image_file, label_file, count = _MNIST_FILES[split]
    images = _read_idx(folder / image_file, 16, 2051).reshape(-1, 28, 28)
    labels = _read_idx(folder / label_file, 8, 2049)
    if len(images) != count or len(labels) != count:
        raise DataNotFoundError(
            expected_received(f"MNIST {split} in {folder}", f"{count} images and labels", (len(images), len(labels)))
        )
    return images, labels


def load_uci_digits(size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """The UCI handwritten digits that scikit-learn ships (1,797 images), framed like MNIST.

    The 8x8 images (values 0-16) are scaled to 0-255, resized so the digit fills a 20x20
    box, and placed in a ``size`` x ``size`` field centred on their centre of mass, the
    way MNIST was made. No network access is needed.

    Returns:
        ``(images, labels)``: uint8 ``(1797, size, size)`` and ``(1797,)``.
    """
    import keras
    from sklearn.datasets import load_digits

    digits = load_digits()
    box = round(size * 20 / 28)
    small = digits.images.astype("float32")[..., None] * (255.0 / 16.0)
    resized = keras.ops.convert_to_numpy(keras.ops.image.resize(small, (box, box), interpolation="bilinear"))[..., 0]
    resized = np.clip(resized, 0, 255)
    framed = np.zeros((len(resized), size, size), np.float32)
    rows, cols = np.mgrid[0:box, 0:box]
    for index, digit in enumerate(resized):
        mass = digit.sum() or 1.0
        centre_row, centre_col = (rows * digit).sum() / mass, (cols * digit).sum() / mass
        top = int(round(size / 2 - centre_row))
        left = int(round(size / 2 - centre_col))
        top, left = min(max(top, 0), size - box), min(max(left, 0), size - box)
        framed[index, top : top + box, left : left + box] = digit
    return framed.round().astype(np.uint8), digits.target.astype(np.uint8)
