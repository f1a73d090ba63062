"""The examples gallery: discover, describe and run the scripts of ``examples/``.

Every example is one Python file whose module docstring starts with a header of
``Field: value`` lines (keras-io style)::

    Title: Adversarial examples (FGSM, PGD) and adversarial training
    Description: One line on what the example shows.
    Model: the kzoo models or layers it uses
    Data: what data it needs (and whether it reads the shared data directory)
    Runtime: how long the default run takes on 2 CPU cores
    Tags: task, topic, dataset (comma-separated)
    Figure: the main figure's file name inside --output-dir
    Shared-data: mnist (optional: the shared datasets it reads, by directory name)

The gallery is the set of files in the examples folder, parsed without running them, so
an example joins ``kzoo examples`` by being written. The folder is ``examples/`` of the
checkout, or, after ``pip install .`` (not editable), the copy installed as the package
data ``kzoo/_examples/`` (see ``setup.cfg``).

The contract every example keeps (``tests/test_examples.py`` checks it): the header
fields above, under 300 lines, ``--output-dir DIR`` where its figures go, and a
``--quick`` smoke mode of a few seconds.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kzoo.errors import (
    DataNotFoundError,
    InvalidArgumentError,
    KzooError,
    did_you_mean,
    expected_received,
    import_tensorflow,
)

REQUIRED_FIELDS = ("Title", "Description", "Model", "Data", "Runtime", "Tags", "Figure")
MAX_LINES = 300


@dataclasses.dataclass(frozen=True)
class Example:
    """One example script and its parsed header.

    Attributes:
        name: The file name without ``.py`` (what ``kzoo examples show NAME`` takes).
        path: The script.
        fields: Header fields by name (``Title``, ``Description``, ``Tags``, ...).
        body: The docstring after the header (markdown).
    """

    name: str
    path: Path
    fields: dict[str, str]
    body: str

    @property
    def title(self) -> str:
        return self.fields.get("Title", self.name)

    @property
    def description(self) -> str:
        return self.fields.get("Description", "")

    @property
    def tags(self) -> list[str]:
        return [tag.strip() for tag in self.fields.get("Tags", "").split(",") if tag.strip()]

    @property
    def shared_data(self) -> list[str]:
        """The shared datasets (directory names under ``kzoo.data.data_dir()``) the example reads."""
        return [name.strip() for name in self.fields.get("Shared-data", "").split(",") if name.strip()]

    @property
    def figure(self) -> str | None:
        """The main figure's file name, relative to the example's output directory."""
        return self.fields.get("Figure")

    def missing_fields(self) -> list[str]:
        return [field for field in REQUIRED_FIELDS if not self.fields.get(field)]


def examples_dir() -> Path:
    """The examples folder: the installed package data, else ``examples/`` of the checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_examples", package.parent / "examples"):
        if candidate.is_dir() and any(candidate.glob("*.py")):
            return candidate
    raise KzooError(
        f"no examples found: expected the folder {package / '_examples'} (installed package) or "
        f"{package.parent / 'examples'} (checkout)."
    )


