"""``kzoo reproduce NAME:TAG``: rerun the recipe of shipped weights and check its figure.

Every weights record kzoo trained names its recipe (``record.recipe``: a script of
``examples/`` and its flags) and, in ``record.reproduce``, how a rerun is judged:

- ``metric``: which of ``record.metrics`` is checked (the headline figure);
- ``tolerance``: a full rerun passes when its figure lies within ``metrics[metric] ±
  tolerance``. The tolerance comes from the spread over the recipe's seeds where the
  manifest has one, else from the run-to-run spread of a seeded recipe on another machine;
  ``why`` says which;
- ``quick_range``: ``[low, high]`` for the recipe's ``--quick`` run (a few epochs on a
  subset: its figure is lower than the published one, so it has a range of its own,
  measured when the range was set, said in ``quick_why``). Records whose quick run stays at
  what an untrained network scores have none: a range there could not fail.

A rerun writes nothing outside its output directory: ``--publish`` is dropped from the
recipe's flags, and the recipe's ``--output-dir`` is replaced. The recipe reports what it
measured in ``metrics.json`` (:func:`kzoo.examples.write_metrics`), which is read back here.

    kzoo reproduce lenet5:mnist --quick     # minutes: the recipe's smoke run, its own range
    kzoo reproduce lenet5:mnist             # the published recipe, the manifest's figure
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

from kzoo.errors import InvalidArgumentError, KzooError, expected_received

# Flags of a recipe's command line that a rerun drops (with their value, for the second).
_DROPPED_FLAGS = {"--publish": 0, "--output-dir": 1}


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """What one ``kzoo reproduce`` run measured.

    Attributes:
        key: The weights record (``"lenet5.mnist"``).
        quick: Whether the recipe ran in ``--quick`` mode.
        command: The recipe's flags as rerun (the script's path first).
        metric: The figure checked.
        figure: What the rerun measured.
        expected: ``(low, high)`` the figure had to fall in.
        recorded: The manifest's figure.
        metrics: Everything the rerun measured for this record.
        output_dir: Where the rerun wrote its figures, logs and ``metrics.json``.
        seconds: Wall time of the rerun.
    """

    key: str
    quick: bool
    command: tuple[str, ...]
    metric: str
    figure: float
    expected: tuple[float, float]
    recorded: float
    metrics: dict[str, Any]
    output_dir: Path
    seconds: float

    @property
    def passed(self) -> bool:
        low, high = self.expected
        return low <= self.figure <= high

    def summary(self) -> str:
        low, high = self.expected
        verdict = "reproduced" if self.passed else "NOT reproduced"
        mode = "quick run" if self.quick else f"recorded {self.recorded:g}"
        return (
            f"{self.key}: {self.metric} {self.figure:.4g} (expected {low:.4g} to {high:.4g}; {mode}): "
            f"{verdict} in {self.seconds:.0f} s; outputs in {self.output_dir}"
        )


def recipe_command(record: Any) -> tuple[str, list[str]]:
    """``(example name, flags)`` of a record's recipe, without ``--publish`` and ``--output-dir``."""
    words = shlex.split(record.recipe or "")
    if not words or not words[0].startswith("examples/") or not words[0].endswith(".py"):
        raise InvalidArgumentError(
            expected_received(
                f"a recipe in examples/ for weights {record.key} (kzoo reproduce reruns kzoo's own recipes)",
                "examples/NAME.py and its flags",
                record.recipe or "no recipe",
                f"these weights come from {record.source or 'elsewhere'}; their figures are the publisher's.",
            )
        )
    flags: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        name = word.split("=", 1)[0]
        if name in _DROPPED_FLAGS:
            if "=" not in word:
                for _ in range(_DROPPED_FLAGS[name]):
                    next(rest, None)
            continue
        flags.append(word)
    return Path(words[0]).stem, flags


