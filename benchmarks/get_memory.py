"""Peak memory and time of loading official-format weights: kzoo.get against keras.applications.

For VGG16 and ResNet50, a weights file laid out like keras.applications' official ones (Keras 2
weights-only HDF5, written from ``keras.applications.<Model>(weights=None)``) is written once,
then each measurement runs in its own fresh subprocess:

- ``kzoo``: ``kzoo.get(name, pretrained=file)`` (read layer by layer, by name, into the model);
- ``keras.app``: ``keras.applications.<Model>(weights=file)``.

A worker imports Keras, kzoo and NumPy and starts TensorFlow's runtime, reads its resident memory
(``VmRSS``) as the baseline, times the call, then reads its peak (``VmHWM``); the figure compared
is the peak above the baseline, in MB (2**20 bytes). It then checks that the first and last
convolution / dense kernels equal the file's, and fails otherwise. The two sides alternate
(kzoo, keras, keras, kzoo, ...) for ``--rounds`` rounds; the best (min) of each is reported with
the ratio kzoo / keras.applications against the goals: memory <= 1.1, time <= 1.2.

    python benchmarks/get_memory.py                        # VGG16 and ResNet50, 224x224 with the top
    python benchmarks/get_memory.py --quick                # no top, 64x64 input on both sides: fast
    python benchmarks/get_memory.py --models resnet50 --rounds 4 --json get_memory.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REFERENCES = {"vgg16": "VGG16", "resnet50": "ResNet50"}
GOALS = {"memory": 1.1, "time": 1.2}
QUICK = {"include_top": False, "input_shape": (64, 64, 3)}

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--models", default="vgg16,resnet50", help=f"comma-separated, from {', '.join(REFERENCES)}")
parser.add_argument("--rounds", type=int, default=2, help="measurements of each side (best one reported)")
parser.add_argument("--quick", action="store_true", help=f"build both sides with {QUICK}")
parser.add_argument("--workdir", help="where to write the weights files (default: a temporary directory)")
parser.add_argument("--json", help="also write the results to this file")
parser.add_argument("--worker", nargs=3, metavar=("SIDE", "MODEL", "FILE"), help=argparse.SUPPRESS)


def memory_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc/self/status, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(side: str, name: str, path: str, config: dict) -> int:
    import h5py
    import keras
    import numpy as np

    import kzoo

    keras.ops.convert_to_numpy(keras.ops.zeros(1))  # TensorFlow's runtime: a cost of neither side
    baseline = memory_mb("VmRSS")
    started = time.perf_counter()
    if side == "kzoo":
        model = kzoo.get(name, pretrained=path, **config)
    else:
        model = getattr(keras.applications, REFERENCES[name])(weights=path, **config)
    seconds = time.perf_counter() - started
    peak = memory_mb("VmHWM")
    # The model must hold the file's weights (random ones would otherwise be timed just as well).
    kernels = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    with h5py.File(path, "r") as stored:
        for layer in (kernels[0], kernels[-1]):
            group = stored[layer.name]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            expected = [group[n][()] for n in names]
            loaded = layer.get_weights()
            if len(expected) != len(loaded) or not all(np.array_equal(a, b) for a, b in zip(expected, loaded)):
                print(f"{side} {name}: weights of layer {layer.name!r} differ from {path}", file=sys.stderr)
                return 1
    figures = {"peak_above_baseline_mb": peak - baseline, "peak_total_mb": peak, "seconds": seconds}
    print(json.dumps(figures))
    return 0


def write_weights(name: str, path: Path, config: dict) -> None:
    """The official layout: Keras 2 weights-only HDF5, as keras.applications publishes it."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, REFERENCES[name])(weights=None, **config)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    del model
    keras.backend.clear_session()


def measure(side: str, name: str, path: Path, quick: bool) -> dict:
    command = [sys.executable, __file__, "--worker", side, name, str(path)] + (["--quick"] if quick else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{side} worker for {name} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(rounds: list[dict]) -> dict:
    best = {key: min(r[key] for r in rounds) for key in rounds[0]}
    return {**best, "rounds": rounds}


def main(args: argparse.Namespace) -> int:
    names = args.models.split(",")
    unknown = [n for n in names if n not in REFERENCES]
    if unknown or args.rounds < 1:
        parser.error(f"expected --models from {', '.join(REFERENCES)} and --rounds >= 1, received {args.models!r}")
    config = QUICK if args.quick else {}
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        files = {name: workdir / f"{name}{'_notop' if args.quick else ''}_official.h5" for name in names}
        for name, path in files.items():
            write_weights(name, path, config)
        results = {"config": {**config, "rounds": args.rounds}, "goals": GOALS, "models": {}}
        for name in names:
            runs = {"kzoo": [], "keras.applications": []}
            for index in range(args.rounds):
                order = ["kzoo", "keras.applications"][:: 1 if index % 2 == 0 else -1]
                for side in order:
                    runs[side].append(measure(side, name, files[name], args.quick))
            kz, ka = summarise(runs["kzoo"]), summarise(runs["keras.applications"])
            memory_ratio = kz["peak_above_baseline_mb"] / ka["peak_above_baseline_mb"]
            time_ratio = kz["seconds"] / ka["seconds"]
            results["models"][name] = {
                "kzoo": kz,
                "keras.applications": ka,
                "memory_ratio": memory_ratio,
                "time_ratio": time_ratio,
                "memory_goal_met": memory_ratio <= GOALS["memory"],
                "time_goal_met": time_ratio <= GOALS["time"],
            }
    shape = "no top, 64x64x3" if args.quick else "with top, 224x224x3"
    print(f"official-format weights file, {shape}; best of {args.rounds} fresh process(es) per side")
    print("MB: peak resident memory above the worker's baseline; s: wall time of the call")
    memory = f"{'model':<10} {'kzoo MB':>9} {'keras.app MB':>13} {'ratio':>6}"
    goals = f"{'mem <= ' + str(GOALS['memory']):>11} {'time <= ' + str(GOALS['time']):>12}"
    print(f"{memory} {'kzoo s':>7} {'keras.app s':>12} {'ratio':>6} {goals}")
    for name, r in results["models"].items():
        kz, ka = r["kzoo"], r["keras.applications"]
        print(
            f"{name:<10} {kz['peak_above_baseline_mb']:>9.1f} {ka['peak_above_baseline_mb']:>13.1f} "
            f"{r['memory_ratio']:>6.2f} {kz['seconds']:>7.2f} {ka['seconds']:>12.2f} {r['time_ratio']:>6.2f} "
            f"{'yes' if r['memory_goal_met'] else 'no':>11} {'yes' if r['time_goal_met'] else 'no':>12}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    parsed = parser.parse_args()
    if parsed.worker:
        sys.exit(worker(*parsed.worker, QUICK if parsed.quick else {}))
    sys.exit(main(parsed))
