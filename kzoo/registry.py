"""The model registry: ``register_model``, ``get``, ``list_models`` and ``info``.

Each family file in ``kzoo/models/`` registers its variants as :class:`ModelSpec`
records: a name, the family's one builder function and the arguments that make the
variant, plus what the tests and the model card need (a tiny test configuration,
which layers form the head, which convolution takes the input). Weights live apart,
in :mod:`kzoo.weights`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kzoo import identity as identity_lib
from kzoo import weights as weights_lib
from kzoo import weights_guard
from kzoo.errors import (
    InvalidArgumentError,
    RegistryError,
    UnknownModelError,
    UnknownWeightsError,
    WeightsError,
    did_you_mean,
    expected_received,
)

logger = logging.getLogger("kzoo")

TASKS = (
    "image-classification",
    "image-segmentation",
    "text-classification",
    "token-classification",
    "text-embedding",
    "sequence-to-sequence",
    "image-generation",
    "image-to-image",
    "masked-language-modeling",
    "representation-learning",
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model variant.

    Args:
        name: Registry name, lower case (``"lenet5"``).
        builder: The family's builder; called as ``builder(**kwargs, **user_kwargs)``.
        family: Family name (``"lenet"``), also the module in ``kzoo/models/``.
        task: One of :data:`TASKS`.
        paper: Reference, e.g. ``"LeCun et al. 1998, Gradient-based learning ..."``.
        kwargs: Builder arguments that make this variant (``config=...``, ``head=...``); the
            caller may override them, a weights record may not.
        defaults: Builder defaults of this variant that a weights record may override (a
            variant that is another's builder with other defaults: ``unet_modern``'s widths).
        test_kwargs: Overrides giving a tiny, fast configuration for the registry-wide tests.
        head_layers: Names of the layers that depend on ``num_classes``; they are
            re-initialised when the requested classes differ from the weights'.
        stem_layer: Name of the convolution that reads the input image; its kernel is
            adapted when the requested input channels differ from the weights'.
        stages: Names of the model's stages in input-to-output order; each stage's
            layers share the stage name as prefix (``"c1"`` -> ``c1_conv``, ``c1_act``).
        make_inputs: ``f(model, batch_size, rng) -> inputs`` for tests and benchmarks;
            the default draws standard-normal floats matching ``model.inputs``.
        example: A runnable snippet shown on the model card.
        description: One line for listings.
        num_params: Parameters of the default configuration (``model.count_params()``, BatchNorm
            statistics included), shown by :func:`info` without building the model; checked
            against the built model for every spec by the tests.
        input_shape: The default configuration's input shape (``None`` for several inputs);
            with ``num_params``, what the model card shows.
    """

    name: str
    builder: Callable[..., Any]
    family: str
    task: str
    paper: str
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    test_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    head_layers: tuple[str, ...] = ("predictions",)
    stem_layer: str | None = None
    stages: tuple[str, ...] = ()
    make_inputs: Callable[..., Any] | None = None
    example: str = ""
    description: str = ""
    num_params: int | None = None
    input_shape: tuple[int | None, ...] | None = None

    def build(self, **kwargs: Any) -> Any:
        """Builds the variant with random weights; ``kwargs`` override its defaults."""
        return self.builder(**{**self.defaults, **self.kwargs, **kwargs})

    def sample_inputs(self, model: Any, batch_size: int = 2, seed: int = 0) -> Any:
        """Inputs that ``model`` (built from this spec) accepts, for tests and benchmarks."""
        import numpy as np

        rng = np.random.default_rng(seed)
        if self.make_inputs is not None:
            return self.make_inputs(model, batch_size, rng)
        arrays = [rng.standard_normal((batch_size, *tensor.shape[1:])).astype("float32") for tensor in model.inputs]
        return arrays[0] if len(arrays) == 1 else arrays