def expected_range(record: Any, *, quick: bool) -> tuple[str, tuple[float, float]]:
    """``(metric, (low, high))`` a rerun of ``record``'s recipe must reach."""
    spec = record.reproduce or {}
    metric = spec.get("metric")
    if not metric or metric not in record.metrics:
        raise InvalidArgumentError(
            expected_received(
                f"a reproduce check in the manifest entry of {record.key}",
                "reproduce.metric naming one of its metrics, with a tolerance",
                spec or "none",
                "the recipe's maintainers add it with the figure; `kzoo info` shows the figures.",
            )
        )
    if quick:
        if not spec.get("quick_range"):
            raise InvalidArgumentError(
                expected_received(
                    f"a quick-run range for {record.key}",
                    "reproduce.quick_range in its manifest entry",
                    "none: this recipe's --quick run is not a cheap check",
                    f"run `kzoo reproduce {record.model}:{record.tag}` without --quick (the full recipe).",
                )
            )
        low, high = spec["quick_range"]
        return metric, (float(low), float(high))
    value, tolerance = float(record.metrics[metric]), float(spec["tolerance"])
    return metric, (value - tolerance, value + tolerance)


def check(record: Any, measured: dict[str, Any], *, quick: bool) -> tuple[str, float, tuple[float, float]]:
    """``(metric, figure, expected range)`` of one rerun's ``metrics.json`` records."""
    metric, expected = expected_range(record, quick=quick)
    values = measured.get(record.key)
    if not isinstance(values, dict) or metric not in values:
        raise KzooError(
            expected_received(
                f"the recipe's metrics.json to report {record.key}'s {metric}",
                f"records[{record.key!r}][{metric!r}]",
                sorted(values) if isinstance(values, dict) else sorted(measured),
                "the recipe must call kzoo.examples.write_metrics with the figures it publishes.",
            )
        )
    return metric, float(values[metric]), expected


def reproduce(
    key: str, *, quick: bool = False, output_dir: str | Path | None = None, extra_args: list[str] | None = None
) -> Reproduction:
    """Reruns the recipe of weights ``key`` (``"lenet5.mnist"`` or ``"lenet5:mnist"``) and checks its figure.

    Args:
        key: ``NAME.TAG`` or ``NAME:TAG``; ``NAME`` alone means the model's default weights.
        quick: Run the recipe's ``--quick`` mode and check it against ``quick_range``.
        output_dir: Where the rerun writes (a new temporary folder when ``None``).
        extra_args: Further flags for the recipe (after its recorded ones).

    Returns:
        A :class:`Reproduction`; ``passed`` says whether the figure was reproduced.

    Raises:
        InvalidArgumentError: unknown weights, weights without a kzoo recipe or a reproduce
            check, or ``quick`` for a record without a quick range.
        DataNotFoundError: the recipe reads a shared dataset that is not there.
        KzooError: the recipe failed or did not report the figure.
    """
    from kzoo import examples, registry
    from kzoo import weights as weights_lib

    name, _, tag = key.replace(":", ".", 1).partition(".")
    record = registry.resolve_weights(registry.spec(name), tag or True)
    if not isinstance(record, weights_lib.WeightsRecord):  # a file path, not a tag
        raise InvalidArgumentError(expected_received(f"a weights tag of {name!r}", "NAME:TAG", key))
    example, flags = recipe_command(record)
    expected_range(record, quick=quick)  # refuse before spending minutes on a run that cannot be judged
    output = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix=f"kzoo-{record.key}-"))
    flags = [*flags, *(extra_args or [])]
    started = time.perf_counter()
    code, output, _ = examples.run_example(example, quick=quick, output_dir=output, extra_args=flags)
    seconds = time.perf_counter() - started
    if code:
        raise KzooError(f"the recipe of {record.key} ({example} {' '.join(flags)}) exited with code {code}")
    metrics_path = output / examples.METRICS_FILE
    if not metrics_path.is_file():
        raise KzooError(f"the recipe of {record.key} wrote no {metrics_path}: it must call kzoo.examples.write_metrics")
    measured = json.loads(metrics_path.read_text(encoding="utf-8")).get("records", {})
    metric, figure, expected = check(record, measured, quick=quick)
    return Reproduction(
        key=record.key,
        quick=quick,
        command=(f"examples/{example}.py", *flags, *(["--quick"] if quick else [])),
        metric=metric,
        figure=figure,
        expected=expected,
        recorded=float(record.metrics[metric]),
        metrics=dict(measured[record.key]),
        output_dir=output,
        seconds=seconds,
    )
