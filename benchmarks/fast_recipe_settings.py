"""Settings search for LeNet-5's ``--fast`` recipe on two validation folds, never the test set.

``benchmarks/time_to_accuracy.py`` stops on the MNIST test set, so the settings of
``examples/train_lenet5_mnist.py --fast`` must be chosen elsewhere. This script runs the recipe
once per candidate (its extra flags) and fold, in fresh processes: fold ``end`` holds out the
last 5,000 training images, fold ``start`` the first 5,000 (``--validation-from``). It prints
the validation accuracy at every half epoch and, per candidate, the mean of the two folds'
final accuracies (10,000 validation images in all, as many as the test set).

    python benchmarks/fast_recipe_settings.py -- "" "--epochs 2" "--epochs 2 --batch-size 128"
    python benchmarks/fast_recipe_settings.py --seeds 1998 7 -- "--epochs 2 --batch-size 128"

The candidates come after ``--`` (they start with dashes themselves); an empty one is the
recipe as it stands. Both folds and every seed use the same
candidate flags; MNIST is read from the shared data directory (``KZOO_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "examples" / "train_lenet5_mnist.py"
MARKER = "TIME_TO_ACCURACY "
FOLDS = ("end", "start")


def recipe_command(candidate: str, fold: str, seed: int, output_dir: str, quick: bool) -> list[str]:
    """The recipe with the candidate's flags, evaluated on one fold every half epoch until its last epoch."""
    command = [sys.executable, str(RECIPE), "--fast", *shlex.split(candidate)]
    # A target of 1.0 is never reached on 5,000 digits, so the run goes to its last epoch.
    command += ["--stop-at", "1.0", "--stop-on", "validation", "--validation-from", fold, "--seed", str(seed)]
    return command + ["--output-dir", output_dir] + (["--quick"] if quick else [])


def validation_curve(stdout: str) -> list[float]:
    """The validation accuracies the recipe's TimeToAccuracy printed, one per half epoch."""
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        raise ValueError("the recipe printed no TIME_TO_ACCURACY line")
    return [accuracy for _, _, accuracy in json.loads(lines[-1][len(MARKER) :])["history"]]


def summarize(curves: dict[tuple[str, int], list[float]]) -> tuple[float, list[float]]:
    """Mean and list of the final accuracies over every (fold, seed) run of one candidate."""
    finals = [curve[-1] for curve in curves.values()]
    return statistics.fmean(finals), finals


def main(argv: list[str] | None = None) -> dict[str, tuple[float, list[float]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("candidates", nargs="+", help='flags added to --fast, one quoted string each ("" = as is)')
    parser.add_argument("--seeds", type=int, nargs="+", default=[1998], help="the recipe's --seed values")
    parser.add_argument("--quick", action="store_true", help="the recipe's --quick (6,000 images): a smoke run")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for candidate in args.candidates:
            curves = {}
            for fold in FOLDS:
                for seed in args.seeds:
                    command = recipe_command(candidate, fold, seed, scratch, args.quick)
                    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
                    if done.returncode != 0:
                        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-2000:]}")
                    curves[fold, seed] = validation_curve(done.stdout)
                    shown = " ".join(f"{accuracy:.4f}" for accuracy in curves[fold, seed])
                    print(f"{candidate or '(as is)':40} fold {fold:5} seed {seed}: {shown}", flush=True)
            mean, finals = summarize(curves)
            print(f"{candidate or '(as is)':40} final validation accuracy mean {mean:.4f} over {len(finals)} runs")
            results[candidate] = (mean, finals)
    return results


if __name__ == "__main__":
    main()
