"""A linear-chain conditional random field output layer and its loss (Lafferty et al. 2001).

``CRF(num_tags)`` sits on per-token tag scores ("emissions", ``(batch, length, num_tags)``)
and learns a score for every tag-to-tag transition, for starting a sentence in a tag and for
ending one. A tag sequence ``y`` of a sentence ``x`` scores

    s(x, y) = start[y_1] + sum_t emission[t, y_t] + sum_t transition[y_{t-1}, y_t] + end[y_n]

and the CRF's probability is ``exp(s(x, y)) / Z(x)`` over every possible tag sequence.

- **Calling the model** (``fit``, ``evaluate``, ``model(x)``): the layer returns the
  emissions, and :class:`CRFLoss` gives the negative log-likelihood ``log Z(x) - s(x, y)``
  of the gold tags, ``log Z`` by the forward algorithm.
- **Decoding** (``predict`` of a model from ``kzoo.get``, ``kzoo.export``, or any code in
  :func:`decoding`): the layer returns *max-marginal* scores: for each position ``t`` and
  tag ``k``, the score of the best whole tag sequence that has tag ``k`` at ``t`` (a forward
  and a backward max-product pass). The best sequence of all passes through its own tag at
  every position, so ``argmax`` over the last axis is the Viterbi path, and every
  argmax-reading tool (``kzoo.text.tag``, ``kzoo.text.evaluate_tagger``, an exported file)
  decodes like a CRF without knowing it is one. Only exact ties between two best sequences
  could mix them; with real-valued scores they do not occur.

Everything is written with ``keras.ops`` (``ops.scan`` over time), so it runs on the
TensorFlow and JAX backends and compiles with XLA. It computes in float32 whatever the
global precision policy. Padding is read from the Keras mask (``mask_zero=True`` embeddings
propagate it) and must sit at the end of each row, as kzoo's pipelines put it; decoded
scores are 0 at padded positions. tensorflow-addons had a CRF for TensorFlow only and is no longer
maintained, and neither Keras nor KerasHub ships one; hence this one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
from keras import ops

from kzoo.errors import InvalidArgumentError, expected_received


def _scan(step: Any, init: Any, xs: Any, *, reverse: bool = False) -> Any:
    """``keras.ops.scan`` over the leading axis of ``xs``, written for TensorFlow's converters.

    On JAX, ``ops.scan`` (``lax.scan``). On TensorFlow: a Python loop when the length is
    known when tracing (an export with a fixed sequence length: LiteRT cannot lower
    TensorFlow's ``TensorList`` loop), else a ``tf.while_loop`` with ``maximum_iterations``,
    which Keras 3.15's ``ops.scan`` leaves out and without which XLA refuses the loop's
    gradient ("XLA compilation requires a fixed tensor list size"). Its outputs are written
    in loop order and reversed afterwards: tf2onnx reads a TensorArray written back to front
    as if it were written front to back.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(step, init, xs, reverse=reverse)
    import tensorflow as tf

    static = xs[0].shape[0]
    if static is not None:
        carry, ys = init, []
        for index in reversed(range(static)) if reverse else range(static):
            carry, y = step(carry, tuple(x[index] for x in xs))
            ys.append(y)
        ys = ys[::-1] if reverse else ys
        return carry, (tf.stack(ys) if ys else tf.zeros((0, *init.shape), init.dtype))

    length = tf.shape(xs[0])[0]
    outputs = tf.TensorArray(init.dtype, size=length, element_shape=init.shape)

    def body(i: Any, carry: Any, outputs: Any) -> Any:
        carry, y = step(carry, tuple(x[length - 1 - i if reverse else i] for x in xs))
        return i + 1, carry, outputs.write(i, y)

    _, carry, outputs = tf.while_loop(
        lambda i, *_: i < length, body, (tf.constant(0), init, outputs), maximum_iterations=length
    )
    stacked = outputs.stack()
    return carry, (tf.reverse(stacked, [0]) if reverse else stacked)


def _float_mask(mask: Any, emissions: Any) -> Any:
    if mask is None:
        return ops.ones(ops.shape(emissions)[:2], dtype="float32")
    return ops.cast(mask, "float32")


def _time_major(emissions: Any, mask: Any) -> tuple[Any, Any]:
    emissions = ops.cast(emissions, "float32")
    mask = _float_mask(mask, emissions)
    return ops.transpose(emissions, (1, 0, 2)), ops.transpose(mask, (1, 0))[..., None]


def _forward(time_major: Any, mask_major: Any, transitions: Any, start: Any, reduce: Any) -> tuple[Any, Any]:
    """The forward recursion with ``reduce`` over the previous tag (logsumexp: sum-product,
    max: max-product); returns the last scores and those of positions 1... (time-major).
    A padded position keeps the scores of the one before."""
    alpha0 = start[None, :] + time_major[0]

    def step(alpha: Any, inputs: Any) -> Any:
        emission, valid = inputs
        scores = reduce(alpha[:, :, None] + transitions[None, :, :], axis=1) + emission
        alpha = valid * scores + (1.0 - valid) * alpha
        return alpha, alpha

    last, alphas = _scan(step, alpha0, (time_major[1:], mask_major[1:]))
    return last, ops.concatenate([alpha0[None], alphas], axis=0)


def log_partition(emissions: Any, mask: Any, transitions: Any, start: Any, end: Any) -> Any:
    """``log Z`` per row by the forward algorithm: ``(batch,)``. Masked positions are skipped."""
    alpha, _ = _forward(*_time_major(emissions, mask), transitions, start, ops.logsumexp)
    return ops.logsumexp(alpha + end[None, :], axis=1)


def sequence_score(emissions: Any, tags: Any, mask: Any, transitions: Any, start: Any, end: Any) -> Any:
    """``s(x, y)`` of the given tag ids per row: ``(batch,)`` (padding at the end of each row)."""
    emissions = ops.cast(emissions, "float32")
    mask = _float_mask(mask, emissions)
    num_tags = ops.shape(emissions)[-1]
    tags = ops.cast(tags, "int32")
    one_hot = ops.one_hot(tags, num_tags, dtype="float32")  # (batch, length, tags)
    emitted = ops.sum(ops.sum(one_hot * emissions, axis=-1) * mask, axis=1)
    # transition[y_{t-1}, y_t] for t >= 1, where position t is a real token
    pair = ops.einsum("bti,ij,btj->bt", one_hot[:, :-1], transitions, one_hot[:, 1:])
    moved = ops.sum(pair * mask[:, 1:], axis=1)
    first = ops.sum(one_hot[:, 0] * start[None, :], axis=-1)
    last_index = ops.maximum(ops.cast(ops.sum(mask, axis=1), "int32") - 1, 0)
    last_tag = ops.take_along_axis(tags, last_index[:, None], axis=1)[:, 0]
    last = ops.take(end, last_tag)
    return first + emitted + moved + last


def max_marginals(emissions: Any, mask: Any, transitions: Any, start: Any, end: Any) -> Any:
    """For each position and tag, the score of the best tag sequence through that tag there.

    ``(batch, length, num_tags)``; its argmax over tags is the Viterbi path. Padded
    positions are 0.
    """
    time_major, mask_major = _time_major(emissions, mask)
    _, alphas = _forward(time_major, mask_major, transitions, start, ops.max)  # (length, batch, tags)

    # beta[t, k]: the best score of positions after t given tag k at t (end score included);
    # at the last real token (the next position is padding, or there is none) it is end[k].
    end_row = ops.zeros_like(alphas[0]) + end[None, :]

    def backward(beta: Any, inputs: Any) -> Any:
        emission, valid = inputs  # of position t + 1
        scores = ops.max(transitions[None, :, :] + (emission + beta)[:, None, :], axis=2)
        beta = valid * scores + (1.0 - valid) * end_row
        return beta, beta

    _, betas = _scan(backward, end_row, (time_major[1:], mask_major[1:]), reverse=True)
    betas = ops.concatenate([betas, end_row[None]], axis=0)
    return ops.transpose((alphas + betas) * mask_major, (1, 0, 2))


def viterbi_tags(emissions: Any, mask: Any, transitions: Any, start: Any, end: Any) -> Any:
    """The best tag sequence per row, ``(batch, length)`` int32 (the argmax of :func:`max_marginals`)."""
    return ops.cast(ops.argmax(max_marginals(emissions, mask, transitions, start, end), axis=-1), "int32")


@keras.saving.register_keras_serializable(package="kzoo")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over per-token tag scores; see the module docstring.

    Args:
        num_tags: Number of tags (the last axis of the emissions).

    Call arguments:
        emissions: ``(batch, length, num_tags)`` tag scores.
        mask: ``(batch, length)`` bool, padding at the end of rows (the Keras mask).

    Returns the emissions (float32), the CRF's potentials, which :class:`CRFLoss` reads;
    inside :func:`decoding` (which ``predict`` of a model from ``kzoo.get`` and
    ``kzoo.export`` use), the max-marginal scores instead, whose argmax is the Viterbi path.

    Weights: ``transitions`` ``(num_tags, num_tags)`` (row: from, column: to), ``start``
    and ``end`` ``(num_tags,)``.
    """

    def __init__(self, num_tags: int, **kwargs: Any) -> None:
        if not isinstance(num_tags, int) or isinstance(num_tags, bool) or num_tags < 1:
            raise InvalidArgumentError(expected_received("CRF: num_tags", "a positive int", num_tags))
        kwargs.setdefault("dtype", "float32")  # the forward algorithm's sums stay float32
        super().__init__(**kwargs)
        self.num_tags = num_tags
        self.supports_masking = True
        self.decode = False

    def build(self, input_shape: Any) -> None:
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise InvalidArgumentError(
                expected_received(f"{self.name}: emissions", f"{self.num_tags} scores per token", input_shape[-1])
            )
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        self.transitions = self.add_weight(name="transitions", shape=(self.num_tags, self.num_tags), initializer=init)
        self.start = self.add_weight(name="start", shape=(self.num_tags,), initializer=init)
        self.end = self.add_weight(name="end", shape=(self.num_tags,), initializer=init)

    def parameters(self) -> tuple[Any, Any, Any]:
        """``(transitions, start, end)`` as tensors (inside a stateless scope, its values)."""
        return tuple(ops.convert_to_tensor(v) for v in (self.transitions, self.start, self.end))

    def call(self, emissions: Any, mask: Any = None) -> Any:
        emissions = ops.cast(emissions, "float32")
        if self.decode:
            return max_marginals(emissions, mask, *self.parameters())
        return emissions

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_tags": self.num_tags}


def crf_layers(model: Any) -> list[CRF]:
    """The :class:`CRF` layers of ``model`` (nested models included)."""
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, CRF):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(crf_layers(layer))
    return found


@contextlib.contextmanager
def decoding(model: Any) -> Iterator[None]:
    """Within the block, ``model``'s CRF layers output max-marginal (Viterbi) scores.

    A function traced inside the block (``predict``'s, an export's) keeps decoding; one
    traced outside (``fit``'s, ``evaluate``'s) keeps the emissions.
    """
    layers = crf_layers(model)
    before = [layer.decode for layer in layers]
    for layer in layers:
        layer.decode = True
    try:
        yield
    finally:
        for layer, value in zip(layers, before):
            layer.decode = value


@keras.saving.register_keras_serializable(package="kzoo")
class CRFLoss(keras.losses.Loss):
    """Negative log-likelihood of the gold tags under a :class:`CRF` (one value per sentence).

    ``CRFLoss(crf)`` with the model's ``CRF`` layer; a model from ``kzoo.get`` binds an
    unbound ``CRFLoss()`` to its CRF layer in ``compile`` (also when a saved model is
    reloaded). ``y_true`` holds tag ids ``(batch, length)``; padding comes from the output's
    Keras mask. Sample weights, if any, weigh whole sentences (``(batch,)``). The default
    reduction averages over the sentences of a batch.
    """

    def __init__(
        self,
        crf: CRF | None = None,
        *,
        crf_name: str | None = None,
        name: str = "crf_loss",
        reduction: str = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if crf is not None and not isinstance(crf, CRF):
            raise InvalidArgumentError(expected_received("CRFLoss: crf", "a kzoo.layers.CRF layer", type(crf).__name__))
        self.crf = crf
        self.crf_name = crf.name if crf is not None else crf_name

    def bind(self, model: Any) -> None:
        """Binds an unbound loss to ``model``'s CRF layer (by ``crf_name`` when there are several)."""
        if self.crf is not None:
            return
        layers = [layer for layer in crf_layers(model) if self.crf_name in (None, layer.name)]
        if len(layers) != 1:
            raise InvalidArgumentError(
                expected_received(
                    "CRFLoss",
                    f"a model with one CRF layer{f' named {self.crf_name!r}' if self.crf_name else ''}",
                    f"{len(layers)} such layers in {getattr(model, 'name', model)!r}",
                    "Pass the layer: CRFLoss(model.get_layer('crf')).",
                )
            )
        self.crf, self.crf_name = layers[0], layers[0].name

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        from keras.src.losses.loss import reduce_weighted_values

        if self.crf is None:
            raise InvalidArgumentError(
                expected_received(
                    "CRFLoss",
                    "a loss bound to the model's CRF layer",
                    "an unbound CRFLoss()",
                    "Compile a model from kzoo.get (it binds the loss), or pass CRFLoss(model.get_layer('crf')).",
                )
            )
        if sample_weight is not None and len(sample_weight.shape) > 1:
            raise InvalidArgumentError(
                expected_received(
                    "CRFLoss: sample_weight",
                    "one weight per sentence, shape (batch,)",
                    f"shape {tuple(sample_weight.shape)}",
                    "A CRF scores whole sentences; mark padding with word id 0 instead of per-token weights.",
                )
            )
        from keras.src.backend import get_keras_mask  # not in the public keras.backend

        mask = get_keras_mask(y_pred)
        parameters = self.crf.parameters()
        losses = log_partition(y_pred, mask, *parameters) - sequence_score(y_pred, y_true, mask, *parameters)
        return reduce_weighted_values(
            losses, sample_weight=sample_weight, reduction=self.reduction, dtype=self.dtype or "float32"
        )

    def call(self, y_true: Any, y_pred: Any) -> Any:  # pragma: no cover - __call__ does the work
        raise NotImplementedError("CRFLoss computes the loss in __call__")

    def get_config(self) -> dict[str, Any]:
        return {"crf_name": self.crf_name, "name": self.name, "reduction": self.reduction, "dtype": self.dtype}
