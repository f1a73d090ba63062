"""Mini-BERT: a transformer encoder with masked-LM, sequence and token heads.

Devlin et al. 2019 (BERT) at the small sizes of Turc et al. 2019 ("Well-read students
learn better"): ``bert_tiny`` (2 layers, hidden 128, 2 heads) and ``bert_mini``
(4 / 256 / 4), each with three heads:

- ``bert_tiny`` / ``bert_mini``: the masked-LM pretraining model. Inputs ``token_ids``,
  ``segment_ids``, ``padding_mask`` and ``mask_positions`` (``num_predictions`` positions
  per sequence, chosen by :func:`kzoo.text.masked_lm_datasets`); output one logit per
  vocabulary entry at each masked position. The output projection is the transposed token
  embedding (tied, as in BERT). A plain functional model: ``fit`` trains it with
  sparse cross-entropy weighted by the mask weights, and XLA compiles it.
- ``bert_tiny_classifier`` / ``bert_mini_classifier``: the ``[CLS]`` vector -> a tanh
  ``pooler`` -> dropout -> ``predictions`` (sequence classification).
- ``bert_tiny_tagger`` / ``bert_mini_tagger``: every token's vector -> dropout ->
  ``predictions`` (token classification).

All share one builder and one layer naming, so weights move between heads by layer name:
``kzoo.get("bert_tiny_classifier", pretrained="wikitext2_shakespeare")`` loads the
pretrained encoder and starts a new head (one log line says so). Layers:
``embeddings_token``, ``embeddings_position``, ``embeddings_segment``, ``embeddings_norm``
(stage ``embeddings``), ``block1`` ... ``blockN`` (one stage each), then the head.
Inputs follow keras-hub's ``BertBackbone`` names (``padding_mask`` is 1 for real tokens);
``include_top=False`` returns the encoder with outputs ``sequence_output`` and
``pooled_output``. :mod:`kzoo.models.bert_checkpoint` loads Google's published BERT
checkpoints into these layers.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.layers.transformer import (
    Bias,
    GatherPositions,
    PositionEmbedding,
    TokenEmbedding,
    TransformerEncoderBlock,
    bert_initializer,
)
from kzoo.models.rnn import _positive_int
from kzoo.registry import ModelSpec, register_model

HEADS = ("mlm", "classifier", "tagger")
DEVLIN = "Devlin et al. 2019, BERT: Pre-training of deep bidirectional transformers for language understanding (NAACL)"
TURC = "Turc et al. 2019, Well-read students learn better: on the importance of pre-training compact models"
SIZES = {
    "tiny": {"num_layers": 2, "hidden_dim": 128, "num_heads": 2, "intermediate_dim": 512},
    "mini": {"num_layers": 4, "hidden_dim": 256, "num_heads": 4, "intermediate_dim": 1024},
}
HEAD_LAYERS = {"mlm": ("mlm_dense", "mlm_norm", "mlm_bias"), "classifier": ("pooler", "predictions")}
HEAD_LAYERS["tagger"] = ("predictions",)


def bert(
    *,
    vocab_size: int = 8192,
    sequence_length: int | None = None,
    num_layers: int = 2,
    hidden_dim: int = 128,
    num_heads: int = 2,
    intermediate_dim: int = 512,
    max_sequence_length: int = 512,
    num_segments: int = 2,
    dropout: float = 0.1,
    head: str = "classifier",
    include_top: bool = True,
    num_classes: int = 2,
    num_predictions: int = 20,
    classifier_activation: Any = None,
    name: str = "bert",
) -> keras.Model:
    """Builds a BERT encoder with one head.

    Args:
        vocab_size: WordPiece vocabulary size (id 0 is ``[PAD]``).
        sequence_length: Fixed input length, or ``None`` for any length up to
            ``max_sequence_length``.
        num_layers: Transformer blocks.
        hidden_dim: Hidden size (a multiple of ``num_heads``).
        num_heads: Attention heads per block.
        intermediate_dim: Width of each block's feed-forward layer (BERT: 4 x hidden).
        max_sequence_length: Rows of the position table (BERT: 512).
        num_segments: Rows of the segment table (2: sentence A and B).
        dropout: Dropout of embeddings, attention and residual branches, and the head.
        head: ``"mlm"`` (masked-LM pretraining), ``"classifier"`` or ``"tagger"``.
        include_top: ``False``: the encoder alone, outputs ``sequence_output``
            ``(batch, length, hidden)`` and ``pooled_output`` (the ``[CLS]`` vector).
        num_classes: Classes of the classifier or tagger head.
        num_predictions: Masked positions per sequence the ``"mlm"`` head predicts.
        classifier_activation: ``None`` for logits (default) or e.g. ``"softmax"``.
        name: Model name.

    Returns:
        A functional ``keras.Model`` whose inputs are a dict ``token_ids``,
        ``segment_ids``, ``padding_mask`` (int, ``(batch, length)``) and, for the
        ``"mlm"`` head, ``mask_positions`` ``(batch, num_predictions)``.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("bert_tiny_classifier", vocab_size=1000, num_classes=3)
        >>> model.output_shape
        (None, 3)
    """
    for what, value in (
        ("vocab_size", vocab_size),
        ("num_layers", num_layers),
        ("hidden_dim", hidden_dim),
        ("num_heads", num_heads),
        ("intermediate_dim", intermediate_dim),
        ("max_sequence_length", max_sequence_length),
        ("num_segments", num_segments),
        ("num_classes", num_classes),
        ("num_predictions", num_predictions),
    ):
        _positive_int(name, what, value)
    if head not in HEADS:
        raise InvalidArgumentError(expected_received(f"{name}: head", f"one of {HEADS}", head))
    if hidden_dim % num_heads:
        raise InvalidArgumentError(
            expected_received(f"{name}: hidden_dim", f"a multiple of num_heads={num_heads}", hidden_dim)
        )
    if sequence_length is not None:
        _positive_int(name, "sequence_length", sequence_length)
        if sequence_length > max_sequence_length:
            raise InvalidArgumentError(
                expected_received(
                    f"{name}: sequence_length", f"at most max_sequence_length={max_sequence_length}", sequence_length
                )
            )
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(expected_received(f"{name}: dropout", "a rate in [0, 1)", dropout))

    inputs = {
        key: keras.Input(shape=(sequence_length,), dtype="int32", name=key)
        for key in ("token_ids", "segment_ids", "padding_mask")
    }
    token_embedding = TokenEmbedding(vocab_size, hidden_dim, name="embeddings_token")
    tokens = token_embedding(inputs["token_ids"])
    positions = PositionEmbedding(max_sequence_length, name="embeddings_position")(tokens)
    segments = keras.layers.Embedding(
        num_segments, hidden_dim, embeddings_initializer=bert_initializer(), name="embeddings_segment"
    )(inputs["segment_ids"])
    x = keras.layers.Add(name="embeddings_add")([tokens, positions, segments])
    x = keras.layers.LayerNormalization(epsilon=1e-12, name="embeddings_norm")(x)
    x = keras.layers.Dropout(dropout, name="embeddings_dropout")(x)
    for index in range(1, num_layers + 1):
        x = TransformerEncoderBlock(num_heads, intermediate_dim, dropout, name=f"block{index}")(
            x, padding_mask=inputs["padding_mask"]
        )

    dense = {"kernel_initializer": bert_initializer()}
    if not include_top or head == "classifier":
        cls = GatherPositions(index=0, name="cls_token")(x)
        pooled = keras.layers.Dense(hidden_dim, activation="tanh", name="pooler", **dense)(cls)
    if not include_top:
        outputs = {"sequence_output": x, "pooled_output": pooled}
    elif head == "classifier":
        pooled = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
        outputs = keras.layers.Dense(
            num_classes, activation=classifier_activation, dtype="float32", name="predictions", **dense
        )(pooled)
    elif head == "tagger":
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        outputs = keras.layers.Dense(
            num_classes, activation=classifier_activation, dtype="float32", name="predictions", **dense
        )(x)
    else:
        inputs["mask_positions"] = keras.Input(shape=(num_predictions,), dtype="int32", name="mask_positions")
        x = GatherPositions(name="mlm_gather")(x, inputs["mask_positions"])
        x = keras.layers.Dense(hidden_dim, name="mlm_dense", **dense)(x)
        x = keras.layers.Activation(_gelu_tanh, name="mlm_activation")(x)
        x = keras.layers.LayerNormalization(epsilon=1e-12, name="mlm_norm")(x)
        outputs = Bias(dtype="float32", name="mlm_bias")(token_embedding(x, reverse=True))
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="kzoo")
def _gelu_tanh(x: Any) -> Any:
    """GELU with the tanh approximation (Google's BERT), as a serializable activation."""
    return keras.activations.gelu(x, approximate=True)


def attention_maps(model: Any, inputs: dict) -> list[Any]:
    """The attention probabilities of every block of a BERT ``model`` for ``inputs``.

    Returns one array per block, ``(batch, heads, length, length)``: row ``i`` of a head
    is how much position ``i`` attends to each position (padding gets 0).
    """
    import numpy as np

    embed = keras.Model(
        {key: model.get_layer(key).output for key in ("token_ids", "segment_ids")},
        model.get_layer("embeddings_norm").output,
    )
    x = embed({key: inputs[key] for key in ("token_ids", "segment_ids")})
    maps, index = [], 1
    while any(layer.name == f"block{index}" for layer in model.layers):
        x, scores = model.get_layer(f"block{index}")(
            x, padding_mask=inputs["padding_mask"], return_attention_scores=True
        )
        maps.append(np.asarray(keras.ops.convert_to_numpy(scores)))
        index += 1
    return maps


def bert_inputs(model: Any, batch_size: int, rng: Any) -> dict:
    """Random but valid inputs for a BERT model: ids below its vocabulary, a ``[CLS]``-like
    first token, padding at the end of each row, two segments, masked positions inside
    the real tokens."""
    import numpy as np

    vocab_size = model.get_layer("embeddings_token").input_dim
    shapes = {tensor.name.split(":")[0]: tensor.shape for tensor in model.inputs}
    length = shapes["token_ids"][1] or 9
    lengths = rng.integers(max(2, length // 2), length + 1, size=batch_size)
    lengths[0] = length
    padding = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(1, vocab_size, size=(batch_size, length)).astype("int32") * padding
    segment_ids = ((np.arange(length)[None, :] >= (lengths // 2)[:, None]) * padding).astype("int32")
    inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding}
    if "mask_positions" in shapes:
        count = shapes["mask_positions"][1]
        inputs["mask_positions"] = np.stack([rng.integers(0, n, size=count) for n in lengths]).astype("int32")
    return inputs


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "bert_mini": {"num_params": 5_462_784, "input_shape": None},
    "bert_mini_classifier": {"num_params": 5_454_594, "input_shape": None},
    "bert_mini_tagger": {"num_params": 5_388_802, "input_shape": None},
    "bert_tiny": {"num_params": 1_536_128, "input_shape": None},
    "bert_tiny_classifier": {"num_params": 1_527_938, "input_shape": None},
    "bert_tiny_tagger": {"num_params": 1_511_426, "input_shape": None},
}


def _spec(name: str, size: str, head: str, task: str, description: str, example: str) -> ModelSpec:
    config = SIZES[size]
    return ModelSpec(
        name=name,
        **CARD_FACTS[name],
        builder=bert,
        family="bert",
        task=task,
        paper=f"{DEVLIN}; {TURC}",
        kwargs={**config, "head": head, "name": name},
        test_kwargs={
            "vocab_size": 64,
            "hidden_dim": 16,
            "num_heads": 2,
            "intermediate_dim": 32,
            "max_sequence_length": 16,
            "num_predictions": 3,
        },
        head_layers=HEAD_LAYERS[head],
        stages=("embeddings", *(f"block{i}" for i in range(1, config["num_layers"] + 1))),
        make_inputs=bert_inputs,
        description=description,
        example=example,
    )


TRAIN_YOUR_OWN = (
    "import kzoo\n"
    "texts, labels = kzoo.data.load_sst2('train')\n"
    "tokenizer = kzoo.text.WordPieceTokenizer(kzoo.text.wordpiece_vocabulary(texts))\n"
)
EXAMPLES = {
    ("tiny", "mlm"): "import kzoo\n"
    "model = kzoo.get('bert_tiny', pretrained=True)\n"
    "tokenizer = kzoo.text.tokenizer_for(model)\n"
    "print(kzoo.text.fill_mask(model, tokenizer, 'the king of [MASK] was crowned .'))",
    ("tiny", "classifier"): "import kzoo\n"
    "model = kzoo.get('bert_tiny_classifier', pretrained='sst2')\n"
    "tokenizer = kzoo.text.tokenizer_for(model)\n"
    "print(model.predict(tokenizer(['a gorgeous , witty , seductive movie .'])))",
    ("tiny", "tagger"): "import kzoo\n"
    "model = kzoo.get('bert_tiny_tagger', pretrained=True, num_classes=9)  # pretrained encoder, new head\n"
    "tokenizer = kzoo.text.tokenizer_for(model)\n"
    "# kzoo.finetune(model, kzoo.text.tagging_datasets(sentences, tags, features=tokenizer), epochs=3)",
    ("mini", "mlm"): TRAIN_YOUR_OWN + "model = kzoo.get('bert_mini', vocab_size=tokenizer.vocabulary_size)\n"
    "# pretrain: see examples/pretrain_bert_mlm.py --size mini",
    ("mini", "classifier"): TRAIN_YOUR_OWN
    + "model = kzoo.get('bert_mini_classifier', vocab_size=tokenizer.vocabulary_size)\n"
    "train = kzoo.text.text_datasets(texts, labels, vectorizer=tokenizer)",
    ("mini", "tagger"): TRAIN_YOUR_OWN
    + "model = kzoo.get('bert_mini_tagger', vocab_size=tokenizer.vocabulary_size, num_classes=9)",
}
TASKS = {"mlm": "masked-language-modeling", "classifier": "text-classification", "tagger": "token-classification"}
DESCRIPTIONS = {
    "mlm": "encoder ({shape}) with its masked-LM head (pretraining).",
    "classifier": "({shape}) -> [CLS] pooler -> logits (sequence classification).",
    "tagger": "({shape}) -> a logit vector per token (token classification).",
}

for _size, _shape in (("tiny", "2 layers, hidden 128, 2 heads"), ("mini", "4 layers, hidden 256, 4 heads")):
    for _head in HEADS:
        register_model(
            _spec(
                f"bert_{_size}" + ("" if _head == "mlm" else f"_{_head}"),
                _size,
                _head,
                TASKS[_head],
                f"BERT-{_size.capitalize()} " + DESCRIPTIONS[_head].format(shape=_shape),
                EXAMPLES[_size, _head],
            )
        )
