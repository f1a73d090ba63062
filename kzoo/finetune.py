"""Fine-tuning: freeze and unfreeze by stage, and ``kzoo.finetune`` in one call.

``finetune`` compiles with good defaults (Adam, a logits cross-entropy, accuracy), runs
under XLA wherever the model allows it, logs to TensorBoard, checkpoints the best
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
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kzoo import atomic, precision
from kzoo import distribution as distribution_lib
from kzoo import identity as identity_lib
from kzoo import lora as lora_lib
from kzoo import run_dir as run_dir_lib
from kzoo.errors import InvalidArgumentError, expected_received
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
    """XLA on unless a layer of the model cannot compile (then says which and why)."""
    blockers = [
        layer for layer in model._flatten_layers(include_self=False) if not getattr(layer, "supports_jit", True)
    ]
    if jit_compile is False:
        return False
    if blockers:
        names = ", ".join(
            f"{layer.name} ({type(layer).__name__}: {_jit_blocker_reason(layer)})" for layer in blockers[:3]
        )
        logger.warning("kzoo: XLA is off for %s: %s.", model.name, names)
        return False
    return True


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
            both phases concatenated; a resumed run holds the epochs run after resuming.
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
    mixed_precision: str | None = None,
    distribution: Any = None,
    callbacks: Any = (),
    hparams: dict[str, Any] | None = None,
    verbose: Any = "auto",
) -> FinetuneResult:
    """Fine-tunes a model on the user's data in one call and keeps the best weights.

    Args:
        model: A model from :func:`kzoo.get` (or any functional Keras model).
        train: A :class:`kzoo.data.Datasets` (its validation split is used unless
            ``validation`` is given) or a batched ``tf.data.Dataset`` of ``(x, y)``.
        validation: A batched ``tf.data.Dataset`` for validation.
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
            resume backup and ``model.keras``. A directory holding another run is refused;
            an unfinished run with the same settings is resumed.
        monitor: Metric deciding the best epoch; default ``val_loss`` (``loss`` without
            validation data).
        patience: Early-stopping patience in epochs; ``None`` for no early stopping.
        jit_compile: ``None`` compiles with XLA whenever every layer supports it.
        mixed_precision: ``"mixed_float16"`` or ``"mixed_bfloat16"``; outputs stay float32.
        distribution: A ``tf.distribute`` strategy to train under: MirroredStrategy, or
            MultiWorkerMirroredStrategy (every worker makes the same call; the chief writes
            ``log_dir``, worker N keeps its own run in ``log_dir`` + ``.workerN``).
        callbacks: Extra Keras callbacks.
        hparams: Hyper-parameters to record in TensorBoard's HParams tab.
        verbose: Passed to ``fit``.

    Returns:
        :class:`FinetuneResult`; the model holds the best weights found (with ``"lora"``, in
        its LoRA layers: :func:`merge_lora` gives the plain model).

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

    # The settings, checked.
    if strategy not in STRATEGIES:
        raise InvalidArgumentError(expected_received("strategy", f"one of {STRATEGIES}", strategy))
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise InvalidArgumentError(expected_received("epochs", "a positive int", epochs))
    lora_rank = lora_lib.check_rank(lora_rank)
    if strategy == "lora":
        lora_lib.check_model(model, lora_rank, exclude=_head_layers(model))
    if mixed_precision not in precision.POLICIES:
        raise InvalidArgumentError(
            expected_received("mixed_precision", "None, 'mixed_float16' or 'mixed_bfloat16'", mixed_precision)
        )
    distribution_lib.check_backend(distribution)
    class_names, samples, batch_size = None, None, None
    if isinstance(train, kzoo_data.Datasets):
        datasets = train
        validation = validation if validation is not None else datasets.validation
        class_names, batch_size = datasets.class_names, datasets.batch_size
        _check_model_fits(model, datasets)
        train = datasets.train
        if datasets.input_shape is not None and len(datasets.input_shape) == 3:
            samples = datasets.samples(8)
    monitor = monitor or ("val_loss" if validation is not None else "loss")
    phases = plan(strategy, epochs, head_epochs, learning_rate, fine_tune_learning_rate)

    # The model that trains: the user's, or a copy for mixed precision / a distribution strategy.
    multi_worker = distribution is not None and distribution_lib.is_multi_worker(distribution)
    with distribution_lib.scope(distribution):
        if mixed_precision:
            trainee = precision.with_dtype_policy(
                model, mixed_precision, precision.float32_layers(model, _head_layers(model))
            )
        elif distribution is not None:
            trainee = type(model).from_config(model.get_config())
            trainee.set_weights(model.get_weights())
        else:
            trainee = model
    if distribution is not None:  # every strategy: the same batches as one device would see
        distribution_lib.patch_for_strategy(trainee, distribution, train)
    use_jit = resolve_jit_compile(trainee, jit_compile)
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
        state = run_dir_lib.open_run(run_dir, fingerprint)
    else:
        temporary_dir = Path(tempfile.mkdtemp(prefix="kzoo_finetune_"))
        run_dir, state = temporary_dir, {"phases_done": [], "best_value": None, "best_epoch": None}
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
        "mixed_precision": mixed_precision or "float32",
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
            if state["phases_done"]:
                previous = run_dir / "phases" / f"{state['phases_done'][-1]}.weights.h5"
                if previous.is_file():
                    lora_lib.load_weights(trainee, previous)
            _set_trainable(trainee, phase.name, unfreeze_stages)
            with distribution_lib.scope(distribution):
                trainee.compile(
                    optimizer=_optimizer(optimizer, phase.learning_rate),
                    loss=loss or default_loss(trainee),
                    metrics=list(metrics) if metrics else None,
                    jit_compile=use_jit,
                )
            backup = kzoo_callbacks.BackupAndRestore(str(run_dir / "backup" / phase.name))
            result = trainee.fit(
                train,
                validation_data=validation,
                epochs=phase.end,
                initial_epoch=phase.start,
                shuffle=False,  # the tf.data pipelines shuffle themselves (Keras warns otherwise)
                callbacks=[nan_guard, backup, *kzoo_set[1:], run_state, *callbacks],
                verbose=verbose,
            )
            for key, values in result.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
            epochs_run += list(result.epoch)
            if nan_guard.triggered_at is not None:
                break
            atomic.save_weights(trainee, run_dir / "phases" / f"{phase.name}.weights.h5")
            state["phases_done"].append(phase.name)
            if log_dir is not None:
                atomic.write_json(run_dir / run_dir_lib.RUN_FILE, state)
            if trainee.stop_training:  # early stopping ends the whole run
                break
        # Keep the best weights (the checkpoint never holds non-finite ones). Without a
        # checkpoint (the first epoch already failed), fall back to the last good state.
        if checkpoint_path.is_file():
            lora_lib.load_weights(trainee, checkpoint_path)
        elif not all(np.isfinite(w).all() for w in trainee.get_weights()):
            last_phase = run_dir / "phases" / f"{state['phases_done'][-1]}.weights.h5" if state["phases_done"] else None
            if last_phase is not None and last_phase.is_file():
                lora_lib.load_weights(trainee, last_phase)
            else:
                trainee.set_weights(initial_weights)
            logger.warning("kzoo: no finite epoch to keep; %s is back to its weights before training.", model.name)
        if trainee is not model:
            if strategy == "lora":  # the same LoRA layers, so the trained factors fit
                lora_lib.enable(model, lora_rank, exclude=_head_layers(model))
            model.set_weights([np.asarray(w, dtype=v.dtype) for w, v in zip(trainee.get_weights(), model.weights)])
            for layer, trained in zip(model.layers, trainee.layers):
                layer.trainable = trained.trainable
            for variable, trained in zip(model.weights, trainee.weights):  # LoRA freezes variable by variable
                variable.trainable = trained.trainable
        if log_dir is not None:
            # Never LoRA variables in the run's model: the plain model they merge into.
            saved = merge_lora(model) if lora_lib.enabled_layers(model) else model
            atomic.save_model(saved, run_dir / "model.keras")
            state["status"] = "finished" if nan_guard.triggered_at is None else "stopped_on_nan"
            state["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            atomic.write_json(run_dir / run_dir_lib.RUN_FILE, state)
    finally:
        if temporary_dir is not None:
            shutil.rmtree(temporary_dir, ignore_errors=True)
    return FinetuneResult(
        history=history,
        epochs=epochs_run,
        best_epoch=state.get("best_epoch"),
        best_value=state.get("best_value"),
        monitor=monitor,
        stopped_on_nan=nan_guard.triggered_at is not None,
        log_dir=run_dir if log_dir is not None else None,
        trainable_params=trainable_params,
        total_params=total_params,
    )


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
