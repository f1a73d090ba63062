"""The benchmark suite: forward and train-step throughput of every registered model.

For each model (its default configuration, or its tiny test configuration with ``--quick``)
this measures, at a fixed batch, with XLA on and off, in float32 and in mixed precision:

- forward and train-step throughput (items/s) in the steady state, after the first call;
- the first call's time (tracing and compilation), reported apart from the steady state;
- FLOPs per train step (forward + backward, float32) from XLA's cost analysis of the model
  traced by JAX (``jax.jit(...).lower(...).compile().cost_analysis()``; under TensorFlow a
  JAX subprocess on the CPU counts them, since TensorFlow's graph profiler over-counts
  convolution gradients), and the model-FLOP utilisation: FLOPs / step time / the device's
  peak (``--peak-tflops``, else a table of known GPUs' dense bf16 peaks; ``n/a`` on CPU);
- peak memory: resident set size (``ru_maxrss``) on CPU, the device's peak bytes on a GPU.

Each model runs in its own subprocess, so its peak memory is its own. Where a reference
implementation exists (keras.applications for VGG and ResNet, see ``REFERENCES``), it is
measured in the same run, in its own subprocess, at the same input size and batch, and the
table shows kzoo / reference (1.00 = same speed). The train step minimises the mean squared
output against zero targets, so every model, whatever its task, has the same kind of step.

    python benchmarks/run.py --quick                               # every model, tiny configs
    python benchmarks/run.py --models "lenet5,resnet50" --batch 8 --steps 5
    python benchmarks/run.py --models "resnet*" --json out.json --markdown out.md
    KERAS_BACKEND=jax python benchmarks/run.py --models resnet50 --batch 128 --bf16   # GPU, JAX only

With ``KERAS_BACKEND=jax``, "XLA on" is ``jax.jit`` and "XLA off" (eager) is marked n/a.
Timings on a shared machine are noisy: compare ratios measured in one run, and rerun.
"""

from __future__ import annotations

import argparse
import fnmatch
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Dense bf16 peak TFLOP/s of known accelerators (vendor data sheets, without sparsity);
# matched against the device name, first match wins. Override with --peak-tflops.
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "V100": 125.0,
    "T4": 65.0,
}


def _applications(name: str):
    """A factory building keras.applications' ``name`` at kzoo's input shape and classes."""

    def factory(info: dict, batch: int, rng):
        import keras

        shape = tuple(info["input_shapes"][0])
        model = getattr(keras.applications, name)(weights=None, input_shape=shape, classes=info["num_classes"])
        return model, rng.standard_normal((batch, *shape)).astype("float32")

    return factory


