"""Tokenizers and vocabularies: the layer below the text models and the text pipelines.

- :func:`vectorizer`: a vocabulary learned from texts with ``keras.layers.TextVectorization``
  (a maintained tokenizer; kzoo adds no tokenizer of its own).
- :class:`TokenFeatures`: hashed word ids (``keras.layers.Hashing``) and byte-level character
  ids for taggers; nothing derived from the training text (no vocabulary) is needed.
- :func:`wordpiece_vocabulary` and :class:`WordPieceTokenizer`: BERT's WordPiece, through
  tensorflow-text.

:mod:`kzoo.text` re-exports all of them (``kzoo.text.vectorizer`` keeps working).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kzoo.errors import InvalidArgumentError, expected_received, import_tensorflow


def _vocabulary_file(path: str | os.PathLike, what: str) -> list[str]:
    """The lines of a vocabulary file (one token a line), or a kzoo error naming the path."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(
            expected_received(
                what,
                "a list of tokens, or an existing text file with one token a line",
                str(path),
                "Check the path (a folder is not a vocabulary file), or pass the tokens as a list.",
            )
        )
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidArgumentError(
            expected_received(what, "a readable UTF-8 text file with one token a line", f"{path} ({error})")
        ) from error


def vectorizer(
    texts: Iterable[str] | None = None,
    *,
    vocabulary: Sequence[str] | str | Path | None = None,
    max_tokens: int | None = 20000,
    standardize: str | None = "lower_and_strip_punctuation",
    split: str | None = "whitespace",
    output_sequence_length: int | None = None,
) -> Any:
    """A ``keras.layers.TextVectorization`` turning strings into token ids.

    Args:
        texts: Texts to learn the vocabulary from (the most frequent ``max_tokens``).
        vocabulary: A known vocabulary instead (a list, or a file with one token a line,
            padding and ``[UNK]`` excluded, as ``get_vocabulary()[2:]`` gives).
        max_tokens: Vocabulary size including padding (0) and ``[UNK]`` (1).
        standardize: As in TextVectorization (``None`` keeps the text as is).
        split: As in TextVectorization.
        output_sequence_length: Pad or cut every output to this length; ``None`` gives
            ragged ids of each text's own length (what the bucketing pipelines want).

    Returns:
        The adapted layer; ``layer.vocabulary_size()`` is the ``vocab_size`` for the models.

    Raises:
        InvalidArgumentError: neither or both of ``texts`` and ``vocabulary`` are given, the
            texts are empty, or the vocabulary file is missing or unreadable.
    """
    import keras

    if (texts is None) == (vocabulary is None):
        raise InvalidArgumentError(
            expected_received("texts / vocabulary", "exactly one of them", "both" if texts is not None else "neither")
        )
    layer = keras.layers.TextVectorization(
        max_tokens=max_tokens if vocabulary is None else None,
        standardize=standardize,
        split=split,
        output_mode="int",
        output_sequence_length=output_sequence_length,
        ragged=output_sequence_length is None,
    )
    if vocabulary is not None:
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = _vocabulary_file(vocabulary, "vectorizer(vocabulary)")
        layer.set_vocabulary(list(vocabulary))
        return layer
    texts = list(texts)
    if not texts:
        raise InvalidArgumentError(expected_received("texts", "at least one text", "none"))
    layer.adapt(np.asarray(texts, dtype=object), batch_size=1024)
    return layer


