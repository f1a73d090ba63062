"""The shared real datasets kzoo trains on: MNIST, ISBI 2012, SST-2, CoNLL-2003, text corpora.

The shared data directory is never part of the package. kzoo finds it through
``KZOO_DATA_DIR``; without it, ``shared/data`` beside the checkout (``../shared/data`` from
the repository root) or beside the current directory. Functions that need a missing dataset
raise :class:`kzoo.errors.DataNotFoundError` naming the path they looked at. scikit-learn's
UCI digits come with :func:`load_uci_digits`. :mod:`kzoo.data` re-exports every reader.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
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


def load_isbi2012(split: str = "train") -> tuple[np.ndarray, np.ndarray | None]:
    """The ISBI 2012 EM membrane slices from the shared data directory (the U-Net paper's data).

    Args:
        split: ``"train"`` (30 slices with masks) or ``"test"`` (30 slices, no public masks).

    Returns:
        ``(images, masks)``: uint8 ``(30, 512, 512)`` and boolean ``(30, 512, 512)``, True on
        cell interiors and False on membranes; ``masks`` is ``None`` for the test split.
    """
    from PIL import Image

    if split not in ("train", "test"):
        raise InvalidArgumentError(expected_received("load_isbi2012(split)", "'train' or 'test'", split))
    folder = _require("isbi2012_em")
    image_dir = folder / "train" / "image" if split == "train" else folder / "test"
    paths = [image_dir / f"{index}.png" for index in range(30)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataNotFoundError(f"ISBI 2012 {split} slices are incomplete: expected {missing[0]} (and 29 more).")
    images = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])
    if split == "test":
        return images, None
    masks = np.stack(
        [np.asarray(Image.open(folder / "train" / "label" / f"{i}.png").convert("L")) > 127 for i in range(30)]
    )
    return images, masks


def _check_split_name(what: str, split: str, choices: tuple[str, ...]) -> None:
    if split not in choices:
        raise InvalidArgumentError(expected_received(f"{what} split", f"one of {choices}", split))


def load_sst2(split: str = "train") -> tuple[list[str], np.ndarray]:
    """GLUE SST-2 sentences and binary sentiment labels (1 = positive) from the shared data.

    ``split`` is ``"train"`` (67,349) or ``"dev"`` (872; the test split has no labels).
    The sentences come lower-cased and tokenized, as GLUE distributes them.
    """
    import csv

    _check_split_name("SST-2", split, ("train", "dev"))
    path = _require("sst2") / f"{split}.tsv"
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    sentence, label = header.index("sentence"), header.index("label")
    return [row[sentence].strip() for row in rows], np.asarray([int(row[label]) for row in rows], "int32")


def sst2_sentences(texts: Sequence[str] | None = None) -> list[str]:
    """The whole sentences among SST-2 phrases: those no longer phrase contains, longest first.

    SST-2's training split holds every phrase of each review sentence, so its raw text says
    each word many times over; unlabeled text for pretraining wants each sentence once.
    ``texts`` defaults to the training phrases (about 8,000 sentences, 158,000 words); phrases
    of fewer than 4 words are left out (nearly all are pieces of longer ones).
    """
    if texts is None:
        texts, _ = load_sst2("train")
    kept: list[str] = []
    joined, pending = "", []  # the kept sentences, searched as one string, rebuilt every 256
    for text in sorted({t.strip() for t in texts}, key=lambda t: (-len(t), t)):
        if len(text.split()) < 4 or f" {text} " in joined or any(f" {text} " in f" {p} " for p in pending):
            continue
        kept.append(text)
        pending.append(text)
        if len(pending) == 256:
            joined, pending = " " + " \n ".join(kept) + " ", []
    return kept


def sst2_validation_split(
    texts: Sequence[str], labels: np.ndarray, *, sentences: int = 1000, seed: int = 0
) -> tuple[tuple[list[str], np.ndarray], tuple[list[str], np.ndarray]]:
    """SST-2 train split into ``(train, validation)`` without leaking phrases.

    SST-2's training set holds every phrase of each review sentence, so a random split
    would mostly hold out pieces of sentences still in training. Instead, ``sentences``
    long phrases (15 words or more: probably whole sentences) are held out, and every
    training phrase contained in one of them is dropped.
    """
    rng = np.random.default_rng(seed)
    long_phrases = [i for i, t in enumerate(texts) if len(t.split()) >= 15]
    held_out = set(rng.choice(long_phrases, size=min(sentences, len(long_phrases) // 4), replace=False).tolist())
    joined = "\n".join(texts[i] for i in held_out)
    train = [i for i, t in enumerate(texts) if i not in held_out and t not in joined]
    validation = sorted(held_out)
    labels = np.asarray(labels)
    return (
        ([texts[i] for i in train], labels[train]),
        ([texts[i] for i in validation], labels[validation]),
    )


def load_conll2003(split: str = "train") -> tuple[list[list[str]], list[list[str]]]:
    """CoNLL-2003 English NER sentences and their IOB1 tags from the shared data.

    ``split``: ``"train"`` (14,041 sentences), ``"testa"`` (dev, 3,250) or ``"testb"``
    (test, 3,453). ``-DOCSTART-`` lines are dropped. The Reuters text is for research use
    only: it stays in the shared data and never enters kzoo's files.
    """
    _check_split_name("CoNLL-2003", split, ("train", "testa", "testb"))
    sentences, tags, words, labels = [], [], [], []
    with open(_require("conll2003") / f"eng.{split}", encoding="utf-8") as handle:
        for line in [*handle, ""]:
            parts = line.split()
            if parts and parts[0] != "-DOCSTART-":
                words.append(parts[0])
                labels.append(parts[-1])
            elif not parts and words:
                sentences.append(words)
                tags.append(labels)
                words, labels = [], []
    return sentences, tags


def load_text_corpus(name: str) -> str:
    """A raw text corpus from the shared data.

    ``name``: ``"tinyshakespeare"``, ``"wikitext2-valid"``, ``"wikitext2-test"``, or
    ``"sst2-train"``: the sentences of SST-2's training split without their labels, one per
    line (:func:`sst2_sentences`), for task-adaptive pretraining. SST-2 dev never enters it.
    """
    if name == "sst2-train":
        return "\n".join(sst2_sentences()) + "\n"
    files = {
        "tinyshakespeare": ("tinyshakespeare", "input.txt"),
        "wikitext2-valid": ("wikitext2", "valid.txt"),
        "wikitext2-test": ("wikitext2", "test.txt"),
    }
    _check_split_name("text corpus", name, (*files, "sst2-train"))
    folder, file = files[name]
    path = _require(folder) / file
    if not path.is_file():
        candidates = sorted(p.name for p in path.parent.glob("*.txt"))
        raise DataNotFoundError(f"expected {path}, received a folder holding {candidates}.")
    return path.read_text(encoding="utf-8")


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


# ======================================================================================
# User datasets as tf.data pipelines, sized and preprocessed for a model
# ======================================================================================
