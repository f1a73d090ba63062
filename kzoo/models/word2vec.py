"""word2vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling.

Both models score candidate words against an input: the true word (label 1) and
``num_negatives`` words drawn from the unigram distribution raised to 3/4 (label 0),
trained with a sigmoid cross-entropy on the logits. The word vectors are the weights of
``target_embedding`` (:func:`word_vectors`); ``context_embedding`` holds the output vectors.

- Skip-gram: ``target`` ``(batch, 1)`` and ``context`` ``(batch, 1 + num_negatives)`` ->
  logits ``(batch, 1 + num_negatives)``: does each candidate appear near the target?
- CBOW: ``context`` ``(batch, 2 * window)`` (0 = padding at text edges, masked) and
  ``candidates`` ``(batch, 1 + num_negatives)`` -> logits: which candidate is the centre
  word of the averaged context?

Training examples come from :func:`kzoo.text.skipgram_examples` / :func:`kzoo.text.cbow_examples`.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.models.rnn import _positive_int, token_inputs
from kzoo.registry import ModelSpec, register_model

PAPER = (
    "Mikolov, Sutskever, Chen, Corrado & Dean 2013, Distributed representations of words and phrases "
    "and their compositionality (NeurIPS); Mikolov et al. 2013, Efficient estimation of word representations"
)


def word2vec(
    *,
    vocab_size: int = 10000,
    embedding_dim: int = 64,
    num_negatives: int = 5,
    architecture: str = "skipgram",
    window: int = 4,
    name: str | None = None,
) -> keras.Model:
    """A word2vec model with negative sampling.

    Args:
        vocab_size: Number of word ids (0 = padding, 1 = unknown).
        embedding_dim: Width of the word vectors.
        num_negatives: Negative samples per positive.
        architecture: ``"skipgram"`` or ``"cbow"``.
        window: CBOW only: words each side of the centre (the context input is ``2 * window`` wide).
        name: Model name (default ``word2vec_<architecture>``).

    Returns:
        A functional ``keras.Model`` giving logits ``(batch, 1 + num_negatives)``.
    """
    from kzoo.errors import InvalidArgumentError, expected_received

    name = name or f"word2vec_{architecture}"
    if architecture not in ("skipgram", "cbow"):
        raise InvalidArgumentError(expected_received(f"{name}: architecture", "'skipgram' or 'cbow'", architecture))
    for what, value in (
        ("vocab_size", vocab_size),
        ("embedding_dim", embedding_dim),
        ("num_negatives", num_negatives),
        ("window", window),
    ):
        _positive_int(name, what, value)
    candidates_count = 1 + num_negatives
    # CBOW pads the context at the edges of a text with 0, which the average must skip.
    target_embedding = keras.layers.Embedding(
        vocab_size, embedding_dim, mask_zero=architecture == "cbow", name="target_embedding"
    )
    if architecture == "skipgram":
        target = keras.Input(shape=(1,), dtype="int32", name="target")
        candidates = keras.Input(shape=(candidates_count,), dtype="int32", name="context")
        inputs = [target, candidates]
        query = target_embedding(target)  # (batch, 1, dim)
    else:
        context = keras.Input(shape=(2 * window,), dtype="int32", name="context")
        candidates = keras.Input(shape=(candidates_count,), dtype="int32", name="candidates")
        inputs = [context, candidates]
        query = keras.layers.GlobalAveragePooling1D(name="context_mean")(target_embedding(context))
        query = keras.layers.Reshape((1, embedding_dim), name="query")(query)
    scored = keras.layers.Embedding(vocab_size, embedding_dim, name="context_embedding")(candidates)
    logits = keras.layers.Dot(axes=(2, 2), name="scores")([query, scored])  # (batch, 1, candidates)
    logits = keras.layers.Flatten(name="flatten")(logits)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(inputs, logits, name=name)


def word_vectors(model: keras.Model) -> Any:
    """The word vectors ``(vocab_size, embedding_dim)`` of a word2vec model, as NumPy."""
    return keras.ops.convert_to_numpy(model.get_layer("target_embedding").embeddings)


def _inputs(model: Any, batch_size: int, rng: Any) -> Any:
    arrays = token_inputs(model, batch_size, rng)
    high = model.get_layer("context_embedding").input_dim
    arrays[1] = rng.integers(1, high, size=arrays[1].shape).astype("int32")  # candidates are never padding
    return arrays


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "word2vec_cbow": {"num_params": 1_280_000, "input_shape": None},
    "word2vec_skipgram": {"num_params": 1_280_000, "input_shape": None},
}


for _architecture, _description in (
    ("skipgram", "word2vec skip-gram with negative sampling: a word predicts its neighbours."),
    ("cbow", "word2vec CBOW with negative sampling: the averaged neighbours predict the word."),
):
    register_model(
        ModelSpec(
            name=f"word2vec_{_architecture}",
            **CARD_FACTS[f"word2vec_{_architecture}"],
            builder=word2vec,
            family="word2vec",
            task="text-embedding",
            paper=PAPER,
            kwargs={"architecture": _architecture},
            test_kwargs={"vocab_size": 50, "embedding_dim": 8, "num_negatives": 2, "window": 2},
            head_layers=(),
            stages=("target_embedding", "context_embedding"),
            make_inputs=_inputs,
            description=_description,
            example=(
                "import kzoo\n"
                f"model = kzoo.get('word2vec_{_architecture}', pretrained=True)   # WikiText-2 + Tiny Shakespeare\n"
                "vectors, vocabulary = kzoo.text.embeddings_for(model)\n"
                "print(kzoo.text.nearest(vectors, vocabulary, 'king'))"
            ),
        )
    )