def parse_header(path: Path) -> Example:
    """Reads an example's docstring header without running the script."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    _, _, body = docstring.partition("\n\n")
    return Example(name=path.stem, path=path, fields=parse_header_text(docstring), body=body.strip())


def discover(directory: str | os.PathLike | None = None) -> list[Example]:
    """Every example in ``directory`` (default :func:`examples_dir`), sorted by name."""
    folder = Path(directory) if directory is not None else examples_dir()
    return [parse_header(path) for path in sorted(folder.glob("*.py")) if not path.name.startswith("_")]


def get_example(name: str, directory: str | os.PathLike | None = None) -> Example:
    """The example called ``name`` (a file name, with or without ``.py``)."""
    found = {example.name: example for example in discover(directory)}
    key = name[:-3] if name.endswith(".py") else name
    if key not in found:
        containing = [candidate for candidate in found if key and key.lower() in candidate.lower()][:3]
        hint = "did you mean " + ", ".join(map(repr, containing)) + "?" if containing else did_you_mean(key, found)
        raise InvalidArgumentError(expected_received("example", f"one of {sorted(found)}", name, hint or None))
    return found[key]


def run_example(
    name: str,
    *,
    quick: bool = False,
    output_dir: str | os.PathLike | None = None,
    extra_args: list[str] | None = None,
) -> tuple[int, Path, list[Path]]:
    """Runs an example in a subprocess of this interpreter.

    Returns:
        ``(exit code, output directory, figures)``: the PNG/JPEG/PDF/SVG files the run wrote
        (or rewrote) under the output directory.
    """
    from kzoo import data

    example = get_example(name)
    missing = [dataset for dataset in example.shared_data if not data.has_data(dataset)]
    if missing:
        raise DataNotFoundError(
            f"example {example.name!r} reads the shared dataset(s) {missing}: expected them under "
            f"{data.data_dir()}. Set KZOO_DATA_DIR to the folder that holds the shared datasets."
        )
    output = Path(output_dir) if output_dir is not None else Path("runs") / "examples" / example.name
    output.mkdir(parents=True, exist_ok=True)
    before = {path: path.stat().st_mtime_ns for path in _figures(output)}
    command = [sys.executable, str(example.path), "--output-dir", str(output), *(["--quick"] if quick else [])]
    environment = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND", "Agg")}
    code = subprocess.call([*command, *(extra_args or [])], env=environment)
    written = [path for path in _figures(output) if before.get(path) != path.stat().st_mtime_ns]
    return code, output, written


def _figures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".pdf", ".svg"})


def example_parser(docstring: str, output_dir: str | None = None) -> argparse.ArgumentParser:
    """An argument parser with the contract's ``--output-dir`` and ``--quick``.

    Args:
        docstring: The example's ``__doc__``; its ``Description`` becomes the help text.
        output_dir: Default of ``--output-dir``; ``runs/<script name>`` when ``None``.
    """
    description = parse_header_text(docstring).get("Description")
    default = output_dir or f"runs/{Path(sys.argv[0]).stem}"
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--output-dir", default=default, help="figures go here")
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run (what CI runs)")
    return parser


def parse_header_text(docstring: str) -> dict[str, str]:
    """The ``Field: value`` lines at the top of a docstring."""
    fields: dict[str, str] = {}
    for line in docstring.strip().splitlines():
        key, colon, value = line.partition(":")
        if not line.strip() or not colon or " " in key.strip():
            break
        fields[key.strip()] = value.strip()
    return fields


METRICS_FILE = "metrics.json"


def write_metrics(output_dir: str | os.PathLike, records: dict[str, dict[str, float]]) -> Path:
    """Writes the figures a recipe measured to ``output_dir/metrics.json`` and returns the path.

    Every recipe of shipped weights calls this with the metrics it would publish, keyed by
    weights record (``{"lenet5.mnist": {"test_accuracy": 0.9922, ...}}``), in quick and full
    runs alike, published or not: ``kzoo reproduce`` (:mod:`kzoo.reproduce`) reads the file
    to compare a rerun with the manifest.
    """
    from kzoo import atomic

    path = Path(output_dir) / METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, {"records": {key: dict(values) for key, values in records.items()}})
    return path


def save_figure(figure: Any, output_dir: str | os.PathLike, filename: str) -> Path:
    """Saves a matplotlib figure into ``output_dir`` (created), closes it, prints and returns its path."""
    import matplotlib.pyplot as plt

    path = Path(output_dir) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {path}")
    return path


def plot_decision_boundary(
    axis: Any, predict: Any, points: Any, labels: Any, *, title: str = "", resolution: int = 150
) -> None:
    """Draws a 2-D classifier's probability of class 1 over the data's bounding box, and the data.

    Args:
        axis: A matplotlib axis.
        predict: Maps an ``(N, 2)`` float32 array to ``(N,)`` probabilities of class 1.
        points: ``(N, 2)`` inputs; labels: ``(N,)`` 0/1 labels.
    """
    import numpy as np

    low, high = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
    grid_x, grid_y = np.meshgrid(np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution))
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype("float32")
    probability = np.asarray(predict(grid)).reshape(grid_x.shape)
    axis.contourf(grid_x, grid_y, probability, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    axis.contour(grid_x, grid_y, probability, levels=[0.5], colors="k", linewidths=1)
    axis.scatter(points[:, 0], points[:, 1], c=labels, cmap="RdBu_r", s=6, edgecolors="none")
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])


def batches(inputs: Any, targets: Any, batch_size: int, *, seed: int = 0) -> Any:
    """An endless, shuffled ``tf.data`` stream of ``(inputs, targets)`` batches.

    Train small models with ``fit(batches(...), steps_per_epoch=..., epochs=...)`` and
    ``steps_per_execution``: Keras' per-epoch overhead (tens of milliseconds) otherwise
    dominates the run time of a 2-D toy problem.
    """
    import warnings

    tf = import_tensorflow("kzoo.examples data streams (tf.data)")

    # fit() warns that its default shuffle=True is ignored for a dataset: this one is shuffled here.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    tf.get_logger().setLevel("ERROR")  # retracing notices: each small model traces its own step once
    data = tf.data.Dataset.from_tensor_slices((inputs, targets))
    return data.shuffle(len(inputs), seed=seed).repeat().batch(batch_size).prefetch(2)
