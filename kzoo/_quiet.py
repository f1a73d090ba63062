"""Keeps TensorFlow's C++ start-up lines off stderr while kzoo imports it.

Importing TensorFlow writes half a dozen lines straight to file descriptor 2 from C++ (the
absl pre-initialisation banner, oneDNN, the CUDA stub, CPU features, and on a machine without
an NVIDIA driver CUDA's failed ``cuInit`` when devices are first listed), whatever
``TF_CPP_MIN_LOG_LEVEL`` says. :func:`native_stderr` points descriptor 2 at a temporary file
for the duration of a block, then writes back everything that is not one of those
informational lines: Python warnings and tracebacks, and TensorFlow's own warnings and errors,
still reach the terminal (in their order), and nothing at all is hidden when the block raises.
``KZOO_TF_LOGS=1`` turns the filter off. Written here because neither TensorFlow nor absl
offers a switch for these lines (they are printed before absl's logging is initialised).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# glog/absl-style informational lines ("I0000 00:00:1796170031.130188   652 port.cc:153] ..."), the
# banner printed before absl is initialised, and the CPU-feature line's continuation.
_NOISE = re.compile(
    rb"^(I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$"
)


# CUDA's "failed call to cuInit" when the machine has no NVIDIA driver at all (no /dev/nvidiactl):
# the CPU-only start-up of a GPU build. With a driver present it is a real error and stays.
_NO_DRIVER = re.compile(rb"^E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*$")


def is_noise(line: bytes) -> bool:
    """Whether one line (without its newline) is a TensorFlow start-up information line."""
    line = line.rstrip(b"\r")
    return bool(_NOISE.match(line)) or (bool(_NO_DRIVER.match(line)) and not os.path.exists("/dev/nvidiactl"))


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    """Runs a block with descriptor 2 captured; replays all but TensorFlow's start-up lines."""
    if os.environ.get("KZOO_TF_LOGS", "").strip().lower() in {"1", "true", "yes", "on"}:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real descriptor 2 (embedded interpreters)
        yield
        return
    sink = tempfile.TemporaryFile()
    failed = False
    try:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            sink.seek(0)
            captured = sink.read()
            kept = (
                captured
                if failed
                else b"".join(line for line in captured.splitlines(keepends=True) if not is_noise(line.rstrip(b"\n")))
            )
            if kept:
                os.write(2, kept)
    finally:
        os.close(saved)
        sink.close()
