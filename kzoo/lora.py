"""LoRA for kzoo.finetune: Keras' own low-rank adapters, merged back into a plain model.

Keras 3 layers that compute with one kernel (``Dense``, ``EinsumDense``, ``Embedding`` and the
convolutions built on ``BaseConv``: ``Conv1D``/``Conv2D``/``Conv3D``) have ``enable_lora(rank)``:
the kernel ``W`` is frozen and two factors ``A`` (``W.shape[:-1] + (rank,)``, He-uniform) and
``B`` (``(rank, W.shape[-1])``, zeros) are added, so the layer computes with
``W + (lora_alpha / lora_rank) * A @ B`` and starts out unchanged. kzoo uses exactly that;
this module finds the layers, freezes everything else, merges the factors back and keeps
them in kzoo's weights files.

Decisions:

- The head layers (the identity's ``head_layers``) get no adapters and train fully: they
  are new for the user's classes.
- Keras' ``save_weights`` writes the *merged* kernel and drops the factors, and its
  ``load_weights`` sets them to zero, which would leave a resumed LoRA run nothing to train
  (both factors zero: no gradient) and overwrite the frozen kernels. Every weights file kzoo
  writes (through :func:`kzoo.atomic.save_weights`: best checkpoint, resume backup, phase
  weights) therefore also holds the frozen kernels and the factors in a ``kzoo_lora`` group,
  which Keras ignores; :func:`load_weights` puts them back exactly. The file still loads
  into the plain (merged) model with Keras alone.
- :func:`merge_lora` returns a new model of the same class (a :class:`kzoo.KzooModel`
  keeps its identity layer) without LoRA variables; that is what a LoRA run's
  ``model.keras`` holds.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import keras
import numpy as np

from kzoo.errors import InvalidArgumentError, KzooError, WeightsError, expected_received

logger = logging.getLogger("kzoo")

FACTORS_GROUP = "kzoo_lora"
# (factor A, factor B, frozen base) attribute names: Embedding's, then the kernel layers'.
_ATTRIBUTES = (
    ("lora_embeddings_a", "lora_embeddings_b", "_embeddings"),
    ("lora_kernel_a", "lora_kernel_b", "_kernel"),
)
_CONSTRAINTS = ("kernel_constraint", "embeddings_constraint")  # Keras refuses LoRA with these


def supports_lora(layer: keras.layers.Layer) -> bool:
    """The layer has Keras' ``enable_lora`` and kzoo knows where its factors live."""
    if not callable(getattr(layer, "enable_lora", None)):
        return False
    return any(hasattr(layer, base) for _, _, base in _ATTRIBUTES)


def is_enabled(layer: keras.layers.Layer) -> bool:
    return bool(getattr(layer, "lora_enabled", False))


def _variables(layer: keras.layers.Layer) -> tuple[Any, Any, Any]:
    """``(A, B, W)`` of a LoRA-enabled layer: the two factors and the frozen base kernel."""
    for a, b, base in _ATTRIBUTES:
        if hasattr(layer, a):
            return getattr(layer, a), getattr(layer, b), getattr(layer, base)
    raise KzooError(f"kzoo: layer {layer.name!r} ({type(layer).__name__}) has LoRA enabled but no factors kzoo knows.")


def _layer_path(layer: keras.layers.Layer) -> str:
    """``block1/attention/query``: unique where the layer name alone is not."""
    for _, _, base in _ATTRIBUTES:
        if hasattr(layer, base):
            return getattr(layer, base).path.rsplit("/", 1)[0]
    return layer.name


def capable_layers(model: keras.Model, exclude: tuple[str, ...] = ()) -> list[keras.layers.Layer]:
    """Layers of ``model`` (at any depth) that can take LoRA, outside the top-level layers ``exclude``."""
    found, seen = [], set()
    for top in model.layers:
        if top.name in exclude:
            continue
        for layer in top._flatten_layers(include_self=True):
            if id(layer) in seen or not supports_lora(layer) or not layer.built:
                continue
            seen.add(id(layer))
            if any(getattr(layer, constraint, None) for constraint in _CONSTRAINTS):
                logger.warning("kzoo: no LoRA on %s: Keras refuses LoRA on a constrained kernel.", _layer_path(layer))
                continue
            found.append(layer)
    return found


