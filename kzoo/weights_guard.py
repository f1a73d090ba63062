"""Checks that make a hostile weights file fail to load, quickly and with a kzoo error.

``kzoo.get(name, pretrained=PATH)`` and :func:`kzoo.weights.load_weights_file` read files
that anybody may have made. A file must be able to do no more than fail to load: never put
values into the model that are not finite floats from the file itself, never make kzoo read
another file, never take long or much memory before it is refused. Every rule below but the
one on values is checked on the file's metadata (HDF5 object headers, attribute shapes, the
zip directory) before any array is read, and every refusal is a
:class:`~kzoo.errors.WeightsError` that names the file, the dataset or archive member, and
the rule.

Paths (``pretrained=`` values and :func:`load_weights_file` arguments)
    A readable, non-empty regular file (symbolic links are followed). Directories, devices
    (``/dev/urandom``), pipes (which would block), ``/proc`` and ``/sys`` files (they report
    size 0; ``/proc/self/mem`` fails on read), names too long for the file system and
    ``~user`` paths of unknown users are refused instead of raising ``OSError`` or
    ``RuntimeError``.

Size (both HDF5 layouts)
    A file larger than :attr:`Limits.file_bytes` (6x the model's variable bytes, enough for
    the variables with an optimizer's slots and an EMA copy, plus 64 MiB for metadata) cannot
    be this model's weights file; refusing it bounds everything read afterwards (strings in
    attributes too).

Objects
    Only hard links, each object linked once. Keras never writes soft links (which HDF5 may
    resolve through an external link) or external links (which open another file); an object
    with two links could make the walk loop or alias one variable under two names.

Storage
    Keras and keras.applications store every array inside the file. HDF5 *external raw
    storage* reads the array's bytes from another file (``/etc/passwd``, ``/dev/urandom``,
    ``../x``); a *virtual dataset* maps other files' datasets in (and reads fill values when
    they are missing); a dataset with no stored data (or missing chunks) reads its fill
    value, not weights. All are refused, as are compression filters other than gzip, lzf,
    shuffle and fletcher32 (HDF5 loads a plugin library for any other).

Counts and nesting (checked while walking, before anything is read)
    The walk is an explicit stack that checks each group's member count against what is left
    of a budget derived from the model (:attr:`Limits.links`) before listing it, and refuses
    nesting deeper than :data:`MAX_DEPTH` (Keras nests a variable 4 to 8 groups deep). A
    legacy file's ``layer_names`` and ``weight_names`` attributes are measured from their
    shapes before they are read, and may not repeat a name. So 5,000-deep groups, 50,000
    repeated layer names or a weight listed 200,000 times are refused in milliseconds.

Shapes (checked from metadata, before data)
    A Keras 3 file must hold exactly the model's variables, each at the path where Keras'
    own saving walk puts it (:func:`variable_paths`, run with a store that records instead
    of writing), with that variable's shape; so a file Keras would load only in part (a
    renamed layer group) is refused before anything is assigned. Where that walk is not
    available, the file's shapes and the model's are compared as multisets. Optimizer
    datasets the model has no optimizer variable for may be no larger than its largest
    variable. A legacy file's arrays must have each layer's shapes, in order. So no read is
    ever larger than a variable of the model (a 250M-element declaration is refused before
    it allocates).

Dtypes
    A float variable takes float16, float32 or float64 data, and bfloat16 data (stored by Keras
    as 2-byte opaque values marked ``dtype="bfloat16"``) only where the variable is bfloat16.
    Integers, booleans, enums, complex numbers, strings ("0.125") and compound types are
    refused: Keras would cast them silently. Decision on float16: it is accepted for a
    float32 (or float64) variable, since widening float16 is exact and the file holds exactly
    the values that load; a float64 array is accepted for a float32 variable when its values
    fit (below). Integer variables (a few counters) take integers only.

Values (read one dataset at a time, after every metadata check passed)
    Every value must be finite in the dtype of the variable it loads into: NaN and Inf are
    refused, and so is a float64 value beyond float32's range that would become Inf. Integer
    values must fit the variable's integer dtype. Nothing is assigned until every dataset
    passed, so a refused file leaves the model as it was.

``.keras`` archives (read by :func:`check_keras_archive` before ``keras.saving.load_model``)
    The archive file and the sum of its members' declared uncompressed sizes must stay within
    :attr:`Limits.archive_bytes` of the model being loaded (6x its variable bytes plus 64 MiB
    for config, metadata and assets); the zip directory is measured from its end record
    before Python's ``zipfile`` parses it (at most :data:`MAX_ARCHIVE_MEMBERS` members).
    Keras' own guard is per member and only above 256 MiB, so eight 200 MiB members would be
    extracted. Member names must be relative without ``..``. The top-level object of
    ``config.json`` must be a ``keras.Model`` class (an optimizer or a layer is refused), and
    the model it describes is built in a ``keras.StatelessScope`` (variables get shapes but no
    memory) so that a config declaring a billion filters is refused before it allocates. The
    archive's ``model.weights.h5`` then passes every HDF5 rule above against that model, read
    in place for stored members (what Keras writes), from a temporary copy for compressed
    ones. After the weights are transferred, the model's float variables must still be finite
    (a float64 archive's 1e300 would be Inf in a float32 model): :func:`check_model_finite`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import io
import json
import math
import os
import stat
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kzoo.errors import WeightsError, expected_received

MAX_DEPTH = 32
"""Deepest group nesting accepted in a weights file (Keras writes 4 to 8 levels)."""

MAX_ARCHIVE_MEMBERS = 4096
"""Most members a ``.keras`` archive may hold (Keras writes three, plus assets)."""

MAX_NAME_LENGTH = 1024
"""Longest layer or weight name accepted in a legacy file's attributes."""

