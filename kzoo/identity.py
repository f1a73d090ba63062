"""What a kzoo model is, kept inside the model: :class:`ModelIdentity` and :class:`KzooModel`.

Decision (issue 15): the identity lives in an in-graph layer, ``KzooIdentity``, placed on the
model's (first) input, and models from :func:`kzoo.get` are :class:`KzooModel`, a registered
functional subclass of ``keras.Model``.

- A layer's config is the one thing every Keras path keeps: ``.keras`` save and
  ``load_model(safe_mode=True)`` in a new process, ``get_config``/``from_config``,
  ``keras.models.clone_model`` (which rebuilds functional models from layer configs and
  calls the class constructor with tensors only, so metadata held by the model object
  itself would be lost), mixed-precision and distribution copies, and a
  ``keras.Model(model.inputs, model.outputs)`` wrapper.
- The subclass adds what a layer cannot: ``predict``, ``evaluate`` and ``fit`` take raw
  strings for text models (tokenized before the compiled step, so it stays XLA-compiled)
  and check input types and value ranges with kzoo errors.

Every kzoo helper reads the identity with :func:`of`; none keeps a table beside the model.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.layers.identity import IDENTITY_LAYER, PREPROCESSING_LAYER, ImagePreprocessing, KzooIdentity

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class ModelIdentity:
    """What a model from :func:`kzoo.get` is; serialized into its ``KzooIdentity`` layer.

    Args:
        name: Registry name (``"lenet5"``), or ``None`` for a model kzoo did not build.
        family: Family name (``"lenet"``).
        task: The registry task (``"image-classification"``, ...).
        builder_kwargs: The builder arguments the model was built with (JSON values).
        weights: Key of the weights record loaded (``"lenet5.mnist"``), ``"file:<path>"``
            for a user's file, or ``None`` for random initialisation.
        preprocessing: Raw 0-255 pixels -> model input, as :class:`kzoo.weights.Preprocessing`
            fields; ``None`` for models that do not read images.
        preprocessing_in_model: The model applies ``preprocessing`` itself (its input is raw
            pixels); otherwise ``kzoo.data`` pipelines apply it.
        input_range: ``(low, high)`` of the values the input must lie in (autoencoders and
            GANs, whose weights expect scaled pixels), checked by ``predict``/``evaluate``/``fit``.
        class_names: Output class names, in order.
        stages: Stage names, input to output (for ``freeze``/``unfreeze``/``feature_extractor``).
        head_layers: Layers that depend on the number of classes.
        stem_layer: The convolution that reads the input image.
        text: How raw text becomes the model's inputs: ``{"kind": "vocabulary", "vocabulary":
            [...], "standardize", "split", "max_length"}``, ``{"kind": "hashing", "num_bins",
            "max_word_length"}`` or ``{"kind": "wordpiece", "vocabulary": [...], "lowercase",
            "max_length"}``; ``None`` for models that do not read text.
    """

    name: str | None = None
    family: str | None = None
    task: str | None = None
    builder_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    weights: str | None = None
    preprocessing: dict[str, Any] | None = None
    preprocessing_in_model: bool = False
    input_range: tuple[float, float] | None = None
    class_names: tuple[str, ...] | None = None
    stages: tuple[str, ...] = ()
    head_layers: tuple[str, ...] = ()
    stem_layer: str | None = None
    text: dict[str, Any] | None = None

    def to_config(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        config["builder_kwargs"] = _jsonable(self.builder_kwargs)
        config["format_version"] = FORMAT_VERSION
        return json.loads(json.dumps(config))  # plain JSON types only, as a .keras file stores them

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelIdentity:
        config = dict(config)
        config.pop("format_version", None)
        known = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in config.items() if key in known}
        for key in ("class_names", "stages", "head_layers", "input_range"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def replace(self, **changes: Any) -> ModelIdentity:
        return dataclasses.replace(self, **changes)

    def preprocessing_object(self) -> Any:
        """The :class:`kzoo.weights.Preprocessing` of ``preprocessing``, or ``None``."""
        from kzoo.weights import Preprocessing

        if self.preprocessing is None:
            return None
        fields = dict(self.preprocessing)
        for key in ("mean", "std"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        return Preprocessing(**fields)


def _jsonable(value: Any) -> Any:
    """Builder arguments as JSON values (tuples become lists; anything else its repr)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _identity_layer(model: Any) -> KzooIdentity | None:
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    for layer in layers:
        if isinstance(layer, KzooIdentity):
            return layer
    # A kzoo model used as a layer of the user's own model.
    for layer in layers:
        if isinstance(layer, keras.Model):
            found = _identity_layer(layer)
            if found is not None:
                return found
    return None


def of(model: Any) -> ModelIdentity | None:
    """The :class:`ModelIdentity` a model carries, or ``None`` for a model kzoo did not build."""
    layer = _identity_layer(model)
    return ModelIdentity.from_config(layer.metadata) if layer is not None else None


def require(model: Any, helper: str, fix: str) -> ModelIdentity:
    """The model's identity, or a kzoo error naming ``helper`` and the argument to pass instead."""
    identity = of(model)
    if identity is None:
        raise InvalidArgumentError(
            expected_received(
                f"{helper}: model",
                "a model from kzoo.get (it carries its kzoo identity)",
                f"{type(model).__name__} {getattr(model, 'name', '')!r} without one",
                fix,
            )
        )
    return identity