def _describe_input(record: weights_lib.WeightsRecord) -> str:
    if record.text.get("tokenizer") == "wordpiece":
        return (
            f"text: WordPiece vocabulary {record.text['vocabulary']} (lower-cased), up to "
            f"{record.text.get('max_length')} tokens; kzoo.text.tokenizer_for(model) makes the inputs"
        )
    if record.text.get("vocabulary"):
        return f"text: vocabulary {record.text['vocabulary']}, standardize={record.text.get('standardize')}"
    if record.text:
        return f"text: {record.text.get('hashing', 'hashed tokens')}, {record.text.get('num_bins')} bins"
    if record.input_shape is None:
        return "see the model's inputs"
    return f"{record.input_shape}, {record.preprocessing.describe()}"


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """What ``kzoo.info(name)`` returns; ``print(card)`` shows it readably."""

    name: str
    family: str
    task: str
    paper: str
    description: str
    input_shape: tuple[int, ...] | None
    params: int
    weights: tuple[weights_lib.WeightsRecord, ...]
    example: str
    # {format: "ok" or why it cannot export}, as tests/test_export.py measured (kzoo/export_support.json).
    exports: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def tags(self) -> list[str]:
        return [record.tag for record in self.weights]

    def __str__(self) -> str:
        lines = [
            f"{self.name}  ({self.family} family, {self.task})",
            f"  {self.description}" if self.description else None,
            f"  paper:        {self.paper}",
            f"  input shape:  {self.input_shape}",
            f"  parameters:   {self.params:,}",
        ]
        if not self.weights:
            lines.append("  weights:      none (pretrained=False only)")
        for record in self.weights:
            default = " (default)" if record.default else ""
            metrics = ", ".join(f"{k} {v:.4g}" for k, v in record.metrics.items()) or "not measured"
            where = "shipped with kzoo" if record.shipped else record.url
            lines += [
                f"  weights '{record.tag}'{default}:",
                f"    dataset:       {record.dataset}",
                f"    metrics:       {metrics}" + (f" on {record.eval_split}" if record.eval_split else ""),
                f"    classes:       {record.num_classes}" if record.num_classes is not None else None,
                f"    input:         {_describe_input(record)}",
                f"    source:        {record.source} ({where})",
                f"    license:       {record.license}",
                f"    recipe:        {record.recipe}",
                f"    sha256:        {record.sha256 or '-'}" + (f"  md5: {record.md5}" if record.md5 else ""),
            ]
        if self.exports:
            ok = [fmt for fmt, status in self.exports.items() if status == "ok"]
            lines.append(f"  exports to:   {', '.join(ok) or 'none'} (kzoo export NAME --format FORMAT OUT)")
            lines += [f"  no {fmt}: {why}" for fmt, why in self.exports.items() if why != "ok"]
        if self.example:
            lines.append("  example:")
            lines += [f"    {line}" for line in self.example.strip().splitlines()]
        return "\n".join(line for line in lines if line is not None)


_MODELS: dict[str, ModelSpec] = {}
_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a model returned by :func:`get` came from."""

    spec: ModelSpec
    weights: weights_lib.WeightsRecord | None
    kwargs: dict[str, Any]


def register_model(spec: ModelSpec) -> ModelSpec:
    """Adds a model variant to the registry.

    Raises:
        RegistryError: a model with that name exists, or the spec is malformed.
    """
    if not isinstance(spec, ModelSpec):
        raise InvalidArgumentError(
            expected_received("register_model(spec)", "a kzoo.registry.ModelSpec", type(spec).__name__)
        )
    if not spec.name or spec.name != spec.name.lower() or any(c in spec.name for c in " *?[]:/"):
        raise RegistryError(
            expected_received("model name", "a lower-case name without spaces, ':', '/' or wildcards", spec.name)
        )
    if spec.task not in TASKS:
        raise RegistryError(expected_received(f"task of model {spec.name!r}", f"one of {TASKS}", spec.task))
    with _LOCK:
        if spec.name in _MODELS:
            raise RegistryError(
                f"a model named {spec.name!r} is already registered (family {_MODELS[spec.name].family!r}); "
                "model names must be unique."
            )
        _MODELS[spec.name] = spec
    return spec


def _unregister_model(name: str) -> None:
    """Removes a registered model (for tests)."""
    with _LOCK:
        _MODELS.pop(name, None)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name``."""
    if not isinstance(name, str):
        raise InvalidArgumentError(expected_received("model name", "a string such as 'lenet5'", name))
    key = name.strip().lower()
    if key in _MODELS:
        return _MODELS[key]
    hint = did_you_mean(key, _MODELS)
    raise UnknownModelError(
        expected_received(
            "unknown model name",
            f"a registered model name (one of the {len(_MODELS)} that kzoo.list_models() lists)",
            name,
            f"{hint + ' ' if hint else ''}List the available models with kzoo.list_models() or `kzoo list`.",
        )
    )


