"""One way to write a file that a crash can never leave half-written.

Every file kzoo writes — downloaded weights, checkpoints, resume state, run files, the
run's ``model.keras``, published weights and manifests — is written to a unique temporary
file beside its destination, flushed to disk, then renamed over it with :func:`os.replace`
(atomic on one file system), and the directory entry is synced. A failure at any point,
``KeyboardInterrupt`` and ``SIGKILL`` included, leaves the destination exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: str) -> None:
    """Makes a rename durable across power loss; directories cannot be opened on Windows."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _make_readable(path: str) -> None:
    # NamedTemporaryFile creates files 0600; give the final file the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def destination(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Yields a unique temporary path beside ``path``; on success renames it onto ``path``.

    ``suffix`` is the temporary file's ending (Keras insists on ``.weights.h5`` and
    ``.keras``). The parent directory is created if needed.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # A name nobody else uses (two runs sharing a directory never collide); the leading dot
    # keeps it out of directory listings.
    with tempfile.NamedTemporaryFile(
        dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix, delete=False
    ) as handle:
        temporary = handle.name
    try:
        yield temporary
        _fsync(temporary)
        _make_readable(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    _fsync_directory(directory)


# The random part of the names tempfile.NamedTemporaryFile gives (CPython: 8 characters of
# this alphabet); tests/test_run_resume.py checks that destination()'s names still match.
_RANDOM_PART = r"[a-z0-9_]{8}"


def is_temporary(path: str | os.PathLike, name: str, suffix: str = ".tmp") -> bool:
    """Whether ``path`` is a temporary file that :func:`destination` makes for a file ``name``.

    Such a file outlives its write only when the process was killed before the rename (a
    ``SIGKILL``, a power cut); it is never the destination itself. ``suffix`` is the one
    given to :func:`destination` (``.tmp`` for :func:`write_json` and :func:`write_text`,
    ``.weights.h5`` for :func:`save_weights`, ``.keras`` for :func:`save_model`, the
    destination's own extension for :func:`copy`).

    Example:
        >>> is_temporary(".kzoo_run.json.k3j_9x0a.tmp", "kzoo_run.json")
        True
        >>> is_temporary("kzoo_run.json", "kzoo_run.json")
        False
    """
    pattern = re.escape(f".{name}.") + _RANDOM_PART + re.escape(suffix)
    return re.fullmatch(pattern, os.path.basename(os.fspath(path))) is not None


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with destination(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def copy(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    with destination(target, suffix=os.path.splitext(os.fspath(target))[1] or ".tmp") as temporary:
        with open(source, "rb") as reader, open(temporary, "wb") as writer:
            while chunk := reader.read(1 << 20):
                writer.write(chunk)
    return Path(target)


def save_weights(model: Any, path: str | os.PathLike) -> Path:
    """``model.save_weights(path)``, atomically (Keras requires the ``.weights.h5`` ending).

    A model with LoRA also gets its frozen kernels and factors in the file (Keras writes only
    the merged kernels); :func:`kzoo.lora.load_weights` reads them back.
    """
    from kzoo import lora

    with destination(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary, overwrite=True)
        lora.store_factors(model, temporary)
    return Path(path)


def save_model(model: Any, path: str | os.PathLike) -> Path:
    """``model.save(path)`` as a ``.keras`` file, atomically."""
    with destination(path, suffix=".keras") as temporary:
        model.save(temporary, overwrite=True)
    return Path(path)
