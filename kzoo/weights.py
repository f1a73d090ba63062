"""Weight records, the download cache, integrity checks and strict loading.

A :class:`WeightsRecord` describes one set of pretrained weights for one registered
model (``"lenet5.mnist"``): where the file lives (shipped in ``zoo_weights/`` or at
the publisher's URL), its hashes and size, what it was trained on and how well it
did, the input it expects (shape and preprocessing) and its classes.

Records come from two places: the manifest of weights kzoo trained itself
(``zoo_weights/manifest.json``, written by the recipes in ``examples/``) and records
declared in code with :func:`register_weights` (official files of other publishers).

Files are only ever read after their hash has been checked, and only as weights
(Keras 3 ``.weights.h5`` or the publisher's weights-only HDF5); a downloaded file is
never deserialized as a full model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from kzoo import atomic
from kzoo.errors import (
    IntegrityError,
    InvalidArgumentError,
    OfflineError,
    RegistryError,
    WeightsError,
    expected_received,
)

logger = logging.getLogger("kzoo")

MANIFEST_NAME = "manifest.json"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How raw pixels (0-255, RGB or grayscale) become the input a weights tag expects.

    ``x = (x[..., channels] * scale + offset - mean) / std``, where ``channels`` reverses
    RGB to BGR when ``channel_order == "bgr"``.

    Args:
        scale: Multiplier applied to raw 0-255 pixel values.
        offset: Added after scaling.
        mean: Per-channel mean subtracted after scaling, or ``None``.
        std: Per-channel standard deviation divided by, or ``None``.
        channel_order: ``"rgb"``, ``"bgr"`` or ``"grayscale"``.
    """

    scale: float = 1.0 / 255.0
    offset: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_order: str = "rgb"

    def __call__(self, images: Any) -> Any:
        """Applies the preprocessing to a float array or tensor of raw pixels (NHWC or HWC).

        Plain arithmetic only, so it works on NumPy arrays, inside ``tf.data`` maps and
        on any Keras backend's tensors.
        """
        x = images
        if self.channel_order == "bgr":
            x = x[..., ::-1]
        x = x * self.scale + self.offset
        if self.mean is not None:
            x = x - _as_constant(self.mean, x)
        if self.std is not None:
            x = x / _as_constant(self.std, x)
        return x

    def describe(self) -> str:
        parts = [f"x * {self.scale:.6g}" + (f" + {self.offset:g}" if self.offset else "")]
        if self.mean is not None:
            parts.append(f"- mean {list(self.mean)}")
        if self.std is not None:
            parts.append(f"/ std {list(self.std)}")
        return " ".join(parts) + f" ({self.channel_order})"


def _as_constant(values: tuple[float, ...], like: Any) -> Any:
    import numpy as np

    # Match a NumPy input's float dtype; tensors of every backend accept float32 constants.
    dtype = like.dtype if isinstance(like, np.ndarray) and like.dtype.kind == "f" else np.float32
    return np.asarray(values, dtype=dtype)