_ALLOWANCE = 64 << 20  # bytes for HDF5 metadata, config.json, metadata.json and assets
_FACTOR = 6  # the variables, AMSGrad's three slots and an EMA copy; or a float64 copy with Adam's
_BLOCK = 1 << 20  # elements checked at a time, so a check needs little more than the array
_ALLOWED_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
_FLOAT_DTYPES = ("float16", "float32", "float64", "bfloat16")
_MODEL_CLASSES = ("Functional", "Sequential", "Model")


# --------------------------------------------------------------------------------------
# Limits derived from the model
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a weights file for one model can hold at most."""

    variables: int
    layers: int
    variable_bytes: int
    largest: int

    @classmethod
    def for_model(cls, model: Any) -> Limits:
        weights = list(model.weights)
        try:
            layers = sum(1 for _ in model._flatten_layers(include_self=True, recursive=True))
        except (AttributeError, TypeError):  # not a Keras 3 layer: its top-level layers
            layers = len(getattr(model, "layers", [])) + 1
        sizes = [math.prod(tuple(w.shape)) for w in weights]
        nbytes = sum(size * _itemsize(w.dtype) for size, w in zip(sizes, weights))
        return cls(variables=len(weights), layers=layers, variable_bytes=nbytes, largest=max(sizes, default=1))

    @property
    def links(self) -> int:
        """Links a Keras 3 weights file of the model may hold: two groups per layer (its path and
        ``vars``), a few containers, each variable and up to four optimizer slots per variable."""
        return 6 * self.layers + 5 * self.variables + 64

    @property
    def optimizer_datasets(self) -> int:
        return 4 * self.variables + 16

    @property
    def layer_names(self) -> int:
        """Names a legacy file's ``layer_names`` may list (weightless layers are listed too)."""
        return 2 * self.layers + 16

    @property
    def file_bytes(self) -> int:
        return _FACTOR * self.variable_bytes + _ALLOWANCE

    archive_bytes = file_bytes


def _itemsize(dtype: Any) -> int:
    name = dtype_name(dtype)
    if name == "bfloat16":
        return 2
    try:
        import numpy as np

        return np.dtype(name).itemsize
    except TypeError:
        return 8


def dtype_name(dtype: Any) -> str:
    """``'float32'``, ``'bfloat16'``...: a variable's or array's dtype as Keras names it."""
    return str(getattr(dtype, "name", dtype)).replace("tf.", "")


# --------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------


def _where(file: Any, name: str | None = None, kind: str = "dataset") -> str:
    return f"weights file {file}" + (f", {kind} {name!r}" if name else "")


def _refuse(
    file: Any, name: str | None, expected: str, received: object, fix: str | None = None, *, kind: str = "dataset"
) -> WeightsError:
    """The error for a file breaking a rule: names the file, the dataset (group, entry) and the rule."""
    return WeightsError(expected_received(_where(file, name, kind), expected, received, fix))


def _refuse_archive(
    path: Any, member: str | None, expected: str, received: object, fix: str | None = None
) -> WeightsError:
    where = f"model file {path}" + (f", member {member!r}" if member else "")
    return WeightsError(expected_received(where, expected, received, fix))


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------

_NOT_FOUND = (errno.ENOENT, errno.ENOTDIR)