def enabled_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The LoRA-enabled layers of ``model``, in a fixed order (the order of their variables)."""
    layers, seen = [], set()
    for layer in model._flatten_layers(include_self=False):
        if id(layer) not in seen and is_enabled(layer):
            seen.add(id(layer))
            layers.append(layer)
    return layers


def check_rank(rank: Any) -> int:
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise InvalidArgumentError(
            expected_received("lora_rank", "a positive int (the rank of the LoRA factors, e.g. 8)", rank)
        )
    return int(rank)


def check_model(model: keras.Model, rank: int, *, exclude: tuple[str, ...] = ()) -> list[keras.layers.Layer]:
    """The layers :func:`enable` would adapt; a kzoo error when there are none, or when one
    already has LoRA of another rank. Changes nothing."""
    rank = check_rank(rank)
    layers = capable_layers(model, exclude)
    if not layers:
        raise InvalidArgumentError(
            expected_received(
                "strategy='lora': model",
                "a model with Dense, EinsumDense, Embedding or Conv1D/2D/3D layers outside its head "
                f"{list(exclude)} (the layers Keras' enable_lora adapts)",
                sorted({type(layer).__name__ for layer in model.layers if layer.weights and layer.name not in exclude}),
                "Use strategy='head' or strategy='full' for this model.",
            )
        )
    for layer in layers:
        if is_enabled(layer) and layer.lora_rank != rank:
            raise InvalidArgumentError(
                expected_received(
                    "lora_rank",
                    f"{layer.lora_rank}, the rank {_layer_path(layer)} already has LoRA with",
                    rank,
                    "Fine-tune a fresh model from kzoo.get for another rank.",
                )
            )
    return layers


def enable(model: keras.Model, rank: int, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """Enables LoRA of ``rank`` on every capable layer of ``model`` outside ``exclude``, in place.

    Layers that already have LoRA of this rank keep their factors (a run resumed in the same
    process); another rank is refused (see :func:`check_model`).

    Returns:
        The paths of the adapted layers (``block1/attention/query``, ...).
    """
    layers = check_model(model, rank, exclude=exclude)
    for layer in layers:
        if not is_enabled(layer):
            layer.enable_lora(rank)
    return [_layer_path(layer) for layer in layers]


def train_only_factors(model: keras.Model, head: tuple[str, ...]) -> None:
    """Makes the LoRA factors and the head layers the only trainable weights of ``model``.

    Every other layer is frozen (BatchNormalization in inference mode). A layer holding
    factors (or a block whose sublayers do) stays trainable as a layer, its other variables
    frozen one by one; Keras' ``trainable_weights`` then lists exactly the factors.
    """
    factors = {id(v) for layer in enabled_layers(model) for v in _variables(layer)[:2]}
    for top in model.layers:
        if top.name in head:
            continue
        holds_factors = any(id(v) in factors for v in top.weights)
        top.trainable = holds_factors  # Keras sets every sublayer and variable alike
        if not holds_factors:
            continue
        for layer in top._flatten_layers(include_self=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
        for variable in top.weights:
            variable.trainable = id(variable) in factors


def factor_params(model: keras.Model) -> int:
    """The number of LoRA parameters (both factors of every adapted layer) in ``model``."""
    return sum(int(np.prod(v.shape)) for layer in enabled_layers(model) for v in _variables(layer)[:2])


def merged_kernel(layer: keras.layers.Layer) -> np.ndarray:
    """``W + (lora_alpha / lora_rank) * A @ B`` as Keras' ``kernel`` property computes it, in ``W``'s dtype."""
    a, b, base = _variables(layer)
    scale = layer.lora_alpha / layer.lora_rank
    merged = keras.ops.add(base, scale * keras.ops.matmul(a, b))
    return keras.ops.convert_to_numpy(keras.ops.cast(merged, base.dtype))


def _without_lora(config: Any) -> Any:
    """A serialized config with every layer's ``lora_rank``/``lora_alpha`` removed (plain layers)."""
    if isinstance(config, dict):
        return {key: _without_lora(value) for key, value in config.items() if key not in ("lora_rank", "lora_alpha")}
    if isinstance(config, list):
        return [_without_lora(value) for value in config]
    return config


