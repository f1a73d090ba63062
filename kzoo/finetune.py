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
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kzoo import identity as identity_lib
from kzoo.layers.identity import IDENTITY_LAYER, PREPROCESSING_LAYER
from kzoo.errors import BackendError, InvalidArgumentError, KzooError, expected_received, import_tensorflow

logger = logging.getLogger("kzoo")

STRATEGIES = ("head", "full", "two-phase")
RUN_FILE = "kzoo_run.json"


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
    """Cross-entropy matching the model's head: from logits unless it ends in softmax/sigmoid."""
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


def _with_dtype_policy(model: keras.Model, policy: str, keep_float32: set[str]) -> keras.Model:
    """A copy of a functional model whose layers compute in ``policy`` (the head stays float32)."""
    if not isinstance(model, keras.Model) or "layers" not in model.get_config():
        raise InvalidArgumentError(
            expected_received(
                "model for mixed precision",
                "a functional model (as kzoo.get returns)",
                type(model).__name__,
                "Or call keras.config.set_dtype_policy(policy) before building your model.",
            )
        )
    config = model.get_config()
    for layer_config in config["layers"]:
        if layer_config["class_name"] == "InputLayer" or layer_config["config"].get("name") in keep_float32:
            continue
        layer_config["config"]["dtype"] = policy
    # The model's own class (a KzooModel keeps its raw-input handling); its identity layer is in the config.
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


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
    """

    history: dict[str, list[float]]
    epochs: list[int]
    best_epoch: int | None
    best_value: float | None
    monitor: str
    stopped_on_nan: bool
    log_dir: Path | None


def _write_json(path: Path, data: dict) -> None:
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False)
    with handle:
        json.dump(data, handle, indent=2)
    os.replace(handle.name, path)


def _open_run(log_dir: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Starts a run in ``log_dir`` or resumes the unfinished run with the same settings."""
    state_path = log_dir / RUN_FILE
    if log_dir.exists() and not log_dir.is_dir():
        raise InvalidArgumentError(expected_received("log_dir", "a directory path", str(log_dir)))
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("status") == "finished":
            raise KzooError(
                f"log_dir {log_dir} already holds a finished run ({state.get('run_id')}); nothing was changed. "
                "Choose a new log_dir for a new run."
            )
        if state.get("fingerprint") != fingerprint:
            raise KzooError(
                f"log_dir {log_dir} holds an unfinished run with other settings: expected {state.get('fingerprint')}, "
                f"received {fingerprint}. Resume it with the same settings, or choose a new log_dir."
            )
        logger.warning("kzoo: resuming the unfinished run in %s.", log_dir)
        return state
    if log_dir.is_dir() and any(log_dir.iterdir()):
        raise KzooError(
            f"log_dir {log_dir} is not empty and holds no kzoo run; nothing was changed. Choose a new or empty log_dir."
        )
    log_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "run_id": uuid.uuid4().hex[:12],
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "fingerprint": fingerprint,
        "phases_done": [],
        "best_value": None,
        "best_epoch": None,
    }
    _write_json(state_path, state)
    return state


