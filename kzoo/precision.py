"""Mixed precision for kzoo.finetune: a copy of the model whose layers compute in a lower precision.

Keras' ``mixed_float16`` and ``mixed_bfloat16`` policies keep variables in float32 and
compute in the lower precision. Layers whose output must stay float32 (the head, the
outputs, and kzoo's identity and preprocessing layers, which see raw 0-255 pixels) keep
the float32 policy; BatchNormalization computes its statistics in float32 under any policy
(Keras upcasts). The attention softmax of the training copy computes in float32 too (see
:func:`_float32_attention_softmax`).

``"auto"`` (kzoo.finetune's default) picks ``mixed_bfloat16`` where the device computes
bfloat16 natively and the run takes the path where that pays, else float32; see
:func:`resolve`.
"""

from __future__ import annotations

import functools
import os
import platform

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.layers.identity import IDENTITY_LAYER, PREPROCESSING_LAYER

AUTO = "auto"
# None and "float32" both train in float32; "auto" decides per device (see resolve).
POLICIES = (AUTO, None, "float32", "mixed_float16", "mixed_bfloat16")
ALWAYS_FLOAT32 = frozenset({IDENTITY_LAYER, PREPROCESSING_LAYER})
# CPU flags (Linux /proc/cpuinfo names) of bfloat16 arithmetic in hardware: AMX tiles and
# AVX-512 BF16 dot products. oneDNN, which TensorFlow's CPU kernels use, runs bfloat16
# matmuls and convolutions on them several times faster than float32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# NVIDIA GPUs compute bfloat16 in their tensor cores from compute capability 8.0 (Ampere) on.
BF16_GPU_CAPABILITY = (8, 0)


@functools.cache
def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The bfloat16 flags (:data:`BF16_CPU_FLAGS`) this CPU reports; empty off Linux or without them."""
    if platform.system() != "Linux" or not os.path.isfile(cpuinfo):
        return ()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return tuple(flag for flag in BF16_CPU_FLAGS if flag in flags)
    except OSError:
        return ()
    return ()


def gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's CUDA compute capability under the current backend, ``None`` without a GPU."""
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return None
            capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
            return tuple(int(part) for part in capability) if capability else None
        if backend == "jax":
            import jax

            gpus = [device for device in jax.devices() if device.platform == "gpu"]
            if not gpus or not getattr(gpus[0], "compute_capability", None):
                return None
            major, minor = str(gpus[0].compute_capability).split(".")[:2]
            return int(major), int(minor)
    except (ImportError, RuntimeError, ValueError):
        return None
    return None


def native_bfloat16() -> str | None:
    """Why this device computes bfloat16 natively (a phrase for the log), or ``None`` if it does not.

    A GPU decides when there is one (compute capability 8.0 or later); else the CPU's flags.
    """
    capability = gpu_compute_capability()
    if capability is not None:
        if capability >= BF16_GPU_CAPABILITY:
            return f"the GPU (compute capability {capability[0]}.{capability[1]}) has bfloat16 tensor cores"
        return None
    flags = cpu_bf16_flags()
    return f"the CPU has bfloat16 arithmetic ({', '.join(flags)})" if flags else None


def resolve(requested: str | None, *, on_gpu: bool, jit_compile: bool) -> tuple[str | None, str]:
    """The policy a run trains in (``None``: float32) and why, for ``mixed_precision=requested``.

    ``"auto"`` picks ``mixed_bfloat16`` when :func:`native_bfloat16` says the device has it and
    the run takes a path where it pays: on a GPU always; on a CPU only through TensorFlow's own
    (oneDNN) kernels, that is with XLA off, because XLA's CPU backend gains little or nothing
    from bfloat16 (``benchmarks/precision_xla.py`` measures it). Any other value is the user's
    choice and is kept (``"float32"`` and ``None`` both train in float32).
    """
    if requested != AUTO:
        policy = None if requested in (None, "float32") else requested
        return policy, "as asked"
    reason = native_bfloat16()
    if reason is None:
        return None, "this device has no native bfloat16"
    if not on_gpu and jit_compile:
        return None, f"{reason}, but XLA's CPU backend gains little from it (XLA is on for this model)"
    return "mixed_bfloat16", reason


def float32_layers(model: keras.Model, head_layers: tuple[str, ...]) -> set[str]:
    """The layers of ``model`` that keep computing in float32 under a mixed policy."""
    return set(head_layers) | {t._keras_history[0].name for t in model.outputs} | set(ALWAYS_FLOAT32)


def can_copy(model: keras.Model) -> bool:
    """Whether :func:`with_dtype_policy` can copy ``model`` (a functional model: its config lists its layers)."""
    try:
        return isinstance(model, keras.Model) and "layers" in model.get_config()
    except NotImplementedError:
        return False


def with_dtype_policy(model: keras.Model, policy: str, keep_float32: set[str]) -> keras.Model:
    """A copy of a functional model whose layers compute in ``policy`` (the head stays float32)."""
    if not can_copy(model):
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
        if str(layer_config.get("module", "")).startswith("keras.src.ops"):
            continue  # a keras.ops call in the graph (NotEqual, ZerosLike, ...): its dtype is its output's
        layer_config["config"]["dtype"] = policy
    # The model's own class (a KzooModel keeps its raw-input handling); its identity layer is in the config.
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    _float32_attention_softmax(copy)
    return copy


def _float32_attention_softmax(model: keras.Model) -> None:
    """Gives each low-precision ``MultiHeadAttention`` of ``model`` a float32 softmax.

    Keras builds the attention softmax in the layer's compute dtype. In bfloat16 its 8-bit
    mantissa rounds the probabilities of long rows. kzoo sets that softmax's policy to float32,
    on the training copy only. It has no weights, so the weights handed back and everything saved or
    exported are unchanged. The scores are cast up, normalised in float32, and rounded to
    the compute dtype by the attention dropout for the weighted sum (the usual mixed-precision
    recipe). This reads Keras' private ``_softmax`` attribute: Keras offers no option for it.
    It covers the path with explicit scores, which every layer with attention dropout takes;
    with dropout 0 Keras calls ``ops.dot_product_attention``, which this does not reach.
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        softmax = getattr(layer, "_softmax", None)
        if isinstance(layer, keras.layers.MultiHeadAttention) and isinstance(softmax, keras.layers.Softmax):
            if layer.compute_dtype != "float32":
                softmax.dtype_policy = "float32"  # the public setter; a built layer takes no new sub-layer
