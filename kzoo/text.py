"""Text pipelines for the sequence models: tokenize, bucket, tag, score and embed.

- :func:`vectorizer`: a vocabulary learned from texts with ``keras.layers.TextVectorization``
  (a maintained tokenizer; kzoo adds no tokenizer of its own).
- :func:`text_datasets` and :func:`tagging_datasets`: ``tf.data`` pipelines that pad each
  batch to one of a few fixed lengths (``bucket_by_sequence_length`` with
  ``pad_to_bucket_boundary``), so an XLA-compiled model compiles once per length bucket
  instead of once per sentence length.
- :func:`end_to_end`: the classifier with its vectorizer in front, so a raw string goes in
  at inference and the vocabulary is saved inside the ``.keras`` file.
- :class:`TokenFeatures`: hashed word ids (``keras.layers.Hashing``) and byte-level
  character ids for taggers; nothing derived from the training text (no vocabulary) is
  needed to use the weights, which is how kzoo's CoNLL-2003 tagger ships.
- :func:`predict_tags` and :func:`evaluate_tagger`: a tagger's tags over a dataset, and
  their entity scores (a CRF tagger's tags are its Viterbi paths).
- :func:`conll_f1`: entity-level precision/recall/F1 counted the way the CoNLL ``conlleval``
  script counts them (a chunk is right only if its type, start and end all are).
- :func:`nearest` and :func:`analogy`: queries on word embeddings (word2vec).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kzoo import tokenizers as tokenizers_lib
from kzoo.embeddings import (  # noqa: F401  (re-exported: kzoo.text.nearest etc. keep working)
    analogy,
    cbow_examples,
    corpus_lines,
    embedding_matrix,
    id_stream,
    load_embeddings,
    nearest,
    ranking_accuracy,
    skipgram_examples,
    token_counts,
)
from kzoo.errors import InvalidArgumentError, expected_received, import_tensorflow
from kzoo.tokenizers import (  # noqa: F401  (re-exported: kzoo.text.TokenFeatures etc. keep working)
    BERT_RESERVED,
    TokenFeatures,
    WordPieceTokenizer,
    wordpiece_vocabulary,
)

vectorizer = tokenizers_lib.vectorizer  # re-exported (parameters below are named vectorizer too)

DEFAULT_LENGTHS = (16, 32, 64, 128)
CONLL_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


# --------------------------------------------------------------------------------------
# Vocabulary and bucketing
# --------------------------------------------------------------------------------------


def _check_lengths(lengths: Any) -> tuple[int, ...]:
    lengths = tuple(lengths)
    if not lengths or any(not isinstance(n, int) or n < 1 for n in lengths) or list(lengths) != sorted(set(lengths)):
        raise InvalidArgumentError(
            expected_received("lengths", "increasing positive ints, e.g. (16, 32, 64, 128)", lengths)
        )
    return lengths


def bucket(
    dataset: Any, *, batch_size: int, lengths: Sequence[int] = DEFAULT_LENGTHS, drop_remainder: bool = False
) -> Any:
    """Batches variable-length ``(features, target[, weights])`` examples padded to fixed lengths.

    Every sequence (the features, and the target when it is a sequence of the same
    length) is cut to ``max(lengths)`` and padded with 0 to the smallest length in
    ``lengths`` that holds it, so batches take only ``len(lengths)`` sequence shapes.
    ``drop_remainder`` drops each bucket's last, smaller batch of an epoch, which halves
    the shapes an XLA step compiles for (training); keep it off for evaluation.
    """
    tf = import_tensorflow("kzoo.text pipelines (tf.data)")

    lengths = _check_lengths(lengths)
    longest = lengths[-1]

    def first(features: Any) -> Any:
        return tf.nest.flatten(features)[0]

    def cut(features: Any, target: Any, *weights: Any) -> Any:
        features = tf.nest.map_structure(lambda t: t[:longest], features)
        if target.shape.rank:  # a tag per token (and a weight per token)
            target, weights = target[:longest], tuple(w[:longest] for w in weights)
        return (features, target, *weights)

    return dataset.map(cut, num_parallel_calls=tf.data.AUTOTUNE).bucket_by_sequence_length(
        element_length_func=lambda features, *rest: tf.shape(first(features))[0],
        bucket_boundaries=[n + 1 for n in lengths],
        bucket_batch_sizes=[batch_size] * (len(lengths) + 1),
        pad_to_bucket_boundary=True,
        drop_remainder=drop_remainder,
    )


def text_datasets(
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    vectorizer: Any,
    batch_size: int = 32,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    shuffle: bool = True,
    seed: int = 0,
) -> Any:
    """``(token ids, label)`` batches for a text classifier, padded to length buckets.

    Args:
        texts: Raw strings.
        labels: One integer class per text.
        vectorizer: From :func:`vectorizer` (ragged output), or a
            :class:`WordPieceTokenizer` for BERT models (dict inputs).
        batch_size: Batch size.
        lengths: Padded lengths; texts longer than the last are cut.
        shuffle: Reshuffle every epoch and drop each length bucket's last partial batch
            (training); ``False`` keeps every example in order of arrival (evaluation).
        seed: Shuffle seed.
    """
    tf = import_tensorflow("kzoo.text pipelines (tf.data)")

    texts, labels = list(texts), np.asarray(labels)
    if len(texts) != len(labels) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidArgumentError(
            expected_received("labels", f"{len(texts)} integer labels, one per text", f"{labels.dtype} {labels.shape}")
        )
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(texts, tf.string), labels.astype("int32")))
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    # Vectorize many texts per call (much faster than one at a time), then bucket.
    # A WordPieceTokenizer gives a dict of ragged BERT inputs, a vectorizer ragged ids.
    encode = getattr(vectorizer, "ragged_inputs", vectorizer)

    def vectorize(x: Any, y: Any) -> Any:
        return tf.nest.map_structure(lambda t: tf.cast(t, tf.int32), encode(x)), y

    dataset = dataset.batch(1024).map(vectorize).unbatch()
    return bucket(dataset, batch_size=batch_size, lengths=lengths, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)


def end_to_end(model: Any, vectorizer: Any, *, max_length: int = DEFAULT_LENGTHS[-1], name: str | None = None) -> Any:
    """``model`` with ``vectorizer`` in its graph: raw strings in, the model's outputs out.

    The vectorizer is a layer of the returned model, so its vocabulary is saved inside the
    ``.keras`` file and a SavedModel export takes strings. ``predict`` takes a list of strings,
    a NumPy string array or a ``tf.constant``. Texts are cut to ``max_length`` tokens; the
    classifiers mask padding, so the logits are those of the bucketed training pipeline. (To
    tokenize outside the graph instead, as the pretrained models do, see :func:`with_text`.)
    WordPiece tokenizers are made of tensorflow-text ops, not a Keras layer: use the BERT model
    itself, which takes raw strings (``kzoo.get("bert_tiny_classifier", pretrained="sst2")``).

    Raises:
        InvalidArgumentError: ``vectorizer`` is not a ``TextVectorization`` layer, or
            ``max_length`` is not a positive int.
    """
    import keras

    from kzoo import identity as identity_lib

    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise InvalidArgumentError(
            expected_received(
                "end_to_end: max_length",
                "a positive int (tokens kept of each text)",
                max_length,
                f"For example max_length={DEFAULT_LENGTHS[-1]}, the longest length bucket of text_datasets.",
            )
        )

    if isinstance(vectorizer, WordPieceTokenizer) or not hasattr(vectorizer, "get_vocabulary"):
        raise InvalidArgumentError(
            expected_received(
                "end_to_end: vectorizer",
                "a keras TextVectorization layer (kzoo.text.vectorizer)",
                type(vectorizer).__name__,
                "A BERT model from kzoo.get takes raw strings itself; for your own BERT use "
                "kzoo.text.with_text(model, tokenizer).",
            )
        )
    config = vectorizer.get_config()
    fixed = keras.layers.TextVectorization(
        standardize=config["standardize"],
        split=config["split"],
        output_mode="int",
        output_sequence_length=max_length,
        vocabulary=vectorizer.get_vocabulary()[2:],
        name="vectorizer",
    )
    text = keras.Input(shape=(1,), dtype="string", name="text")
    outputs = model(keras.ops.cast(fixed(text), "int32"))
    plain = keras.Model(text, outputs, name=name or f"{model.name}_text")
    inner = identity_lib.of(model) or identity_lib.ModelIdentity()
    # Its own identity says the strings go into the graph as they are (inputs.prepare turns a
    # list or NumPy array of them into the (N, 1) string tensor the input takes).
    identity = inner.replace(text={"kind": "strings"}, preprocessing=None, preprocessing_in_model=False)
    return identity_lib.attach(plain, identity)


def _text_settings(model: Any, kind: str, expected: str, fix: str) -> dict[str, Any]:
    """The text settings a model carries in its kzoo identity, checked to be of ``kind``."""
    from kzoo import identity as identity_lib

    identity = identity_lib.of(model)
    settings = identity.text if identity is not None else None
    if not settings or settings.get("kind") != kind:
        raise InvalidArgumentError(expected_received("model", expected, getattr(model, "name", model), fix))
    return settings


def vectorizer_for(model: Any) -> Any:
    """The vectorizer a pretrained text ``model`` (from :func:`kzoo.get`) was trained with.

    Its vocabulary travels inside the model, so this works on a reloaded ``.keras`` file too.
    """
    from kzoo import inputs

    _text_settings(
        model,
        "vocabulary",
        "a model from kzoo.get(name, pretrained=TAG) whose weights carry a vocabulary",
        "Build your own with kzoo.text.vectorizer(texts).",
    )
    return inputs.text_encoder(model)


def with_text(model: Any, encoder: Any, *, max_length: int | None = DEFAULT_LENGTHS[-1]) -> Any:
    """Makes ``model`` (a kzoo model) carry ``encoder``'s vocabulary, so it takes raw strings.

    For a text model you trained yourself on :func:`text_datasets`: ``encoder`` is the
    :func:`vectorizer`, :class:`WordPieceTokenizer` or :class:`TokenFeatures` the pipeline
    used. The model's identity is updated in place (``.keras`` saves keep it); returns ``model``.

    Example:
        >>> vectorizer = kzoo.text.vectorizer(texts)  # doctest: +SKIP
        >>> model = kzoo.get("bilstm_classifier", vocab_size=vectorizer.vocabulary_size())  # doctest: +SKIP
        >>> model.fit(kzoo.text.text_datasets(texts, labels, vectorizer=vectorizer))  # doctest: +SKIP
        >>> kzoo.text.with_text(model, vectorizer).predict(["a great movie"])  # doctest: +SKIP
    """
    from kzoo import identity as identity_lib

    identity = identity_lib.require(model, "kzoo.text.with_text", "Build the model with kzoo.get(...).")
    if isinstance(encoder, WordPieceTokenizer):
        settings = {
            "kind": "wordpiece",
            "vocabulary": list(encoder.vocabulary),
            "lowercase": encoder.lowercase,
            "max_length": encoder.sequence_length,
        }
    elif hasattr(encoder, "get_vocabulary") and hasattr(encoder, "get_config"):
        config = encoder.get_config()
        settings = {
            "kind": "vocabulary",
            "vocabulary": list(encoder.get_vocabulary())[2:],
            "standardize": config.get("standardize"),
            "split": config.get("split"),
            "max_length": max_length,
        }
    elif isinstance(encoder, TokenFeatures):
        settings = {"kind": "hashing", "num_bins": encoder.num_bins, "max_word_length": encoder.max_word_length}
    else:
        raise InvalidArgumentError(
            expected_received(
                "encoder",
                "a kzoo.text.vectorizer, WordPieceTokenizer or TokenFeatures",
                type(encoder).__name__,
            )
        )
    return identity_lib.replace_identity(model, identity.replace(text=settings))


# --------------------------------------------------------------------------------------
# Token features and tagging
# --------------------------------------------------------------------------------------


def tagging_datasets(
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[int]],
    *,
    features: TokenFeatures,
    batch_size: int = 32,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    shuffle: bool = True,
    seed: int = 0,
) -> Any:
    """``({"words", "chars"}, tag ids)`` batches for a tagger, padded to length buckets.

    Arguments as for :func:`text_datasets`; ``tags`` holds one tag id per token. With a
    :class:`WordPieceTokenizer` as ``features`` (BERT taggers) batches are
    ``(BERT inputs, tag ids, weights)``, one tag per WordPiece: a word's tag sits on its
    first piece with weight 1; its other pieces, ``[CLS]``, ``[SEP]`` and padding have
    weight 0 (:meth:`WordPieceTokenizer.word_starts` maps predictions back to words).
    """
    tf = import_tensorflow("kzoo.text pipelines (tf.data)")

    if len(sentences) != len(tags) or any(len(s) != len(t) for s, t in zip(sentences, tags)):
        raise InvalidArgumentError(
            expected_received("tags", "one tag id per token of every sentence", "sequences of other lengths")
        )
    if any(len(s) == 0 for s in sentences):
        raise InvalidArgumentError(expected_received("sentences", "no empty sentence", "an empty one"))
    if isinstance(features, WordPieceTokenizer):
        return _wordpiece_tagging(sentences, tags, features, batch_size, lengths, shuffle, seed)
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant([list(s) for s in sentences]), tf.ragged.constant([list(t) for t in tags], tf.int32))
    )
    if shuffle:
        dataset = dataset.shuffle(len(sentences), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(lambda s, t: (features(s), t), num_parallel_calls=tf.data.AUTOTUNE)
    return bucket(dataset, batch_size=batch_size, lengths=lengths, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)


def _wordpiece_tagging(sentences, tags, tokenizer, batch_size, lengths, shuffle, seed) -> Any:
    import tensorflow as tf

    ids, labels, weights = [], [], []
    for pieces, starts, sentence_tags in zip(*tokenizer.word_starts(sentences), tags):
        ids.append(pieces)
        row_labels, row_weights = np.zeros(len(pieces), "int32"), np.zeros(len(pieces), "float32")
        kept = starts < len(pieces) - 1  # words cut off by sequence_length are dropped
        row_labels[starts[kept]] = np.asarray(sentence_tags)[kept]
        row_weights[starts[kept]] = 1.0
        labels.append(row_labels)
        weights.append(row_weights)
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant(ids, tf.int32), tf.ragged.constant(labels, tf.int32), tf.ragged.constant(weights))
    )
    if shuffle:
        dataset = dataset.shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)

    def inputs(token_ids: Any, target: Any, weight: Any) -> Any:
        features = {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": tf.ones_like(token_ids),
        }
        return features, target, weight

    dataset = dataset.map(inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return bucket(dataset, batch_size=batch_size, lengths=lengths, drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)


def tag(model: Any, tokens: Sequence[str] | str, *, features: TokenFeatures | None = None) -> list[tuple[str, str]]:
    """Tags one sentence (a list of tokens, or a string split on spaces); returns ``(token, tag)`` pairs.

    The token features and tag names come from the model's kzoo identity (a reloaded
    model keeps them); ``features`` overrides them for a model kzoo did not build.
    """
    from kzoo import identity as identity_lib
    from kzoo import inputs

    identity = identity_lib.of(model)
    tokens = tokens.split() if isinstance(tokens, str) else list(tokens)
    names = identity.class_names if identity is not None and identity.class_names else CONLL_TAGS
    if features is None and identity is not None and identity.text and identity.text.get("kind") == "hashing":
        encoded = inputs.encode_text(model, identity, [tokens])
    else:
        features = features or TokenFeatures()
        by_name = {name: np.asarray(value)[None] for name, value in features(tokens).items()}
        encoded = [by_name[tensor.name.split(":")[0]] for tensor in model.inputs]
        encoded = encoded if len(encoded) > 1 else encoded[0]
    logits = np.asarray(model.predict_on_batch(encoded))[0]
    return [(token, names[int(i)]) for token, i in zip(tokens, np.argmax(logits, axis=-1))]


def predict_tags(
    model: Any, dataset: Any, tag_names: Sequence[str] = CONLL_TAGS
) -> tuple[list[list[str]], list[list[str]]]:
    """The gold and the predicted tag names of every sentence of a :func:`tagging_datasets` dataset.

    Padding (word id 0) is skipped; the gold tags are the dataset's own, so the order in
    which the length buckets deliver the sentences does not matter. A CRF tagger from
    ``kzoo.get`` is read on its Viterbi paths (``predict_on_batch`` decodes).
    """
    truth, guesses = [], []
    for features, tags in dataset:
        inputs = [features[tensor.name.split(":")[0]] for tensor in model.inputs]
        logits = np.asarray(model.predict_on_batch(inputs if len(inputs) > 1 else inputs[0]))
        words, tags, predicted = np.asarray(features["words"]), np.asarray(tags), logits.argmax(-1)
        for row in range(len(words)):
            length = int(np.count_nonzero(words[row]))
            truth.append([tag_names[i] for i in tags[row, :length]])
            guesses.append([tag_names[i] for i in predicted[row, :length]])
    return truth, guesses


def evaluate_tagger(
    model: Any, dataset: Any, tag_names: Sequence[str] = CONLL_TAGS, *, by_type: bool = False
) -> dict[str, Any]:
    """Entity-level scores (:func:`conll_f1`) of a tagger on a dataset from :func:`tagging_datasets`.

    The tags are read by :func:`predict_tags`. ``by_type`` adds the scores per entity type,
    as :func:`conll_f1` does.
    """
    return conll_f1(*predict_tags(model, dataset, tag_names), by_type=by_type)


def chunks(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Entity chunks ``(type, start, end)`` of an IOB1 or IOB2 tag sequence, as conlleval reads them.

    A chunk starts at ``B-X``, or at ``I-X`` after ``O`` or a tag of another type; it ends
    before ``O``, before a tag of another type, or before a ``B-``.
    """
    found, kind, start = set(), None, 0
    for index, tag_name in enumerate([*tags, "O"]):
        prefix, _, tag_type = tag_name.partition("-")
        if prefix not in ("B", "I", "O"):
            raise InvalidArgumentError(expected_received("tags", "IOB tags such as 'B-PER', 'I-PER', 'O'", tag_name))
        begins = prefix == "B" or (prefix == "I" and tag_type != kind)
        if kind is not None and (prefix == "O" or begins):
            found.add((kind, start, index))
            kind = None
        if begins:
            kind, start = tag_type, index
    return found


