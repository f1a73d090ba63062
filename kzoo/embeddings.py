"""Word embeddings: word2vec's training examples and queries on the vectors.

- :func:`skipgram_examples` / :func:`cbow_examples` draw examples as word2vec does
  (subsampling, dynamic windows, unigram^3/4 negatives).
- :func:`nearest` and :func:`analogy`: queries on word embeddings; :func:`embedding_matrix`
  and :func:`load_embeddings` move vectors into a classifier's ``embedding`` layer.

:mod:`kzoo.text` re-exports all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kzoo.errors import InvalidArgumentError, expected_received

# --------------------------------------------------------------------------------------
# Embedding queries
# --------------------------------------------------------------------------------------


def _normalized(vectors: Any) -> np.ndarray:
    vectors = np.asarray(vectors, dtype="float32")
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _index(vocabulary: Sequence[str], word: str) -> int:
    try:
        return list(vocabulary).index(word)
    except ValueError:
        raise InvalidArgumentError(
            expected_received("word", "a word of the vocabulary", word, "Check spelling and lower case.")
        ) from None


def nearest(
    vectors: Any, vocabulary: Sequence[str], word: str, k: int = 5, *, exclude: Iterable[str] = ()
) -> list[tuple[str, float]]:
    """The ``k`` words whose vectors have the highest cosine similarity to ``word``'s.

    ``vocabulary`` is indexed like ``vectors``; entries 0 and 1 (padding and ``[UNK]`` of a
    TextVectorization vocabulary) are never returned.
    """
    return _closest(vectors, vocabulary, np.asarray(vectors, "float32")[_index(vocabulary, word)], k, {word, *exclude})


def analogy(vectors: Any, vocabulary: Sequence[str], a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
    """Words closest to ``a - b + c`` (``king - man + woman``), the three query words excluded (3CosAdd)."""
    unit = _normalized(vectors)
    query = unit[_index(vocabulary, a)] - unit[_index(vocabulary, b)] + unit[_index(vocabulary, c)]
    return _closest(vectors, vocabulary, query, k, {a, b, c})


def _closest(vectors: Any, vocabulary: Sequence[str], query: np.ndarray, k: int, exclude: set) -> list:
    unit = _normalized(vectors)
    scores = unit @ (query / max(float(np.linalg.norm(query)), 1e-12))
    order = np.argsort(-scores)
    words = list(vocabulary)
    result = []
    for i in order:
        if words[i] in exclude or i < 2:  # 0 and 1 are padding and [UNK]
            continue
        result.append((words[i], float(scores[i])))
        if len(result) == k:
            break
    return result


# --------------------------------------------------------------------------------------
# word2vec training examples
# --------------------------------------------------------------------------------------


def _unigram_sampler(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """Sampling probabilities of negatives: unigram counts ** 3/4, never padding or [UNK]."""
    weights = np.asarray(counts, "float64") ** power
    weights[:2] = 0.0
    return weights / weights.sum()


def _subsample(ids: np.ndarray, counts: np.ndarray, threshold: float, rng: Any) -> np.ndarray:
    """Drops frequent words as word2vec does: keep with probability (sqrt(f/t) + 1) * t/f."""
    frequency = np.asarray(counts, "float64")[ids] / max(float(np.sum(counts)), 1.0)
    keep = (np.sqrt(frequency / threshold) + 1.0) * threshold / np.maximum(frequency, 1e-12)
    return ids[(rng.random(len(ids)) < keep) & (ids > 1)]


def token_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each id occurs in the flat id array ``ids``."""
    return np.bincount(np.asarray(ids).ravel(), minlength=vocab_size)[:vocab_size]