class TokenFeatures:
    """Word and character ids for the tokens of one sentence, with no vocabulary.

    Words are lower-cased and hashed into ``num_bins`` ids by ``keras.layers.Hashing``
    (FarmHash, the same on every machine; 0 is padding); characters are the bytes of the
    word's UTF-8 code points clipped to 255, plus one (0 is padding), ``max_word_length``
    per word. With ``normalize_digits``, every digit of a word is hashed as ``0`` (the
    characters keep the real digits). Use it inside ``tf.data`` (it is made of TensorFlow
    string ops).
    """

    def __init__(self, num_bins: int = 16384, max_word_length: int = 16, normalize_digits: bool = False) -> None:
        import keras

        if not isinstance(num_bins, int) or num_bins < 2:
            raise InvalidArgumentError(expected_received("num_bins", "an int >= 2", num_bins))
        self.num_bins, self.max_word_length, self.normalize_digits = num_bins, max_word_length, normalize_digits
        self.hashing = keras.layers.Hashing(num_bins=num_bins, mask_value="")

    def __call__(self, tokens: Any) -> dict[str, Any]:
        tf = import_tensorflow("kzoo.text.TokenFeatures (TensorFlow string ops)")

        tokens = tf.convert_to_tensor(tokens, tf.string)
        lowered = tf.strings.lower(tokens)
        if self.normalize_digits:  # "1996" and "2003" hash alike (Lample et al. 2016); characters keep them
            lowered = tf.strings.regex_replace(lowered, "[0-9]", "0")
        words = tf.cast(self.hashing(lowered), tf.int32)
        codes = tf.strings.unicode_decode(tokens, "UTF-8", errors="replace", replacement_char=255)
        chars = tf.minimum(codes, 255) + 1
        chars = chars.to_tensor(0, shape=tf.concat([tf.shape(tokens), [self.max_word_length]], 0))
        return {"words": words, "chars": tf.cast(chars, tf.int32)}


BERT_RESERVED = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def wordpiece_vocabulary(
    texts: Iterable[str], *, vocab_size: int = 8192, lowercase: bool = True, path: str | os.PathLike | None = None
) -> list[str]:
    """Learns a WordPiece vocabulary from ``texts`` with tensorflow-text's BERT learner.

    The reserved tokens come first (``[PAD]`` = 0, ``[UNK]``, ``[CLS]``, ``[SEP]``,
    ``[MASK]``); ``vocab_size`` is the learner's target (the result is close to it).
    With ``path`` the vocabulary is also written there, one token per line.
    """
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as learner

    if not isinstance(vocab_size, int) or vocab_size <= len(BERT_RESERVED):
        raise InvalidArgumentError(expected_received("vocab_size", f"an int > {len(BERT_RESERVED)}", vocab_size))
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise InvalidArgumentError(expected_received("texts", "at least one non-empty string", "none"))
    vocabulary = learner.bert_vocab_from_dataset(
        tf.data.Dataset.from_tensor_slices(tf.constant(texts)).batch(1024),
        vocab_size=vocab_size,
        reserved_tokens=list(BERT_RESERVED),
        bert_tokenizer_params={"lower_case": lowercase},
        learn_params={},
    )
    if path is not None:
        Path(path).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    return vocabulary