def _bert_backbone(info: dict, batch: int, rng):
    """keras-hub's BertBackbone at kzoo's vocabulary, depth, width, heads and sequence length.

    kzoo's ``bert_*`` models add their head (masked LM, classifier or tagger) to the same encoder,
    so the ratio compares encoder + head against the bare backbone.
    """
    import keras_hub

    config = info["builder_kwargs"]
    model = keras_hub.models.BertBackbone(
        vocabulary_size=config["vocab_size"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        intermediate_dim=config["intermediate_dim"],
        dropout=config["dropout"],
        max_sequence_length=config["max_sequence_length"],
        num_segments=config["num_segments"],
    )
    (length,) = info["sample_shapes"]["token_ids"]
    inputs = {
        "token_ids": rng.integers(1, config["vocab_size"], size=(batch, length)).astype("int32"),
        "segment_ids": (np.arange(length)[None, :] >= length // 2).repeat(batch, 0).astype("int32"),
        "padding_mask": np.ones((batch, length), "int32"),
    }
    return model, inputs


# Reference implementations: registry-name pattern -> (label, factory(info, batch, rng) -> (model, inputs)).
# ``info`` is what the kzoo worker measured: input_shapes, sample_shapes (per input, without the
# batch), num_classes and builder_kwargs (the builder's defaults updated by the variant's arguments).
REFERENCES = {
    "vgg16": ("keras.applications.VGG16", _applications("VGG16")),
    "vgg19": ("keras.applications.VGG19", _applications("VGG19")),
    "resnet50": ("keras.applications.ResNet50", _applications("ResNet50")),
    "resnet101": ("keras.applications.ResNet101", _applications("ResNet101")),
    "resnet152": ("keras.applications.ResNet152", _applications("ResNet152")),
    "resnet50v2": ("keras.applications.ResNet50V2", _applications("ResNet50V2")),
    "resnet101v2": ("keras.applications.ResNet101V2", _applications("ResNet101V2")),
    "resnet152v2": ("keras.applications.ResNet152V2", _applications("ResNet152V2")),
    "bert_*": ("keras_hub BertBackbone", _bert_backbone),
}


def reference_for(name: str):
    for pattern, reference in REFERENCES.items():
        if fnmatch.fnmatchcase(name, pattern):
            return reference
    return None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="*", help="comma-separated names or patterns (default: every model)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after the first call")
    parser.add_argument("--quick", action="store_true", help="each model's tiny test configuration (smoke run)")
    parser.add_argument(
        "--kwargs", default="{}", help="builder arguments for every model, JSON: '{\"sequence_length\": 128}'"
    )
    parser.add_argument("--bf16", action="store_true", help="mixed_bfloat16 instead of mixed_float16")
    parser.add_argument("--precisions", default=None, help="comma-separated, e.g. float32 (default: float32 + mixed)")
    parser.add_argument("--xla", default="on,off", help="'on', 'off' or 'on,off'")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference implementations")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (and MFU)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for the MFU column")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per model subprocess")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--markdown", default=None, help="write the Markdown table here")
    parser.add_argument(
        "--render", default=None, help="print the Markdown table of a saved --json file, measure nothing"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reference-info", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--flops-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for option in ("batch", "steps"):
        if getattr(args, option) < 1:
            parser.error(f"--{option}: expected a positive integer, received {getattr(args, option)}")
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError:
        kwargs = None
    if not isinstance(kwargs, dict):
        parser.error(
            f"--kwargs: expected a JSON object such as '{{\"sequence_length\": 128}}', received {args.kwargs!r}"
        )
    args.kwargs = kwargs
    if args.warmup < 0:
        parser.error(f"--warmup: expected 0 or more, received {args.warmup}")
    xla = [part.strip() for part in args.xla.split(",") if part.strip()]
    if not xla or any(part not in ("on", "off") for part in xla):
        parser.error(f"--xla: expected 'on', 'off' or 'on,off', received {args.xla!r}")
    args.xla = xla
    mixed = "mixed_bfloat16" if args.bf16 else "mixed_float16"
    known = ("float32", "mixed_float16", "mixed_bfloat16")
    precisions = args.precisions.split(",") if args.precisions else ["float32", mixed]
    unknown = [p for p in precisions if p not in known]
    if unknown:
        parser.error(f"--precisions: expected names from {known}, received {unknown}")
    args.precisions = precisions
    return args


# ----------------------------------------------------------------------------- worker


def _peak_memory_mib(backend: str) -> tuple[float, str]:
    """This process's peak memory: the accelerator's if there is one, else the resident set."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**20, f"{device.platform} peak"
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "gpu peak"
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max rss"


def _device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {device.device_kind}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return "gpu: " + tf.config.experimental.get_device_details(gpus[0]).get("device_name", "unknown")
    import platform

    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _loss(outputs, targets):
    import keras

    pairs = zip(keras.tree.flatten(outputs), keras.tree.flatten(targets))
    return sum(keras.ops.mean(keras.ops.square(keras.ops.cast(o, "float32") - t)) for o, t in pairs)


def train_step_flops(model, x, y) -> float | None:
    """FLOPs of one forward + backward pass from XLA's cost analysis (JAX backend); None if unavailable."""
    import jax

    def loss(trainable, non_trainable, x, y):
        outputs, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return _loss(outputs, y)

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    analysis = jax.jit(jax.grad(loss)).lower(trainable, non_trainable, x, y).compile().cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float(analysis["flops"]) if analysis and analysis.get("flops") else None


def _time(call, steps: int, warmup: int) -> tuple[float, float, object]:
    """(first-call seconds, steady seconds per step, first result)."""
    started = time.perf_counter()
    result = call()
    first = time.perf_counter() - started
    for _ in range(warmup):
        call()
    started = time.perf_counter()
    for _ in range(steps):
        call()
    return first, (time.perf_counter() - started) / steps, result


def worker(args: argparse.Namespace) -> dict:
    import keras
    import numpy as np

    backend = keras.backend.backend()
    reference_info = json.loads(args.reference_info) if args.reference_info else None
    if reference_info is None:
        import kzoo
        from kzoo import registry

        spec = registry.spec(args.worker)
        kwargs = {**(dict(spec.test_kwargs) if args.quick else {}), **args.kwargs}

        def build(rng):
            model = kzoo.get(args.worker, **kwargs)
            return model, spec.sample_inputs(model, batch_size=args.batch, seed=0)
    else:
        _, factory = reference_for(args.worker)

        def build(rng):
            return factory(reference_info, args.batch, rng)

    result = {"backend": backend, "device": _device_name(backend), "runs": []}
    for precision in args.precisions:
        for xla in args.xla:
            run = {"precision": precision, "xla": xla}
            result["runs"].append(run)
            if xla == "off" and backend == "jax":
                run["skipped"] = "n/a on JAX (eager)"
                continue
            keras.mixed_precision.set_global_policy(precision)
            keras.utils.set_random_seed(0)
            model, x = build(np.random.default_rng(0))
            model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse", jit_compile=xla == "on")
            y = _measure(model, x, args, run)
            if "input_shapes" not in result:
                result["params"] = model.count_params()
                result["input_shapes"] = [list(t.shape[1:]) for t in model.inputs]
                shapes = [tuple(t.shape) for t in keras.tree.flatten(model.outputs)]
                result["num_classes"] = shapes[0][-1] if len(shapes) == 1 else None
                result["sample_shapes"] = keras.tree.map_structure(lambda a: list(np.shape(a)[1:]), x)
                if reference_info is None:
                    defaults = {
                        key: parameter.default
                        for key, parameter in inspect.signature(spec.builder).parameters.items()
                        if parameter.default is not inspect.Parameter.empty
                    }
                    merged = {**defaults, **spec.kwargs, **kwargs}
                    result["builder_kwargs"] = {k: v for k, v in merged.items() if _jsonable(v)}
            if backend == "jax" and not args.no_flops and "train_flops" not in result:  # same count in any precision
                result.update(_flops(model, x, y))
            del model
            keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    result["peak_memory_mib"], result["memory_kind"] = _peak_memory_mib(backend)
    return result


def _measure(model, x, args: argparse.Namespace, run: dict):
    """Times the forward pass then the train step into ``run``; returns the zero targets used."""
    import keras
    import numpy as np

    first, step, outputs = _time(lambda: model.predict_on_batch(x), args.steps, args.warmup)
    run.update(forward_first_s=first, forward_items_s=args.batch / step)
    y = keras.tree.map_structure(lambda o: np.zeros(np.shape(o), "float32"), outputs)
    first, step, _ = _time(lambda: model.train_on_batch(x, y), args.steps, args.warmup)
    run.update(train_first_s=first, train_items_s=args.batch / step, train_step_s=step)
    return y


def _flops(model, x, y) -> dict:
    try:
        return {"train_flops": train_step_flops(model, x, y)}
    except Exception as error:  # the FLOP count is optional: say why it is missing
        return {"train_flops": None, "flops_error": f"{type(error).__name__}: {error}"[:200]}


def flops_worker(args: argparse.Namespace) -> dict:
    """The FLOP count alone, on JAX's CPU: for TensorFlow runs, whose graphs have no XLA cost analysis."""
    import keras
    import numpy as np

    import kzoo
    from kzoo import registry

    spec = registry.spec(args.worker)
    model = kzoo.get(args.worker, **{**(dict(spec.test_kwargs) if args.quick else {}), **args.kwargs})
    x = spec.sample_inputs(model, batch_size=args.batch, seed=0)
    y = keras.tree.map_structure(lambda o: np.zeros(np.shape(o), "float32"), model.predict_on_batch(x))
    return _flops(model, x, y)


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


# ----------------------------------------------------------------------------- parent


def _spawn(args: argparse.Namespace, name: str, reference_info: dict | None = None, flops_only: bool = False) -> dict:
    command = [sys.executable, __file__, "--worker", name, "--batch", str(args.batch), "--steps", str(args.steps)]
    command += ["--flops-only"] if flops_only else []
    command += ["--warmup", str(args.warmup), "--xla", ",".join(args.xla), "--precisions", ",".join(args.precisions)]
    command += ["--quick"] if args.quick else []
    command += ["--kwargs", json.dumps(args.kwargs)]
    command += ["--no-flops"] if args.no_flops else []
    command += ["--reference-info", json.dumps(reference_info)] if reference_info else []
    started = time.perf_counter()
    try:
        environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"} if flops_only else None
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=environment)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1][:300]}
    result = json.loads(lines[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def _peak_tflops(args: argparse.Namespace, device: str) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    return next((peak for key, peak in PEAK_TFLOPS.items() if key.lower() in device.lower()), None)


def _format(value, pattern: str = "{:.1f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def markdown(results: dict) -> str:
    header = (
        "| model | precision | XLA | fwd items/s | train items/s | fwd first call s | train first call s "
        "| GFLOP/train step | MFU | peak MiB | vs reference (fwd, train, peak memory) |"
    )
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for name, entry in results["models"].items():
        if "error" in entry:
            lines.append(f"| {name} | error: {entry['error']} |" + " |" * 9)
            continue
        reference = entry.get("reference") or {}
        reference_runs = {(r["precision"], r["xla"]): r for r in reference.get("runs", [])}
        for run in entry["runs"]:
            if "skipped" in run:
                lines.append(f"| {name} | {run['precision']} | {run['xla']} | {run['skipped']} |" + " |" * 7)
                continue
            other = reference_runs.get((run["precision"], run["xla"]))
            versus = ""
            if other and "train_items_s" in other:
                versus = (
                    f"{run['forward_items_s'] / other['forward_items_s']:.2f}, "
                    f"{run['train_items_s'] / other['train_items_s']:.2f}, "
                    f"{entry['peak_memory_mib'] / reference['peak_memory_mib']:.2f} ({reference['label']})"
                )
            elif "error" in reference:
                versus = f"reference failed: {reference['error'][:80]}"
            flops = entry.get("train_flops")
            lines.append(
                f"| {name} | {run['precision']} | {run['xla']} | {run['forward_items_s']:.1f} | "
                f"{run['train_items_s']:.1f} | {run['forward_first_s']:.2f} | {run['train_first_s']:.2f} | "
                f"{_format(flops and flops / 1e9, '{:.3g}')} | {_format(run.get('mfu'), '{:.1%}')} | "
                f"{entry['peak_memory_mib']:.0f} | {versus} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(flops_worker(args) if args.flops_only else worker(args)))
        return 0
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())))
        return 0
    import kzoo

    patterns = [p.strip() for p in args.models.split(",") if p.strip()]
    names = sorted({name for pattern in patterns for name in kzoo.list_models(pattern)})
    if not names:
        raise SystemExit(f"--models: expected registered names or patterns, received {args.models!r}; see `kzoo list`")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    results = {"backend": backend, "batch": args.batch, "steps": args.steps, "quick": args.quick, "models": {}}
    print(f"backend {backend}, batch {args.batch}, {args.steps} timed steps, precisions {args.precisions}", flush=True)
    for name in names:
        entry = _spawn(args, name)
        reference = reference_for(name)
        # --quick builds kzoo's tiny test configurations, which no reference matches.
        if reference and not (args.no_reference or args.quick) and "error" not in entry:
            info = {key: entry.get(key) for key in ("input_shapes", "sample_shapes", "num_classes", "builder_kwargs")}
            entry["reference"] = {"label": reference[0], **_spawn(args, name, info)}
        if backend != "jax" and "error" not in entry and not args.no_flops:
            counted = _spawn(args, name, flops_only=True)  # the same model traced by JAX, for XLA's count
            entry["train_flops"] = counted.get("train_flops")
            entry["flops_error"] = counted.get("flops_error") or counted.get("error")
        peak = _peak_tflops(args, entry.get("device", ""))
        for run in entry.get("runs", []):
            if peak and entry.get("train_flops") and run.get("train_step_s"):
                run["mfu"] = entry["train_flops"] / run["train_step_s"] / (peak * 1e12)
        results["device"] = results.get("device") or entry.get("device")
        results["models"][name] = entry
        status = entry.get("error") or f"{entry['wall_s']:.0f} s, peak {entry['peak_memory_mib']:.0f} MiB"
        print(f"  {name}: {status}", flush=True)
    results["peak_tflops"] = _peak_tflops(args, results.get("device") or "")
    table = markdown(results)
    print(f"\ndevice: {results.get('device')}\n\n{table}")
    spread = [r for e in results["models"].values() for r in e.get("runs", []) if "train_items_s" in r]
    print(f"\n{len(spread)} measurements; single runs of {args.steps} steps each: rerun to judge the noise.")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0 if all("error" not in e for e in results["models"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