def conll_f1(
    true_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]], *, by_type: bool = False
) -> dict[str, Any]:
    """Entity-level precision, recall and F1 (percent) over sentences, as conlleval counts them.

    With ``by_type``, ``"by_type"`` maps each entity type found in either tagging (``"PER"``,
    ``"LOC"``, ...) to its own scores, as conlleval's per-type lines do.
    """
    if len(true_tags) != len(predicted_tags) or any(len(a) != len(b) for a, b in zip(true_tags, predicted_tags)):
        raise InvalidArgumentError(
            expected_received("predicted_tags", "a tag for every token of every sentence", "other lengths")
        )
    counts: dict[str | None, list[int]] = {None: [0, 0, 0]}  # type -> [correct, guessed, gold]; None: all
    for truth, guess in zip(true_tags, predicted_tags):
        true_chunks, guessed_chunks = chunks(truth), chunks(guess)
        for key, chosen in ((0, true_chunks & guessed_chunks), (1, guessed_chunks), (2, true_chunks)):
            for chunk in chosen:
                for kind in (None, chunk[0]):
                    counts.setdefault(kind, [0, 0, 0])[key] += 1

    def scores(correct: int, guessed: int, gold: int) -> dict[str, Any]:
        precision = 100.0 * correct / guessed if guessed else 0.0
        recall = 100.0 * correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        counted = {"chunks": gold, "found": guessed, "correct": correct}
        return {"precision": precision, "recall": recall, "f1": f1, **counted}

    result = scores(*counts.pop(None))
    if by_type:
        result["by_type"] = {kind: scores(*counts[kind]) for kind in sorted(counts)}
    return result


