"""Raw inputs for kzoo models: strings to token ids, and checks of what comes in.

:class:`kzoo.identity.KzooModel` calls :func:`prepare` at the start of ``predict``,
``evaluate`` and ``fit``. Text is tokenized here, with the vocabulary or tokenizer the
model carries, outside the compiled step (string ops cannot run under XLA, and on a GPU
they would run on the host anyway), so training stays XLA-compiled. ``tf.data`` pipelines
of strings are refused with the pipeline helper to use instead.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from kzoo.errors import InvalidArgumentError, expected_received, import_tensorflow

logger = logging.getLogger("kzoo")


def _is_dataset(x: Any) -> bool:
    return hasattr(x, "element_spec") and hasattr(x, "map")


def _is_string_array(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "US":
            return True
        return x.dtype.kind == "O" and x.size > 0 and isinstance(x.flat[0], (str, bytes))
    dtype = getattr(x, "dtype", None)
    return getattr(dtype, "name", None) == "string"  # a tf.Tensor of strings


def is_text(x: Any) -> bool:
    """Whether ``x`` is text: a string, strings in a list/tuple/array, or lists of tokens."""
    if isinstance(x, (str, bytes)):
        return True
    if _is_string_array(x):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(item, (str, bytes)) for item in x) or all(
            isinstance(item, (list, tuple)) and item and all(isinstance(t, (str, bytes)) for t in item) for item in x
        )
    return False


def _as_texts(x: Any) -> list:
    if isinstance(x, (str, bytes)):
        return [x]
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    if isinstance(x, np.ndarray):
        x = x.reshape(-1).tolist()
    return [item.decode("utf-8") if isinstance(item, bytes) else item for item in x]


def describe_inputs(model: Any) -> str:
    """The model's inputs, in words, for error messages."""
    parts = [f"{t.name.split(':')[0]} {t.dtype} {tuple(t.shape)}" for t in model.inputs]
    return ", ".join(parts)


def prepare(model: Any, x: Any, purpose: str) -> Any:
    """``x`` as the model's own inputs: text tokenized, other inputs checked.

    Raises:
        InvalidArgumentError: ``x`` is of a kind the model cannot take (text for a model
            with no vocabulary, a pipeline of strings, values outside the model's input range).
    """
    from kzoo import identity as identity_lib

    identity = identity_lib.of(model)
    name = getattr(model, "name", "model")
    if x is None:
        return x
    if _is_dataset(x):
        _check_dataset(model, x, purpose)
        return x
    if isinstance(x, dict):
        if any(is_text(value) for value in x.values()):
            raise InvalidArgumentError(
                expected_received(
                    f"{name}.{purpose}: inputs",
                    f"token ids ({describe_inputs(model)}) or raw texts (not a dict of them)",
                    "a dict holding strings",
                )
            )
        return x
    if is_text(x):
        if identity is None or identity.text is None:
            _refuse_text(model, x, purpose)
        return encode_text(model, identity, _as_texts(x))
    if identity is not None and identity.text is not None:
        _check_token_ids(model, x, purpose)
        return x
    if identity is not None:
        _check_images(model, identity, x, purpose)
    return x


def _input_names(model: Any) -> list[str]:
    return [t.name.split(":")[0] for t in getattr(model, "inputs", None) or []]


def _text_fix(model: Any) -> str:
    """How to get strings into ``model``, which carries no vocabulary, by the inputs it has."""
    names = _input_names(model)
    if "token_ids" in names:  # a BERT model
        return (
            "Tokenize first: kzoo.text.tokenizer_for(model) gives the WordPiece tokenizer of a pretrained BERT "
            "(kzoo.get(name, pretrained=TAG), whose predict takes strings itself); for your own vocabulary use "
            "tokenizer = kzoo.text.WordPieceTokenizer(vocabulary). Pass tokenizer(texts), or call "
            "kzoo.text.with_text(model, tokenizer) once so that predict takes strings."
        )
    if "words" in names:  # a tagger on hashed word and character features
        return (
            "Encode the tokens with kzoo.text.TokenFeatures(), or call kzoo.text.with_text(model, "
            "kzoo.text.TokenFeatures()) once so that predict takes them."
        )
    if all(getattr(t, "dtype", None) in ("int32", "int64") for t in getattr(model, "inputs", None) or []):
        return (
            "Put your vectorizer in front: kzoo.text.end_to_end(model, vectorizer) (strings in, the vocabulary "
            "saved in the .keras file), or kzoo.text.with_text(model, vectorizer) so that predict takes strings; "
            "or tokenize first with kzoo.text.text_datasets(texts, labels, vectorizer=vectorizer). Text models "
            "from kzoo.get(name, pretrained=TAG) take strings themselves."
        )
    return "This model does not read text."