def path_exists(value: str) -> bool:
    """Whether ``value`` names something on disk; ``True`` also when asking failed (a name too
    long, a NUL byte, a loop of links), so that the caller treats it as a path and
    :func:`check_path` says what is wrong with it."""
    try:
        os.stat(value)
    except OSError as error:
        return error.errno not in _NOT_FOUND
    except ValueError:
        return True
    return True


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def check_path(value: str | os.PathLike, *, what: str = "weights file") -> Path:
    """The path ``value`` names, if it is a readable, non-empty regular file; else a
    :class:`WeightsError` that says what it is (see the module docstring)."""
    text = os.fsdecode(os.fspath(value))
    if "\0" in text:
        raise WeightsError(expected_received(what, "a path without NUL characters", text))
    try:
        path = Path(text).expanduser()
    except RuntimeError as error:  # "Could not determine home directory."
        raise WeightsError(
            expected_received(what, "a path whose ~user is a user of this machine", text, f"({error})")
        ) from None
    try:
        info = os.stat(path)
    except OSError as error:
        if error.errno in _NOT_FOUND:
            raise WeightsError(expected_received(what, "an existing file", str(path))) from None
        reason = error.strerror or type(error).__name__
        raise WeightsError(
            expected_received(what, "a readable regular file", f"{_short(str(path))} ({reason})")
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(expected_received(what, "a regular file", f"{path} ({_kind(info.st_mode)})"))
    if info.st_size == 0:
        raise WeightsError(
            expected_received(
                what,
                "a non-empty regular file",
                f"{path} (size 0: empty, or a /proc or /sys file)",
            )
        )
    try:
        # O_NONBLOCK: a pipe swapped in after the stat above must not block the open.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise WeightsError(expected_received(what, "a regular file", str(path)))
            os.read(descriptor, 8)
        finally:
            os.close(descriptor)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise WeightsError(expected_received(what, "a readable regular file", f"{path} ({reason})")) from None
    return path


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def check_file_size(path: Path, limits: Limits, *, model_name: str) -> None:
    size = path.stat().st_size
    if size > limits.file_bytes:
        raise _refuse(
            path,
            None,
            f"at most {limits.file_bytes:,} bytes ({_FACTOR}x the {limits.variable_bytes:,} bytes of model "
            f"{model_name!r}'s variables, plus 64 MiB)",
            f"{size:,} bytes",
            "It is not a weights file of this model.",
        )


# --------------------------------------------------------------------------------------
# HDF5 objects
# --------------------------------------------------------------------------------------


def _link_kind(group: Any, name: bytes) -> str | None:
    """``None`` for a hard link, else what the link is."""
    import h5py

    kind = group.id.links.get_info(name).type
    if kind == h5py.h5l.TYPE_HARD:
        return None
    if kind == h5py.h5l.TYPE_SOFT:
        target = group.id.links.get_val(name)
        return f"a soft link to {target.decode(errors='replace')!r}"
    if kind == h5py.h5l.TYPE_EXTERNAL:
        filename, inner = group.id.links.get_val(name)[:2]
        return f"an external link to {inner.decode(errors='replace')!r} in {filename.decode(errors='replace')!r}"
    return "a user-defined link"


def _open_member(group: Any, name: bytes, *, file: Any, path: str) -> Any:
    """The object a hard link of ``group`` names (a Group or Dataset), refusing links, aliases
    and other object types."""
    import h5py

    link = _link_kind(group, name)
    if link is not None:
        raise _refuse(
            file,
            path,
            "hard links only (a weights file may not refer elsewhere)",
            link,
            "Keras never writes soft or external links.",
            kind="entry",
        )
    identifier = h5py.h5o.open(group.id, name)
    if h5py.h5o.get_info(identifier).rc > 1:
        raise _refuse(file, path, "each object linked once", "an object with several links (an alias)", kind="entry")
    if isinstance(identifier, h5py.h5g.GroupID):
        return h5py.Group(identifier)
    if isinstance(identifier, h5py.h5d.DatasetID):
        return h5py.Dataset(identifier)
    raise _refuse(file, path, "a group or a dataset", "a named datatype", kind="entry")


def check_storage(dataset: Any, *, file: Any, path: str) -> None:
    """Refuses data kept outside the file, mapped from other files, or not stored at all."""
    import h5py

    plist = dataset.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        sources = [plist.get_virtual_filename(i) for i in range(min(plist.get_virtual_count(), 3))]
        raise _refuse(file, path, "data stored in the file", f"a virtual dataset mapping {sources}")
    if plist.get_external_count():
        target = plist.get_external(0)[0]
        raise _refuse(
            file,
            path,
            "data stored in the file",
            f"external raw storage in {target.decode(errors='replace') if isinstance(target, bytes) else target!r}",
            "A weights file may not read another file.",
        )
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if code not in _ALLOWED_FILTERS:
            raise _refuse(
                file, path, f"a compression filter among {sorted(_ALLOWED_FILTERS.values())}", f"filter id {code}"
            )
    if dataset.size and dataset.id.get_storage_size() == 0:
        raise _refuse(file, path, "stored data", "no stored data (it would read as its fill value)")


def _check_chunks(dataset: Any, *, file: Any, path: str) -> None:
    if dataset.chunks is None or not dataset.size:
        return
    expected = math.prod(-(-n // c) for n, c in zip(dataset.shape, dataset.chunks))
    stored = dataset.id.get_num_chunks()
    if stored < expected:
        raise _refuse(
            file, path, f"all {expected} chunks stored", f"{stored} (the missing ones would read as fill values)"
        )


def _describe(dataset: Any) -> str:
    import h5py

    dtype = dataset.dtype
    if h5py.check_enum_dtype(dtype) is not None:
        return f"an enum of {dtype}"
    if h5py.check_string_dtype(dtype) is not None or dtype.kind in "SUO":
        return f"strings ({dtype})"
    if dtype.kind == "V":
        return f"opaque or compound values ({dtype})"
    return str(dtype)


def _stored_bfloat16(dataset: Any) -> bool:
    import h5py

    if dataset.dtype.kind != "V" or dataset.dtype.itemsize != 2 or dataset.dtype.names:
        return False
    if "dtype" not in dataset.attrs or h5py.h5a.open(dataset.id, b"dtype").get_storage_size() > 64:
        return False
    value = dataset.attrs["dtype"]
    return (value.decode() if isinstance(value, bytes) else str(value)) == "bfloat16"


def check_dtype(dataset: Any, expected: set[str], *, file: Any, path: str) -> str:
    """The dtype the dataset's values are checked against: one of ``expected`` (the dtypes of
    the variables it may load into); refuses stored dtypes Keras would cast silently."""
    import h5py

    floats = [d for d in expected if d in _FLOAT_DTYPES]
    integers = [d for d in expected if d.startswith(("int", "uint"))]
    dtype = dataset.dtype
    h5class = dataset.id.get_type().get_class()
    if _stored_bfloat16(dataset):
        if "bfloat16" in expected:
            return "bfloat16"
        want = "a float16, float32 or float64 dtype" if floats else f"dtype {sorted(expected)}"
        raise _refuse(file, path, want, "bfloat16 (accepted only for bfloat16 variables)")
    enum = h5py.check_enum_dtype(dtype) is not None
    if floats and h5class == h5py.h5t.FLOAT and dtype.kind == "f" and dtype.itemsize in (2, 4, 8) and not enum:
        return _narrowest(floats)
    if integers and h5class == h5py.h5t.INTEGER and dtype.kind in "iu" and not enum:
        return _narrowest(integers)
    if "bool" in expected and dtype.kind == "b":
        return "bool"
    if floats:
        want = "a float16, float32 or float64 dtype" + (" (or bfloat16)" if "bfloat16" in floats else "")
    else:
        want = f"a dtype like {sorted(expected)}"
    variable = _narrowest(floats or sorted(expected))
    raise _refuse(file, path, f"{want} (the variable's dtype: {variable})", _describe(dataset))


def _narrowest(dtypes: list[str]) -> str:
    return min(dtypes, key=lambda d: (_bounds(d)[1], d))


def _bounds(dtype: str) -> tuple[float, float]:
    import ml_dtypes
    import numpy as np

    try:
        if dtype in _FLOAT_DTYPES:
            largest = float(ml_dtypes.finfo(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype).max)
            return -largest, largest
        if dtype == "bool":
            return 0.0, 1.0
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    except (TypeError, ValueError):  # a dtype NumPy does not know (float8...): no range to check
        return -math.inf, math.inf


def read_checked(dataset: Any, target: str, *, file: Any, path: str) -> Any:
    """The dataset's values as a NumPy array, after checking they are finite (floats) and fit
    ``target``, the dtype of the variable they load into."""
    import numpy as np

    _check_chunks(dataset, file=file, path=path)
    array = dataset[()]
    if target == "bfloat16" and array.dtype.kind == "V":
        import ml_dtypes

        array = np.ascontiguousarray(array).view(ml_dtypes.bfloat16)
    array = np.asarray(array)
    if target == "bool":
        return array
    flat = array.reshape(-1)
    low, high = _bounds(target)
    floating = target in _FLOAT_DTYPES
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        if floating:
            finite = np.isfinite(block)
            if not finite.all():
                index = int(np.argmin(finite))
                raise _refuse(
                    file,
                    path,
                    "finite values (NaN and Inf are refused)",
                    f"{block[index]} at flat index {start + index}",
                )
            if block.dtype.itemsize > _itemsize(target) or target == "bfloat16":
                index = int(np.argmax(np.abs(block.astype("float64"))))
                if abs(float(block[index])) > high:
                    raise _refuse(
                        file,
                        path,
                        f"values within {target}'s range (|x| <= {high:.4g}; beyond it they load as Inf)",
                        f"{float(block[index]):.6g} at flat index {start + index}",
                    )
        elif block.size:
            smallest, largest = block.min(), block.max()
            if smallest < low or largest > high:
                raise _refuse(file, path, f"integers that fit {target}", f"values from {smallest} to {largest}")
    return array


def walk(root: Any, *, file: Any, max_links: int, max_depth: int = MAX_DEPTH) -> Iterator[tuple[str, Any]]:
    """Yields ``(path, dataset)`` for every dataset under ``root``, through hard links only.

    A bounded visitor: each group's member count is checked against what is left of
    ``max_links`` before the group is listed, and groups deeper than ``max_depth`` are
    refused, so the walk stops early on a file with more entries than the model can have
    (``h5py``'s ``visititems`` would list all of them first)."""
    import h5py

    budget = max_links
    stack: list[tuple[str, Any, int]] = [("", root, 0)]
    while stack:
        prefix, group, depth = stack.pop()
        count = len(group)
        if count > budget:
            raise _refuse(
                file,
                prefix or "/",
                f"at most {max_links} entries in all (more than a weights file of this model holds)",
                f"a group of {count} members after {max_links - budget} entries",
                kind="group",
            )
        budget -= count
        names: list[bytes] = []
        group.id.links.iterate(names.append)
        for name in names:
            path = f"{prefix}/{name.decode(errors='replace')}" if prefix else name.decode(errors="replace")
            member = _open_member(group, name, file=file, path=path)
            if isinstance(member, h5py.Dataset):
                check_storage(member, file=file, path=path)
                yield path, member
            elif depth + 1 >= max_depth:
                raise _refuse(file, path, f"groups nested at most {max_depth} deep", "deeper nesting", kind="group")
            else:
                stack.append((path, member, depth + 1))


# --------------------------------------------------------------------------------------
# Keras 3 layout (.weights.h5, and model.weights.h5 inside .keras)
# --------------------------------------------------------------------------------------


def variable_paths(model: Any) -> dict[str, Any] | None:
    """Where Keras stores each of the model's variables in a weights file (``"layers/dense/vars/0"``),
    found by running Keras' own saving walk with a store that records instead of writing (no
    array is copied); ``None`` if this Keras has no such walk."""
    try:
        from keras.src.saving import saving_lib

        class Recorder(saving_lib.H5IOStore):
            def __init__(self) -> None:  # no file: nothing is written
                self.paths: dict[str, Any] = {}
                self._prefix = ""

            def __bool__(self) -> bool:
                return True

            def make(self, path: str, metadata: Any = None) -> Recorder:
                self._prefix = path
                return self

            def __setitem__(self, key: str, value: Any) -> None:
                self.paths[f"{self._prefix}/vars/{key}" if self._prefix else f"vars/{key}"] = value

        recorder = Recorder()
        saving_lib._save_state(model, weights_store=recorder, assets_store=None, inner_path="", visited_saveables=set())
    except Exception:  # another Keras: compare shapes as multisets instead
        return None
    return recorder.paths


def _is_optimizer(path: str) -> bool:
    return path.split("/", 1)[0] == "optimizer"


def check_keras_weights(handle: Any, model: Any, *, file: Any, limits: Limits | None = None) -> None:
    """Checks an open Keras 3 weights file against ``model`` (every rule of the module
    docstring), reading each dataset once; raises :class:`WeightsError`, else returns.

    Each dataset is matched to the variable Keras will load it into by its path
    (:func:`variable_paths`), so every shape and dtype is checked against its own variable and a
    file Keras would load only in part is refused before anything is assigned."""
    limits = limits or Limits.for_model(model)
    expected = variable_paths(model)
    if expected is None:
        model_paths, count = {}, len(model.weights)
    else:
        model_paths = {path: v for path, v in expected.items() if not _is_optimizer(path)}
        count = len(model_paths)
    model_part: list[tuple[str, Any]] = []
    optimizer_part: list[tuple[str, Any]] = []
    for path, dataset in walk(handle, file=file, max_links=limits.links):
        if _is_optimizer(path):
            optimizer_part.append((path, dataset))
            if len(optimizer_part) > limits.optimizer_datasets:
                raise _refuse(
                    file, path, f"at most {limits.optimizer_datasets} optimizer variables", "more", "(4 per variable)"
                )
            if dataset.size > limits.largest:
                raise _refuse(
                    file,
                    path,
                    f"an optimizer variable no larger than the model's largest variable ({limits.largest} elements)",
                    f"shape {dataset.shape}",
                )
            continue
        model_part.append((path, dataset))
        if len(model_part) > count:
            raise WeightsError(
                f"weights file {file} does not fit model {model.name!r}: expected {count} variables, "
                f"received more than {count}. Was it saved from another model or configuration "
                "(num_classes, input_shape, family arguments)?"
            )
    if len(model_part) != count:
        raise WeightsError(
            f"weights file {file} does not fit model {model.name!r}: expected {count} "
            f"variables, received {len(model_part)}. Was it saved from another model or configuration "
            "(num_classes, input_shape, family arguments)?"
        )
    fit = f"weights file {file} could not be loaded into model {model.name!r}"
    if expected is None:
        targets = _match_multisets(model_part, model, fit=fit, file=file)
    else:
        targets = []
        for path, dataset in model_part:
            # Keras reads files of Keras 2.13 under this name too (saving_lib.H5IOStore.get).
            variable = model_paths.get(path.replace("_layer_checkpoint_dependencies/", "layers/"))
            if variable is None:
                missing = sorted(set(model_paths) - {p for p, _ in model_part})
                raise WeightsError(
                    expected_received(
                        f"{fit}: dataset {path!r}",
                        f"datasets where Keras stores the model's variables (missing: {missing[:3]})",
                        "a dataset at a path no variable of the model has",
                        "Was it saved from another model or configuration?",
                    )
                )
            _check_shape(dataset, tuple(variable.shape), fit=fit, path=path, name=getattr(variable, "path", path))
            targets.append(check_dtype(dataset, {dtype_name(variable.dtype)}, file=file, path=path))
    for path, dataset in optimizer_part:
        variable = expected.get(path) if expected is not None else None
        if variable is not None:
            _check_shape(dataset, tuple(variable.shape), fit=fit, path=path, name=getattr(variable, "path", path))
            targets.append(check_dtype(dataset, {dtype_name(variable.dtype)}, file=file, path=path))
        else:  # the model has no (built) optimizer: Keras will not read these, but they must be sane
            targets.append(check_dtype(dataset, {"float32", "int64"}, file=file, path=path))
    for (path, dataset), target in zip(model_part + optimizer_part, targets):
        read_checked(dataset, target, file=file, path=path)  # one dataset at a time, dropped after its check


def _check_shape(dataset: Any, shape: tuple, *, fit: str, path: str, name: str) -> None:
    if tuple(dataset.shape) != shape:
        raise WeightsError(
            expected_received(
                f"{fit}: dataset {path!r}",
                f"the shape {shape} of variable {name!r}",
                tuple(dataset.shape),
                "Was it saved with another num_classes, input_shape or family arguments?",
            )
        )


def _match_multisets(model_part: list[tuple[str, Any]], model: Any, *, fit: str, file: Any) -> list[str]:
    """Without Keras' paths: each dataset must have the shape of a variable of the model, as many
    times as the model has it; its dtype is checked against those variables' dtypes."""
    remaining = collections.Counter(tuple(v.shape) for v in model.weights)
    dtypes: dict[tuple, set[str]] = collections.defaultdict(set)
    for variable in model.weights:
        dtypes[tuple(variable.shape)].add(dtype_name(variable.dtype))
    targets = []
    for path, dataset in model_part:
        shape = tuple(dataset.shape)
        if remaining[shape] <= 0:
            raise WeightsError(
                expected_received(
                    f"{fit}: dataset {path!r}",
                    "the shape of one of the model's variables (the file's shapes and the model's, as multisets)",
                    shape,
                    "Was it saved with another num_classes, input_shape or family arguments?",
                )
            )
        remaining[shape] -= 1
        targets.append(check_dtype(dataset, dtypes[shape], file=file, path=path))
    return targets


# --------------------------------------------------------------------------------------
# Legacy layout (keras.applications' weights-only HDF5)
# --------------------------------------------------------------------------------------


def legacy_root(handle: Any, *, file: Any) -> Any:
    """The group holding the layers: ``model_weights`` of a full-model file, else the root."""
    import h5py

    if b"model_weights" in handle.id:
        root = _open_member(handle, b"model_weights", file=file, path="model_weights")
        if not isinstance(root, h5py.Group):
            raise _refuse(file, "model_weights", "a group", "a dataset", kind="entry")
        return root
    return handle


def name_list(obj: Any, attribute: str, *, file: Any, where: str, limit: int | None) -> list[str] | None:
    """The names in a legacy file's ``layer_names``/``weight_names`` attribute (``None`` when
    absent); the count is read from the attribute's shape before its values are read."""
    import h5py

    if attribute not in obj.attrs:
        return None
    what = f"{_where(file)}, attribute {attribute!r} of {where}"
    shape = h5py.h5a.open(obj.id, attribute.encode()).shape
    count = math.prod(shape)
    if count == 0:
        return []
    if len(shape) != 1:
        raise WeightsError(expected_received(what, "a list of names", f"an array of shape {shape}"))
    if limit is not None and count > limit:
        raise WeightsError(
            expected_received(what, f"at most {limit} names (what the model can have)", f"{count} names")
        )
    values = obj.attrs[attribute]
    names = []
    for value in values:
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH or "\0" in value:
            raise WeightsError(
                expected_received(what, f"non-empty names of at most {MAX_NAME_LENGTH} characters", _short(repr(value)))
            )
        names.append(value)
    repeated = [name for name, n in collections.Counter(names).items() if n > 1]
    if repeated:
        raise WeightsError(expected_received(what, "each name once", f"{repeated[:3]} repeated"))
    return names


def member_at(group: Any, name: str, *, file: Any, path: str, dataset: bool) -> Any:
    """The group (or dataset) at the relative path ``name`` under ``group``, resolved one hard
    link at a time; a dataset also passes :func:`check_storage`."""
    import h5py

    parts = name.split("/")
    if not all(parts):
        raise _refuse(file, path, "a relative path without empty components", name, kind="entry")
    current = group
    for depth, part in enumerate(parts):
        if depth >= MAX_DEPTH:
            raise _refuse(file, path, f"groups nested at most {MAX_DEPTH} deep", "deeper nesting", kind="entry")
        if not isinstance(current, h5py.Group) or part.encode() not in current.id:
            raise _refuse(file, path, "an existing object", f"no {part!r} in {current.name!r}", kind="entry")
        current = _open_member(current, part.encode(), file=file, path=path)
    if dataset:
        if not isinstance(current, h5py.Dataset):
            raise _refuse(file, path, "a dataset", "a group", kind="entry")
        check_storage(current, file=file, path=path)
    elif not isinstance(current, h5py.Group):
        raise _refuse(file, path, "a group", "a dataset", kind="entry")
    return current


# --------------------------------------------------------------------------------------
# .keras archives
# --------------------------------------------------------------------------------------


def _central_directory(path: Path, *, file_size: int) -> tuple[int, int]:
    """``(members, directory bytes)`` from the zip's end-of-central-directory record."""
    tail_size = min(file_size, 22 + 65535)
    with open(path, "rb") as handle:
        handle.seek(file_size - tail_size)
        tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise _refuse_archive(path, None, "a zip archive (.keras)", "no zip end record")
    _, _, _, total, size, _, _ = struct.unpack("<HHHHIIH", tail[at + 4 : at + 22])
    return total, size


class _Window(io.RawIOBase):
    """Read-only view of ``size`` bytes at ``start`` of an open file: a stored (uncompressed)
    archive member, read by h5py without extracting it."""

    def __init__(self, handle: Any, start: int, size: int) -> None:
        super().__init__()
        self._handle, self._start, self._size, self._position = handle, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._size - self._position))
        if not count:
            return 0
        self._handle.seek(self._start + self._position)
        read = self._handle.readinto(memoryview(buffer)[:count])
        self._position += read
        return read


@contextlib.contextmanager
def _member_file(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> Iterator[Any]:
    """A seekable binary file of the member's bytes: a window on the archive for stored
    members (what Keras writes), a temporary file for compressed ones."""
    if info.flag_bits & 0x1:
        raise _refuse_archive(path, None, "an unencrypted archive", f"encrypted member {info.filename!r}")
    if info.compress_type == zipfile.ZIP_STORED:
        with open(path, "rb") as handle:
            handle.seek(info.header_offset)
            header = handle.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                raise _refuse_archive(path, None, "a valid zip archive", f"a damaged header of {info.filename!r}")
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            start = info.header_offset + 30 + name_length + extra_length
            if info.compress_size != info.file_size or start + info.file_size > os.fstat(handle.fileno()).st_size:
                raise _refuse_archive(path, None, "a complete zip archive", f"a truncated member {info.filename!r}")
            yield _Window(handle, start, info.file_size)
        return
    with tempfile.TemporaryFile() as copy:
        with archive.open(info) as member:  # zipfile stops at the declared size and checks the CRC
            while chunk := member.read(1 << 20):
                copy.write(chunk)
        copy.seek(0)
        yield copy


def _model_class_ok(config: dict) -> bool:
    import keras

    registered = config.get("registered_name")
    cls = keras.saving.get_registered_object(registered) if isinstance(registered, str) else None
    if isinstance(cls, type):
        return issubclass(cls, keras.Model)
    module = config.get("module")
    return (
        isinstance(module, str)
        and (module == "keras" or module.startswith("keras."))
        and config.get("class_name") in _MODEL_CLASSES
    )


def _stateless_model(config: dict, *, file: Path) -> Any:
    """The model ``config`` describes, built in a ``keras.StatelessScope``: its variables have
    shapes and dtypes but no memory, so their size can be checked before anything allocates."""
    import keras

    try:
        from keras.src.backend.common import global_state
        from keras.src.saving.serialization_lib import ObjectSharingScope
    except ImportError:  # another Keras layout: no sharing scope, nothing to clean up
        global_state, ObjectSharingScope = None, contextlib.nullcontext

    pending = global_state.get_global_attribute("uninitialized_variables") if global_state else None
    before = list(pending or [])
    try:
        with keras.StatelessScope(initialize_variables=False), ObjectSharingScope():
            return keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:
        raise WeightsError(
            f"model file {file} could not be loaded safely: {type(error).__name__}: {_first_line(error)}"
        ) from error
    finally:
        if global_state is not None:  # the stateless variables must never be initialised later
            global_state.set_global_attribute("uninitialized_variables", before)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else ""


def check_keras_archive(path: Path, model: Any) -> None:
    """Checks a ``.keras`` archive before ``keras.saving.load_model`` reads it into a model whose
    weights go to ``model`` (see the module docstring); raises :class:`WeightsError`."""
    import h5py
    import keras

    limits = Limits.for_model(model)
    bound = limits.archive_bytes
    budget = (
        f"{bound:,} bytes ({_FACTOR}x the {limits.variable_bytes:,} bytes "
        f"of model {model.name!r}'s variables, plus 64 MiB)"
    )
    size = path.stat().st_size
    if size > bound:
        raise _refuse_archive(path, None, f"an archive of at most {budget}", f"{size:,} bytes")
    members, directory = _central_directory(path, file_size=size)
    if members > MAX_ARCHIVE_MEMBERS or directory > MAX_ARCHIVE_MEMBERS * (46 + MAX_NAME_LENGTH):
        raise _refuse_archive(path, None, f"at most {MAX_ARCHIVE_MEMBERS} archive members", f"{members} members")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise _refuse_archive(
            path, None, "a zip archive (.keras)", f"{type(error).__name__}: {_first_line(error)}"
        ) from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(infos) > MAX_ARCHIVE_MEMBERS:
            raise _refuse_archive(path, None, f"at most {MAX_ARCHIVE_MEMBERS} archive members", f"{len(infos)} members")
        for name in names:
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0] or "\0" in name:
                raise _refuse_archive(path, None, "archive members with relative names inside the archive", name)
        repeated = [name for name, n in collections.Counter(names).items() if n > 1]
        if repeated:
            raise _refuse_archive(path, None, "each archive member once", f"{repeated[:3]} repeated")
        total = sum(info.file_size for info in infos)
        if total > bound:
            raise _refuse_archive(
                path,
                None,
                f"at most {budget} uncompressed in all",
                f"{len(infos)} members declaring {total:,} bytes",
                "Refused before extracting anything.",
            )
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                raise _refuse_archive(path, None, f"a .keras archive with {required}", f"members {names[:8]}")
        try:
            config = json.loads(archive.read("config.json"))
        except (ValueError, RecursionError, zipfile.BadZipFile, OSError) as error:
            raise _refuse_archive(
                path, "config.json", "a JSON model config", f"{type(error).__name__}: {_first_line(error)}"
            ) from None
        if not isinstance(config, dict) or not _model_class_ok(config):
            received = config.get("class_name") if isinstance(config, dict) else type(config).__name__
            raise WeightsError(
                expected_received(
                    f"model file {path} (config.json)",
                    "a keras.Model at the top level",
                    received,
                    "Save the model itself with model.save('name.keras'), not an optimizer or a layer.",
                )
            )
        config["compile_config"] = None  # load_model(compile=False) ignores it too
        reference = _stateless_model(config, file=path)
        if not isinstance(reference, keras.Model):
            raise WeightsError(
                expected_received(
                    f"model file {path} (config.json)", "a keras.Model at the top level", type(reference).__name__
                )
            )
        declared = Limits.for_model(reference)
        if declared.variable_bytes > bound:
            raise _refuse_archive(
                path,
                "config.json",
                f"a model whose variables take at most {budget}",
                f"a model declaring {declared.variable_bytes:,} bytes of variables",
            )
        inner = f"{path} (model.weights.h5)"
        with _member_file(archive, archive.getinfo("model.weights.h5"), path) as member:
            try:
                with h5py.File(member, "r") as handle:
                    check_keras_weights(handle, reference, file=inner, limits=declared)
            except WeightsError:
                raise
            except Exception as error:  # h5py raises OSError, KeyError, ValueError... for damaged files
                raise WeightsError(
                    f"weights file {inner} could not be read: {type(error).__name__}: {_first_line(error)}"
                ) from error
        del reference


def check_model_finite(model: Any, *, file: Any) -> None:
    """Refuses a model any of whose float variables holds NaN or Inf (after loading ``file``)."""
    import keras
    import numpy as np

    for variable in model.weights:
        if dtype_name(variable.dtype) not in _FLOAT_DTYPES:
            continue
        values = np.asarray(keras.ops.convert_to_numpy(variable))
        finite = np.isfinite(values)
        if not finite.all():
            raise _refuse_archive(
                file,
                None,
                "finite values (NaN and Inf are refused)",
                f"{values.reshape(-1)[int(np.argmin(finite.reshape(-1)))]} in variable {variable.path!r} after loading",
            )
