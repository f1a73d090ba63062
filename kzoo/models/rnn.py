"""Recurrent sequence models: many-to-one classifiers and many-to-many taggers.

Every builder takes token ids (``int``, 0 = padding) of any length and shares the text
signature ``vocab_size``, ``sequence_length`` (``None``: variable), ``num_classes``,
``embedding_dim``, ``classifier_activation``, ``name``, plus family arguments.

- Classifiers (sentiment and the like): embedding with ``mask_zero=True`` -> one or more
  LSTM / GRU layers (optionally bidirectional) -> the last state -> logits. Padding is
  masked, so a sentence gets the same logits whatever it was padded to.
- Taggers (named entities): word embedding (plus, optionally, a character CNN over each
  word, Ma & Hovy 2016 / Lample et al. 2016) -> bidirectional LSTM -> a logit vector per
  token. The loss ignores padded positions through the propagated mask.

Recurrent layers use Keras' LSTM/GRU, which on TensorFlow pick the cuDNN kernel on a GPU
when the configuration allows it and a generic loop otherwise; ``benchmarks/rnn_xla.py``
measures which configurations XLA compiles and how fast.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.layers.crf import CRF
from kzoo.layers.masking import MaskedGlobalMaxPooling1D, MaskFromIds, UnknownWords
from kzoo.models._vision import classifier
from kzoo.registry import ModelSpec, register_model

CELLS = ("lstm", "gru")
POOLINGS = ("last", "max", "mean_max")
HOCHREITER = "Hochreiter & Schmidhuber 1997, Long short-term memory, Neural Computation 9(8)"
SCHUSTER = "Schuster & Paliwal 1997, Bidirectional recurrent neural networks, IEEE Trans. Signal Processing 45(11)"
CHO = "Cho et al. 2014, Learning phrase representations using RNN encoder-decoder for statistical machine translation"
LAMPLE = "Lample et al. 2016, Neural architectures for named entity recognition (NAACL); Ma & Hovy 2016 (ACL)"


def _positive_int(model: str, what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(expected_received(f"{model}: {what}", "a positive int", value))
    return value


def check_text_args(
    *, model: str, vocab_size: Any, sequence_length: Any, num_classes: Any, embedding_dim: Any, dropout: Any
) -> None:
    """Validates the text signature shared by the sequence builders."""
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 2:
        raise InvalidArgumentError(
            expected_received(
                f"{model}: vocab_size",
                "an int >= 2 (index 0 is padding)",
                vocab_size,
                "Use len(vectorizer.get_vocabulary()) of your kzoo.text.vectorizer.",
            )
        )
    if sequence_length is not None:
        _positive_int(model, "sequence_length", sequence_length)
    _positive_int(model, "num_classes", num_classes)
    _positive_int(model, "embedding_dim", embedding_dim)
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(expected_received(f"{model}: dropout", "a rate in [0, 1)", dropout))


def _recurrent(cell: str, units: int, *, return_sequences: bool, dropout: float, name: str) -> keras.layers.Layer:
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    return layer(units, return_sequences=return_sequences, dropout=dropout, name=name)


def rnn_classifier(
    *,
    vocab_size: int = 20000,
    sequence_length: int | None = None,
    num_classes: int = 2,
    embedding_dim: int = 128,
    units: int = 128,
    cell: str = "lstm",
    bidirectional: bool = False,
    num_layers: int = 1,
    dropout: float = 0.0,
    pooling: str = "last",
    classifier_activation: Any = None,
    name: str = "rnn_classifier",
) -> keras.Model:
    """A many-to-one recurrent classifier over token ids.

    Args:
        vocab_size: Number of token ids, padding (0) and out-of-vocabulary (1) included.
        sequence_length: Fixed input length, or ``None`` for any length.
        num_classes: Number of output logits.
        embedding_dim: Width of the token embedding.
        units: Units of each recurrent layer (per direction).
        cell: ``"lstm"`` or ``"gru"``.
        bidirectional: Read the sequence both ways and concatenate the two last states.
        num_layers: Stacked recurrent layers; all but the last return sequences.
        dropout: Dropout on the embedding, between layers and before the head.
        pooling: What the head reads from the last recurrent layer: ``"last"`` its final
            state(s) (default), ``"max"`` the maximum of its outputs over the valid time steps
            (``kzoo.layers.MaskedGlobalMaxPooling1D``; Conneau et al. 2017's BiLSTM-max), or
            ``"mean_max"`` that maximum and the masked mean side by side.
        classifier_activation: ``None`` for logits (default) or e.g. ``"softmax"``.
        name: Model name.

    Returns:
        A functional ``keras.Model``: ``tokens`` ``(batch, length)`` int -> ``(batch, num_classes)``.
        Layers: ``embedding``, ``rnn1`` ... ``rnnN``, (``max_pool``, ``mean_pool``), ``predictions``.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("bilstm_classifier", vocab_size=1000)
        >>> model.output_shape
        (None, 2)
    """
    check_text_args(
        model=name,
        vocab_size=vocab_size,
        sequence_length=sequence_length,
        num_classes=num_classes,
        embedding_dim=embedding_dim,
        dropout=dropout,
    )
    if cell not in CELLS:
        raise InvalidArgumentError(expected_received(f"{name}: cell", f"one of {CELLS}", cell))
    _positive_int(name, "units", units)
    _positive_int(name, "num_layers", num_layers)
    if pooling not in POOLINGS:
        raise InvalidArgumentError(expected_received(f"{name}: pooling", f"one of {POOLINGS}", pooling))

    tokens = keras.Input(shape=(sequence_length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(tokens)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for index in range(1, num_layers + 1):
        sequences = index < num_layers or pooling != "last"
        layer = _recurrent(cell, units, return_sequences=sequences, dropout=0.0, name=f"rnn{index}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"rnn{index}")
        x = layer(x)
        if index == num_layers and pooling != "last":
            pooled = [MaskedGlobalMaxPooling1D(name="max_pool")(x)]
            if pooling == "mean_max":  # Keras' average pooling respects the mask
                pooled.append(keras.layers.GlobalAveragePooling1D(name="mean_pool")(x))
            x = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="pooled")(pooled)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"rnn{index}_dropout")(x)
    outputs = classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)
    return keras.Model(tokens, outputs, name=name)


def bilstm_tagger(
    *,
    vocab_size: int = 16384,
    sequence_length: int | None = None,
    num_classes: int = 9,
    embedding_dim: int = 64,
    units: int = 64,
    char_features: bool = True,
    char_vocab_size: int = 257,
    char_embedding_dim: int = 30,
    char_filters: int = 50,
    max_word_length: int = 16,
    dropout: float = 0.0,
    char_encoder: str = "cnn",
    char_units: int = 25,
    crf: bool = False,
    unknown_words: bool = False,
    classifier_activation: Any = None,
    name: str = "bilstm_tagger",
) -> keras.Model:
    """A many-to-many bidirectional LSTM tagger (a tag per token, e.g. named entities).

    With ``crf=True`` (``bilstm_crf_tagger``) a linear-chain CRF (``kzoo.layers.CRF``)
    scores whole tag sequences on top of the per-token scores: the model's output is then the
    CRF's emissions when called, and Viterbi-decoded scores (argmax = best tag sequence)
    in ``predict`` and in exported files; train it with ``kzoo.layers.CRFLoss``, which
    ``kzoo.finetune`` picks by itself.

    Args:
        vocab_size: Number of word ids, padding (0) included. The CoNLL-2003 weights use
            hashed words (``kzoo.text.TokenFeatures``), so no vocabulary ships with them.
        sequence_length: Fixed sentence length, or ``None`` for any length.
        num_classes: Number of tags.
        embedding_dim: Width of the word embedding.
        units: LSTM units per direction.
        char_features: Add a character CNN over each word (max-pooled over characters).
        char_vocab_size: Number of character ids, padding (0) included.
        char_embedding_dim: Width of the character embedding.
        char_filters: Filters of the character convolution (width 3).
        max_word_length: Characters kept per word (the ``chars`` input's last axis).
        dropout: Dropout on the token features and on the LSTM outputs.
        char_encoder: ``"cnn"``: a width-3 convolution max-pooled over the characters (Ma &
            Hovy 2016); ``"lstm"``: a bidirectional LSTM over each word's characters, its
            two last states concatenated (Lample et al. 2016).
        char_units: Units per direction of the ``"lstm"`` character encoder.
        crf: End in a linear-chain CRF (see above).
        unknown_words: Word ids pass through ``kzoo.layers.UnknownWords`` (layer
            ``unknown_words``) before the embedding: ids the training data never had become
            one unknown-word id, and in training words seen once do half of the time
            (Lample et al. 2016). Its counts are set from the training ids by the recipe.
        classifier_activation: ``None`` for logits (default; the only choice with a CRF).
        name: Model name.

    Returns:
        A functional ``keras.Model``: ``words`` ``(batch, length)`` int (and ``chars``
        ``(batch, length, max_word_length)`` int when ``char_features``) ->
        ``(batch, length, num_classes)`` logits (CRF: emissions / decoded scores); padded
        positions are masked. Layers: ``embedding``, ``char_*``, ``rnn1``, ``predictions``
        (and ``crf``).
    """
    check_text_args(
        model=name,
        vocab_size=vocab_size,
        sequence_length=sequence_length,
        num_classes=num_classes,
        embedding_dim=embedding_dim,
        dropout=dropout,
    )
    _positive_int(name, "units", units)
    words = keras.Input(shape=(sequence_length,), dtype="int32", name="words")
    inputs = [words]
    ids = UnknownWords(vocab_size, name="unknown_words")(words) if unknown_words else words
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(ids)
    if char_features:
        for what, value in (
            ("char_vocab_size", char_vocab_size),
            ("char_embedding_dim", char_embedding_dim),
            ("char_filters", char_filters),
            ("max_word_length", max_word_length),
        ):
            _positive_int(name, what, value)
        chars = keras.Input(shape=(sequence_length, max_word_length), dtype="int32", name="chars")
        inputs.append(chars)
        if char_encoder == "lstm":
            _positive_int(name, "char_units", char_units)
            # Each word's characters as one sequence: (batch * words, characters) through a
            # masked bidirectional LSTM, and back. A reshape rather than TimeDistributed, which
            # XLA cannot compile over sentences of variable length (see below).
            flat = WordsAsRows(name="char_words")(chars)
            c = keras.layers.Embedding(char_vocab_size, char_embedding_dim, mask_zero=True, name="char_embedding")(flat)
            c = keras.layers.Bidirectional(keras.layers.LSTM(char_units), name="char_rnn")(c)
            c = CharsBack(name="char_features")([c, words])
        elif char_encoder == "cnn":
            c = keras.layers.Embedding(char_vocab_size, char_embedding_dim, name="char_embedding")(chars)
            # A width-3 convolution along each word and a max over its characters. As a (1, 3)
            # Conv2D over (words, characters) rather than TimeDistributed(Conv1D): XLA compiles
            # this, but not TimeDistributed's per-word loop over variable-length sentences.
            c = keras.layers.Conv2D(char_filters, (1, 3), padding="same", activation="tanh", name="char_conv")(c)
            c = keras.layers.MaxPooling2D((1, max_word_length), name="char_pool")(c)
            c = keras.layers.Reshape((-1, char_filters), name="char_features")(c)
        else:
            raise InvalidArgumentError(expected_received(f"{name}: char_encoder", "'cnn' or 'lstm'", char_encoder))
        c = MaskFromIds(name="char_mask")([c, words])  # so the concatenation keeps the padding mask
        x = keras.layers.Concatenate(name="features")([x, c])
    if dropout:
        x = keras.layers.Dropout(dropout, name="features_dropout")(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True), name="rnn1")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="rnn1_dropout")(x)
    if crf and classifier_activation is not None:
        raise InvalidArgumentError(
            expected_received(f"{name}: classifier_activation", "None (a CRF reads raw scores)", classifier_activation)
        )
    outputs = classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)
    if crf:
        outputs = CRF(num_classes, name="crf")(outputs)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="kzoo")
class WordsAsRows(keras.layers.Layer):
    """``(batch, words, characters)`` ids to ``(batch * words, characters)`` (Reshape keeps the batch axis)."""

    def call(self, chars: Any) -> Any:
        from keras import ops

        return ops.reshape(chars, (-1, chars.shape[-1]))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (None, input_shape[-1])


@keras.saving.register_keras_serializable(package="kzoo")
class CharsBack(keras.layers.Layer):
    """``(batch * words, features)`` back to ``(batch, words, features)``.

    Called as ``CharsBack()([features, words])``; the word count comes from ``words`` at run
    time (a Reshape needs it fixed). The padding mask comes after it, from ``MaskFromIds``.
    """

    def call(self, inputs: Any) -> Any:
        from keras import ops

        features, words = inputs
        shape = ops.shape(words)
        return ops.reshape(features, (shape[0], shape[1], features.shape[-1]))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[1][:2], input_shape[0][-1])


def token_inputs(model: Any, batch_size: int, rng: Any) -> Any:
    """Random ids for every int input of ``model``, each row padded (0) at its end.

    The ids stay below the input dimension of the embedding that reads the input: the
    layer named ``<input>_embedding`` (``chars`` -> ``char_embedding``), else ``embedding``.
    """
    import numpy as np

    names = {layer.name: layer for layer in model.layers}
    arrays, lengths = [], None
    for tensor in model.inputs:
        shape = tuple(d if d is not None else 7 for d in tensor.shape[1:])
        input_name = tensor.name.split(":")[0]
        candidates = (f"{input_name}_embedding", f"{input_name.rstrip('s')}_embedding", "embedding")
        embedding = next((names[c] for c in candidates if c in names), None)
        high = getattr(embedding, "input_dim", 2)
        values = rng.integers(1, high, size=(batch_size, *shape))
        if lengths is None:  # the first input's rows get decreasing lengths
            lengths = np.maximum(1, shape[0] - np.arange(batch_size) % max(1, shape[0] // 2))
        for row, length in enumerate(lengths):
            values[row, length:] = 0
        arrays.append(values.astype("int32"))
    return arrays[0] if len(arrays) == 1 else arrays


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "bilstm_classifier": {"num_params": 2_823_682, "input_shape": (None,)},
    "bilstm_crf_tagger": {"num_params": 3_528_901, "input_shape": None},
    "bilstm_tagger": {"num_params": 1_153_645, "input_shape": None},
    "gru_classifier": {"num_params": 2_659_330, "input_shape": (None,)},
    "lstm_classifier": {"num_params": 2_691_842, "input_shape": (None,)},
    "stacked_lstm_classifier": {"num_params": 2_823_426, "input_shape": (None,)},
}


def _classifier_spec(name: str, description: str, paper: str, **kwargs: Any) -> ModelSpec:
    return ModelSpec(
        name=name,
        **CARD_FACTS[name],
        builder=rnn_classifier,
        family="rnn",
        task="text-classification",
        paper=paper,
        kwargs={"name": name, **kwargs},
        test_kwargs={"vocab_size": 50, "embedding_dim": 8, "units": 8},
        head_layers=("predictions",),
        stages=("embedding", "rnn1"),
        make_inputs=token_inputs,
        description=description,
        example=(
            "import kzoo\n"
            "texts, labels = kzoo.data.load_sst2('train')\n"
            "vectorizer = kzoo.text.vectorizer(texts, max_tokens=20000)\n"
            f"model = kzoo.get({name!r}, vocab_size=vectorizer.vocabulary_size())\n"
            "data = kzoo.text.text_datasets(texts, labels, vectorizer=vectorizer)"
        ),
    )


register_model(
    _classifier_spec("lstm_classifier", "Embedding -> LSTM -> logits; many-to-one, masked.", HOCHREITER, cell="lstm")
)
register_model(
    _classifier_spec(
        "bilstm_classifier",
        "Embedding -> bidirectional LSTM -> logits; many-to-one, masked.",
        f"{SCHUSTER}; {HOCHREITER}",
        cell="lstm",
        bidirectional=True,
    )
)
register_model(_classifier_spec("gru_classifier", "Embedding -> GRU -> logits; many-to-one, masked.", CHO, cell="gru"))
register_model(
    _classifier_spec(
        "stacked_lstm_classifier",
        "Embedding -> 2 stacked LSTM layers -> logits; many-to-one, masked.",
        HOCHREITER,
        cell="lstm",
        num_layers=2,
    )
)
register_model(
    ModelSpec(
        name="bilstm_tagger",
        **CARD_FACTS["bilstm_tagger"],
        builder=bilstm_tagger,
        family="rnn",
        task="token-classification",
        paper=LAMPLE,
        test_kwargs={"vocab_size": 50, "embedding_dim": 8, "units": 8, "char_embedding_dim": 4, "char_filters": 4},
        head_layers=("predictions",),
        stages=("embedding", "rnn1"),
        make_inputs=token_inputs,
        description="Word embedding + character CNN -> bidirectional LSTM -> a tag per token (NER).",
        example=(
            "import kzoo\n"
            "model = kzoo.get('bilstm_tagger', pretrained='conll2003')   # hashed words, no vocabulary\n"
            "print(kzoo.text.tag(model, ['EU', 'rejects', 'German', 'call', 'to', 'boycott', 'British', 'lamb']))"
        ),
    )
)
register_model(
    ModelSpec(
        name="bilstm_crf_tagger",
        **CARD_FACTS["bilstm_crf_tagger"],
        builder=bilstm_tagger,
        family="rnn",
        task="token-classification",
        paper=f"{LAMPLE}; Lafferty et al. 2001, Conditional random fields (ICML)",
        kwargs={
            "name": "bilstm_crf_tagger",
            "crf": True,
            "char_encoder": "lstm",
            "vocab_size": 32768,
            "embedding_dim": 100,
            "units": 100,
            "char_embedding_dim": 25,
            "char_units": 25,
            "unknown_words": True,
        },
        test_kwargs={"vocab_size": 50, "embedding_dim": 8, "units": 8, "char_embedding_dim": 4, "char_units": 4},
        head_layers=("predictions", "crf"),
        stages=("embedding", "rnn1"),
        make_inputs=token_inputs,
        description=(
            "Word embedding + character bi-LSTM -> bidirectional LSTM -> linear-chain CRF (NER, Viterbi-decoded)."
        ),
        example=(
            "import kzoo\n"
            "model = kzoo.get('bilstm_crf_tagger', pretrained='conll2003')   # hashed words, no vocabulary\n"
            "print(kzoo.text.tag(model, ['EU', 'rejects', 'German', 'call', 'to', 'boycott', 'British', 'lamb']))"
        ),
    )
)