def list_models(pattern: str = "*", task: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Names of registered models, sorted.

    Args:
        pattern: Shell-style wildcard (``"resnet*"``, ``"vgg1?"``), matched case-insensitively.
        task: Keep only models of this task (see :data:`TASKS`).
        pretrained: ``True`` keeps models that have weights, ``False`` those without,
            ``None`` (default) keeps both.

    Raises:
        InvalidArgumentError: ``pattern`` is not a string, ``task`` is not one of
            :data:`TASKS`, or ``pretrained`` is not ``True``, ``False`` or ``None``.

    Example:
        >>> import kzoo
        >>> kzoo.list_models("lenet*", pretrained=True)
        ['lenet5']
    """
    if not isinstance(pattern, str):
        raise InvalidArgumentError(
            expected_received(
                "list_models(pattern)", "a string, a shell-style wildcard such as 'resnet*'", pattern, "Or '*' for all."
            )
        )
    if task is not None and (not isinstance(task, str) or task not in TASKS):
        hint = did_you_mean(task, TASKS) if isinstance(task, str) else ""
        raise InvalidArgumentError(expected_received("task", f"one of {TASKS}", task, hint or None))
    if pretrained is not None and not isinstance(pretrained, bool):
        raise InvalidArgumentError(
            expected_received(
                "list_models(pretrained)",
                "True, False or None",
                pretrained,
                "True keeps models with weights, False those without, None both.",
            )
        )
    names = []
    for name, model_spec in _MODELS.items():
        if not fnmatch.fnmatchcase(name, pattern.lower()):
            continue
        if task is not None and model_spec.task != task:
            continue
        if pretrained is not None and bool(weights_lib.records_for(name)) != pretrained:
            continue
        names.append(name)
    return sorted(names)


def info(name: str) -> ModelCard:
    """The model card of a registered model.

    Parameters and input shape come from the spec's ``num_params`` and ``input_shape`` (the
    model is not built); a spec without them is built inside a ``keras.StatelessScope``,
    whose variables are never initialised.

    Example:
        >>> import kzoo
        >>> print(kzoo.info("lenet5"))  # doctest: +SKIP
    """
    model_spec = spec(name)
    records = tuple(weights_lib.records_for(model_spec.name))
    params, input_shape = model_spec.num_params, model_spec.input_shape
    if params is None:  # a spec registered without its facts: count on a model never initialised
        import keras

        with keras.StatelessScope():  # variables are created without values: shapes only
            model = model_spec.build()
            params = int(model.count_params())
            input_shape = tuple(model.inputs[0].shape[1:]) if len(model.inputs) == 1 else None
        del model
    return ModelCard(
        name=model_spec.name,
        family=model_spec.family,
        task=model_spec.task,
        paper=model_spec.paper,
        description=model_spec.description,
        input_shape=input_shape,
        params=int(params),
        weights=records,
        example=model_spec.example,
        exports=_export_support(model_spec.name),
    )


def _export_support(name: str) -> dict[str, str]:
    from kzoo.export import supported_formats  # imported here: kzoo.export imports the registry

    return supported_formats(name)


def resolve_weights(model_spec: ModelSpec, pretrained: Any) -> weights_lib.WeightsRecord | Path | None:
    """What ``pretrained=...`` of :func:`get` names: a weights record, a file path, or ``None``."""
    records = weights_lib.records_for(model_spec.name)
    tags = [record.tag for record in records]
    if pretrained is False or pretrained is None:
        return None
    if pretrained is True:
        if not records:
            raise UnknownWeightsError(
                f"model {model_spec.name!r} has no pretrained weights: expected pretrained=False or a path to "
                "a .weights.h5 file, received pretrained=True. "
                "See kzoo.list_models(pretrained=True) for models with weights."
            )
        return records[0]
    if isinstance(pretrained, os.PathLike):
        pretrained = os.fspath(pretrained)
    if not isinstance(pretrained, str):
        raise InvalidArgumentError(
            expected_received("pretrained", "False, True, a weights tag or a path to a .weights.h5 file", pretrained)
        )
    for record in records:
        if record.tag == pretrained:
            return record
    looks_like_path = (
        os.sep in pretrained
        or "/" in pretrained
        or pretrained.endswith((".h5", ".keras"))
        or weights_guard.path_exists(pretrained)  # True too where asking fails (a name too long)
    )
    if looks_like_path:
        # A readable, non-empty regular file: directories, devices, /proc files, names too long
        # and unknown ~users are WeightsErrors here, not OSError or RuntimeError later.
        return weights_guard.check_path(pretrained, what="pretrained weights file")
    hint = did_you_mean(pretrained, tags)
    raise UnknownWeightsError(
        expected_received(
            f"weights tag of model {model_spec.name!r}",
            f"one of {tags}" if tags else "no tag (this model has no pretrained weights)",
            pretrained,
            (hint + " " if hint else "") + "Pass a path to load your own .weights.h5 file.",
        )
    )


def _check_kwargs(model_spec: ModelSpec, kwargs: dict[str, Any]) -> None:
    parameters = inspect.signature(model_spec.builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [n for n, p in parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in kwargs:
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            raise InvalidArgumentError(
                expected_received(
                    f"keyword argument of kzoo.get({model_spec.name!r})",
                    f"one of {accepted}",
                    key,
                    hint or None,
                )
            )


IMAGE_TASKS = ("image-classification", "image-segmentation")
# Tasks whose image inputs are scaled pixels in a documented range (no preprocessing in the graph).
RANGED_TASKS = ("representation-learning", "image-generation", "image-to-image")


def get(
    name: str,
    /,
    *,
    pretrained: bool | str | os.PathLike = False,
    include_preprocessing: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Builds a registered model, optionally with pretrained weights.

    Args:
        name: Registered model name (see :func:`list_models`).
        pretrained: ``False`` for random initialisation, ``True`` for the model's
            default weights, a weights tag (``"mnist"``), or a path to a ``.weights.h5``
            file (or a ``.keras`` file, read with ``safe_mode=True``).
        include_preprocessing: Put the weights' preprocessing inside the model, so it takes
            raw 0-255 pixels. Default: on for image classifiers and segmentation models with
            pretrained weights from a kzoo record, off otherwise (``kzoo.data`` pipelines then
            apply it). ``False`` gives the graph of ``keras.applications`` (preprocessed inputs).
        **kwargs: Builder arguments: for vision models ``input_shape``, ``num_classes``,
            ``include_top``, ``pooling``, ``classifier_activation``, ``name`` and the
            family's own arguments.

    When ``num_classes`` differs from the weights' classes, every weight but the head
    is loaded and the head is freshly initialised; when the input channels differ from
    the weights', the first convolution's kernel is adapted (summed for one channel,
    repeated and rescaled for more). Each adaptation is logged in one line. The model is
    built once: weights are read from the file layer by layer into it.

    Returns:
        A :class:`kzoo.identity.KzooModel` (a functional ``keras.Model``) that carries its
        identity: registry name, builder arguments, weights, preprocessing, classes, stages
        and, for text models, its vocabulary (see :func:`kzoo.identity.of`).

    Example:
        >>> import kzoo
        >>> model = kzoo.get("lenet5", pretrained=True)
        >>> model.output_shape
        (None, 10)
    """
    if include_preprocessing not in (None, True, False):
        raise InvalidArgumentError(
            expected_received("include_preprocessing", "None, True or False", include_preprocessing)
        )
    model_spec, model, build_kwargs, record, source, inherited = _build(name, pretrained, kwargs)
    identity = _identity_for(model_spec, model, build_kwargs, record, source, include_preprocessing, inherited)
    return identity_lib.attach(model, identity)