def skipgram_examples(
    ids: np.ndarray,
    counts: np.ndarray,
    *,
    window: int = 4,
    num_negatives: int = 5,
    subsample: float = 1e-4,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Skip-gram examples from a flat id stream, as word2vec draws them.

    Frequent words are subsampled, each position uses a window of random size 1..``window``
    (nearer words count more), and every (target, context) pair gets ``num_negatives``
    candidates from the unigram distribution ** 3/4. Returns ``({"target", "context"},
    labels)`` with ``context`` ``(n, 1 + num_negatives)`` and labels ``[1, 0, ..., 0]``.
    """
    rng = np.random.default_rng(seed)
    stream = _subsample(np.asarray(ids), counts, subsample, rng)
    reach = rng.integers(1, window + 1, size=len(stream))
    targets, contexts = [], []
    for offset in range(1, window + 1):
        left, right = stream[:-offset], stream[offset:]
        for centre, neighbour, near in ((left, right, reach[:-offset]), (right, left, reach[offset:])):
            chosen = near >= offset
            targets.append(centre[chosen])
            contexts.append(neighbour[chosen])
    target, context = np.concatenate(targets), np.concatenate(contexts)
    order = rng.permutation(len(target))
    target, context = target[order], context[order]
    negatives = rng.choice(len(counts), size=(len(target), num_negatives), p=_unigram_sampler(counts))
    candidates = np.concatenate([context[:, None], negatives], axis=1).astype("int32")
    labels = np.zeros(candidates.shape, "float32")
    labels[:, 0] = 1.0
    return {"target": target[:, None].astype("int32"), "context": candidates}, labels


def cbow_examples(
    ids: np.ndarray,
    counts: np.ndarray,
    *,
    window: int = 4,
    num_negatives: int = 5,
    subsample: float = 1e-4,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """CBOW examples: the ``2 * window`` neighbours (0-padded at the ends) and candidates.

    Returns ``({"context", "candidates"}, labels)`` with the true centre word first.
    """
    rng = np.random.default_rng(seed)
    stream = _subsample(np.asarray(ids), counts, subsample, rng)
    padded = np.concatenate([np.zeros(window, stream.dtype), stream, np.zeros(window, stream.dtype)])
    positions = np.arange(len(stream))[:, None] + window
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    context = padded[positions + offsets].astype("int32")
    order = rng.permutation(len(stream))
    negatives = rng.choice(len(counts), size=(len(stream), num_negatives), p=_unigram_sampler(counts))
    candidates = np.concatenate([stream[:, None], negatives], axis=1)[order].astype("int32")
    labels = np.zeros(candidates.shape, "float32")
    labels[:, 0] = 1.0
    return {"context": context[order], "candidates": candidates}, labels


def embedding_matrix(
    vectors: Any, vocabulary: Sequence[str], target_vocabulary: Sequence[str], *, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Word vectors rearranged for another vocabulary (e.g. a classifier's ``embedding`` layer).

    Words the vectors do not know get small random vectors; padding (index 0) gets zeros.
    Returns the matrix and the fraction of ``target_vocabulary`` that was found.
    """
    vectors = np.asarray(vectors, "float32")
    index = {word: i for i, word in enumerate(vocabulary) if i >= 2}
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, float(vectors[2:].std()), (len(target_vocabulary), vectors.shape[1])).astype("float32")
    matrix[0] = 0.0
    found = 0
    for i, word in enumerate(target_vocabulary):
        if i >= 2 and word in index:
            matrix[i] = vectors[index[word]]
            found += 1
    return matrix, found / max(len(target_vocabulary) - 2, 1)


def load_embeddings(
    model: Any,
    vectors: Any,
    vocabulary: Sequence[str],
    target_vocabulary: Sequence[str],
    *,
    trainable: bool = False,
    layer: str = "embedding",
) -> float:
    """Puts word vectors (e.g. word2vec's) into a model's embedding layer, frozen by default.

    ``target_vocabulary`` is the vocabulary the model's ids index (its vectorizer's
    ``get_vocabulary()``). Returns the fraction of it the vectors covered.
    """
    embedding = model.get_layer(layer)
    matrix, found = embedding_matrix(vectors, vocabulary, target_vocabulary)
    expected = tuple(embedding.embeddings.shape)
    if matrix.shape != expected:
        raise InvalidArgumentError(
            expected_received(
                f"vectors for layer {layer!r}",
                f"shape {expected} (vocab_size, embedding_dim)",
                matrix.shape,
                "Build the model with vocab_size=len(target_vocabulary) and the vectors' embedding_dim.",
            )
        )
    embedding.embeddings.assign(matrix)
    embedding.trainable = trainable
    return found


def ranking_accuracy(
    model: Any, ids: np.ndarray, counts: np.ndarray, *, window: int = 4, subsample: float = 1e-4, seed: int = 123
) -> float:
    """How often a word2vec model scores the true word above all its sampled negatives.

    Examples are drawn from the id stream ``ids`` as in training (frequent words
    subsampled at ``subsample``, dynamic windows), negatives from ``counts`` (the training
    corpus' counts); chance is ``1 / (1 + num_negatives)``.
    """
    names = [tensor.name.split(":")[0] for tensor in model.inputs]
    num_negatives = int(model.inputs[1].shape[1]) - 1
    draw = skipgram_examples if names[0] == "target" else cbow_examples
    if names[0] != "target":
        window = int(model.inputs[0].shape[1]) // 2
    x, _ = draw(ids, counts, window=window, num_negatives=num_negatives, subsample=subsample, seed=seed)
    scores = np.asarray(model.predict([x[name] for name in names], batch_size=4096, verbose=0))
    return float(np.mean(scores[:, 0] > scores[:, 1:].max(axis=1)))


def corpus_lines(*names: str) -> list[str]:
    """The non-empty lines of shared-data corpora (``kzoo.data.load_text_corpus`` names),
    WikiText's ``= heading =`` lines left out."""
    from kzoo import data

    return [
        line
        for name in names
        for line in data.load_text_corpus(name).splitlines()
        if line.strip() and not line.strip().startswith("=")
    ]


def id_stream(vectorizer: Any, lines: Sequence[str]) -> np.ndarray:
    """All lines vectorized (ragged ids) and joined into one flat id array."""
    rows = vectorizer(list(lines)).numpy()
    return np.concatenate([np.asarray(row, "int64") for row in rows if len(row)])