def replace_identity(model: Any, identity: ModelIdentity) -> Any:
    """Sets the identity ``model`` carries, in place (every model sharing its identity layer
    sees the change); returns ``model``."""
    layer = _identity_layer(model)
    if layer is None:
        raise InvalidArgumentError(
            expected_received(
                "model", "a model from kzoo.get", getattr(model, "name", model), "Use kzoo.identity.attach."
            )
        )
    layer.metadata = identity.to_config()
    for holder in (model, *[sub for sub in model.layers if isinstance(sub, keras.Model)]):
        if getattr(holder, "_kzoo_text_encoder", None) is not None:
            object.__setattr__(holder, "_kzoo_text_encoder", None)
    return model


def attach(model: keras.Model, identity: ModelIdentity, *, name: str | None = None) -> KzooModel:
    """A :class:`KzooModel` with ``model``'s layers and weights, carrying ``identity``.

    The identity layer goes on the first input; with ``identity.preprocessing_in_model``,
    an ``ImagePreprocessing`` layer follows it, so the model takes raw pixels. The layers
    (and their weights) are ``model``'s own, not copies; ``model`` itself is consumed (its
    input now comes out of kzoo's layers) and must not be used afterwards.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_run_through_graph"):
        raise InvalidArgumentError(expected_received("model", "a functional keras.Model", type(model).__name__))
    names = {layer.name for layer in model.layers}
    taken = names & {IDENTITY_LAYER, PREPROCESSING_LAYER}
    if taken:  # an identity of its own (one inside a nested kzoo model is fine: it is that model's)
        raise InvalidArgumentError(
            expected_received(
                "model for kzoo.identity.attach",
                "a model without a kzoo identity",
                model.name,
                "Use kzoo.identity.of(model) to read the one it has.",
            )
        )
    from keras.src.ops.node import Node

    flat_inputs = list(model.inputs)
    entry = flat_inputs[0]
    raw = keras.Input(batch_shape=entry.shape, dtype=entry.dtype, name=entry._keras_history.operation.name)
    identity_layer = KzooIdentity(identity.to_config())
    identity_layer.build(entry.shape)
    last_layer, last_input = identity_layer, raw
    if identity.preprocessing_in_model:
        preprocessing = ImagePreprocessing(**identity.preprocessing)
        preprocessing.build(entry.shape)
        last_input = identity_layer(raw)
        last_layer = preprocessing
    # Splice kzoo's layers in front of the builder's graph: the builder's input tensor becomes
    # the output of kzoo's last layer (a Node records that call, as Layer.__call__ would).
    # Calling the layers on a new input instead would give every layer a second node, and
    # `model.get_layer(name).output` (Grad-CAM, feature extractors) would then return the
    # first, orphaned graph's tensors. Nothing is rebuilt or copied: same layers, same weights.
    Node(last_layer, call_args=(last_input,), call_kwargs={}, outputs=entry)
    structure = keras.tree.map_structure(lambda t: raw if t is entry else t, model._inputs_struct)
    return KzooModel(structure, model._outputs_struct, name=name or model.name)


@keras.saving.register_keras_serializable(package="kzoo")
class KzooModel(keras.Model):
    """A functional ``keras.Model`` that knows what it is (see :func:`of`).

    Everything a ``keras.Model`` does works unchanged. A CRF tagger's ``predict`` and
    ``predict_on_batch`` give Viterbi-decoded scores (:mod:`kzoo.layers.crf`), and its
    ``compile`` binds a ``CRFLoss()`` to the CRF layer. In addition, ``predict``,
    ``evaluate`` and ``fit`` take raw inputs where the model has a way to read them:
    Python strings, lists of strings and NumPy string arrays for text models (tokenized with
    the vocabulary the model carries, before the compiled step), raw 0-255 pixels for image
    models whose preprocessing is in the graph; inputs of the wrong kind raise a kzoo error
    that names what was expected.
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(inputs, outputs, name=name, **kwargs)

    @property
    def kzoo_identity(self) -> ModelIdentity | None:
        return of(self)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        from kzoo.layers.crf import CRFLoss

        loss = kwargs["loss"] if "loss" in kwargs else (args[1] if len(args) > 1 else None)
        for item in keras.tree.flatten(loss) if loss is not None else []:
            if isinstance(item, CRFLoss):  # an unbound CRFLoss() learns which layer it scores
                item.bind(self)
        super().compile(*args, **kwargs)

    def compile_from_config(self, config: dict[str, Any]) -> None:
        # Keras skips compile() on load for a class that overrides it; this one only binds
        # CRF losses, so the saved compile arguments are restored as Keras would.
        from keras.src.saving import serialization_lib

        self.compile(**serialization_lib.deserialize_keras_object(config))
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        from kzoo import inputs
        from kzoo.layers.crf import decoding

        with decoding(self):  # a CRF's predictions are Viterbi-decoded (kzoo.layers.crf)
            return super().predict(inputs.prepare(self, x, "predict"), *args, **kwargs)

    def predict_on_batch(self, x: Any) -> Any:
        from kzoo import inputs
        from kzoo.layers.crf import decoding

        inputs.check_call(self, x, "predict_on_batch")  # text where token ids go: a kzoo error
        with decoding(self):
            return super().predict_on_batch(x)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from kzoo import inputs

        if args:  # a look at the type of the inputs only (cheap, and nothing for numbers or tensors)
            inputs.check_call(self, args[0], "__call__")
        return super().__call__(*args, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        from kzoo import inputs

        return super().evaluate(inputs.prepare(self, x, "evaluate"), y, *args, **kwargs)

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        from kzoo import inputs

        if "validation_data" in kwargs and isinstance(kwargs["validation_data"], (tuple, list)):
            data = list(kwargs["validation_data"])
            if data:
                data[0] = inputs.prepare(self, data[0], "fit (validation_data)")
            kwargs["validation_data"] = tuple(data)
        return super().fit(inputs.prepare(self, x, "fit"), y, *args, **kwargs)