def build_with_weights(name: str, /, *, pretrained: bool | str | os.PathLike = False, **kwargs: Any) -> Any:
    """Like :func:`get`, but the plain functional model the builder makes (no kzoo identity,
    no preprocessing layer): for builders that use another registered model as a part
    (a U-Net's encoder)."""
    return _build(name, pretrained, kwargs)[1]


def _build(name: str, pretrained: Any, kwargs: dict[str, Any]) -> tuple:
    model_spec = spec(name)
    _check_kwargs(model_spec, kwargs)
    source = resolve_weights(model_spec, pretrained)
    record = source if isinstance(source, weights_lib.WeightsRecord) else None
    # Unless the caller says otherwise, build the configuration the weights were trained in:
    # the variant's defaults < the weights' arguments < what makes the variant < the caller's.
    weights_kwargs = {}
    if record is not None:
        weights_kwargs = {**record.builder_kwargs, **_record_configuration(model_spec, record)}
    build_kwargs = {**model_spec.defaults, **weights_kwargs, **model_spec.kwargs, **kwargs}
    model = model_spec.builder(**build_kwargs)
    inherited = None
    if record is not None:
        _load_record(model_spec, record, model, build_kwargs)
    elif isinstance(source, Path):
        inherited = _load_file(model_spec, source, model)
    return model_spec, model, build_kwargs, record, source, inherited