def embeddings_for(model: Any) -> tuple[np.ndarray, list[str]]:
    """The word vectors of a pretrained word2vec model and the vocabulary they are indexed by."""
    from kzoo.models.word2vec import word_vectors

    return word_vectors(model), vectorizer_for(model).get_vocabulary()


# --------------------------------------------------------------------------------------
# WordPiece (BERT)
# --------------------------------------------------------------------------------------


def tokenizer_for(model: Any) -> WordPieceTokenizer:
    """The WordPiece tokenizer a pretrained BERT ``model`` (from :func:`kzoo.get`) was trained
    with; its vocabulary travels inside the model (a reloaded ``.keras`` file keeps it)."""
    from kzoo import inputs

    _text_settings(
        model,
        "wordpiece",
        "a BERT model from kzoo.get(name, pretrained=TAG) whose weights carry a WordPiece vocabulary",
        "Learn your own with kzoo.text.WordPieceTokenizer(kzoo.text.wordpiece_vocabulary(texts)).",
    )
    return inputs.text_encoder(model)


def packed_sequences(tokenizer: WordPieceTokenizer, lines: Sequence[str], *, sequence_length: int = 128) -> np.ndarray:
    """A corpus as ``(n, sequence_length)`` ids: the WordPiece stream of all ``lines`` cut
    into consecutive pieces of ``sequence_length - 2``, each as ``[CLS] piece [SEP]`` (the
    last, shorter piece is dropped). Every sequence is full, so a compiled step sees one
    shape (BERT pretrains on packed text the same way)."""
    rows = tokenizer.tokenize(list(lines)).numpy()
    stream = np.concatenate([np.asarray(row, "int32") for row in rows if len(row)])
    body = sequence_length - 2
    pieces = stream[: len(stream) // body * body].reshape(-1, body)
    if not len(pieces):
        raise InvalidArgumentError(
            expected_received("lines", f"at least {body} WordPiece tokens", f"{len(stream)} tokens")
        )
    cls = np.full((len(pieces), 1), tokenizer.ids["[CLS]"], "int32")
    sep = np.full((len(pieces), 1), tokenizer.ids["[SEP]"], "int32")
    return np.concatenate([cls, pieces, sep], axis=1)


def masked_lm_datasets(
    sequences: np.ndarray,
    tokenizer: WordPieceTokenizer,
    *,
    batch_size: int = 32,
    num_predictions: int = 20,
    mask_rate: float = 0.15,
    shuffle: bool = True,
    seed: int = 0,
) -> Any:
    """Masked-LM batches ``(inputs, target ids, weights)`` for ``bert_*`` models.

    Masking is dynamic (a new draw every epoch) and BERT's: ``mask_rate`` of the
    positions (at most ``num_predictions`` per sequence; never ``[CLS]``, ``[SEP]`` or
    padding) are chosen; of those 80% become ``[MASK]``, 10% a random token and 10% stay.
    tensorflow-text's ``mask_language_model`` does the choosing. ``inputs`` holds
    ``token_ids``, ``segment_ids``, ``padding_mask`` and ``mask_positions``; targets are
    the original ids at those positions, weights 1 for real predictions and 0 for the
    padding of rows with fewer. For a fixed evaluation set use ``shuffle=False`` and
    ``.cache()`` the result.
    """
    import tensorflow as tf
    import tensorflow_text as tf_text

    sequences = np.asarray(sequences, "int32")
    if sequences.ndim != 2 or not len(sequences):
        raise InvalidArgumentError(
            expected_received("sequences", "a non-empty (n, length) int array (packed_sequences)", sequences.shape)
        )
    if not 0.0 < mask_rate < 1.0:
        raise InvalidArgumentError(expected_received("mask_rate", "a rate in (0, 1)", mask_rate))
    special = [tokenizer.ids[t] for t in ("[PAD]", "[CLS]", "[SEP]")]
    selector = tf_text.RandomItemSelector(
        max_selections_per_batch=num_predictions, selection_rate=mask_rate, unselectable_ids=special
    )
    chooser = tf_text.MaskValuesChooser(tokenizer.vocabulary_size, tokenizer.ids["[MASK]"], 0.8, 0.1)

    def mask(ids: Any) -> Any:
        ragged = tf.RaggedTensor.from_tensor(ids, padding=0)
        masked, positions, targets = tf_text.mask_language_model(ragged, selector, chooser)
        shape = [None, num_predictions]
        inputs = {
            "token_ids": tf.cast(masked.to_tensor(shape=tf.shape(ids)), tf.int32),
            "segment_ids": tf.zeros_like(ids),
            "padding_mask": tf.cast(ids != 0, tf.int32),
            "mask_positions": tf.cast(positions.to_tensor(shape=shape), tf.int32),
        }
        weights = tf.cast(tf.ones_like(targets).to_tensor(shape=shape), tf.float32)
        return inputs, tf.cast(targets.to_tensor(shape=shape), tf.int32), weights

    dataset = tf.data.Dataset.from_tensor_slices(sequences)
    if shuffle:
        dataset = dataset.shuffle(len(sequences), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=shuffle).map(mask, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fill_mask(model: Any, tokenizer: WordPieceTokenizer, text: str, k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``k`` likeliest tokens, with probabilities, for each ``[MASK]`` in ``text``
    according to a masked-LM ``bert_*`` model."""
    pieces = text.split("[MASK]")
    if len(pieces) < 2:
        raise InvalidArgumentError(expected_received("text", "at least one [MASK] token", text))
    # The WordPiece splitter would cut "[MASK]" into "[", "mask", "]": tokenize around it.
    ids = [tokenizer.ids["[CLS]"]]
    for index, piece_ids in enumerate(tokenizer.tokenize(pieces).numpy()):
        ids += ([tokenizer.ids["[MASK]"]] if index else []) + [int(i) for i in piece_ids]
    ids = (ids[: tokenizer.sequence_length - 1] + [tokenizer.ids["[SEP]"]])[: tokenizer.sequence_length]
    token_ids = np.zeros((1, tokenizer.sequence_length), "int32")
    token_ids[0, : len(ids)] = ids
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": (token_ids > 0) * 1}
    positions = np.flatnonzero(token_ids[0] == tokenizer.ids["[MASK]"])
    count = model.get_layer("mlm_gather").output.shape[1]
    inputs["mask_positions"] = np.zeros((1, count), "int32")
    inputs["mask_positions"][0, : len(positions[:count])] = positions[:count]
    logits = np.asarray(model.predict(inputs, verbose=0))[0, : len(positions[:count])]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    return [
        [(tokenizer.vocabulary[i], float(row[i])) for i in np.argsort(-row)[:k] if i < tokenizer.vocabulary_size]
        for row in probabilities
    ]