class _RunState(keras.callbacks.Callback):
    """Records the best epoch so far in the run file after every epoch (for resuming)."""

    def __init__(self, path: Path | None, state: dict, checkpoint: Any) -> None:
        super().__init__()
        self.path, self.state, self.checkpoint = path, state, checkpoint

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        best = getattr(self.checkpoint, "best", None)
        if best is not None and math.isfinite(best):
            self.state["best_value"] = float(best)
            self.state["best_epoch"] = getattr(self.checkpoint, "best_epoch", None)
        if self.path is not None:
            _write_json(self.path, self.state)


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
        strategy: ``"head"``, ``"full"`` or ``"two-phase"`` (see the module docstring).
        head_epochs: Epochs of the head phase of ``"two-phase"`` (default half).
        unfreeze_stages: How many of the model's top stages ``"two-phase"`` unfreezes.
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
        :class:`FinetuneResult`; the model holds the best weights found.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("lenet5", pretrained=True, num_classes=10)  # doctest: +SKIP
        >>> data = kzoo.data.image_folder("digits/", model=model)  # doctest: +SKIP
        >>> result = kzoo.finetune(model, data, epochs=5, log_dir="runs/digits")  # doctest: +SKIP
    """
    from kzoo import callbacks as kzoo_callbacks
    from kzoo import data as kzoo_data

    if strategy not in STRATEGIES:
        raise InvalidArgumentError(expected_received("strategy", f"one of {STRATEGIES}", strategy))
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise InvalidArgumentError(expected_received("epochs", "a positive int", epochs))
    if mixed_precision not in (None, "mixed_float16", "mixed_bfloat16"):
        raise InvalidArgumentError(
            expected_received("mixed_precision", "None, 'mixed_float16' or 'mixed_bfloat16'", mixed_precision)
        )
    class_names, samples, confusion_data = None, None, None
    if isinstance(train, kzoo_data.Datasets):
        datasets = train
        validation = validation if validation is not None else datasets.validation
        class_names = datasets.class_names
        _check_model_fits(model, datasets)
        train = datasets.train
        if datasets.input_shape is not None and len(datasets.input_shape) == 3:
            samples = datasets.samples(8)
    if validation is not None:
        confusion_data = validation
    monitor = monitor or ("val_loss" if validation is not None else "loss")
    head_epochs = head_epochs if head_epochs is not None else max(1, epochs // 2)
    if strategy == "two-phase" and not 1 <= head_epochs < epochs:
        raise InvalidArgumentError(
            expected_received("head_epochs", f"between 1 and epochs - 1 = {epochs - 1}", head_epochs)
        )
    fine_tune_learning_rate = fine_tune_learning_rate or learning_rate / 10

    if distribution is not None and keras.backend.backend() != "tensorflow":
        raise BackendError(
            expected_received(
                "finetune: distribution",
                f"None on the {keras.backend.backend()} backend (tf.distribute strategies run TensorFlow models only)",
                type(distribution).__name__,
                "Use KERAS_BACKEND=tensorflow, or keras.distribution (e.g. DataParallel) on JAX.",
            )
        )
    multi_worker = distribution is not None and _is_multi_worker(distribution)

    # The model that trains: the user's, or a copy for mixed precision / a distribution strategy.
    keep_float32 = (
        set(_head_layers(model))
        | {t._keras_history[0].name for t in model.outputs}
        | {IDENTITY_LAYER, PREPROCESSING_LAYER}  # raw pixels and their preprocessing stay float32
    )

    def scope() -> Any:  # a fresh context each time: strategy scopes cannot be re-entered
        return distribution.scope() if distribution is not None else _NullScope()

    with scope():
        if mixed_precision:
            trainee = _with_dtype_policy(model, mixed_precision, keep_float32)
        elif distribution is not None:
            trainee = type(model).from_config(model.get_config())
            trainee.set_weights(model.get_weights())
        else:
            trainee = model
    if multi_worker or _is_collective(distribution):  # one worker too, so it sees the same batches as many
        _patch_for_multi_worker(trainee, distribution, train)
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

    # Run directory and callbacks.
    fingerprint = {
        "model": model.name,
        "params": int(model.count_params()),
        "strategy": strategy,
        "epochs": epochs,
        "head_epochs": head_epochs if strategy == "two-phase" else None,
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
        state = _open_run(run_dir, fingerprint)
    else:
        temporary_dir = Path(tempfile.mkdtemp(prefix="kzoo_finetune_"))
        run_dir, state = temporary_dir, {"phases_done": [], "best_value": None, "best_epoch": None}
    checkpoint_path = run_dir / "checkpoints" / "best.weights.h5"
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = kzoo_callbacks.AtomicCheckpoint(str(checkpoint_path), monitor=monitor)
    if state.get("best_value") is not None:
        checkpoint.best, checkpoint.best_epoch = state["best_value"], state["best_epoch"]
    nan_guard = kzoo_callbacks.NaNGuard()
    common_callbacks = [nan_guard, checkpoint]
    if multi_worker and (samples is not None or confusion_data is not None):
        # Predicting on the chief alone would wait forever for the other workers' collectives.
        logger.warning("kzoo: no sample predictions or confusion matrix in TensorBoard under a multi-worker strategy.")
        samples = confusion_data = None
    if log_dir is not None and chief:
        common_callbacks.append(
            kzoo_callbacks.TensorBoard(
                str(run_dir / "tensorboard"),
                samples=samples,
                class_names=class_names,
                confusion_data=confusion_data if class_names else None,
                hparams={**(hparams or {}), "strategy": strategy, "learning_rate": learning_rate, "epochs": epochs},
            )
        )
    if patience is not None:
        common_callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience))
    common_callbacks.append(_RunState(run_dir / RUN_FILE if log_dir is not None else None, state, checkpoint))
    common_callbacks += list(callbacks)

    phases = {
        "head": [("head", 0, epochs, learning_rate)],
        "full": [("full", 0, epochs, learning_rate)],
        "two-phase": [("head", 0, head_epochs, learning_rate), ("fine", head_epochs, epochs, fine_tune_learning_rate)],
    }[strategy]
    history: dict[str, list[float]] = {}
    epochs_run: list[int] = []
    initial_weights = trainee.get_weights()
    try:
        for phase, start, end, rate in phases:
            phase_weights = run_dir / "phases" / f"{phase}.weights.h5"
            if phase in state["phases_done"]:
                continue
            if state["phases_done"]:
                previous = run_dir / "phases" / f"{state['phases_done'][-1]}.weights.h5"
                if previous.is_file():
                    trainee.load_weights(previous)
            _set_trainable(trainee, phase, unfreeze_stages)
            with scope():
                trainee.compile(
                    optimizer=_optimizer(optimizer, rate),
                    loss=loss or default_loss(trainee),
                    metrics=list(metrics) if metrics else None,
                    jit_compile=use_jit,
                )
            backup = kzoo_callbacks.BackupAndRestore(str(run_dir / "backup" / phase))
            result = trainee.fit(
                train,
                validation_data=validation,
                epochs=end,
                initial_epoch=start,
                callbacks=[nan_guard, backup, *common_callbacks[1:]],
                verbose=verbose,
            )
            for key, values in result.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
            epochs_run += list(result.epoch)
            if nan_guard.triggered_at is not None:
                break
            phase_weights.parent.mkdir(parents=True, exist_ok=True)
            trainee.save_weights(phase_weights)
            state["phases_done"].append(phase)
            if log_dir is not None:
                _write_json(run_dir / RUN_FILE, state)
            if trainee.stop_training:  # early stopping ends the whole run
                break
        # Keep the best weights (the checkpoint never holds non-finite ones). Without a
        # checkpoint (the first epoch already failed), fall back to the last good state.
        if checkpoint_path.is_file():
            trainee.load_weights(checkpoint_path)
        elif not all(np.isfinite(w).all() for w in trainee.get_weights()):
            last_phase = run_dir / "phases" / f"{state['phases_done'][-1]}.weights.h5" if state["phases_done"] else None
            if last_phase is not None and last_phase.is_file():
                trainee.load_weights(last_phase)
            else:
                trainee.set_weights(initial_weights)
            logger.warning("kzoo: no finite epoch to keep; %s is back to its weights before training.", model.name)
        if trainee is not model:
            model.set_weights([np.asarray(w, dtype=v.dtype) for w, v in zip(trainee.get_weights(), model.weights)])
        for layer, trained in zip(model.layers, trainee.layers):
            layer.trainable = trained.trainable
        if log_dir is not None:
            _save_model_atomically(model, run_dir / "model.keras")
            state["status"] = "finished" if nan_guard.triggered_at is None else "stopped_on_nan"
            state["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            _write_json(run_dir / RUN_FILE, state)
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
    )


def _patch_for_multi_worker(trainee: keras.Model, distribution: Any, train: Any) -> None:
    """Lets Keras 3's ``fit`` train under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585).

    Checked with Keras 3.15 / TF 2.21 and two workers on 127.0.0.1, ``fit`` fails twice:
    it builds the model from a batch it first averages across workers in eager mode
    ("Attempt to convert a value (PerReplica...)"), and it reduces each step's logs with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on scalar logs ("Invalid reduction
    dimension 0"). So this model builds from the element spec of ``train``, and its
    train/test steps return each log as a 1-element vector, which that reduction averages over
    the replicas into the scalar Keras expects. Two workers then give the same losses and
    weights as one process training on the same global batches (tests/test_finetune.py).
    A one-worker strategy is patched too: Keras' own build draws a batch from ``train``, which
    moves its shuffling on by one epoch, so unpatched it would see other batches.
    """
    tf = import_tensorflow("kzoo.finetune with a tf.distribute strategy")

    spec = getattr(train, "element_spec", None)
    if spec is None:
        raise InvalidArgumentError(
            expected_received("train", "a tf.data.Dataset or kzoo.data.Datasets under a multi-worker strategy", train)
        )

    def build(iterator: Any = None, data_batch: Any = None) -> None:
        with distribution.scope():  # builds from shapes only, so the dataset's spec will do
            trainee._symbolic_build(data_batch=spec)

    def as_vectors(step: Any) -> Any:
        return lambda data: {key: tf.reshape(value, [1]) for key, value in step(data).items()}

    trainee._maybe_symbolic_build = build
    if _is_multi_worker(distribution):  # one worker reduces nothing: its logs stay scalars
        trainee.train_step = as_vectors(trainee.train_step)
        trainee.test_step = as_vectors(trainee.test_step)


def _is_collective(distribution: Any) -> bool:
    """A MultiWorkerMirroredStrategy, whatever its number of workers."""
    if distribution is None:
        return False
    tf = import_tensorflow("kzoo.finetune with a tf.distribute strategy")
    return isinstance(distribution, tf.distribute.MultiWorkerMirroredStrategy)


def _is_multi_worker(distribution: Any) -> bool:
    extended = getattr(distribution, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


class _NullScope:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _optimizer(optimizer: Any, learning_rate: float) -> Any:
    if optimizer is None:
        return keras.optimizers.Adam(learning_rate)
    if callable(optimizer) and not isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer(learning_rate)
    # A given optimizer instance is reused as is (its own learning rate applies).
    return optimizer


def _set_trainable(model: keras.Model, phase: str, unfreeze_stages: int) -> None:
    if phase == "full":
        unfreeze(model, keep_batchnorm_frozen=False)
        return
    unfreeze(model, keep_batchnorm_frozen=False)
    freeze(model)  # everything but the head
    if phase == "fine":
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


def _save_model_atomically(model: keras.Model, path: Path) -> None:
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".model.", suffix=".keras", delete=False)
    handle.close()
    try:
        model.save(handle.name)
        os.replace(handle.name, path)
    finally:
        Path(handle.name).unlink(missing_ok=True)