def _load_record(
    model_spec: ModelSpec, record: weights_lib.WeightsRecord, model: Any, build_kwargs: dict[str, Any]
) -> None:
    """Loads a record's file into ``model``, mapping it onto the requested configuration."""
    path = weights_lib.fetch(record)
    description = f"weights '{record.key}'"
    # The configuration the file was saved from (a masked-LM file for a classifier: head="mlm").
    saved_kwargs = {**build_kwargs, **record.builder_kwargs, **_record_configuration(model_spec, record)}
    same_configuration = saved_kwargs == build_kwargs
    if record.format == "h5-legacy":
        # Read by layer name, one layer at a time, straight into the model: no second model.
        with weights_lib.LegacyH5Weights(path) as stored:
            transfer_weights(stored, model, model_spec, source_description=description, exact=same_configuration)
        return
    if same_configuration:
        weights_lib.load_weights_file(model, path, format=record.format)
        return
    # A Keras 3 weights file is stored by layer position, not name, so another configuration
    # needs a model of the file's own configuration to read it; kzoo's shipped files are small
    # (<= 10 MB), so this second model is too.
    reference = model_spec.builder(**saved_kwargs)
    weights_lib.load_weights_file(reference, path, format=record.format)
    transfer_weights(reference, model, model_spec, source_description=description)
    del reference


def _load_file(model_spec: ModelSpec, path: Path, model: Any) -> Any:
    """Loads a user's weights or ``.keras`` file into ``model``; returns the file's identity, if any."""
    if path.suffix != ".keras":
        weights_lib.load_weights_file(model, path)
        return None
    import keras

    # Before Keras opens it: sizes against the model, a model at the top level (built without
    # memory to measure it), and model.weights.h5 against every rule of kzoo.weights_guard.
    weights_guard.check_keras_archive(path, model)
    try:
        # safe_mode=True refuses lambda layers and other arbitrary code in the file.
        reference = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise WeightsError(f"model file {path} could not be loaded safely: {type(error).__name__}: {error}") from error
    if not isinstance(reference, keras.Model):
        raise WeightsError(expected_received(f"model file {path}", "a saved keras.Model", type(reference).__name__))
    transfer_weights(reference, model, model_spec, source_description=f"weights file {path}")
    # The file's values are finite in its own dtypes; the model's may be narrower (float64 -> float32).
    weights_guard.check_model_finite(model, file=path)
    inherited = identity_lib.of(reference)
    del reference
    return inherited


def _image_input(model: Any) -> bool:
    return len(model.inputs) == 1 and len(model.inputs[0].shape) == 4