def _refuse_text(model: Any, x: Any, purpose: str) -> None:
    """Raises the kzoo error for text given to a model that carries no vocabulary."""
    raise InvalidArgumentError(
        expected_received(
            f"{getattr(model, 'name', 'model')}.{purpose}: inputs",
            f"token ids ({describe_inputs(model)}); this model carries no vocabulary to read text with",
            f"text ({type(x).__name__})",
            _text_fix(model),
        )
    )


def check_call(model: Any, x: Any, purpose: str = "__call__") -> None:
    """Refuses text where ``model`` will not tokenize it: a direct call or ``predict_on_batch``.

    Cheap (it looks at the type of ``x`` only), so the call paths of :class:`kzoo.identity.KzooModel`
    can run it before Keras sees ``x``; token ids, images and tensors of numbers pass untouched.

    Raises:
        InvalidArgumentError: ``x`` is text (Python strings, a NumPy or ``tf.string`` array) and
            the model takes token ids: with the fix that puts a vectorizer in front
            (:func:`kzoo.text.end_to_end`) or the tokenizer to use (:func:`kzoo.text.tokenizer_for`).
    """
    from kzoo import identity as identity_lib

    if x is None or _is_dataset(x) or isinstance(x, dict) or not is_text(x):
        return None
    identity = identity_lib.of(model)
    settings = identity.text if identity is not None else None
    if settings and settings.get("kind") == "strings":  # kzoo.text.end_to_end: strings are its input
        return None
    if not settings:
        _refuse_text(model, x, purpose)
    raise InvalidArgumentError(
        expected_received(
            f"{getattr(model, 'name', 'model')}.{purpose}: inputs",
            f"token ids ({describe_inputs(model)}); only predict, evaluate and fit tokenize text",
            f"text ({type(x).__name__})",
            "Call model.predict(texts), or tokenize first with kzoo.text.vectorizer_for(model) "
            "(kzoo.text.tokenizer_for(model) for BERT).",
        )
    )


def _check_dataset(model: Any, dataset: Any, purpose: str) -> None:
    import keras

    specs = keras.tree.flatten(dataset.element_spec)
    if any(getattr(getattr(spec, "dtype", None), "name", None) == "string" for spec in specs):
        raise InvalidArgumentError(
            expected_received(
                f"{getattr(model, 'name', 'model')}.{purpose}: dataset",
                "a tf.data pipeline of token ids (strings cannot enter the compiled step)",
                "a pipeline holding strings",
                "Tokenize in the pipeline with kzoo.text.text_datasets(texts, labels, "
                "vectorizer=kzoo.text.vectorizer_for(model)) (or tokenizer_for for BERT), "
                "or pass the strings themselves as a list or NumPy array.",
            )
        )


def _check_token_ids(model: Any, x: Any, purpose: str) -> None:
    arrays = (
        [x]
        if isinstance(x, np.ndarray)
        else [a for a in x if isinstance(a, np.ndarray)]
        if isinstance(x, (list, tuple))
        else []
    )
    for array in arrays:
        if array.dtype.kind == "f" and array.size and not np.all(np.mod(array, 1) == 0):
            raise InvalidArgumentError(
                expected_received(
                    f"{model.name}.{purpose}: inputs",
                    f"token ids (integers; {describe_inputs(model)}) or raw texts",
                    f"floats such as {float(array.reshape(-1)[np.argmax(np.mod(array, 1).reshape(-1) != 0)]):g}",
                )
            )


def _check_images(model: Any, identity: Any, x: Any, purpose: str) -> None:
    if not isinstance(x, np.ndarray) or len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        return
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim == 3 and all(e is None or e == s for e, s in zip(expected, x.shape)):
        raise InvalidArgumentError(
            expected_received(
                f"{model.name}.{purpose}: images",
                f"a batch of shape (N, {', '.join(str(d) for d in expected)})",
                f"one image of shape {x.shape}",
                "Add the batch axis: images[None].",
            )
        )
    if x.ndim != 4 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
        raise InvalidArgumentError(
            expected_received(
                f"{model.name}.{purpose}: images",
                f"shape (N, {', '.join(str(d) for d in expected)})",
                f"shape {x.shape}",
                "Resize with kzoo.data.image_folder(..., model=model) or build the model with input_shape=...",
            )
        )
    if x.dtype.kind not in "fiub":
        raise InvalidArgumentError(
            expected_received(f"{model.name}.{purpose}: images", "numbers (uint8 or float pixels)", str(x.dtype))
        )
    if identity.input_range is not None and x.size:
        low, high = identity.input_range
        tolerance = 1e-3 * (high - low)
        seen_low, seen_high = float(np.min(x)), float(np.max(x))
        if seen_low < low - tolerance or seen_high > high + tolerance:
            raise InvalidArgumentError(
                expected_received(
                    f"{model.name}.{purpose}: inputs",
                    f"values in [{low:g}, {high:g}] (what weights {identity.weights} were trained on)",
                    f"values in [{seen_low:g}, {seen_high:g}]",
                    "Map raw 0-255 pixels with the weights' preprocessing: "
                    "kzoo.identity.of(model).preprocessing_object()(pixels).",
                )
            )
    if identity.preprocessing_in_model and x.dtype.kind == "f" and x.size and not getattr(model, "_kzoo_warned", False):
        if float(np.min(x)) >= 0.0 and float(np.max(x)) <= 1.0:
            object.__setattr__(model, "_kzoo_warned", True)
            logger.warning(
                "kzoo: %s takes raw 0-255 pixels (its preprocessing is in the model) but received values in "
                "[0, 1]; pass the pixels as they are, not scaled.",
                model.name,
            )