def merge_lora(model: keras.Model) -> keras.Model:
    """A plain copy of a LoRA model: each adapted kernel becomes ``W + (alpha / rank) * A @ B``.

    The copy has the model's class (a :class:`kzoo.KzooModel` keeps its kzoo identity), its
    configuration without LoRA and no LoRA variables, so it saves to ``.keras``, reloads with
    ``keras.saving.load_model(path, safe_mode=True)`` and exports; its outputs equal the LoRA
    model's. ``model`` is left as it is. A model without LoRA gives a plain copy.

    Args:
        model: A functional model (as :func:`kzoo.get` returns), e.g. after
            ``kzoo.finetune(model, data, epochs=3, strategy="lora")``.

    Returns:
        The merged model.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("lenet5", pretrained=True)  # doctest: +SKIP
        >>> kzoo.finetune(model, data, epochs=2, strategy="lora", lora_rank=4)  # doctest: +SKIP
        >>> plain = kzoo.merge_lora(model)  # doctest: +SKIP
        >>> plain.save("lenet5_digits.keras")  # doctest: +SKIP
    """
    if not isinstance(model, keras.Model) or "layers" not in model.get_config():
        raise InvalidArgumentError(
            expected_received(
                "merge_lora: model", "a functional keras.Model (as kzoo.get returns)", type(model).__name__
            )
        )
    adapted = enabled_layers(model)
    for layer in adapted:
        if getattr(layer, "quantization_mode", None):
            raise InvalidArgumentError(
                expected_received(
                    "merge_lora: model",
                    "LoRA on float layers",
                    f"{_layer_path(layer)} quantized to {layer.quantization_mode}",
                    "Merge before quantizing.",
                )
            )
    factors = {id(v) for layer in adapted for v in _variables(layer)[:2]}
    merged_values = {id(_variables(layer)[2]): merged_kernel(layer) for layer in adapted}
    values = [
        merged_values[id(v)] if id(v) in merged_values else keras.ops.convert_to_numpy(v)
        for v in model.weights
        if id(v) not in factors
    ]
    plain = type(model).from_config(_without_lora(model.get_config()))
    if enabled_layers(plain) or len(plain.weights) != len(values):
        raise KzooError(
            f"kzoo: merge_lora could not rebuild {model.name!r} without LoRA ({len(plain.weights)} weights in the "
            f"copy, {len(values)} expected); a layer may create LoRA variables from its own arguments."
        )
    plain.set_weights(values)
    return plain


# --------------------------------------------------------------------------------------
# The factors in kzoo's weights files
# --------------------------------------------------------------------------------------


def store_factors(model: keras.Model, path: str | os.PathLike) -> None:
    """Adds the frozen kernels and LoRA factors of ``model`` to the weights file ``path``
    (written by ``model.save_weights``); nothing for a model without LoRA."""
    layers = enabled_layers(model)
    if not layers:
        return
    import h5py

    with h5py.File(path, "a") as handle:
        group = handle.create_group(FACTORS_GROUP)
        for index, layer in enumerate(layers):
            entry = group.create_group(str(index))
            entry.attrs["layer"] = _layer_path(layer)
            entry.attrs["rank"] = int(layer.lora_rank)
            for key, variable in zip(("a", "b", "base"), _variables(layer)):
                entry.create_dataset(key, data=keras.ops.convert_to_numpy(variable))


def restore_factors(model: keras.Model, path: str | os.PathLike) -> bool:
    """Puts the frozen kernels and factors stored by :func:`store_factors` back into ``model``.

    Returns:
        Whether anything was restored (``False`` for a model without LoRA or a file without
        factors, which leaves Keras' merged kernels and zero factors).
    """
    layers = enabled_layers(model)
    if not layers:
        return False
    import h5py

    with h5py.File(path, "r") as handle:
        group = handle.get(FACTORS_GROUP)
        if group is None:
            logger.warning(
                "kzoo: %s holds no LoRA factors; %s keeps the merged kernels Keras loaded, its factors are zero.",
                path,
                model.name,
            )
            return False
        stored = [group[str(index)] for index in range(len(group))]
        paths = [str(entry.attrs["layer"]) for entry in stored]
        if paths != [_layer_path(layer) for layer in layers]:
            raise WeightsError(
                f"{path}: expected LoRA factors for {[_layer_path(layer) for layer in layers]}, received {paths}. "
                "Load it into the model it was saved from."
            )
        updates = []
        for entry, layer in zip(stored, layers):
            for key, variable in zip(("a", "b", "base"), _variables(layer)):
                value = entry[key][()]
                if tuple(value.shape) != tuple(variable.shape):
                    raise WeightsError(
                        f"{path}: {_layer_path(layer)} {key}: expected shape {tuple(variable.shape)}, "
                        f"received {tuple(value.shape)}."
                    )
                updates.append((variable, value))
    for variable, value in updates:
        variable.assign(value)
    return True


def load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """``model.load_weights(path)``, then the LoRA factors kzoo stored with them (see the module docstring)."""
    model.load_weights(path)
    restore_factors(model, path)