def _identity_for(
    model_spec: ModelSpec,
    model: Any,
    build_kwargs: dict[str, Any],
    record: weights_lib.WeightsRecord | None,
    source: Any,
    include_preprocessing: bool | None,
    inherited: Any,
) -> Any:
    image = _image_input(model)
    preprocessing = None
    # A model whose encoder is another registered model with pretrained weights (a U-Net's
    # encoder_weights): its input is what those weights expect.
    encoder_record = None
    if record is None and build_kwargs.get("encoder") and build_kwargs.get("encoder_weights"):
        encoder_record = resolve_weights(spec(build_kwargs["encoder"]), build_kwargs["encoder_weights"])
        encoder_record = encoder_record if isinstance(encoder_record, weights_lib.WeightsRecord) else None
    known = record or encoder_record
    if image:
        default = weights_lib.Preprocessing(channel_order="grayscale" if model.inputs[0].shape[-1] == 1 else "rgb")
        preprocessing = dataclasses.asdict(known.preprocessing if known is not None else default)
    in_model = (
        bool(known is not None and model_spec.task in IMAGE_TASKS)
        if include_preprocessing is None
        else (include_preprocessing)
    )
    if in_model and not image:
        raise InvalidArgumentError(
            expected_received(
                f"kzoo.get({model_spec.name!r}): include_preprocessing",
                "None or False (the model does not read images)",
                include_preprocessing,
            )
        )
    input_range = None
    if image and record is not None and model_spec.task in RANGED_TASKS:
        prep = record.preprocessing
        if prep.mean is None and prep.std is None:
            low, high = sorted((prep.offset, 255.0 * prep.scale + prep.offset))
            input_range = (low, high)
    class_names = None
    if record is not None and record.class_names:
        outputs = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
        if outputs == len(record.class_names):
            class_names = tuple(record.class_names)
    weights_key = record.key if record is not None else (f"file:{source}" if isinstance(source, Path) else None)
    identity = identity_lib.ModelIdentity(
        name=model_spec.name,
        family=model_spec.family,
        task=model_spec.task,
        builder_kwargs=build_kwargs,
        weights=weights_key,
        preprocessing=preprocessing,
        preprocessing_in_model=in_model,
        input_range=input_range,
        class_names=class_names,
        stages=tuple(model_spec.stages),
        head_layers=tuple(model_spec.head_layers),
        stem_layer=model_spec.stem_layer,
        text=_text_settings(record) if record is not None else None,
    )
    if inherited is not None:
        # A .keras file made by kzoo: keep what it knew about its inputs and classes.
        identity = identity.replace(
            preprocessing=inherited.preprocessing if image else None,
            preprocessing_in_model=inherited.preprocessing_in_model if include_preprocessing is None else in_model,
            input_range=inherited.input_range,
            class_names=inherited.class_names if class_names is None else class_names,
            text=inherited.text,
        )
    return identity


def _text_settings(record: weights_lib.WeightsRecord) -> dict[str, Any] | None:
    """The record's text preprocessing, with its vocabulary read in (so it travels with the model)."""
    text = dict(record.text)
    if not text:
        return None
    if "vocabulary" in text:
        path = weights_lib.shipped_dir() / text["vocabulary"]
        if not path.is_file() or weights_lib.file_hashes(path)["sha256"] != text.get("vocabulary_sha256"):
            raise WeightsError(f"vocabulary {path} of weights {record.key} is missing or fails its sha256.")
        vocabulary = path.read_text(encoding="utf-8").splitlines()
        kind = "wordpiece" if text.get("tokenizer") == "wordpiece" else "vocabulary"
        settings = {"kind": kind, "vocabulary": vocabulary, "source": text["vocabulary"]}
        if kind == "wordpiece":
            settings.update(lowercase=text.get("lowercase", True), max_length=text.get("max_length", 128))
        else:
            settings.update(
                standardize=text.get("standardize"), split=text.get("split"), max_length=text.get("max_length")
            )
        return settings
    if "num_bins" in text:
        return {
            "kind": "hashing",
            "num_bins": text["num_bins"],
            "max_word_length": text.get("max_word_length", 16),
            "normalize_digits": text.get("normalize_digits", False),
        }
    return None


def _record_configuration(model_spec: ModelSpec, record: weights_lib.WeightsRecord) -> dict[str, Any]:
    """The builder arguments that describe the weights' own configuration."""
    parameters = inspect.signature(model_spec.builder).parameters
    configuration = {
        "input_shape": record.input_shape,
        "num_classes": record.num_classes,
        "include_top": record.include_top,
    }
    return {k: v for k, v in configuration.items() if v is not None and k in parameters}


def origin(model: Any) -> Origin | None:
    """The registry spec, weights record and builder arguments of a model from :func:`get`.

    Read from the identity the model carries (:func:`kzoo.identity.of`), so it works after
    ``.keras`` save and reload too; ``None`` for a model kzoo did not build.
    """
    identity = identity_lib.of(model)
    if identity is None:
        return None
    model_spec = _MODELS.get(identity.name) if identity.name else None
    record = weights_lib.find_record(identity.weights) if identity.weights else None
    return Origin(spec=model_spec, weights=record, kwargs=dict(identity.builder_kwargs))


def adapt_input_channels(kernel: Any, channels: int) -> Any:
    """Adapts a convolution kernel ``(..., in_channels, filters)`` to ``channels`` inputs.

    One channel: the sum over the pretrained input channels (a grayscale image seen as
    R = G = B gives the same response). More channels: the pretrained channels repeated
    cyclically and scaled by ``old / new`` so activations keep their magnitude. This is
    the rule timm applies for ``in_chans``.
    """
    import numpy as np

    kernel = np.asarray(kernel)
    old = kernel.shape[-2]
    if channels == old:
        return kernel
    if channels == 1:
        return kernel.sum(axis=-2, keepdims=True)
    repeats = -(-channels // old)
    tiled = np.concatenate([kernel] * repeats, axis=-2)[..., :channels, :]
    return tiled * (old / channels)


def transfer_weights(
    source: Any, target: Any, model_spec: ModelSpec, *, source_description: str, exact: bool = False
) -> None:
    """Copies weights layer by layer (matched by name) from ``source`` into ``target``.

    ``source`` is a model or a :class:`kzoo.weights.LegacyH5Weights` file reader. Head layers
    whose shapes differ stay freshly initialised; a stem convolution whose input channels
    differ gets an adapted kernel; any other difference is an error that names the layer
    and both shapes. With ``exact``, the source must hold no layer the target lacks (the
    target is the configuration the weights were saved from). Every layer is checked
    (by shape) before any is assigned, so a failure leaves the target untouched.
    """
    stored = weights_lib.ModelWeights(source) if not isinstance(source, weights_lib.LegacyH5Weights) else source
    head_reset, stem_adapted = [], None
    updates = []  # (layer, "copy" | "adapt")
    target_layers = [layer for layer in target.layers if layer.weights]
    for layer in target_layers:
        new_shapes = [tuple(w.shape) for w in layer.weights]
        if layer.name not in stored:
            if layer.name in model_spec.head_layers:
                head_reset.append(layer.name)
                continue
            raise WeightsError(
                f"{source_description} have no layer {layer.name!r} for model {target.name!r}; "
                "they were saved from a different architecture."
            )
        old_shapes = stored.shapes(layer.name)
        if old_shapes == new_shapes:
            updates.append((layer, "copy"))
        elif layer.name in model_spec.head_layers:
            head_reset.append(layer.name)
        elif (
            layer.name == model_spec.stem_layer
            and len(old_shapes) == len(new_shapes)
            and old_shapes[0][:-2] == new_shapes[0][:-2]
            and old_shapes[0][-1] == new_shapes[0][-1]
            and old_shapes[1:] == new_shapes[1:]
        ):
            stem_adapted = (layer.name, old_shapes[0][-2], new_shapes[0][-2])
            updates.append((layer, "adapt"))
        else:
            raise WeightsError(_shape_message(source_description, layer.name, new_shapes, old_shapes, source))
    if exact:
        extra = sorted(set(stored.names()) - {layer.name for layer in target_layers})
        if extra:
            raise WeightsError(
                f"{source_description} do not fit model {target.name!r}: the file holds layers the model lacks "
                f"{extra[:5]}{'...' if len(extra) > 5 else ''}. Was it saved from another architecture?"
            )
    # Assign only after every layer was checked; read each layer's arrays only when assigning it.
    for layer, how in updates:
        values = stored.arrays(layer.name)
        if how == "adapt":
            values = [adapt_input_channels(values[0], layer.weights[0].shape[-2]), *values[1:]]
        layer.set_weights(values)
        del values
    if head_reset:
        logger.warning(
            "kzoo: %s: loaded all weights but the head (%s), which is newly initialised for the requested classes.",
            source_description,
            ", ".join(head_reset),
        )
    if stem_adapted:
        name, old_channels, new_channels = stem_adapted
        rule = "summed over" if new_channels == 1 else "repeated and rescaled from"
        logger.warning(
            "kzoo: %s: adapted %s from %d to %d input channels (kernel %s the pretrained channels).",
            source_description,
            name,
            old_channels,
            new_channels,
            rule,
        )


def _shape_message(source_description: str, layer: str, expected: list, received: list, source: Any = None) -> str:
    trained = ""
    if source is not None and len(getattr(source, "inputs", [])) == 1:
        trained = f" (they were trained with input_shape={tuple(source.inputs[0].shape[1:])})"
    return (
        f"{source_description} do not fit layer {layer!r}: expected weight shapes "
        f"{[tuple(shape) for shape in expected]}, received {[tuple(shape) for shape in received]}. "
        f"Use the input size and family arguments the weights were trained with{trained}, "
        "or include_top=False to keep only the convolutional layers."
    )