class WordPieceTokenizer:
    """Raw strings -> BERT inputs, with tensorflow-text's ``BertTokenizer``.

    ``tokenizer(texts)`` (or ``tokenizer(texts, second_texts)`` for sentence pairs) gives
    ``{"token_ids", "segment_ids", "padding_mask"}``, int32, padded to
    ``sequence_length``: ``[CLS] A [SEP] (B [SEP])``, the longer segment cut first when
    they do not fit. :meth:`ragged_inputs` gives the same unpadded, for
    :func:`text_datasets` to pad to a few length buckets. Made of TensorFlow ops, so it
    runs inside ``tf.data``.

    Args:
        vocabulary: A list of tokens or a vocabulary file (one per line), reserved
            tokens included (see :func:`wordpiece_vocabulary`).
        sequence_length: Padded length, special tokens included.
        lowercase: Lower-case (and strip accents) before splitting, as the vocabulary
            was learned.

    Raises:
        InvalidArgumentError: the vocabulary file is missing or unreadable, the vocabulary
            lacks the reserved tokens, or ``sequence_length`` is not an int >= 3.
    """

    def __init__(self, vocabulary: Any, *, sequence_length: int = 128, lowercase: bool = True) -> None:
        import tensorflow as tf
        import tensorflow_text as tf_text

        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = _vocabulary_file(vocabulary, "WordPieceTokenizer(vocabulary)")
        self.vocabulary = list(vocabulary)
        missing = [t for t in BERT_RESERVED if t not in self.vocabulary]
        if missing or self.vocabulary[0] != "[PAD]":
            raise InvalidArgumentError(
                expected_received(
                    "vocabulary",
                    f"a WordPiece vocabulary starting with [PAD] and holding {list(BERT_RESERVED)}",
                    f"first token {self.vocabulary[:1]}, missing {missing}",
                    "Learn one with kzoo.text.wordpiece_vocabulary(texts).",
                )
            )
        if not isinstance(sequence_length, int) or sequence_length < 3:
            raise InvalidArgumentError(expected_received("sequence_length", "an int >= 3", sequence_length))
        self.sequence_length, self.lowercase = sequence_length, lowercase
        self.ids = {token: self.vocabulary.index(token) for token in BERT_RESERVED}
        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(self.vocabulary, tf.range(len(self.vocabulary), dtype=tf.int64)),
            num_oov_buckets=1,
        )
        self._tokenizer = tf_text.BertTokenizer(table, lower_case=lowercase, token_out_type=tf.int32)

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def tokenize(self, texts: Any) -> Any:
        """WordPiece ids of each text, ragged ``(texts, pieces)``, no special tokens."""
        import tensorflow as tf

        return self._tokenizer.tokenize(tf.convert_to_tensor(texts, tf.string)).merge_dims(-2, -1)

    def ragged_inputs(self, texts: Any, second_texts: Any = None) -> dict[str, Any]:
        """``token_ids``, ``segment_ids`` and ``padding_mask`` of each text, ragged."""
        import tensorflow as tf
        import tensorflow_text as tf_text

        segments = [self.tokenize(texts)] + ([] if second_texts is None else [self.tokenize(second_texts)])
        budget = self.sequence_length - 1 - len(segments)
        segments = tf_text.RoundRobinTrimmer(max_seq_length=budget).trim(segments)
        ids, segment_ids = tf_text.combine_segments(segments, self.ids["[CLS]"], self.ids["[SEP]"])
        ids = tf.cast(ids, tf.int32)
        return {"token_ids": ids, "segment_ids": tf.cast(segment_ids, tf.int32), "padding_mask": tf.ones_like(ids)}

    def __call__(self, texts: Any, second_texts: Any = None) -> dict[str, Any]:
        import tensorflow as tf

        ragged = self.ragged_inputs(texts, second_texts)
        shape = [None, self.sequence_length]
        return {key: tf.cast(value.to_tensor(shape=shape), tf.int32) for key, value in ragged.items()}

    def word_starts(self, sentences: Sequence[Sequence[str]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Pre-split sentences (lists of words) as ``[CLS] pieces [SEP]`` ids, cut to
        ``sequence_length``, and the position of each word's first piece (a word cut off
        gets the position of the final ``[SEP]`` or beyond)."""
        import tensorflow as tf

        words = tf.ragged.constant([list(s) for s in sentences])
        pieces = self._tokenizer.tokenize(words).merge_dims(-2, -1).to_list()  # [sentence][word][piece]
        all_ids, all_starts = [], []
        for sentence in pieces:
            lengths = np.array([len(word) for word in sentence])
            starts = 1 + np.concatenate([[0], np.cumsum(lengths)[:-1]])
            body = [piece for word in sentence for piece in word][: self.sequence_length - 2]
            all_ids.append(np.asarray([self.ids["[CLS]"], *body, self.ids["[SEP]"]], "int32"))
            all_starts.append(starts.astype("int64"))
        return all_ids, all_starts

    def detokenize(self, ids: Any) -> list[str]:
        """Ids back to text (WordPiece continuations joined, special tokens dropped)."""
        words = []
        for row in np.asarray(ids).reshape(-1, np.shape(ids)[-1]):
            pieces = [self.vocabulary[i] for i in row if 0 <= i < len(self.vocabulary)]
            pieces = [p for p in pieces if p not in BERT_RESERVED or p == "[UNK]"]
            words.append(" ".join(pieces).replace(" ##", ""))
        return words

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the vocabulary, one token per line (load it back with the constructor)."""
        path = Path(path)
        path.write_text("\n".join(self.vocabulary) + "\n", encoding="utf-8")
        return path
