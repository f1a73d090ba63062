"""Google's published BERT checkpoints -> kzoo's BERT layers.

Google released BERT-Tiny, -Mini, -Small, -Medium and the larger models (Turc et al. 2019)
as TensorFlow 1 checkpoints: a folder with ``bert_model.ckpt.index``,
``bert_model.ckpt.data-*``, ``bert_config.json`` and ``vocab.txt``. kzoo downloads none
of them; :func:`load_google_checkpoint` reads such a folder from disk (through
``tf.train.load_checkpoint``, TensorFlow's own checkpoint reader) and returns a kzoo model
with every weight in place, plus the tokenizer for its ``vocab.txt``.

The variables follow ``modeling.py`` of google-research/bert: ``bert/embeddings/...``,
``bert/encoder/layer_<i>/attention/self/{query,key,value}``, ``.../attention/output/...``,
``.../intermediate/dense``, ``.../output/...``, ``bert/pooler/dense`` and the masked-LM
head ``cls/predictions/...``. Attention kernels are stored as ``(hidden, hidden)``
matrices; Keras' ``MultiHeadAttention`` keeps them as ``(hidden, heads, head_size)``, so
they are reshaped on the way in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from kzoo.errors import InvalidArgumentError, WeightsError, expected_received

CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def _checkpoint_prefix(path: Path) -> Path:
    if path.is_dir():
        candidates = sorted(path.glob("*.ckpt.index")) or sorted(path.glob("*.index"))
        if not candidates:
            raise WeightsError(
                expected_received(
                    "BERT checkpoint folder",
                    "a folder holding bert_model.ckpt.index, bert_model.ckpt.data-*, bert_config.json, vocab.txt",
                    f"{path} with {sorted(p.name for p in path.iterdir())[:8]}",
                )
            )
        return candidates[0].with_suffix("")
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """``bert_config.json`` of a Google checkpoint folder, as kzoo builder arguments."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    config_path = folder / "bert_config.json"
    if not config_path.is_file():
        raise WeightsError(expected_received("BERT config", f"{config_path}", "no such file"))
    config = json.loads(config_path.read_text())
    missing = [key for key in CONFIG_KEYS if key not in config]
    if missing:
        raise WeightsError(expected_received(f"{config_path}", f"the keys {list(CONFIG_KEYS)}", f"missing {missing}"))
    if config.get("hidden_act", "gelu") != "gelu":
        raise WeightsError(expected_received(f"{config_path}: hidden_act", "'gelu'", config["hidden_act"]))
    return {
        "vocab_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "hidden_dim": config["hidden_size"],
        "num_heads": config["num_attention_heads"],
        "intermediate_dim": config["intermediate_size"],
        "max_sequence_length": config.get("max_position_embeddings", 512),
        "num_segments": config.get("type_vocab_size", 2),
    }


def google_variable_map(num_layers: int) -> dict[str, list[str]]:
    """kzoo layer name (or ``block<i>/<sublayer>``) -> the checkpoint variables of its
    weights, in the order ``layer.get_weights()`` lists them."""
    mapping = {
        "embeddings_token": ["bert/embeddings/word_embeddings"],
        "embeddings_position": ["bert/embeddings/position_embeddings"],
        "embeddings_segment": ["bert/embeddings/token_type_embeddings"],
        "embeddings_norm": ["bert/embeddings/LayerNorm/gamma", "bert/embeddings/LayerNorm/beta"],
        "pooler": ["bert/pooler/dense/kernel", "bert/pooler/dense/bias"],
        "mlm_dense": ["cls/predictions/transform/dense/kernel", "cls/predictions/transform/dense/bias"],
        "mlm_norm": ["cls/predictions/transform/LayerNorm/gamma", "cls/predictions/transform/LayerNorm/beta"],
        "mlm_bias": ["cls/predictions/output_bias"],
    }
    for index in range(num_layers):
        layer = f"bert/encoder/layer_{index}"
        mapping[f"block{index + 1}/attention"] = [
            f"{layer}/attention/self/{part}/{kind}" for part in ("query", "key", "value") for kind in ("kernel", "bias")
        ] + [f"{layer}/attention/output/dense/kernel", f"{layer}/attention/output/dense/bias"]
        mapping[f"block{index + 1}/attention_norm"] = [
            f"{layer}/attention/output/LayerNorm/gamma",
            f"{layer}/attention/output/LayerNorm/beta",
        ]
        mapping[f"block{index + 1}/intermediate"] = [
            f"{layer}/intermediate/dense/kernel",
            f"{layer}/intermediate/dense/bias",
        ]
        mapping[f"block{index + 1}/output_dense"] = [f"{layer}/output/dense/kernel", f"{layer}/output/dense/bias"]
        mapping[f"block{index + 1}/output_norm"] = [f"{layer}/output/LayerNorm/gamma", f"{layer}/output/LayerNorm/beta"]
    return mapping


