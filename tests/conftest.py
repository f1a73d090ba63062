"""Shared fixtures: an isolated cache, a real HTTP server on 127.0.0.1, temporary registrations."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# On the JAX backend the tests are bound by compiling, not by running: eager code compiles each
# operation once per shape, and every model is small and runs a few times. XLA's optimizing
# passes cost far more than they save there (building the registry's models: 5x less CPU).
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# With xdist workers (the CI runs one per core), each worker's TensorFlow computes on one
# thread: two workers with a pool of two threads each made the cores switch between four
# busy threads (half a million involuntary context switches per run). Measured on
# tests/test_models.py with tests/test_examples.py, -n 2: 195 s -> 171 s wall, 308 -> 270 s
# CPU. Example and script subprocesses inherit it. A run without workers keeps every core.
# XLA still lowers, fuses and compiles every jit_compile=True step here, but LLVM skips its
# optimizing passes: the tests' models are tiny and run a few steps, so the compile is what
# costs (tests/test_models.py's XLA tests: 10-15% less).
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")

import sys

# The JAX pass of the CI (README) runs as on a machine with only JAX installed, like the GPU
# box: `import tensorflow` and its satellites raise ImportError (find_spec returns None), so a
# kzoo module that needs TensorFlow on the JAX backend fails the registry-wide tests there.
TENSORFLOW_PACKAGES = ("tensorflow", "tensorflow_hub", "tensorflow_datasets", "tensorflow_text", "tf_keras")
if os.environ.get("KZOO_TEST_WITHOUT_TENSORFLOW") == "1":
    for _name in TENSORFLOW_PACKAGES:
        sys.modules[_name] = None

import pytest

import kzoo
from kzoo import registry
from kzoo import weights as weights_lib

# The CI runs one test file per worker (`-n 2 --dist loadfile --no-loadscope-reorder`), handing
# out files in collection order. The longest files go first, so the short ones fill the gaps at
# the end and neither worker waits for the other. xdist's own order, most tests first, left
# files with few long tests (test_jax_backend: one 90 s test) for last. The order is measured
# CI durations, roughly; files not listed follow in their usual order.
LONGEST_FIRST = (
    "test_models",
    "test_examples",
    "test_examples_quick",
    "test_export_matrix",
    "test_jax_backend",
    "test_export",
    "test_identity",
    "test_finetune",
    "test_bert",
    "test_classifiers",
    "test_callbacks",
    "test_run_resume",
    "test_weights",
    "test_hostile_weights",
    "test_unet",
    "test_export_int8",
    "test_crf",
    "test_sequence",
    "test_benchmarks",
    "test_lenet5",
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rpartition(".")[2], len(rank)))


@pytest.fixture
def quiet_examples(monkeypatch):
    """The environment the example subprocesses of ``kzoo examples run`` inherit."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def kzoo_home(tmp_path, monkeypatch) -> Iterator:
    """An empty, private weights cache; online unless a test sets KZOO_OFFLINE."""
    home = tmp_path / "kzoo_home"
    monkeypatch.setenv("KZOO_HOME", str(home))
    monkeypatch.delenv("KZOO_OFFLINE", raising=False)
    yield home


@dataclass
class Served:
    """What the test server serves: ``files[path] = (body, mode)``."""

    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add(self, path: str, body: bytes, mode: str = "good") -> str:
        """Modes: ``good``, ``truncated`` (announces the full length, sends half), ``slow``
        (20 chunks, 50 ms apart). tests/test_downloads.py has a server of its own for every other fault."""
        self.files["/" + path.lstrip("/")] = (body, mode)
        return self.url(path)


class _Handler(http.server.BaseHTTPRequestHandler):
    served: Served

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.served.requests.append(self.path)
        if self.path not in self.served.files:
            self.send_error(404, "Not Found")
            return
        body, mode = self.served.files[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "slow":
            step = max(1, len(body) // 20)
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def http_files() -> Iterator[Served]:
    """A real ``http.server`` on 127.0.0.1 (a free port) serving files the test adds."""
    served = Served()
    handler = type("Handler", (_Handler,), {"served": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def temporary_registry() -> Iterator:
    """Registers models and weights for one test and removes them afterwards."""
    added_models, added_weights = [], []

    class Registrar:
        def model(self, spec: registry.ModelSpec) -> registry.ModelSpec:
            kzoo.register_model(spec)
            added_models.append(spec.name)
            return spec

        def weights(self, record: weights_lib.WeightsRecord) -> weights_lib.WeightsRecord:
            weights_lib.register_weights(record)
            added_weights.append(record.key)
            return record

    yield Registrar()
    for name in added_models:
        registry._unregister_model(name)
    for key in added_weights:
        weights_lib._unregister_weights(key)


def requires_data(name: str):
    """Skips a test when a shared dataset is absent, saying where it was looked for."""
    return pytest.mark.skipif(
        not kzoo.data.has_data(name),
        reason=f"shared dataset {name!r} not found under {kzoo.data.data_dir()} (set KZOO_DATA_DIR)",
    )


@pytest.fixture
def examples_in_process(monkeypatch):
    """``kzoo examples run`` and ``kzoo reproduce`` run the example in this process (tests/helpers.py)."""
    import types

    from kzoo import examples

    from helpers import ExamplesInProcess

    runner = ExamplesInProcess()
    monkeypatch.setattr(examples, "subprocess", types.SimpleNamespace(call=runner.call))
    return runner
