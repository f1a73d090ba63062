"""Sequence-to-sequence encoder-decoder with additive (Bahdanau) attention.

The encoder is a bidirectional LSTM over the source tokens; its final states (forward and
backward concatenated) start the decoder LSTM, which reads the target shifted right
(teacher forcing). Every decoder state attends over all encoder states with the additive
score of Bahdanau, Cho & Bengio 2015, ``v . tanh(W q + U k)`` (``keras.layers.AdditiveAttention``);
the context vector and the decoder state make the "attentional" state that predicts the
next token. Attention is applied after the decoder step, as in Luong et al. 2015, rather
than fed back into it as in Bahdanau's decoder: the same scores, and the whole decoder
stays a Keras LSTM, so training is one XLA-compiled pass over the target.

:func:`attention_model` returns the attention weights for plots; :func:`greedy_decode`
translates without teacher forcing.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.models._vision import classifier
from kzoo.models.rnn import _positive_int, token_inputs
from kzoo.registry import ModelSpec, register_model

PAPER = (
    "Bahdanau, Cho & Bengio 2015, Neural machine translation by jointly learning to align and translate (ICLR); "
    "Luong, Pham & Manning 2015, Effective approaches to attention-based neural machine translation"
)


def seq2seq_attention(
    *,
    source_vocab_size: int = 64,
    target_vocab_size: int = 16,
    source_length: int | None = None,
    target_length: int | None = None,
    embedding_dim: int = 32,
    units: int = 64,
    classifier_activation: Any = None,
    name: str = "seq2seq_attention",
) -> keras.Model:
    """An attention encoder-decoder over token ids (0 = padding).

    Args:
        source_vocab_size: Number of source token ids.
        target_vocab_size: Number of target token ids (including start and end tokens).
        source_length: Fixed source length, or ``None`` for any length.
        target_length: Fixed target length, or ``None`` for any length.
        embedding_dim: Width of both embeddings.
        units: Encoder LSTM units per direction (the decoder has ``2 * units``).
        classifier_activation: ``None`` for logits.
        name: Model name.

    Returns:
        A functional ``keras.Model``: ``[source (batch, S), target (batch, T)]`` ->
        logits ``(batch, T, target_vocab_size)``, where ``target`` is the output sequence
        shifted right behind a start token.
    """
    for what, value in (
        ("source_vocab_size", source_vocab_size),
        ("target_vocab_size", target_vocab_size),
        ("embedding_dim", embedding_dim),
        ("units", units),
    ):
        _positive_int(name, what, value)
    if source_vocab_size < 2 or target_vocab_size < 2:
        raise InvalidArgumentError(
            expected_received(
                f"{name}: vocabulary sizes", "at least 2 (0 is padding)", (source_vocab_size, target_vocab_size)
            )
        )
    source = keras.Input(shape=(source_length,), dtype="int32", name="source")
    target = keras.Input(shape=(target_length,), dtype="int32", name="target")
    x = keras.layers.Embedding(source_vocab_size, embedding_dim, mask_zero=True, name="source_embedding")(source)
    encoded, forward_h, forward_c, backward_h, backward_c = keras.layers.Bidirectional(
        keras.layers.LSTM(units, return_sequences=True, return_state=True), name="encoder"
    )(x)
    state = [
        keras.layers.Concatenate(name="encoder_h")([forward_h, backward_h]),
        keras.layers.Concatenate(name="encoder_c")([forward_c, backward_c]),
    ]
    y = keras.layers.Embedding(target_vocab_size, embedding_dim, mask_zero=True, name="target_embedding")(target)
    decoded = keras.layers.LSTM(2 * units, return_sequences=True, name="decoder")(y, initial_state=state)
    # The scores are computed anyway; attention_model() exposes them.
    context, _ = keras.layers.AdditiveAttention(name="attention")([decoded, encoded], return_attention_scores=True)
    attentional = keras.layers.Concatenate(name="attentional_concat")([decoded, context])
    attentional = keras.layers.Dense(2 * units, activation="tanh", name="attentional")(attentional)
    outputs = classifier(attentional, num_classes=target_vocab_size, classifier_activation=classifier_activation)
    return keras.Model([source, target], outputs, name=name)


def attention_model(model: keras.Model) -> keras.Model:
    """A model with the same weights giving ``(logits, attention)``; attention is ``(batch, T, S)``."""
    scores = model.get_layer("attention").output[1]
    return keras.Model(model.inputs, [model.output, scores], name=f"{model.name}_attention")


def greedy_decode(model: keras.Model, source: Any, *, start_id: int, end_id: int, max_length: int) -> np.ndarray:
    """Target ids predicted one step at a time, each fed back as the next decoder input.

    Returns ``(batch, max_length)`` ids; everything after the first ``end_id`` of a row is 0.
    """
    source = np.asarray(source, "int32")
    target = np.zeros((len(source), max_length), "int32")
    target[:, 0] = start_id
    output = np.zeros((len(source), max_length), "int32")
    for step in range(max_length):
        logits = keras.ops.convert_to_numpy(model([source, target], training=False))
        output[:, step] = logits[:, step].argmax(-1)
        if step + 1 < max_length:
            target[:, step + 1] = output[:, step]
    ends = output == end_id
    first_end = np.where(ends.any(axis=1), ends.argmax(axis=1), max_length)
    output[np.arange(max_length)[None, :] > first_end[:, None]] = 0
    return output


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "seq2seq_attention": {"num_params": 169_744, "input_shape": None},
}


register_model(
    ModelSpec(
        name="seq2seq_attention",
        **CARD_FACTS["seq2seq_attention"],
        builder=seq2seq_attention,
        family="seq2seq",
        task="sequence-to-sequence",
        paper=PAPER,
        test_kwargs={"source_vocab_size": 20, "target_vocab_size": 12, "embedding_dim": 8, "units": 8},
        head_layers=("predictions",),
        stages=("source_embedding", "encoder", "target_embedding", "decoder", "attention", "attentional"),
        make_inputs=token_inputs,
        description="Bi-LSTM encoder, LSTM decoder and additive (Bahdanau) attention over the source.",
        example=(
            "import kzoo\n"
            "model = kzoo.get('seq2seq_attention', source_vocab_size=40, target_vocab_size=14)\n"
            "# python examples/seq2seq_attention_dates.py: dates in any format -> ISO 8601, with attention maps"
        ),
    )
)