# --------------------------------------------------------------------------------------
# Text -> token ids, with what the model carries
# --------------------------------------------------------------------------------------


def text_encoder(model: Any, identity: Any = None) -> Any:
    """The tokenizer a text model carries (built once per model object and kept on it)."""
    from kzoo import identity as identity_lib

    cached = getattr(model, "_kzoo_text_encoder", None)
    if cached is not None:
        return cached
    # Keras' TextVectorization and tensorflow-text are TensorFlow string ops (BackendError without it).
    import_tensorflow("raw text for kzoo's text models (tokenized with TensorFlow string ops)")
    from kzoo import tokenizers as text_lib

    identity = identity or identity_lib.of(model)
    settings = identity.text
    kind = settings.get("kind")
    if kind == "vocabulary":
        encoder = text_lib.vectorizer(
            vocabulary=settings["vocabulary"], standardize=settings.get("standardize"), split=settings.get("split")
        )
    elif kind == "hashing":
        encoder = text_lib.TokenFeatures(
            settings.get("num_bins", 16384),
            settings.get("max_word_length", 16),
            normalize_digits=settings.get("normalize_digits", False),
        )
    elif kind == "strings":
        raise InvalidArgumentError(
            expected_received("model", "a model that tokenizes outside its graph", "kzoo.text.end_to_end's model")
        )
    elif kind == "wordpiece":
        encoder = text_lib.WordPieceTokenizer(
            settings["vocabulary"],
            sequence_length=settings.get("max_length", 128),
            lowercase=settings.get("lowercase", True),
        )
    else:
        raise InvalidArgumentError(expected_received("text settings of the model", "a known kind", kind))
    # Not a tracked attribute: Keras would try to track the tokenizer's lookup tables.
    object.__setattr__(model, "_kzoo_text_encoder", encoder)
    return encoder


def encode_text(model: Any, identity: Any, texts: list) -> Any:
    """Raw texts (or lists of tokens, for taggers) as the model's inputs, NumPy arrays."""
    kind = identity.text.get("kind")
    if kind == "strings":  # the vectorizer is in the graph (kzoo.text.end_to_end)
        import tensorflow as tf

        texts = [t if isinstance(t, str) else " ".join(t) for t in texts]
        return tf.constant(np.asarray(texts, dtype=object).reshape(-1, 1), tf.string)
    encoder = text_encoder(model, identity)
    input_names = [t.name.split(":")[0] for t in model.inputs]
    if kind == "wordpiece":
        if "mask_positions" in input_names:
            raise InvalidArgumentError(
                expected_received(
                    f"{model.name}: inputs",
                    "token ids with mask_positions (a masked-LM model)",
                    "raw text",
                    "Use kzoo.text.fill_mask(model, kzoo.text.tokenizer_for(model), text).",
                )
            )
        texts = [t if isinstance(t, str) else " ".join(t) for t in texts]
        encoded = {key: np.asarray(value) for key, value in encoder(texts).items()}
        return _by_input(model, encoded)
    if kind == "vocabulary":
        texts = [t if isinstance(t, str) else " ".join(t) for t in texts]
        rows = [np.asarray(row, "int32") for row in encoder(texts).numpy()]
        limit = identity.text.get("max_length") or max([len(r) for r in rows] + [1])
        return _pad([row[:limit] for row in rows])
    # Hashed word and character features of each token (taggers): a string is split on spaces.
    sentences = [t.split() if isinstance(t, str) else list(t) for t in texts]
    features = [encoder(sentence if sentence else [""]) for sentence in sentences]
    words = _pad([np.asarray(f["words"]) for f in features])
    chars = _pad([np.asarray(f["chars"]) for f in features])
    return _by_input(model, {"words": words, "chars": chars})


def _by_input(model: Any, by_name: dict[str, np.ndarray]) -> Any:
    """Arrays named like the model's inputs, in the structure the model was built with."""
    structure = getattr(model, "_inputs_struct", None)
    if isinstance(structure, dict):
        return {key: by_name[key] for key in structure}
    names = [t.name.split(":")[0] for t in model.inputs]
    return [by_name[n] for n in names] if len(names) > 1 else by_name[names[0]]


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of different lengths, zero-padded at the end to the longest (0 is padding)."""
    length = max([len(row) for row in rows] + [1])
    out = np.zeros((len(rows), length, *rows[0].shape[1:]), "int32")
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