@dataclasses.dataclass(frozen=True)
class WeightsRecord:
    """One set of pretrained weights for one registered model.

    Args:
        model: Registered model name, e.g. ``"lenet5"``.
        tag: Weights tag, e.g. ``"mnist"`` or ``"imagenet"``.
        file: File name: inside ``zoo_weights/`` for shipped weights, in the cache for
            downloaded ones.
        url: The publisher's official URL, or ``None`` for weights shipped with kzoo.
        sha256: SHA-256 of the file (required for shipped weights).
        md5: The publisher's MD5 pin, where that is what the publisher gives.
        size: File size in bytes.
        format: ``"keras"`` (Keras 3 ``.weights.h5``) or ``"h5-legacy"`` (weights-only
            HDF5 as written by ``keras.applications``).
        dataset: Training data, in words.
        metrics: Measured figures on held-out data, e.g. ``{"test_accuracy": 0.991}``.
        eval_split: Which held-out data the metrics were measured on.
        num_classes: Number of classes of the head the weights include.
        class_names: Class names in output order.
        input_shape: Input shape (H, W, C) the weights were trained at.
        include_top: Whether the file includes the classification head.
        preprocessing: How raw pixels map to the model's input.
        license: Licence of the weights.
        source: Who trained/published the weights.
        recipe: The script that produced them (``examples/...``) or the publisher's recipe.
        default: Whether this is the tag ``pretrained=True`` selects.
        builder_kwargs: Extra builder arguments the weights need (family arguments).
        num_params: Parameters the file holds (element count of its variables); for a file
            saved with the model's head, the model's ``count_params()`` in that configuration.
        text: Text preprocessing the weights were trained with (see :mod:`kzoo.text`):
            ``vocabulary`` (a file in ``zoo_weights/``) with ``vocabulary_sha256``,
            ``standardize``, ``split`` and ``max_length``; or ``hashing`` with
            ``num_bins`` and ``max_word_length`` for hashed words (no vocabulary).
        notes: Free text.
        reproduce: How ``kzoo reproduce NAME:TAG`` checks a rerun of ``recipe`` (see
            :mod:`kzoo.reproduce`): ``metric`` (a key of ``metrics``), ``tolerance`` (a full
            rerun passes within ``metrics[metric] ± tolerance``), ``why`` (where the
            tolerance comes from), and ``quick_range`` (``[low, high]`` a ``--quick`` rerun's
            figure must fall in, with ``quick_why``; absent when the recipe's quick run learns
            nothing a range could tell from an untrained network). A recipe
            that republishes without it keeps the previous entry's.
    """

    model: str
    tag: str
    file: str
    url: str | None = None
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    format: str = "keras"
    dataset: str = ""
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    eval_split: str = ""
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    input_shape: tuple[int, ...] | None = None
    include_top: bool = True
    preprocessing: Preprocessing = dataclasses.field(default_factory=Preprocessing)
    license: str = ""
    source: str = "kzoo"
    recipe: str = ""
    default: bool = False
    builder_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    text: dict[str, Any] = dataclasses.field(default_factory=dict)
    notes: str = ""
    num_params: int | None = None
    reproduce: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def shipped(self) -> bool:
        return self.url is None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape) if self.input_shape else None
        data["class_names"] = list(self.class_names) if self.class_names else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WeightsRecord:
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RegistryError(
                expected_received(
                    "weights manifest entry",
                    f"only the fields {sorted(known)}",
                    unknown,
                    "Regenerate the entry with its recipe in examples/.",
                )
            )
        if data.get("preprocessing") is not None:
            prep = dict(data["preprocessing"])
            for key in ("mean", "std"):
                if prep.get(key) is not None:
                    prep[key] = tuple(prep[key])
            data["preprocessing"] = Preprocessing(**prep)
        for key in ("input_shape", "class_names"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


# --------------------------------------------------------------------------------------
# Record registry
# --------------------------------------------------------------------------------------

_CODE_RECORDS: dict[str, WeightsRecord] = {}
_MANIFEST_CACHE: dict[str, WeightsRecord] | None = None
_LOCK = threading.Lock()


def register_weights(record: WeightsRecord) -> WeightsRecord:
    """Registers a weights record declared in code. A duplicate ``model.tag`` raises."""
    if not isinstance(record, WeightsRecord):
        raise InvalidArgumentError(
            expected_received("register_weights(record)", "a kzoo.weights.WeightsRecord", type(record).__name__)
        )
    if record.url is None and record.sha256 is None:
        raise RegistryError(f"weights {record.key}: a shipped file needs its sha256.")
    if record.url is not None and not (record.sha256 or record.md5):
        raise RegistryError(f"weights {record.key}: a remote file needs the publisher's hash (sha256 or md5).")
    with _LOCK:
        if record.key in _CODE_RECORDS or record.key in _manifest_records():
            raise RegistryError(f"weights {record.key!r} are already registered; tags must be unique per model.")
        _CODE_RECORDS[record.key] = record
    return record


def _unregister_weights(key: str) -> None:
    """Removes a record registered in code (for tests)."""
    with _LOCK:
        _CODE_RECORDS.pop(key, None)


def shipped_dir() -> Path:
    """The directory holding kzoo's own trained weights and their manifest.

    In a source checkout that is ``zoo_weights/`` beside the ``kzoo/`` package; in an
    installed package it is ``kzoo/zoo_weights/`` (setup.cfg maps one onto the other).
    """
    package = Path(__file__).resolve().parent
    for candidate in (package / "zoo_weights", package.parent / "zoo_weights"):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    return package.parent / "zoo_weights"


def read_manifest(path: Path | None = None) -> dict[str, WeightsRecord]:
    """Reads a weights manifest (``zoo_weights/manifest.json`` by default)."""
    path = path or shipped_dir() / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RegistryError(f"weights manifest {path} is not valid JSON: {error}") from error
    records = {}
    for entry in entries.get("weights", []):
        record = WeightsRecord.from_json(entry)
        records[record.key] = record
    return records


def publish_file(source: str | os.PathLike) -> Path:
    """Copies a file a recipe wrote into ``zoo_weights/`` (temp file + atomic rename); returns the copy."""
    source = Path(source)
    target = shipped_dir() / source.name
    atomic.copy(source, target)
    return target


def compress_file(path: str | os.PathLike) -> Path:
    """Rewrites a Keras ``.weights.h5`` file with every dataset gzip-compressed, atomically.

    Keras writes datasets uncompressed; h5py (which Keras reads them with) decompresses
    transparently, so the file loads as before and holds the same values, bit for bit.
    Recipes use it for weights with many zeros (e.g. hash bins no training word reached).
    """
    import h5py

    path = Path(path)

    def copy_group(source: Any, target: Any) -> None:
        target.attrs.update(source.attrs)
        for name, item in source.items():
            if isinstance(item, h5py.Group):
                copy_group(item, target.create_group(name))
            else:
                options = {"compression": "gzip", "compression_opts": 9, "shuffle": True} if item.size > 1 else {}
                created = target.create_dataset(name, data=item[()], **options)
                created.attrs.update(item.attrs)

    with atomic.destination(path, suffix=".weights.h5") as temporary:
        with h5py.File(path, "r") as source, h5py.File(temporary, "w") as target:
            copy_group(source, target)
    return path


def write_manifest_entry(record: WeightsRecord, path: Path | None = None) -> Path:
    """Adds or replaces one entry of a weights manifest, atomically.

    Used by the recipes in ``examples/``; the file is written to a temporary name and
    renamed, so an interrupted recipe never leaves a half-written manifest.
    """
    global _MANIFEST_CACHE
    path = path or shipped_dir() / MANIFEST_NAME
    shipped_file = path.parent / record.file
    if record.num_params is None and shipped_file.is_file():
        record = dataclasses.replace(record, num_params=count_file_params(shipped_file))
    entries = {"weights": []}
    if path.is_file():
        entries = json.loads(path.read_text(encoding="utf-8"))
    previous = [e for e in entries.get("weights", []) if f"{e['model']}.{e['tag']}" == record.key]
    if previous and not record.reproduce and previous[0].get("reproduce"):
        # The check's band is the maintainers' choice; a republish that does not restate it keeps it.
        record = dataclasses.replace(record, reproduce=previous[0]["reproduce"])
    kept = [e for e in entries.get("weights", []) if f"{e['model']}.{e['tag']}" != record.key]
    kept.append(record.to_json())
    kept.sort(key=lambda e: (e["model"], e["tag"]))
    entries["weights"] = kept
    atomic.write_json(path, entries)
    _MANIFEST_CACHE = None
    return path


def _manifest_records() -> dict[str, WeightsRecord]:
    global _MANIFEST_CACHE
    if _MANIFEST_CACHE is None:
        _MANIFEST_CACHE = read_manifest()
    return _MANIFEST_CACHE


def all_records() -> list[WeightsRecord]:
    """Every known weights record, sorted by model and tag."""
    records = {**_manifest_records(), **_CODE_RECORDS}
    return sorted(records.values(), key=lambda r: (r.model, r.tag))


def find_record(key: str) -> WeightsRecord | None:
    """The record registered as ``key`` (``"lenet5.mnist"``), or ``None``."""
    for record in all_records():
        if record.key == key:
            return record
    return None


def records_for(model: str) -> list[WeightsRecord]:
    """The weights records of one model, default tag first."""
    records = [r for r in all_records() if r.model == model]
    return sorted(records, key=lambda r: (not r.default, r.tag))


# --------------------------------------------------------------------------------------
# Cache, download and integrity
# --------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where downloaded weights live: ``$KZOO_HOME/weights``, else ``$KERAS_HOME/kzoo/weights``,
    else ``~/.keras/kzoo/weights``."""
    if os.environ.get("KZOO_HOME"):
        return Path(os.environ["KZOO_HOME"]).expanduser() / "weights"
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(keras_home).expanduser() / "kzoo" / "weights"


def offline() -> bool:
    """True when ``KZOO_OFFLINE`` is set to a true value (1, true, yes, on)."""
    return os.environ.get("KZOO_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def file_hashes(path: Path) -> dict[str, str]:
    """SHA-256 and MD5 of a file, read in chunks."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            sha256.update(chunk)
            md5.update(chunk)
    return {"sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def _mismatch(record: WeightsRecord, size: int, hashes: dict[str, str]) -> str | None:
    if record.size is not None and size != record.size:
        return f"expected {record.size} bytes, received {size} bytes"
    for algorithm in ("sha256", "md5"):
        wanted = getattr(record, algorithm)
        if wanted and hashes[algorithm] != wanted.lower():
            return f"expected {algorithm} {wanted}, received {hashes[algorithm]}"
    return None


def verify(record: WeightsRecord, path: Path) -> None:
    """Raises :class:`IntegrityError` unless ``path`` has the record's size and hashes."""
    problem = _mismatch(record, path.stat().st_size, file_hashes(path))
    if problem:
        raise IntegrityError(f"weights {record.key} at {path} failed the integrity check: {problem}.")


def fetch(record: WeightsRecord, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Returns a local, verified path to a record's file, downloading it when needed.

    Shipped weights are checked in place. Remote weights are looked up in
    :func:`cache_dir`; a cached file that fails its hash is deleted (never parsed) and,
    unless offline, downloaded again. Downloads stream to a unique temporary file in
    the cache directory, are checked for size and hash, and only then renamed onto the
    final name, so concurrent downloads and interruptions never expose a partial file.
    A lock per cache entry makes N processes fetching the same file download it once, and
    the partial files of processes that died mid-download are removed (:mod:`kzoo.download`).

    Raises:
        IntegrityError: the file (shipped, cached or downloaded) fails its hash or size.
        OfflineError: the file is not cached and ``KZOO_OFFLINE=1``.
        DownloadError: the download failed: an HTTP error, a reset or stall that retries did
            not cure, malformed HTTP, a web page or a body larger than the pinned file, or a
            full disk (:mod:`kzoo.download` lists every case).
    """
    if record.shipped:
        path = shipped_dir() / record.file
        if not path.is_file():
            raise WeightsError(
                f"shipped weights {record.key} are missing: expected the file {path}. "
                "Reinstall kzoo (`pip install --force-reinstall kzoo`) or run the recipe "
                f"{record.recipe or 'in examples/'} to retrain them."
            )
        try:
            verify(record, path)
        except IntegrityError as error:
            raise IntegrityError(f"{error} The installed kzoo is damaged: reinstall it.") from None
        return path

    directory = cache_dir()
    path = directory / record.file
    if path.is_file():
        problem = _mismatch(record, path.stat().st_size, file_hashes(path))
        if problem is None:
            return path
        # A file that fails its hash never stays in the cache.
        path.unlink(missing_ok=True)
        if offline():
            raise IntegrityError(
                f"cached weights {record.key} at {path} failed the integrity check ({problem}) and were "
                "removed; KZOO_OFFLINE=1 forbids downloading them again. Unset KZOO_OFFLINE to re-download."
            )
        logger.warning("kzoo: cached weights %s failed the integrity check (%s); downloading again.", path, problem)
    if offline():
        raise OfflineError(
            f"weights {record.key} are not in the cache: expected the file {path}. KZOO_OFFLINE=1 forbids "
            f"downloading them from {record.url}. Unset KZOO_OFFLINE, or copy the file to that path."
        )
    from kzoo import download

    # One download per entry across processes: the others wait, then find the verified file.
    with download.entry_lock(path) as locked:
        if locked and path.is_file() and _mismatch(record, path.stat().st_size, file_hashes(path)) is None:
            return path
        if locked:  # no other process is writing this entry: every .part of it is a dead one's
            download.remove_stale_parts(path)
        return _download(record, path, progress=progress, timeout=timeout)


def _download(record: WeightsRecord, path: Path, *, progress: bool, timeout: float) -> Path:
    # kzoo.download: bounded by the pinned size, retried when transient, every failure a
    # DownloadError; the verified file is renamed into place, a bad one never reaches the cache.
    from kzoo import download

    bar = _progress_bar(record.size, record.key) if progress else None
    return download.download(
        record.url,
        path,
        size=record.size,
        sha256=record.sha256,
        md5=record.md5,
        label=f"weights {record.key}",
        timeout=timeout,
        progress=None if bar is None else lambda received, total: bar.update(min(received, total or received)),
    )


def _progress_bar(total: int | None, label: str) -> Any:
    # keras.utils.Progbar is the maintained progress bar we already depend on.
    import keras

    print(f"Downloading {label}", flush=True)
    return keras.utils.Progbar(total or None, unit_name="byte")


# --------------------------------------------------------------------------------------
# Strict loading
# --------------------------------------------------------------------------------------


def count_file_params(path: str | os.PathLike) -> int:
    """Element count of the model variables in a Keras 3 ``.weights.h5`` file (optimizer state excluded)."""
    import h5py

    total = 0

    def visit(name: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset) and not name.startswith("optimizer/"):
            total += int(obj.size)

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return total


def load_weights_file(model: Any, path: str | os.PathLike, *, format: str | None = None) -> None:
    """Loads a weights-only file into ``model``, strictly.

    Keras' own ``load_weights`` silently ignores entries it has no layer for; kzoo
    refuses files that hold a different number of variables than the model, so a file
    from another model or configuration is an error instead of a half-loaded model.
    A file is also checked against the rules of :mod:`kzoo.weights_guard` (links,
    storage, counts, shapes and dtypes from metadata first, then finite values) before
    anything is assigned, so a refused file leaves the model as it was.

    Args:
        model: A built ``keras.Model``.
        path: A Keras 3 ``.weights.h5`` file, or a weights-only HDF5 file as written by
            ``keras.applications`` (``format="h5-legacy"``).
        format: ``"keras"`` or ``"h5-legacy"``; inferred from the file name if omitted.

    Raises:
        WeightsError: the path is not a readable, non-empty regular file (missing, a
            directory, a device or ``/proc`` file, a name too long, an unknown ``~user``);
            the file is not HDF5, truncated or damaged; it is larger than a weights file of
            the model can be; it holds soft or external links, external raw storage, virtual
            datasets, unstored data or unknown compression filters; it nests groups too
            deeply or holds more entries, layer or weight names than the model has; its
            shapes do not fit the model (checked before any array is read); a dtype is not
            float16/32/64 where the variable is a float (bfloat16 only where it is
            bfloat16); or a value is NaN, Inf or out of the variable's range. The message
            names the file, the dataset and the rule.
    """
    from kzoo import weights_guard

    path = weights_guard.check_path(path)
    if format is None:
        format = "keras" if path.name.endswith(".weights.h5") else "h5-legacy"
    with open(path, "rb") as handle:
        signature = handle.read(len(_HDF5_SIGNATURE))
    if signature != _HDF5_SIGNATURE:
        raise WeightsError(
            expected_received(
                f"weights file {path}",
                "an HDF5 file (.weights.h5)",
                f"a file starting with {signature!r}",
                "Save weights with model.save_weights('name.weights.h5').",
            )
        )
    limits = weights_guard.Limits.for_model(model)
    weights_guard.check_file_size(path, limits, model_name=model.name)
    try:
        if format == "h5-legacy":
            _load_legacy_h5_by_name(model, path)
            return
        if format == "keras":
            import h5py

            with h5py.File(path, "r") as stored:
                weights_guard.check_keras_weights(stored, model, file=path, limits=limits)
        model.load_weights(str(path))
    except WeightsError:
        raise
    except Exception as error:  # h5py, Keras and NumPy raise a zoo of types here.
        raise WeightsError(
            f"weights file {path} could not be loaded into model {model.name!r}: "
            f"{type(error).__name__}: {_first_line(error)}"
        ) from error


class ModelWeights:
    """A model's weights by layer name, for :func:`kzoo.registry.transfer_weights`."""

    def __init__(self, model: Any) -> None:
        self._layers = {layer.name: layer for layer in model.layers if layer.weights}
        self.inputs = getattr(model, "inputs", [])

    def names(self) -> list[str]:
        return list(self._layers)

    def __contains__(self, name: str) -> bool:
        return name in self._layers

    def shapes(self, name: str) -> list[tuple[int, ...]]:
        return [tuple(w.shape) for w in self._layers[name].weights]

    def arrays(self, name: str) -> list[Any]:
        return self._layers[name].get_weights()


class LegacyH5Weights:
    """A Keras 2 weights-only HDF5 file (keras.applications' format), read by layer name.

    A context manager: shapes come from the file's metadata, arrays are read one layer at a
    time (``arrays``), so loading a 500 MB file never holds a second copy of the model.
    Opening checks the file's structure (:mod:`kzoo.weights_guard`): the listed groups and
    datasets are reached through hard links only and keep their data inside the file, and no
    name is listed twice; with ``model``, the ``layer_names`` and ``weight_names`` lists may
    be no longer than what the model has (measured before they are read). ``arrays`` checks
    dtypes and refuses NaN and Inf.
    """

    def __init__(self, path: str | os.PathLike, *, model: Any = None) -> None:
        self.path = Path(path)
        self._handle = None
        self._groups: dict[str, tuple[list[str], list[Any]]] = {}
        self._model = model
        self.inputs: list = []

    def __enter__(self) -> LegacyH5Weights:
        import h5py

        from kzoo import weights_guard as guard

        layer_limit = weight_limit = None
        if self._model is not None:
            layer_limit = guard.Limits.for_model(self._model).layer_names
            weight_limit = max((len(layer.weights) for layer in self._model.layers), default=0)
        try:
            self._handle = h5py.File(self.path, "r")
            root = guard.legacy_root(self._handle, file=self.path)
            layer_names = guard.name_list(root, "layer_names", file=self.path, where="the layers", limit=layer_limit)
            if layer_names is None:
                raise WeightsError(
                    expected_received(
                        f"weights file {self.path}",
                        "a Keras weights-only HDF5 file (with a 'layer_names' attribute)",
                        "none",
                    )
                )
            for name in layer_names:
                group = guard.member_at(root, name, file=self.path, path=name, dataset=False)
                where = f"layer {name!r}"
                names = guard.name_list(group, "weight_names", file=self.path, where=where, limit=weight_limit)
                if names:
                    datasets = [
                        guard.member_at(group, n, file=self.path, path=f"{name}/{n}", dataset=True) for n in names
                    ]
                    self._groups[name] = (names, datasets)
        except WeightsError:
            self.close()
            raise
        except Exception as error:  # h5py raises OSError, KeyError, ValueError... for damaged files
            self.close()
            raise WeightsError(
                f"weights file {self.path} could not be read: {type(error).__name__}: {_first_line(error)}"
            ) from error
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def names(self) -> list[str]:
        return list(self._groups)

    def __contains__(self, name: str) -> bool:
        return name in self._groups

    def shapes(self, name: str) -> list[tuple[int, ...]]:
        return [tuple(dataset.shape) for dataset in self._groups[name][1]]

    def datasets(self, name: str) -> list[tuple[str, Any]]:
        """``(weight name, h5py.Dataset)`` of the layer's weights, in the file's order."""
        return list(zip(*self._groups[name]))

    def arrays(self, name: str, dtypes: list[str] | None = None) -> list[Any]:
        """The layer's arrays, each checked (:func:`kzoo.weights_guard.read_checked`) against the
        dtype of the variable it loads into: ``dtypes``, else float32 (keras.applications')."""
        from kzoo import weights_guard as guard

        names, datasets = self._groups[name]
        dtypes = dtypes or ["float32"] * len(datasets)
        arrays = []
        for weight, dataset, dtype in zip(names, datasets, dtypes):
            path = f"{name}/{weight}"
            target = guard.check_dtype(dataset, {dtype}, file=self.path, path=path)
            arrays.append(guard.read_checked(dataset, target, file=self.path, path=path))
        return arrays


def _load_legacy_h5_by_name(model: Any, path: Path) -> None:
    """Loads a Keras 2 weights-only HDF5 file (keras.applications' format) by layer name.

    Keras 3 reads these files by layer order; kzoo's models name their layers as
    keras.applications does, so matching by name is both exact and independent of the order
    in which a builder creates layers. Strict: every layer with weights must be in the file
    and every layer in the file must exist, with the same shapes and float dtypes (checked
    from metadata), and finite values (every layer is read and checked before any is set).
    """
    from kzoo import weights_guard as guard

    with LegacyH5Weights(path, model=model) as stored:
        layers = {layer.name: layer for layer in model.layers if layer.weights}
        missing, extra = sorted(set(layers) - set(stored.names())), sorted(set(stored.names()) - set(layers))
        if missing or extra:
            raise WeightsError(
                f"weights file {path} does not fit model {model.name!r}: layers missing from the file "
                f"{missing[:5]}{'...' if len(missing) > 5 else ''}, layers the model lacks {extra[:5]}"
                f"{'...' if len(extra) > 5 else ''}. Was it saved from another architecture or with(out) the top?"
            )
        dtypes = {name: [guard.dtype_name(w.dtype) for w in layer.weights] for name, layer in layers.items()}
        for name, layer in layers.items():
            expected = [tuple(w.shape) for w in layer.weights]
            received = stored.shapes(name)
            if expected != received:
                raise WeightsError(
                    f"weights file {path}, layer {name!r}: expected weight shapes {expected}, received {received}."
                )
            for (weight, dataset), dtype in zip(stored.datasets(name), dtypes[name]):
                guard.check_dtype(dataset, {dtype}, file=path, path=f"{name}/{weight}")
        for name in layers:  # values: every layer read and checked, one at a time, before any is set
            stored.arrays(name, dtypes[name])
        for name, layer in layers.items():
            layer.set_weights(stored.arrays(name, dtypes[name]))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else ""