def _layer(model: Any, key: str) -> Any:
    if "/" not in key:
        return model.get_layer(key)
    block, sublayer = key.split("/")
    return getattr(model.get_layer(block), sublayer)


def load_google_checkpoint(
    path: str | os.PathLike, *, head: str = "mlm", include_top: bool = True, **kwargs: Any
) -> tuple[Any, Any]:
    """Builds a kzoo BERT from a Google BERT checkpoint folder (or ``.ckpt`` prefix).

    Args:
        path: The unpacked folder of e.g. ``uncased_L-2_H-128_A-2.zip`` (BERT-Tiny).
        head: ``"mlm"`` (the checkpoint's own masked-LM head is loaded), ``"classifier"``
            (the pooler is loaded, ``predictions`` starts new) or ``"tagger"``.
        include_top: ``False`` for the encoder alone.
        **kwargs: Further builder arguments (``num_classes``, ``dropout``, ...).

    Returns:
        ``(model, tokenizer)``: the model with the checkpoint's weights and a
        :class:`kzoo.text.WordPieceTokenizer` on its ``vocab.txt`` (``None`` if the folder
        has none).
    """
    import tensorflow as tf

    from kzoo import text
    from kzoo.models.bert import bert

    path = Path(path).expanduser()
    prefix = _checkpoint_prefix(path)
    config = read_config(prefix.parent)
    unknown = sorted(set(kwargs) & set(config))
    if unknown:
        raise InvalidArgumentError(
            expected_received("builder arguments", "none that the checkpoint's config fixes", unknown)
        )
    kwargs.setdefault("name", "bert")
    model = bert(**config, **kwargs, head=head, include_top=include_top)
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception as error:  # TensorFlow raises several types for unreadable files
        raise WeightsError(f"could not read the BERT checkpoint {prefix}: {type(error).__name__}: {error}") from error
    stored = reader.get_variable_to_shape_map()
    present = {layer.name for layer in model.layers}
    updates = []
    for key, variables in google_variable_map(config["num_layers"]).items():
        if key.split("/")[0] not in present:
            continue  # a head this model does not have
        missing = [v for v in variables if v not in stored]
        if missing:
            raise WeightsError(f"BERT checkpoint {prefix} has no variable {missing[0]!r} for kzoo layer {key!r}.")
        layer = _layer(model, key)
        targets = layer.get_weights()
        values = [reader.get_tensor(v) for v in variables]
        values = [np.reshape(value, target.shape) for value, target in zip(values, targets)]
        updates.append((layer, values))
    for layer, values in updates:  # assigned only once every variable was found
        layer.set_weights(values)
    vocabulary = prefix.parent / "vocab.txt"
    tokenizer = (
        text.WordPieceTokenizer(vocabulary, sequence_length=min(128, config["max_sequence_length"]))
        if vocabulary.is_file()
        else None
    )
    return model, tokenizer
