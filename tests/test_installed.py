"""What ships: the installed package (not this checkout) finds its weights, examples and export
table. In CI, ``pip install ".[test]"`` installs kzoo non-editable and this test runs it from
another directory; where the importable kzoo is this checkout (an editable install), the test
installs the checkout into a temporary folder first (``pip install --no-deps --target``), so a
file missing from the package data fails here, not at a user's."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Runs in a subprocess whose working directory is not the checkout.
SCRIPT = r"""
import hashlib
import json
from pathlib import Path

import kzoo
from kzoo import examples, weights
from kzoo.export import supported_formats

shipped = [record for record in weights.all_records() if record.shipped]
print(json.dumps({
    "file": kzoo.__file__,
    "verified": {record.key: str(weights.fetch(record, progress=False)) for record in shipped},
    "zoo_weights": {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (Path(kzoo.__file__).parent / "zoo_weights").iterdir() if path.is_file()
    },
    "examples_dir": str(examples.examples_dir()),
    "examples": [example.name for example in examples.discover()],
    "lenet5_formats": supported_formats("lenet5"),
}))
"""


def _where_kzoo_imports(environment: dict, cwd: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('kzoo').origin)"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return Path(done.stdout.strip()).resolve()


def test_the_installed_package_ships_its_weights_examples_and_export_table(tmp_path):
    environment = {**os.environ, "KZOO_OFFLINE": "1", "KZOO_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop("PYTHONPATH", None)
    if REPO in _where_kzoo_imports(environment, tmp_path).parents:  # an editable install: install a copy
        target, source = tmp_path / "site", tmp_path / "source"
        # From a copy without earlier build outputs (a stale build/ would hide a missing file).
        ignored = shutil.ignore_patterns("build", "*.egg-info", ".git", ".*venv*", "runs", "__pycache__", "docs")
        shutil.copytree(REPO, source, ignore=ignored)
        install = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
            + ["--target", str(target), str(source)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if install.returncode != 0:
            pytest.skip(f"could not install the checkout into a folder: {install.stderr.strip()[-300:]}")
        environment["PYTHONPATH"] = str(target)
    package = _where_kzoo_imports(environment, tmp_path).parent
    assert REPO not in package.parents, package
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).resolve().parent == package
    # Every shipped weights file is in the package, and its hash checks out (fetch verifies it).
    assert report["verified"]
    for key, path in report["verified"].items():
        assert package in Path(path).resolve().parents, (key, path)
    # Every file of the checkout's zoo_weights/ (vocabularies too), byte for byte.
    checkout = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (REPO / "zoo_weights").iterdir()}
    assert report["zoo_weights"] == checkout
    # The examples gallery is the package's copy, every example of the checkout.
    assert Path(report["examples_dir"]).resolve() == package / "_examples"
    assert report["examples"] == sorted(path.stem for path in (REPO / "examples").glob("*.py"))
    assert report["lenet5_formats"] and all(status == "ok" for status in report["lenet5_formats"].values())
