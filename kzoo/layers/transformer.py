"""Transformer-encoder layers of the mini-BERT family (:mod:`kzoo.models.bert`).

Written with ``keras.layers`` and ``keras.ops`` only, so they run on every Keras backend.
keras-hub has equivalents (``TransformerEncoder``, ``PositionEmbedding``,
``ReversibleEmbedding``, ``MaskedLMHead``); kzoo does not depend on keras-hub, and these
few layers keep the BERT layout visible in one place: post-layer-norm blocks, GELU (the
tanh approximation Google's BERT uses), weights initialised from a normal truncated at
two standard deviations of 0.02.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from kzoo.errors import InvalidArgumentError, expected_received

STDDEV = 0.02


def bert_initializer() -> keras.initializers.Initializer:
    """Google BERT's initializer: a normal with stddev 0.02 truncated at two deviations."""
    return keras.initializers.TruncatedNormal(stddev=STDDEV)


@keras.saving.register_keras_serializable(package="kzoo")
class TokenEmbedding(keras.layers.Layer):
    """A token-id embedding that can also run backwards, sharing its matrix with the output.

    ``layer(ids)`` looks vectors up; ``layer(hidden, reverse=True)`` multiplies hidden
    states by the transposed matrix, giving one logit per vocabulary entry. BERT's masked-LM
    head ties its output projection to the input embedding this way.
    """

    def __init__(self, input_dim: int, output_dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)

    def build(self, input_shape: Any = None) -> None:
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim), initializer=bert_initializer(), name="embeddings"
        )

    def call(self, inputs: Any, reverse: bool = False) -> Any:
        if reverse:
            return ops.matmul(inputs, ops.transpose(ops.cast(self.embeddings, inputs.dtype)))
        return ops.take(ops.cast(self.embeddings, self.compute_dtype), ops.cast(inputs, "int32"), axis=0)

    def compute_output_spec(self, inputs: Any, reverse: bool = False) -> Any:
        if reverse:
            return keras.KerasTensor((*inputs.shape[:-1], self.input_dim), dtype=self.compute_dtype)
        return keras.KerasTensor((*inputs.shape, self.output_dim), dtype=self.compute_dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim}


@keras.saving.register_keras_serializable(package="kzoo")
class PositionEmbedding(keras.layers.Layer):
    """A learned vector per position (Keras itself has no such layer).

    Called on a ``(batch, length, dim)`` tensor, returns the first ``length`` position
    vectors broadcast to its shape; ``length`` may not exceed ``max_length``.
    """

    def __init__(self, max_length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = int(max_length)

    def build(self, input_shape: tuple) -> None:
        self.embeddings = self.add_weight(
            shape=(self.max_length, input_shape[-1]), initializer=bert_initializer(), name="embeddings"
        )

    def call(self, inputs: Any) -> Any:
        length = inputs.shape[1]
        if isinstance(length, int) and length > self.max_length:
            raise InvalidArgumentError(
                expected_received(
                    f"{self.name}: sequence length",
                    f"at most max_sequence_length={self.max_length}",
                    length,
                    "Cut the token ids (kzoo.text.WordPieceTokenizer(vocabulary, sequence_length=...)).",
                )
            )
        length = ops.shape(inputs)[1]
        table = ops.cast(self.embeddings[:length], self.compute_dtype)
        return ops.broadcast_to(ops.expand_dims(table, 0), ops.shape(inputs))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """One BERT encoder block: self-attention and a GELU feed-forward, each followed by
    dropout, a residual connection and layer normalisation (post-LN, as in BERT).

    Call as ``block(x, padding_mask=mask)`` with ``mask`` ``(batch, length)``, 1 for real
    tokens and 0 for padding (no position attends to padding); with
    ``return_attention_scores=True`` it also returns the attention probabilities
    ``(batch, heads, length, length)``.

    Args:
        num_heads: Attention heads; the hidden size must be a multiple of it.
        intermediate_dim: Width of the feed-forward layer.
        dropout: Dropout rate of the attention probabilities and both residual branches.
        layer_norm_epsilon: Epsilon of the layer norms (BERT: 1e-12).
    """

    def __init__(
        self, num_heads: int, intermediate_dim: int, dropout: float = 0.1, layer_norm_epsilon: float = 1e-12, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads, self.intermediate_dim = int(num_heads), int(intermediate_dim)
        self.dropout, self.layer_norm_epsilon = float(dropout), float(layer_norm_epsilon)

    def build(self, input_shape: tuple) -> None:
        hidden = input_shape[-1]
        if hidden % self.num_heads:
            raise InvalidArgumentError(
                expected_received(f"{self.name}: hidden size", f"a multiple of num_heads={self.num_heads}", hidden)
            )
        dense = {"kernel_initializer": bert_initializer(), "dtype": self.dtype_policy}
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, hidden // self.num_heads, dropout=self.dropout, name="attention", **dense
        )
        self.attention.build(input_shape, input_shape)
        self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm", dtype=self.dtype_policy
        )
        self.attention_norm.build(input_shape)
        self.intermediate = keras.layers.Dense(self.intermediate_dim, name="intermediate", **dense)
        self.intermediate.build(input_shape)
        self.output_dense = keras.layers.Dense(hidden, name="output", **dense)
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="output_norm", dtype=self.dtype_policy
        )
        self.output_norm.build(input_shape)

    def call(
        self, inputs: Any, padding_mask: Any = None, training: Any = None, return_attention_scores: bool = False
    ) -> Any:
        mask = None
        if padding_mask is not None:  # (batch, 1, keys): every query ignores the padded keys
            mask = ops.expand_dims(ops.cast(padding_mask, "bool"), 1)
        attended, scores = self.attention(
            inputs, inputs, attention_mask=mask, return_attention_scores=True, training=training
        )
        x = self.attention_norm(inputs + self.attention_dropout(attended, training=training))
        hidden = keras.activations.gelu(self.intermediate(x), approximate=True)
        outputs = self.output_norm(x + self.output_dropout(self.output_dense(hidden), training=training))
        return (outputs, scores) if return_attention_scores else outputs

    def compute_output_spec(self, inputs: Any, padding_mask: Any = None, **kwargs: Any) -> Any:
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }


@keras.saving.register_keras_serializable(package="kzoo")
class GatherPositions(keras.layers.Layer):
    """``(batch, length, dim)`` and int positions ``(batch, k)`` -> ``(batch, k, dim)``.

    With ``index`` set (and no positions) it picks that one position: ``(batch, dim)``,
    e.g. ``index=0`` for BERT's ``[CLS]`` token.
    """

    def __init__(self, index: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index

    def call(self, inputs: Any, positions: Any = None) -> Any:
        if positions is None:
            return inputs[:, self.index, :]
        positions = ops.cast(positions, "int32")
        shape = (ops.shape(positions)[0], ops.shape(positions)[1], ops.shape(inputs)[-1])
        return ops.take_along_axis(inputs, ops.broadcast_to(ops.expand_dims(positions, -1), shape), axis=1)

    def compute_output_spec(self, inputs: Any, positions: Any = None) -> Any:
        if positions is None:
            return keras.KerasTensor((inputs.shape[0], inputs.shape[-1]), dtype=inputs.dtype)
        return keras.KerasTensor((*positions.shape, inputs.shape[-1]), dtype=inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="kzoo")
class Bias(keras.layers.Layer):
    """Adds a learned bias over the last axis (the masked-LM head's per-token bias)."""

    def build(self, input_shape: tuple) -> None:
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, inputs: Any) -> Any:
        return ops.cast(inputs, self.compute_dtype) + ops.cast(self.bias, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape
