"""Fine-tuning: freeze and unfreeze by stage, and ``kzoo.finetune`` in one call.

``finetune`` compiles with good defaults (Adam, a logits cross-entropy, accuracy), picks
XLA, the precision and the batches per compiled call for the device (XLA on GPUs, off for
convolutions on a CPU; bfloat16 where the device computes it natively and it pays; see
:func:`resolve_jit_compile`, :func:`kzoo.precision.resolve` and
:func:`resolve_steps_per_execution`), logs to TensorBoard, checkpoints the best
weights atomically, resumes a killed run from its last finished epoch, stops on NaN,
and leaves the best weights in the model it was given.

Strategies:

- ``"head"``: only the head trains; the backbone is frozen (BatchNorm in inference mode).
- ``"full"``: every layer trains.
- ``"two-phase"``: the head first with the backbone frozen, then the top stages are
  unfrozen (BatchNorm stays in inference mode) and training goes on at a tenth of the
  learning rate, after a recompile.
- ``"lora"``: low-rank adaptation (Hu et al. 2021, LoRA). Every ``Dense``, ``EinsumDense``,
  ``Embedding`` and ``Conv1D/2D/3D`` layer outside the head gets Keras' own
  ``enable_lora(lora_rank)``: its kernel is frozen and two small factors train in its place.
  The head trains fully; every other weight is frozen (BatchNorm in inference mode). The
  model keeps its LoRA layers (holding the best factors); :func:`merge_lora` gives the plain
  model, which is what the run directory's ``model.keras`` holds (see :mod:`kzoo.lora`).

The result reports how many parameters trained (``trainable_params`` of ``total_params``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import os
import shutil
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kzoo import atomic, precision
from kzoo import distribution as distribution_lib
from kzoo import identity as identity_lib
from kzoo import lora as lora_lib
from kzoo import run_dir as run_dir_lib
from kzoo.errors import InvalidArgumentError, did_you_mean, expected_received
from kzoo.lora import merge_lora  # noqa: F401  (kzoo.finetune.merge_lora, beside the strategy it undoes)

logger = logging.getLogger("kzoo")

STRATEGIES = ("head", "full", "two-phase", "lora")
RUN_FILE = run_dir_lib.RUN_FILE


# --------------------------------------------------------------------------------------
# Freezing by stage
# --------------------------------------------------------------------------------------


def _stages(model: keras.Model) -> tuple[str, ...]:
    identity = identity_lib.of(model)
    return identity.stages if identity is not None else ()


def _head_layers(model: keras.Model) -> tuple[str, ...]:
    identity = identity_lib.of(model)
    names = {layer.name for layer in model.layers}
    if identity is not None and identity.head_layers:
        return tuple(name for name in identity.head_layers if name in names)
    with_weights = [layer.name for layer in model.layers if layer.weights]
    return tuple(with_weights[-1:])


def _stage_index(layer_name: str, stages: tuple[str, ...]) -> int | None:
    for index, stage in enumerate(stages):
        if layer_name == stage or layer_name.startswith(f"{stage}_"):
            return index
    return None


def _resolve_stage(model: keras.Model, stage: str, argument: str) -> int:
    stages = _stages(model)
    if not stages:
        raise InvalidArgumentError(
            expected_received(
                argument,
                "None (this model declares no stages; it was not built by kzoo.get)",
                stage,
            )
        )
    if stage not in stages:
        raise InvalidArgumentError(expected_received(argument, f"one of the model's stages {list(stages)}", stage))
    return stages.index(stage)


def freeze(model: keras.Model, until: str | None = None) -> list[str]:
    """Freezes a model's layers, stage by stage from the input.

    Frozen BatchNormalization layers run in inference mode (Keras 3 semantics).

    Args:
        model: A model from :func:`kzoo.get` (it knows its stages).
        until: Freeze the stages from the input up to and including this one (see
            ``kzoo.info(name)`` / the spec's ``stages``); ``None`` freezes every layer
            but the head.

    Returns:
        Names of the layers frozen.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("lenet5")
        >>> kzoo.freeze(model, until="c3")
        ['c1_conv', 'c3_conv']
    """
    head = set(_head_layers(model))
    limit = None if until is None else _resolve_stage(model, until, "freeze(until=...)")
    stages = _stages(model)
    frozen = []
    for layer in model.layers:
        if limit is None:
            selected = layer.name not in head
        else:
            index = _stage_index(layer.name, stages)
            selected = index is not None and index <= limit
        if selected:
            layer.trainable = False
            if layer.weights:
                frozen.append(layer.name)
    return frozen


def unfreeze(model: keras.Model, from_stage: str | None = None, *, keep_batchnorm_frozen: bool = True) -> list[str]:
    """Makes layers trainable again, from a stage to the output.

    Args:
        model: A model from :func:`kzoo.get`.
        from_stage: Unfreeze this stage, every later stage and every layer after the
            last stage (the head); ``None`` unfreezes everything.
        keep_batchnorm_frozen: Leave BatchNormalization layers frozen (in inference mode),
            as fine-tuning on small data wants.

    Returns:
        Names of the layers made trainable.
    """
    stages = _stages(model)
    start = None if from_stage is None else _resolve_stage(model, from_stage, "unfreeze(from_stage=...)")
    unfrozen, reached = [], start is None
    for layer in model.layers:
        index = _stage_index(layer.name, stages)
        if not reached and index is not None and index >= start:
            reached = True
        if not reached:
            continue
        if keep_batchnorm_frozen and isinstance(layer, keras.layers.BatchNormalization):
            continue
        layer.trainable = True
        if keep_batchnorm_frozen:
            for sublayer in layer._flatten_layers(include_self=False):
                if isinstance(sublayer, keras.layers.BatchNormalization):
                    sublayer.trainable = False
        if layer.weights:
            unfrozen.append(layer.name)
    return unfrozen


# --------------------------------------------------------------------------------------
# Compilation helpers: loss, XLA, mixed precision, distribution
# --------------------------------------------------------------------------------------


def default_loss(model: keras.Model) -> keras.losses.Loss:
    """Cross-entropy matching the model's head: from logits unless it ends in softmax/sigmoid.

    A model ending in a CRF (``bilstm_crf_tagger``) gets the CRF's own loss instead.
    """
    from kzoo.layers.crf import CRFLoss, crf_layers

    crfs = crf_layers(model)
    if len(crfs) == 1:
        return CRFLoss(crfs[0])
    last = model.get_layer(_head_layers(model)[0]) if _head_layers(model) else model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "linear")
    from_logits = activation not in ("softmax", "sigmoid")
    if model.outputs[0].shape[-1] == 1:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def resolve_jit_compile(model: keras.Model, jit_compile: bool | None = None) -> bool:
    """Whether ``model`` trains under XLA, for ``jit_compile`` (``None``: the device's default).

    Never when a layer of the model cannot compile (a warning says which and why). With
    ``None``: on under JAX (its only compiled path) and on a GPU; on a CPU under TensorFlow,
    off for models with convolutions, because XLA's CPU convolutions are slower than
    TensorFlow's oneDNN kernels, in float32 and far more in bfloat16
    (``benchmarks/precision_xla.py`` measures it), and on for the others.
    """
    blockers = [
        layer for layer in model._flatten_layers(include_self=False) if not getattr(layer, "supports_jit", True)
    ]
    if jit_compile is False:
        return False
    if jit_compile is None and _xla_slower_here(model):
        logger.info(
            "kzoo: XLA is off for %s: on this CPU TensorFlow's own convolution kernels are faster "
            "(jit_compile=True turns it on).",
            model.name,
        )
        return False
    if blockers:
        names = ", ".join(
            f"{layer.name} ({type(layer).__name__}: {_jit_blocker_reason(layer)})" for layer in blockers[:3]
        )
        logger.warning("kzoo: XLA is off for %s: %s.", model.name, names)
        return False
    return True


# Batches per compiled call when kzoo picks: about a tenth of an epoch, at most this many.
MAX_STEPS_PER_EXECUTION = 16


def resolve_steps_per_execution(train: Any, steps_per_execution: int | None, distribution: Any = None) -> int:
    """Batches per compiled call: ``steps_per_execution`` if given, else kzoo's choice.

    kzoo's choice: a tenth of the epoch's batches, between 1 and :data:`MAX_STEPS_PER_EXECUTION`,
    when the training data says how many batches it holds (a ``tf.data`` pipeline of known
    cardinality, a ``PyDataset`` with a length); 1 otherwise and under a distribution strategy
    (whose input patching works batch by batch). Small models then spend their time computing
    rather than returning to Python after every batch (the "default" column of
    ``benchmarks/precision_xla.py`` includes it: LeNet-5 1.10x against one batch per call,
    with the same precision and XLA setting); the updates are the same as with 1.
    """
    if steps_per_execution is not None:
        return steps_per_execution
    if distribution is not None:
        return 1
    steps = None
    if hasattr(train, "cardinality"):
        cardinality = int(train.cardinality())
        steps = cardinality if cardinality > 0 else None
    elif isinstance(train, keras.utils.PyDataset):
        try:
            steps = len(train)
        except TypeError:
            steps = None
    if not steps:
        return 1
    return max(1, min(MAX_STEPS_PER_EXECUTION, steps // 10))


def _on_gpu() -> bool:
    return precision.gpu_compute_capability() is not None


def _xla_slower_here(model: keras.Model) -> bool:
    """XLA's default is off: a convolutional model on a CPU under TensorFlow (see resolve_jit_compile)."""
    if keras.backend.backend() != "tensorflow" or _on_gpu():
        return False
    convolutions = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv2DTranspose)
    return any(isinstance(layer, convolutions) for layer in model._flatten_layers(include_self=False))


def _training_policy(model: keras.Model, mixed_precision: str | None, use_jit: bool, strategy: str) -> str | None:
    """The dtype policy the run trains in (``None``: float32); for ``"auto"``, one log line says why."""
    policy, reason = precision.resolve(mixed_precision, on_gpu=_on_gpu(), jit_compile=use_jit)
    if mixed_precision != precision.AUTO:
        return policy
    if policy and not precision.can_copy(model):
        logger.info("kzoo: %s trains in float32: only a functional model gets a mixed-precision copy.", model.name)
        return None
    if policy and strategy == "lora":
        # Keras computes a LoRA layer's merged kernel (what its weights files hold) in the
        # compute dtype: a bfloat16 copy would write bfloat16-rounded kernels to the checkpoints.
        logger.info("kzoo: %s trains in float32: LoRA checkpoints of a bfloat16 copy lose precision.", model.name)
        return None
    logger.info(
        "kzoo: %s trains in %s: %s (mixed_precision=%s).",
        model.name,
        policy or "float32",
        reason,
        "None turns it off" if policy else "'mixed_bfloat16' asks for it",
    )
    return policy


def _jit_blocker_reason(layer: keras.layers.Layer) -> str:
    if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
        # Keras marks recurrent layers that will run cuDNN's fused kernel (TensorFlow on a GPU,
        # default activations, no recurrent dropout) as not XLA-compilable.
        return "its cuDNN kernel cannot be compiled by XLA; use_cudnn=False gives a loop XLA compiles"
    return "host-side ops such as string lookups cannot be compiled by XLA"


# --------------------------------------------------------------------------------------
# Run directory: one run per log_dir, resumable, never overwritten
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes:
        history: Per-epoch metrics of this call (``{"loss": [...], "val_accuracy": [...]}``),
            both phases concatenated; a resumed run holds the epochs run after resuming. A
            finished run started again trains nothing and holds every epoch of the run, as its
            run file recorded them.
        epochs: Epoch numbers (0-based) the history rows belong to.
        best_epoch: Epoch whose weights the model holds at the end, or ``None``.
        best_value: Monitored value at ``best_epoch``.
        monitor: The monitored metric.
        stopped_on_nan: Training stopped because the loss became NaN or infinite.
        log_dir: The run directory (TensorBoard logs, checkpoints, ``model.keras``), if any.
        trainable_params: Parameters trained in the plan's last phase (``"two-phase"``: the
            fine phase; ``"lora"``: the LoRA factors and the head).
        total_params: Every parameter of the model that trained (with ``"lora"``, its factors
            included, as PEFT counts them).
        trainable_ratio: ``trainable_params / total_params``.
    """

    history: dict[str, list[float]]
    epochs: list[int]
    best_epoch: int | None
    best_value: float | None
    monitor: str
    stopped_on_nan: bool
    log_dir: Path | None
    trainable_params: int | None = None
    total_params: int | None = None

    @property
    def trainable_ratio(self) -> float | None:
        if not self.total_params or self.trainable_params is None:
            return None
        return self.trainable_params / self.total_params


# --------------------------------------------------------------------------------------
# finetune
# --------------------------------------------------------------------------------------


def finetune(
    model: keras.Model,
    train: Any,
    validation: Any = None,
    *,
    epochs: int,
    strategy: str = "two-phase",
    head_epochs: int | None = None,
    unfreeze_stages: int = 2,
    lora_rank: int = 8,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float | None = None,
    optimizer: Any = None,
    loss: Any = None,
    metrics: Any = ("accuracy",),
    log_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    patience: int | None = None,
    jit_compile: bool | None = None,
    mixed_precision: str | None = "auto",
    steps_per_execution: int | None = None,
    distribution: Any = None,
    callbacks: Any = (),
    hparams: dict[str, Any] | None = None,
    verbose: Any = "auto",
) -> FinetuneResult:
    """Fine-tunes a model on the user's data in one call and keeps the best weights.

    Args:
        model: A model from :func:`kzoo.get` (or any functional Keras model).
        train: A :class:`kzoo.data.Datasets` (its validation split is used unless
            ``validation`` is given) or a batched ``tf.data.Dataset`` of ``(x, y)`` or
            ``(x, y, sample_weight)``; a ``keras.utils.PyDataset`` or a generator of such
            batches is passed to ``fit`` unchecked.
        validation: A batched ``tf.data.Dataset`` for validation, or a pair ``(x, y)`` of arrays.
        epochs: Total epochs (both phases of ``"two-phase"`` together).
        strategy: ``"head"``, ``"full"``, ``"two-phase"`` or ``"lora"`` (see the module docstring).
        head_epochs: Epochs of the head phase of ``"two-phase"`` (default half).
        unfreeze_stages: How many of the model's top stages ``"two-phase"`` unfreezes.
        lora_rank: Rank of the LoRA factors of ``"lora"`` (``lora_alpha`` is the rank, so
            the factors' product is added unscaled).
        learning_rate: Learning rate of the first (or only) phase.
        fine_tune_learning_rate: Learning rate after unfreezing (default a tenth).
        optimizer: A Keras optimizer (or a callable ``lr -> optimizer``); default Adam.
        loss: Default: cross-entropy from logits (see :func:`default_loss`).
        metrics: Keras metrics; default accuracy.
        log_dir: Run directory: TensorBoard logs, ``checkpoints/best.weights.h5``, the
            resume backup, ``kzoo_run.json`` and ``model.keras`` (see :mod:`kzoo.run_dir`).
            Started again with the same settings, the run in it goes on from wherever a kill
            stopped it (within a phase: after its last finished epoch; at a phase boundary:
            with the next phase; during the run file's first write: afresh), and temporary
            files of kzoo's killed writes there are removed. A finished run is not trained
            again: the call reports it and returns its result, rebuilt from the run directory
            (the model gets the run's best weights). A directory holding a run with other
            settings, finished or not, or files that are not a kzoo run is refused and left
            untouched.
        monitor: Metric deciding the best epoch; default ``val_loss`` (``loss`` without
            validation data).
        patience: Early-stopping patience in epochs; ``None`` for no early stopping.
        jit_compile: ``None`` picks per device (see :func:`resolve_jit_compile`): XLA on a GPU
            (and always on JAX); on a CPU under TensorFlow, XLA off for models with
            convolutions, which it makes slower there; never for a layer XLA cannot compile.
            ``True``/``False`` asks for it (a layer that cannot compile still turns it off).
        mixed_precision: ``"auto"`` (default) trains in ``"mixed_bfloat16"`` where the device
            computes bfloat16 natively and the run takes a path where it pays (see
            :func:`kzoo.precision.resolve`), else in float32 (and always for ``"lora"``, whose
            checkpoints Keras would write in bfloat16); one log line says which and why.
            ``None`` or ``"float32"`` trains in float32; ``"mixed_float16"`` or
            ``"mixed_bfloat16"`` asks for that policy. Outputs, the head, losses and
            BatchNorm statistics stay float32.
        steps_per_execution: Batches per compiled call (Keras' ``compile`` argument): fewer
            trips through Python per epoch, the same updates in the same order. ``None``
            picks it (see :func:`resolve_steps_per_execution`). Per-batch callbacks then run
            once per execution, with the logs of its last batch (kzoo's NaN guard stops
            within one execution).
        distribution: A ``tf.distribute`` strategy to train under: MirroredStrategy, or
            MultiWorkerMirroredStrategy (every worker makes the same call; the chief writes
            ``log_dir``, worker N keeps its own run in ``log_dir`` + ``.workerN``).
        callbacks: Extra Keras callbacks.
        hparams: Hyper-parameters to record in TensorBoard's HParams tab.
        verbose: Passed to ``fit``.

    Returns:
        :class:`FinetuneResult`; the model holds the best weights found (with ``"lora"``, in
        its LoRA layers: :func:`merge_lora` gives the plain model).

    Raises:
        InvalidArgumentError: before any work (``log_dir`` is neither created nor touched, the
            model is left as it was), with what was expected, what was received and the fix:
            ``model`` is not a Keras model; ``strategy`` is not one of :data:`STRATEGIES`;
            ``epochs`` is not an int >= 1 (>= 2 for ``"two-phase"``), ``head_epochs`` not
            ``None`` or an int in ``[1, epochs)``, ``unfreeze_stages`` or ``lora_rank`` not an
            int >= 1, ``patience`` not ``None`` or an int >= 0; ``learning_rate`` or
            ``fine_tune_learning_rate`` is not a finite number > 0 (or a Keras schedule; a
            schedule with ``"two-phase"`` needs ``fine_tune_learning_rate``); ``mixed_precision``
            is not ``"auto"``, ``None``, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``; ``metrics`` or
            ``callbacks`` is not a list, ``log_dir`` not a path; ``monitor`` is not ``loss`` or
            a metric the compiled model logs (``val_`` names only with validation data); the
            model has no layer for ``"lora"``. For the data: ``train`` or ``validation`` is not
            one of the kinds above (``None``, a path, arrays without labels, a list, a whole
            :class:`kzoo.data.Datasets` as ``validation``); a pipeline's elements hold no labels,
            are unbatched, or are images of another size than the model's input; the labels
            (with the default loss) are one-hot or of another class count than the model's
            outputs, or the first batch of ``validation`` (all of it, for arrays) holds labels
            outside ``[0, classes)``. These checks read the pipelines' ``element_spec``, the
            class count a :class:`kzoo.data.Datasets` records and at most one batch of
            validation labels, never a pass over the data.
        BackendError: ``distribution`` is given on a backend other than TensorFlow.
        KzooError: ``log_dir`` holds another run, or files that are not a kzoo run (see
            :mod:`kzoo.run_dir`).

    Example:
        >>> import kzoo
        >>> model = kzoo.get("lenet5", pretrained=True, num_classes=10)  # doctest: +SKIP
        >>> data = kzoo.data.image_folder("digits/", model=model)  # doctest: +SKIP
        >>> result = kzoo.finetune(model, data, epochs=5, log_dir="runs/digits")  # doctest: +SKIP
        >>> result = kzoo.finetune(model, data, epochs=5, strategy="lora", lora_rank=4)  # doctest: +SKIP
        >>> plain = kzoo.merge_lora(model)  # doctest: +SKIP
    """
    from kzoo import callbacks as kzoo_callbacks
    from kzoo import data as kzoo_data

    # The settings and the data, checked before any work: a refused call leaves log_dir untouched.
    _check_model(model)
    _check_strategy(strategy)
    _check_epochs(epochs)
    unfreeze_stages = _check_count("unfreeze_stages", unfreeze_stages, "how many of the model's top stages to unfreeze")
    lora_rank = lora_lib.check_rank(lora_rank)
    if strategy == "lora":
        lora_lib.check_model(model, lora_rank, exclude=_head_layers(model))
    _check_mixed_precision(mixed_precision)
    if steps_per_execution is not None:
        steps_per_execution = _check_count("steps_per_execution", steps_per_execution, "batches per compiled call")
    _check_settings(patience=patience, metrics=metrics, callbacks=callbacks, log_dir=log_dir, monitor=monitor)
    distribution_lib.check_backend(distribution)
    class_names, samples, batch_size, datasets = None, None, None, None
    _check_training_data(model, train, loss)
    if isinstance(train, kzoo_data.Datasets):
        datasets = train
        recorded = validation is None  # its own validation split: its class count was checked with the data's
        validation = validation if validation is not None else datasets.validation
        class_names, batch_size = datasets.class_names, datasets.batch_size
        _check_model_fits(model, datasets)
        train = datasets.train
    if validation is not None and not (datasets is not None and recorded):
        _check_validation_data(model, validation, loss)
    monitor = monitor or ("val_loss" if validation is not None else "loss")
    _check_monitor(model, monitor, metrics, validation is not None)
    phases = plan(strategy, epochs, head_epochs, learning_rate, fine_tune_learning_rate)
    if datasets is not None and datasets.input_shape is not None and len(datasets.input_shape) == 3:
        samples = datasets.samples(8)

    # The model that trains: the user's, or a copy for mixed precision / a distribution strategy.
    multi_worker = distribution is not None and distribution_lib.is_multi_worker(distribution)
    use_jit = resolve_jit_compile(model, jit_compile)
    if use_jit and distribution is not None and distribution.num_replicas_in_sync > 1:
        # XLA clusters cannot read a variable that lives on another device (TensorFlow's
        # "tf.Variable on a different device" known issue), which is what mirrored
        # variables are; seen with MirroredStrategy on two CPU devices.
        logger.warning(
            "kzoo: XLA is off under %s with %d replicas: XLA cannot use variables mirrored on other devices.",
            type(distribution).__name__,
            distribution.num_replicas_in_sync,
        )
        use_jit = False
    policy = _training_policy(model, mixed_precision, use_jit, strategy)
    with distribution_lib.scope(distribution):
        if policy:
            trainee = precision.with_dtype_policy(model, policy, precision.float32_layers(model, _head_layers(model)))
        elif distribution is not None:
            trainee = type(model).from_config(model.get_config())
            trainee.set_weights(model.get_weights())
        else:
            trainee = model
    if distribution is not None:  # every strategy: the same batches as one device would see
        distribution_lib.patch_for_strategy(trainee, distribution, train)

    # The run directory, and kzoo's one callback set.
    fingerprint = {
        "model": model.name,
        "params": int(model.count_params()) - lora_lib.factor_params(model),
        "strategy": strategy,
        "epochs": epochs,
        "head_epochs": phases[0].end if strategy == "two-phase" else None,
        **({"lora_rank": lora_rank} if strategy == "lora" else {}),
    }
    temporary_dir = None
    chief = not multi_worker or bool(distribution.extended.should_checkpoint)
    if log_dir is not None and not chief:
        # Every worker keeps its own resumable run directory (workers may share a file
        # system); the chief's is the run, the others sit beside it without TensorBoard logs.
        resolver = distribution.cluster_resolver
        log_dir = Path(log_dir).expanduser().with_name(f"{Path(log_dir).name}.{resolver.task_type}{resolver.task_id}")
    if log_dir is not None:
        run_dir = Path(log_dir).expanduser()
        state = run_dir_lib.open_run(run_dir, fingerprint, [phase.name for phase in phases])
    else:
        temporary_dir = Path(tempfile.mkdtemp(prefix="kzoo_finetune_"))
        run_dir, state = temporary_dir, {"phases_done": [], "best_value": None, "best_epoch": None, "history": []}
    # LoRA once the run directory took the run (a refused run leaves the model as it was), and
    # before anything reads the weights: the factors are variables of the model.
    with distribution_lib.scope(distribution):
        adapted = lora_lib.enable(trainee, lora_rank, exclude=_head_layers(trainee)) if strategy == "lora" else []
    # What trains: the last phase's trainable weights (the loop sets each phase's again).
    _set_trainable(trainee, phases[-1].name, unfreeze_stages)
    trainable_params, total_params = _parameter_counts(trainee)
    logger.info(
        "kzoo: %s trains %d of %d parameters (%.2f%%)%s.",
        model.name,
        trainable_params,
        total_params,
        100 * trainable_params / max(total_params, 1),
        f", LoRA rank {lora_rank} on {len(adapted)} layers" if strategy == "lora" else "",
    )
    compile_phase = dict(
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        use_jit=use_jit,
        distribution=distribution,
        steps_per_execution=resolve_steps_per_execution(train, steps_per_execution, distribution),
    )
    if state.get("status") == "finished":
        # Nothing to train (the run finished, maybe in a process killed before it returned): the
        # result rebuilt from the run directory, the model left as the finishing call left it.
        _compile(trainee, phases[-1], **compile_phase)
        if not trainee.optimizer.built:  # the checkpoint holds the optimizer's state too, which fit would build for
            with distribution_lib.scope(distribution):
                trainee.optimizer.build(trainee.trainable_variables)
        _load_finished_weights(trainee, run_dir, state)
        _hand_over(trainee, model, strategy, lora_rank, phases[-1], compile_phase)
        history, epochs_run = run_dir_lib.recorded_history(state)
        return _result(history, epochs_run, state, monitor, False, run_dir, trainable_params, total_params)
    if multi_worker and (samples is not None or validation is not None):
        # Predicting on the chief alone would wait forever for the other workers' collectives.
        logger.warning("kzoo: no sample predictions or confusion matrix in TensorBoard under a multi-worker strategy.")
        samples = None
    run_hparams = {
        **_run_hparams(model, batch_size),
        "strategy": strategy,
        "learning_rate": learning_rate,
        "epochs": epochs,
        "head_epochs": phases[0].end if strategy == "two-phase" else 0,
        "mixed_precision": policy or "float32",
        "lora_rank": lora_rank if strategy == "lora" else 0,
        "trainable_params": trainable_params,
        "total_params": total_params,
        "trainable_ratio": trainable_params / max(total_params, 1),
        **(hparams or {}),
    }
    kzoo_set = kzoo_callbacks.default_callbacks(
        run_dir,
        monitor=monitor,
        patience=patience,
        samples=samples,
        class_names=class_names,
        confusion_data=validation if class_names and not multi_worker else None,
        hparams=run_hparams,
        tensorboard=log_dir is not None and chief,
        backup=None,  # one backup per phase, below
    )
    nan_guard = next(c for c in kzoo_set if isinstance(c, kzoo_callbacks.NaNGuard))
    checkpoint = next(c for c in kzoo_set if isinstance(c, kzoo_callbacks.AtomicCheckpoint))
    checkpoint_path = Path(checkpoint.filepath)
    if state.get("best_value") is not None:
        checkpoint.best, checkpoint.best_epoch = state["best_value"], state["best_epoch"]
    run_state = run_dir_lib.RunState(run_dir / run_dir_lib.RUN_FILE if log_dir is not None else None, state, checkpoint)

    # One loop over the plan's phases; each resumes where a killed run stopped.
    history: dict[str, list[float]] = {}
    epochs_run: list[int] = []
    initial_weights = trainee.get_weights()
    try:
        for phase in phases:
            if phase.name in state["phases_done"]:
                continue
            if state.get("stopped_early"):  # early stopping ended the run (recorded before a kill)
                break
            if state["phases_done"]:
                previous = run_dir_lib.phase_weights(run_dir, state["phases_done"][-1])
                if previous.is_file():
                    lora_lib.load_weights(trainee, previous)
            _set_trainable(trainee, phase.name, unfreeze_stages)
            _compile(trainee, phase, **compile_phase)
            # The backup outlives the phase's fit: it is removed only once the run file records
            # the phase as done, so a kill in between restores it (zero epochs run) instead of
            # training the phase again.
            backup = kzoo_callbacks.BackupAndRestore(
                str(run_dir_lib.backup_dir(run_dir, phase.name)), delete_checkpoint=False
            )
            # Keras' BackupAndRestore leaves the epoch it restored in model._initial_epoch, which
            # every later fit prefers to its initial_epoch: each phase starts at its own epoch.
            trainee._initial_epoch = None
            result = trainee.fit(
                train,
                validation_data=validation,
                epochs=phase.end,
                initial_epoch=phase.start,
                shuffle=False,  # the tf.data pipelines shuffle themselves (Keras warns otherwise)
                # The run file before the backup: it is never behind it (see RunState).
                callbacks=[nan_guard, *kzoo_set[1:], run_state, backup, *callbacks],
                verbose=verbose,
            )
            for key, values in result.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
            epochs_run += list(result.epoch)
            if nan_guard.triggered_at is not None:
                break
            atomic.save_weights(trainee, run_dir_lib.phase_weights(run_dir, phase.name))
            state["phases_done"].append(phase.name)
            if trainee.stop_training:  # early stopping ends the whole run
                state["stopped_early"] = True
            if log_dir is not None:
                atomic.write_json(run_dir / run_dir_lib.RUN_FILE, state)
            run_dir_lib.remove_backup(run_dir, phase.name)
            if trainee.stop_training:
                break
        # Keep the best weights (the checkpoint never holds non-finite ones). Without a
        # checkpoint (the first epoch already failed), fall back to the last good state.
        if checkpoint_path.is_file():
            lora_lib.load_weights(trainee, checkpoint_path)
        elif not all(np.isfinite(w).all() for w in trainee.get_weights()):
            last_phase = run_dir_lib.phase_weights(run_dir, state["phases_done"][-1]) if state["phases_done"] else None
            if last_phase is not None and last_phase.is_file():
                lora_lib.load_weights(trainee, last_phase)
            else:
                trainee.set_weights(initial_weights)
            logger.warning("kzoo: no finite epoch to keep; %s is back to its weights before training.", model.name)
        _hand_over(trainee, model, strategy, lora_rank, phases[-1], compile_phase)
        if log_dir is not None:
            # Never LoRA variables in the run's model: the plain model they merge into.
            saved = merge_lora(model) if lora_lib.enabled_layers(model) else model
            atomic.save_model(saved, run_dir / run_dir_lib.MODEL_FILE)
            state["status"] = "finished" if nan_guard.triggered_at is None else "stopped_on_nan"
            state["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            atomic.write_json(run_dir / run_dir_lib.RUN_FILE, state)
    finally:
        if temporary_dir is not None:
            shutil.rmtree(temporary_dir, ignore_errors=True)
    stopped_on_nan = nan_guard.triggered_at is not None
    run = run_dir if log_dir is not None else None
    return _result(history, epochs_run, state, monitor, stopped_on_nan, run, trainable_params, total_params)


def _result(history, epochs, state, monitor, stopped_on_nan, log_dir, trainable, total) -> FinetuneResult:  # noqa: ANN001
    """The call's FinetuneResult: its history and epochs, the run's best epoch and value."""
    return FinetuneResult(
        history=history,
        epochs=epochs,
        best_epoch=state.get("best_epoch"),
        best_value=state.get("best_value"),
        monitor=monitor,
        stopped_on_nan=stopped_on_nan,
        log_dir=log_dir,
        trainable_params=trainable,
        total_params=total,
    )


def _compile(
    model: keras.Model,
    phase: Phase,
    *,
    optimizer: Any,
    loss: Any,
    metrics: Any,
    use_jit: bool,
    distribution: Any,
    steps_per_execution: int = 1,
) -> None:
    """Compiles ``model`` for one phase: its learning rate, kzoo's default loss unless one is given."""
    with distribution_lib.scope(distribution):
        model.compile(
            optimizer=_optimizer(optimizer, phase.learning_rate),
            loss=loss or default_loss(model),
            metrics=list(metrics) if metrics else None,
            jit_compile=use_jit,
            steps_per_execution=steps_per_execution,
        )


def _load_finished_weights(trainee: keras.Model, run_dir: Path, state: dict[str, Any]) -> None:
    """Loads what a finished run left its model holding: the best checkpoint, else the last phase's weights."""
    last_phase = run_dir_lib.phase_weights(run_dir, state["phases_done"][-1]) if state.get("phases_done") else None
    best = run_dir / run_dir_lib.BEST_WEIGHTS
    source = best if best.is_file() else last_phase if last_phase is not None and last_phase.is_file() else None
    if source is None:
        logger.warning("kzoo: the finished run in %s holds no weights; %s keeps its own.", run_dir, trainee.name)
        return
    lora_lib.load_weights(trainee, source)


def _hand_over(
    trainee: keras.Model, model: keras.Model, strategy: str, lora_rank: int, phase: Phase, compile_phase: dict
) -> None:
    """Copies the trained copy's weights and trainable flags into the user's model (when it trained a copy).

    The user's model is then compiled as the last phase was (loss, metrics, a fresh optimizer
    of the same kind, no strategy), so ``model.evaluate`` works on it as on a model that
    trained itself, in its own (float32) precision.
    """
    if trainee is model:
        return
    if strategy == "lora":  # the same LoRA layers, so the trained factors fit
        lora_lib.enable(model, lora_rank, exclude=_head_layers(model))
    model.set_weights([np.asarray(w, dtype=v.dtype) for w, v in zip(trainee.get_weights(), model.weights)])
    for layer, trained in zip(model.layers, trainee.layers):
        layer.trainable = trained.trainable
    for variable, trained in zip(model.weights, trainee.weights):  # LoRA freezes variable by variable
        variable.trainable = trained.trainable
    optimizer = compile_phase["optimizer"]
    if isinstance(optimizer, keras.optimizers.Optimizer):  # that one holds the copy's variables
        optimizer = type(optimizer).from_config(optimizer.get_config())
    _compile(model, phase, **{**compile_phase, "optimizer": optimizer, "distribution": None})


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a fine-tuning plan: which layers train, over which epochs, how fast.

    Attributes:
        name: ``"head"`` (the backbone frozen), ``"fine"`` (the top stages unfrozen, BatchNorm
            in inference mode), ``"full"`` (every layer) or ``"lora"`` (the LoRA factors and
            the head).
        start: First epoch (0-based; Keras' ``initial_epoch``).
        end: Epoch to stop before (Keras' ``epochs``).
        learning_rate: The phase's learning rate.
    """

    name: str
    start: int
    end: int
    learning_rate: float


def plan(
    strategy: str,
    epochs: int,
    head_epochs: int | None = None,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float | None = None,
) -> list[Phase]:
    """The phases a strategy trains in (see the module docstring).

    Example:
        >>> from kzoo.finetune import plan
        >>> [(p.name, p.start, p.end) for p in plan("two-phase", 6)]
        [('head', 0, 3), ('fine', 3, 6)]
    """
    _check_strategy(strategy)
    _check_epochs(epochs)
    if head_epochs is not None:
        head_epochs = _check_count("head_epochs", head_epochs, "epochs of the head phase of 'two-phase'", optional=True)
    _check_learning_rate("learning_rate", learning_rate)
    if fine_tune_learning_rate is not None:
        _check_learning_rate("fine_tune_learning_rate", fine_tune_learning_rate, optional=True)
    if strategy == "head":
        return [Phase("head", 0, epochs, learning_rate)]
    if strategy in ("full", "lora"):
        return [Phase(strategy, 0, epochs, learning_rate)]
    if epochs < 2:
        raise InvalidArgumentError(
            expected_received(
                "epochs",
                "at least 2 for strategy='two-phase' (the head first, then the top stages)",
                epochs,
                "For one epoch use strategy='head' (the head only) or strategy='full' (every layer).",
            )
        )
    if fine_tune_learning_rate is None and not isinstance(learning_rate, numbers.Real):
        raise InvalidArgumentError(
            expected_received(
                "fine_tune_learning_rate",
                "a number or a schedule for the fine phase of 'two-phase' when learning_rate is a schedule "
                "(kzoo takes a tenth of a number, not a tenth of a schedule)",
                fine_tune_learning_rate,
                "Pass fine_tune_learning_rate=... as well (a number, or a schedule starting lower).",
            )
        )
    head_epochs = head_epochs if head_epochs is not None else max(1, epochs // 2)
    if not 1 <= head_epochs < epochs:
        raise InvalidArgumentError(
            expected_received("head_epochs", f"between 1 and epochs - 1 = {epochs - 1}", head_epochs)
        )
    fine = fine_tune_learning_rate or learning_rate / 10
    return [Phase("head", 0, head_epochs, learning_rate), Phase("fine", head_epochs, epochs, fine)]


def _run_hparams(model: keras.Model, batch_size: int | None) -> dict[str, Any]:
    """What identifies a fine-tuning run in TensorBoard's HParams tab: model, weights, batch size."""
    identity = identity_lib.of(model)
    return {
        "model": identity.name if identity is not None and identity.name else model.name,
        "weights": (identity.weights or "random") if identity is not None else "unknown",
        "batch_size": batch_size if batch_size is not None else "unknown",
    }


def _optimizer(optimizer: Any, learning_rate: float) -> Any:
    if optimizer is None:
        return keras.optimizers.Adam(learning_rate)
    if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer(learning_rate)
    # A given optimizer instance is reused as is (its own learning rate applies).
    return optimizer


def _parameter_counts(model: keras.Model) -> tuple[int, int]:
    """``(trainable, total)`` parameters of ``model`` as its trainable flags stand."""
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    return trainable, sum(int(np.prod(v.shape)) for v in model.weights)


def _set_trainable(model: keras.Model, phase: str, unfreeze_stages: int) -> None:
    if phase == "full":
        unfreeze(model, keep_batchnorm_frozen=False)
        return
    unfreeze(model, keep_batchnorm_frozen=False)
    freeze(model)  # everything but the head
    if phase == "lora":
        lora_lib.train_only_factors(model, head=_head_layers(model))
    elif phase == "fine":
        stages = _stages(model)
        if stages:
            unfreeze(model, from_stage=stages[max(0, len(stages) - unfreeze_stages)])
        else:
            unfreeze(model)


def _check_model_fits(model: keras.Model, datasets: Any) -> None:
    if datasets.input_shape is not None and len(model.inputs) == 1:
        expected = tuple(model.inputs[0].shape[1:])
        if len(expected) == len(datasets.input_shape) and expected != tuple(datasets.input_shape):
            raise InvalidArgumentError(
                expected_received(
                    "data for this model",
                    f"inputs of shape {expected}",
                    f"inputs of shape {tuple(datasets.input_shape)}",
                    "Build the data with kzoo.data.image_folder(..., model=model).",
                )
            )
    outputs = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
    if outputs not in (None, 1) and datasets.num_classes and outputs != datasets.num_classes:
        raise InvalidArgumentError(
            expected_received(
                "classes",
                f"{outputs} to match the model's outputs",
                f"{datasets.num_classes} in the data",
                f"Rebuild the model with num_classes={datasets.num_classes}.",
            )
        )


# --------------------------------------------------------------------------------------
# Checks of finetune's arguments and data: cheap (types, element_spec, one batch of labels)
# --------------------------------------------------------------------------------------

ACCEPTED_DATA = (
    "a kzoo.data.Datasets (from kzoo.data.arrays, image_folder, text_file or tfds), or a batched "
    "tf.data.Dataset of (inputs, labels) or (inputs, labels, sample_weights) batches (e.g. kzoo.text.text_datasets); "
    "a keras.utils.PyDataset or a generator of such batches also trains"
)


def _describe(value: Any) -> Any:
    """``value`` for an error message: itself when short (None, a string, a path), else its type and size."""
    if value is None or isinstance(value, (str, bytes, os.PathLike, numbers.Number)):
        return value
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        return f"a dict with keys {list(value)[:5]}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


def _check_model(model: Any) -> None:
    if not isinstance(model, keras.Model):
        fix = (
            f"Build it first: kzoo.finetune(kzoo.get({model!r}), ...)."
            if isinstance(model, str)
            else "Pass the model itself, e.g. kzoo.get(name, pretrained=True, num_classes=...)."
        )
        raise InvalidArgumentError(
            expected_received("model", "a Keras model (kzoo.get(name) builds one)", _describe(model), fix)
        )


def _check_strategy(strategy: Any) -> None:
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        hint = did_you_mean(strategy, STRATEGIES) if isinstance(strategy, str) else ""
        raise InvalidArgumentError(
            expected_received(
                "strategy",
                f"one of {STRATEGIES}",
                strategy,
                (hint.capitalize() + " " if hint else "") + "See kzoo.finetune's docstring for what each trains.",
            )
        )


def _check_epochs(epochs: Any) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise InvalidArgumentError(expected_received("epochs", "a positive int", epochs))


def _check_count(name: str, value: Any, meaning: str, *, optional: bool = False) -> int:
    """``value`` as an int >= 1, or a kzoo error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(
            expected_received(name, f"{'None or ' if optional else ''}a positive int ({meaning})", value)
        )
    return int(value)


def _check_learning_rate(name: str, value: Any, *, optional: bool = False) -> None:
    """A learning rate: a finite number > 0, or what Keras' optimizers also take (a schedule, a callable)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if math.isfinite(value) and value > 0:
            return
    elif isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return
    fix = None
    if isinstance(value, str):
        try:
            fix = f"Pass a number: {name}={float(value)!r}."
        except ValueError:
            pass
    raise InvalidArgumentError(
        expected_received(
            name,
            f"{'None or ' if optional else ''}a finite number > 0 (or a Keras LearningRateSchedule)",
            value,
            fix or "A typical fine-tuning rate is 1e-3 (Adam), 1e-4 and lower for a large pretrained backbone.",
        )
    )


def _check_mixed_precision(mixed_precision: Any) -> None:
    if not (mixed_precision is None or isinstance(mixed_precision, str)) or mixed_precision not in precision.POLICIES:
        names = [policy for policy in precision.POLICIES if policy]
        # "float16" means mixed_float16 rather than float32, so the mixed names are tried first.
        mixed = [name for name in names if name.startswith("mixed_")]
        hint = ""
        if isinstance(mixed_precision, str):
            hint = did_you_mean(mixed_precision, mixed) or did_you_mean(mixed_precision, names)
        raise InvalidArgumentError(
            expected_received(
                "mixed_precision",
                "'auto', None, 'float32', 'mixed_float16' or 'mixed_bfloat16'",
                mixed_precision,
                (hint.capitalize() + " " if hint else "") + "None trains in float32; 'auto' picks per device.",
            )
        )


def _check_settings(*, patience: Any, metrics: Any, callbacks: Any, log_dir: Any, monitor: Any) -> None:
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 0):
        raise InvalidArgumentError(
            expected_received(
                "patience",
                "None or a non-negative int (epochs without improvement before stopping early)",
                patience,
                "None never stops early.",
            )
        )
    if metrics is not None and not isinstance(metrics, (list, tuple)):
        fix = f"Pass a list: metrics=[{metrics!r}]." if isinstance(metrics, str) else "Pass a list: metrics=[...]."
        raise InvalidArgumentError(
            expected_received("metrics", "a list or tuple of Keras metrics (names or objects)", _describe(metrics), fix)
        )
    if not isinstance(callbacks, (list, tuple)):
        raise InvalidArgumentError(
            expected_received(
                "callbacks", "a list of keras.callbacks.Callback", _describe(callbacks), "Pass callbacks=[callback]."
            )
        )
    strays = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if strays:
        raise InvalidArgumentError(
            expected_received(
                "callbacks",
                "a list of keras.callbacks.Callback",
                f"a list holding {', '.join(repr(c) for c in strays[:3])}",
                "Wrap a function in keras.callbacks.LambdaCallback(on_epoch_end=...).",
            )
        )
    if log_dir is not None and not (isinstance(log_dir, (str, os.PathLike)) and os.fspath(log_dir) != ""):
        raise InvalidArgumentError(
            expected_received(
                "log_dir", "None or a directory path (str or pathlib.Path)", log_dir, "e.g. log_dir='runs/digits'."
            )
        )
    if monitor is not None and not isinstance(monitor, str):
        raise InvalidArgumentError(
            expected_received("monitor", "None or a metric name such as 'val_loss'", _describe(monitor))
        )


def _is_tf_dataset(data: Any) -> bool:
    """A ``tf.data`` dataset (or a ``tf.distribute`` one), found without importing TensorFlow (as Keras does)."""
    names = ("DatasetV2", "DistributedDataset", "DistributedDatasetsFromFunction")
    return any(
        parent.__name__ in names and parent.__module__.startswith("tensorflow.") for parent in type(data).__mro__
    )


def _passes_to_fit(data: Any) -> bool:
    """Data Keras' ``fit`` takes that kzoo does not look into: a PyDataset, a generator, a torch or grain loader."""
    if isinstance(data, (keras.utils.PyDataset, types.GeneratorType)):
        return True
    return any(
        parent.__module__.startswith(("torch.utils.data", "grain"))
        or (parent.__name__ == "DataAdapter" and parent.__module__.startswith("keras."))
        for parent in type(data).__mro__
    )


def _describe_data(data: Any) -> Any:
    received = _describe(data)
    return f"{received}, without labels" if isinstance(data, np.ndarray) else received


def _data_fix(what: str, data: Any) -> str:
    if data is None and what == "train":
        return "Pass the training data, e.g. kzoo.data.arrays(images, labels, model=model)."
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        path = path.decode() if isinstance(path, bytes) else path
        if path.lower().endswith((".csv", ".tsv", ".txt", ".jsonl")):
            return f"Read it first: kzoo.data.text_file({path!r}, ...)."
        return f"Read the folder first: kzoo.data.image_folder({path!r}, model=model)."
    if isinstance(data, np.ndarray):
        if what == "train":
            return "Pair the images with their labels: kzoo.data.arrays(images, labels, model=model)."
        return "Pair the images with their labels: validation=(images, labels)."
    if isinstance(data, (list, tuple)):
        return "For NumPy images and labels: kzoo.data.arrays(images, labels, model=model)."
    return "Build the pipelines with kzoo.data (arrays, image_folder, text_file) for the model."


def _train_step_is_keras(model: keras.Model) -> bool:
    """Whether ``fit`` runs Keras' own steps (a model with its own train_step may take any data)."""
    steps = ("train_step", "test_step", "compute_metrics", "get_metrics_result")
    return all(getattr(type(model), step, None) is getattr(keras.Model, step, None) for step in steps)


def _single_output(model: keras.Model) -> tuple[int, ...] | None:
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1 or outputs[0].shape is None:
        return None
    return tuple(outputs[0].shape)


def _image_input(model: keras.Model) -> tuple | None:
    """The shape of the model's one image input ``(None, height, width, channels)``, else None."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1 or len(inputs[0].shape) != 4:
        return None
    return tuple(inputs[0].shape)


def _sparse_labels_checked(model: keras.Model, loss: Any) -> tuple[int, ...] | None:
    """The model's output shape when the labels are known to be class ids (kzoo's default cross-entropy)."""
    from kzoo.layers.crf import crf_layers

    if loss is not None or crf_layers(model) or not _train_step_is_keras(model):
        return None
    output = _single_output(model)
    return output if output and output[-1] is not None else None


def _element_parts(what: str, spec: Any) -> tuple[Any, Any]:
    """``(inputs spec, labels spec)`` of a pipeline's element_spec; refuses elements that hold no labels."""
    if isinstance(spec, (tuple, list)) and len(spec) in (2, 3):
        return spec[0], spec[1]
    if isinstance(spec, dict):
        received = f"a dict of {', '.join(repr(k) for k in list(spec)[:5])} per element (Keras reads a dict as inputs)"
        fix = "Map it to pairs: dataset.map(lambda d: (d['image'], d['label']))."
    elif isinstance(spec, (tuple, list)):
        received = f"tuples of {len(spec)} per element"
        fix = "Map it to pairs: dataset.map(lambda x, y, *rest: (x, y))."
    else:
        received = f"elements without labels: {spec}"
        fix = "Zip the labels in: tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)."
    raise InvalidArgumentError(
        expected_received(what, "batches of (inputs, labels) or (inputs, labels, sample_weights)", received, fix)
    )


def _check_inputs_shape(what: str, model: keras.Model, shape: Any, *, from_arrays: bool = False) -> None:
    """Images of the model's input size: a batched pipeline's (None, H, W, C), or arrays (N, H, W, C)."""
    expected = _image_input(model)
    if expected is None or shape is None:
        return
    try:
        shape = tuple(shape)
    except (TypeError, ValueError):  # a TensorShape of unknown rank
        return
    unbatched = len(shape) == 3 and all(e is None or s is None or e == s for e, s in zip(expected[1:], shape))
    if unbatched and not from_arrays:
        raise InvalidArgumentError(
            expected_received(
                what,
                f"batches of inputs of shape {expected} (the model's input)",
                f"elements of shape {shape} (an unbatched pipeline)",
                "Batch it: dataset.batch(32).",
            )
        )
    # Keras adds or drops a trailing axis of 1 itself (functional models' _adjust_input_rank).
    compared = shape[:-1] if len(shape) == 5 and shape[-1] == 1 else shape
    compared = compared + (1,) if len(compared) == 3 and expected[-1] == 1 and not unbatched else compared
    other = any(e is not None and s is not None and e != s for e, s in zip(expected[1:], compared[1:]))
    if len(compared) != 4 or other:
        kind = "images" if from_arrays else "inputs"
        raise InvalidArgumentError(
            expected_received(
                what,
                f"{'' if from_arrays else 'batches of '}inputs of shape {expected} (the model's input)",
                f"{kind} of shape {shape}",
                "Build the data for the model: kzoo.data.arrays(..., model=model) or "
                "kzoo.data.image_folder(..., model=model) resize to its input.",
            )
        )


def _check_labels_shape(what: str, output: tuple[int, ...], shape: Any, dtype: Any) -> None:
    """Class ids fitting kzoo's default cross-entropy: one per output row (no one-hot), numbers."""
    if getattr(dtype, "name", None) == "string" or getattr(dtype, "kind", None) in ("U", "S"):
        raise InvalidArgumentError(
            expected_received(
                f"{what} labels",
                f"class ids (integers in [0, {output[-1]})) for the model's {output[-1]} outputs",
                "strings",
                "Map the names to ids (kzoo.data.text_file and image_folder do it).",
            )
        )
    try:
        shape = tuple(shape)
    except (TypeError, ValueError):
        return
    classes = output[-1]
    if classes == 1 or len(shape) == len(output) - 1 or (len(shape) == len(output) and shape[-1] == 1):
        return
    if len(shape) == len(output):
        received = f"one-hot labels of {shape[-1] if shape[-1] is not None else 'unknown'} classes, shape {shape}"
        fix = (
            "Pass class ids (np.argmax(labels, -1)), or a loss for one-hot labels: loss='categorical_crossentropy'"
            + (f", with a model of {shape[-1]} classes." if shape[-1] not in (None, classes) else ".")
        )
    else:
        received, fix = f"labels of shape {shape}", None
    raise InvalidArgumentError(
        expected_received(
            f"{what} labels",
            f"class ids of the model's {classes} classes, shape {output[:-1]} (kzoo's default sparse cross-entropy)",
            received,
            fix,
        )
    )


def _check_label_values(what: str, output: tuple[int, ...], labels: Any, source: str) -> None:
    """Labels within the model's classes: ``[0, classes)``, or ``[0, 1]`` for one sigmoid output."""
    labels = np.asarray(labels)
    if not labels.size or labels.dtype.kind not in "biuf":
        return
    low, high = labels.min(), labels.max()
    classes = output[-1]
    if classes == 1:
        expected, bad = "values in [0, 1] for the model's one (binary) output", low < 0 or high > 1
    else:
        expected, bad = f"class ids in [0, {classes}) for the model's {classes} classes", low < 0 or high >= classes
    if bad:
        whole = classes > 1 and low >= 0 and float(high).is_integer()
        covering = f"num_classes={int(high) + 1}" if whole else "num_classes=..."
        raise InvalidArgumentError(
            expected_received(
                f"{what} labels",
                expected,
                f"values from {low} to {high}{source}",
                f"Relabel the data, or build the model for every class: kzoo.get(name, {covering}).",
            )
        )


def _first_labels(dataset: Any) -> Any:
    """The labels of a pipeline's first batch (one batch read, nothing more), or None."""
    if not any(parent.__name__ == "DatasetV2" for parent in type(dataset).__mro__):  # not a distributed one
        return None
    for element in dataset.take(1):
        labels = element[1]
        labels = getattr(labels, "flat_values", labels)  # ragged tags
        return labels.numpy() if hasattr(labels, "numpy") else None
    return None


def _check_training_data(model: keras.Model, train: Any, loss: Any) -> None:
    """What ``train`` is (see ``ACCEPTED_DATA``), and a pipeline's element_spec against the model."""
    from kzoo import data as kzoo_data

    if isinstance(train, kzoo_data.Datasets) or _passes_to_fit(train):
        return
    if not _is_tf_dataset(train):
        fix = _data_fix("train", train)
        raise InvalidArgumentError(expected_received("train", ACCEPTED_DATA, _describe_data(train), fix))
    _check_pipeline("train", model, train, loss, read_labels=False)


def _check_pipeline(what: str, model: keras.Model, dataset: Any, loss: Any, *, read_labels: bool) -> None:
    if not _train_step_is_keras(model):  # its own train_step reads the data its own way
        return
    inputs, labels = _element_parts(what, dataset.element_spec)
    if hasattr(inputs, "shape") and not isinstance(inputs, (dict, tuple, list)):
        _check_inputs_shape(what, model, inputs.shape)
    output = _sparse_labels_checked(model, loss)
    if output is None or not hasattr(labels, "shape"):
        return
    _check_labels_shape(what, output, labels.shape, getattr(labels, "dtype", None))
    if read_labels:
        first = _first_labels(dataset)
        if first is not None:
            _check_label_values(what, output, first, " in its first batch")


def _check_validation_data(model: keras.Model, validation: Any, loss: Any) -> None:
    """``validation`` given apart from the training data: a pipeline (one batch of labels read) or arrays."""
    from kzoo import data as kzoo_data

    if isinstance(validation, kzoo_data.Datasets):
        output = _single_output(model)
        classes = output[-1] if output else None
        if classes not in (None, 1) and validation.num_classes and validation.num_classes != classes:
            raise InvalidArgumentError(
                expected_received(
                    "validation",
                    f"data of the model's {classes} classes",
                    f"a kzoo.data.Datasets of {validation.num_classes} classes {list(validation.class_names)[:10]}",
                    f"Build it for the model's classes, or the model for these: num_classes={validation.num_classes}.",
                )
            )
        raise InvalidArgumentError(
            expected_received(
                "validation",
                "a batched tf.data.Dataset of (inputs, labels), a pair (images, labels) of arrays, or None "
                "(a kzoo.data.Datasets as train brings its own validation split)",
                "a kzoo.data.Datasets",
                "Pass one of its pipelines (validation=data.validation), or build both splits in one call: "
                "kzoo.data.arrays(images, labels, model=model, validation=(val_images, val_labels)).",
            )
        )
    if _passes_to_fit(validation):
        return
    if _is_tf_dataset(validation):
        _check_pipeline("validation", model, validation, loss, read_labels=True)
        return
    if isinstance(validation, (tuple, list)) and len(validation) in (2, 3):  # Keras' validation_data=(x, y[, w])
        images, labels = validation[0], validation[1]
        if not _train_step_is_keras(model):
            return
        if isinstance(images, np.ndarray):
            _check_inputs_shape("validation", model, images.shape, from_arrays=True)
        output = _sparse_labels_checked(model, loss)
        if output is not None and isinstance(labels, np.ndarray):
            _check_labels_shape("validation", output, labels.shape, labels.dtype)
            _check_label_values("validation", output, labels, "")
        return
    raise InvalidArgumentError(
        expected_received(
            "validation",
            "None, a batched tf.data.Dataset of (inputs, labels), or a pair (images, labels) of arrays",
            _describe_data(validation),
            _data_fix("validation", validation),
        )
    )


def _logged_names(model: keras.Model, metrics: Any) -> list[str] | None:
    """What ``fit`` logs for ``model`` compiled with ``metrics`` (``val_`` names aside), or None when that
    cannot be known before compiling (several outputs, a model with its own steps, a metric kzoo cannot name)."""
    if _single_output(model) is None or not _train_step_is_keras(model):
        return None
    names = ["loss"]
    for metric in metrics or ():
        if isinstance(metric, str):
            names.append(metric)
        elif isinstance(metric, keras.metrics.Metric):
            names.append(metric.name)
        elif isinstance(metric, types.FunctionType):
            names.append(metric.__name__)
        else:
            return None
    return list(dict.fromkeys(names))


def _check_monitor(model: keras.Model, monitor: str, metrics: Any, has_validation: bool) -> None:
    names = _logged_names(model, metrics)
    if names is None:
        return
    valid = names + ([f"val_{name}" for name in names] if has_validation else [])
    if monitor in valid:
        return
    if monitor.startswith("val_") and monitor[4:] in names:
        fix = (
            f"Pass validation data (validation=..., or kzoo.data with a validation split), or monitor={monitor[4:]!r}."
        )
    else:
        hint = did_you_mean(monitor, valid)
        fix = (hint.capitalize() + " " if hint else "") + "A metric needs to be in metrics=[...] to be monitored."
    raise InvalidArgumentError(
        expected_received(
            "monitor",
            f"one of {', '.join(repr(name) for name in valid)} (what fit logs for metrics={list(metrics or [])}"
            f"{'' if has_validation else '; val_ names need validation data'})",
            monitor,
            fix,
        )
    )
