"""ImageNet class names and ``decode_predictions`` for the classifiers' ``imagenet`` weights.

The 1,000 classes are the ILSVRC-2012 synsets in the order keras.applications' weights
use (sorted WordNet IDs). The IDs come with TensorFlow Datasets (its bundled
``imagenet2012/labels.txt``), so they are known offline; the readable names come from the
class index keras.applications publishes, fetched once into kzoo's weights cache through
the same verified download as weights (official URL, the MD5 keras pins). Offline and not
cached, :func:`decode_predictions` names each class by its WordNet ID and says so once.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kzoo.errors import DataNotFoundError, DownloadError, InvalidArgumentError, OfflineError, expected_received
from kzoo.weights import WeightsRecord, fetch

logger = logging.getLogger("kzoo")

CLASS_INDEX = WeightsRecord(
    model="imagenet",
    tag="class_index",
    file="imagenet_class_index.json",
    url="https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
    md5="c2c37ea517e94d9795004a39431a14cb",  # as keras.applications.imagenet_utils pins it
    dataset="ImageNet ILSVRC-2012 class index (WordNet ID and name of each output)",
    license="As published with keras.applications",
    source="keras.applications (Keras team)",
)


@functools.lru_cache(maxsize=1)
def wordnet_ids() -> tuple[str, ...]:
    """The 1,000 ILSVRC-2012 WordNet IDs in output order (from TensorFlow Datasets' package data)."""
    spec = importlib.util.find_spec("tensorflow_datasets")
    path = Path(spec.origin).parent / "datasets" / "imagenet2012" / "labels.txt" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise DataNotFoundError(
            f"expected ImageNet's labels.txt inside tensorflow-datasets, received {path}. "
            "Install kzoo's dependencies (pip install tensorflow-datasets)."
        )
    ids = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if len(ids) != 1000 or list(ids) != sorted(ids):
        raise DataNotFoundError(f"expected 1,000 sorted WordNet IDs in {path}, received {len(ids)} lines.")
    return ids


@functools.lru_cache(maxsize=1)
def _names() -> tuple[str, ...] | None:
    try:
        path = fetch(CLASS_INDEX, progress=False)
    except (OfflineError, DownloadError) as error:
        logger.warning("kzoo: ImageNet class names unavailable (%s); classes are named by WordNet ID.", error)
        return None
    index = json.loads(path.read_text())
    ids = wordnet_ids()
    if len(index) != 1000 or any(index[str(i)][0] != ids[i] for i in range(1000)):
        raise DataNotFoundError(f"the class index at {path} does not list the 1,000 ILSVRC-2012 classes in order.")
    return tuple(index[str(i)][1] for i in range(1000))


class WordNetIds(Sequence):
    """The 1,000 WordNet IDs as a sequence read on first use, not when kzoo is imported.

    The official ImageNet weight records carry it as their ``class_names``; without
    tensorflow-datasets (a JAX-only install) it is empty, as if the record named no classes.
    """

    def _ids(self) -> tuple[str, ...]:
        try:
            return wordnet_ids()
        except DataNotFoundError:
            return ()

    def __len__(self) -> int:
        return len(self._ids())

    def __getitem__(self, index: Any) -> Any:
        return self._ids()[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Sequence,)) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self._ids())

    def __repr__(self) -> str:
        return f"WordNetIds({len(self)} ids)"


def class_names() -> tuple[str, ...]:
    """Readable names of the 1,000 classes (WordNet IDs when the class index cannot be had)."""
    return _names() or wordnet_ids()


def decode_predictions(predictions: Any, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """The ``top`` classes of each row of ImageNet predictions: ``(wordnet_id, name, probability)``.

    Args:
        predictions: ``(batch, 1000)`` logits (what kzoo's heads output) or probabilities;
            rows that are not probability distributions get a softmax.
        top: How many classes per row, most probable first.
    """
    predictions = np.asarray(predictions, dtype="float64")
    if predictions.ndim != 2 or predictions.shape[1] != 1000:
        raise InvalidArgumentError(
            expected_received(
                "predictions",
                "a (batch, 1000) array of ImageNet logits or probabilities",
                f"shape {predictions.shape}",
                "Predict with an ImageNet head, e.g. kzoo.get('resnet50', pretrained='imagenet').",
            )
        )
    if not isinstance(top, int) or not 1 <= top <= 1000:
        raise InvalidArgumentError(expected_received("top", "an int from 1 to 1000", top))
    is_probability = np.all(predictions >= 0) and np.allclose(predictions.sum(axis=1), 1.0, atol=1e-3)
    if not is_probability:
        shifted = np.exp(predictions - predictions.max(axis=1, keepdims=True))
        predictions = shifted / shifted.sum(axis=1, keepdims=True)
    ids, names = wordnet_ids(), class_names()
    decoded = []
    for row in predictions:
        best = np.argsort(-row, kind="stable")[:top]
        decoded.append([(ids[i], names[i], float(row[i])) for i in best])
    return decoded
