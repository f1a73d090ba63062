"""Hostile weights files (#21, hardening): every rule of kzoo.weights_guard on real files.

Each file is crafted with h5py (or zipfile) the way an attacker or a broken tool would write it,
in the Keras 3 ``.weights.h5`` layout (``model.save_weights``), in keras.applications' legacy
layout (``layer_names``/``weight_names`` attributes) and inside ``.keras`` archives. Each refusal
must be a WeightsError that names the file and the rule, come within 2 s, and leave the model
as it was; a seeded fuzz run checks that nothing else can happen.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import kzoo
from kzoo import errors, weights_guard
from kzoo import weights as weights_lib

from helpers import tiny_net

KERNEL, BIAS, HEAD = "layers/conv2d/vars/0", "layers/conv2d/vars/1", "layers/dense/vars/0"
LEGACY_KERNEL = "stem_conv/stem_conv/kernel"  # layer group / weight name as Keras' legacy writer names it
WITHIN = 2.0  # seconds a refusal may take


def refused(call: Callable[[], object], *rules: str, file: object = None) -> errors.WeightsError:
    """Runs ``call``; asserts a WeightsError within 2 s whose message holds ``file`` and ``rules``."""
    start = time.perf_counter()
    with pytest.raises(errors.WeightsError) as caught:
        call()
    elapsed = time.perf_counter() - start
    message = str(caught.value)
    assert elapsed < WITHIN, f"refused after {elapsed:.2f} s: {message}"
    if file is not None:
        assert str(file) in message, message
    for rule in rules:
        assert rule in message, message
    return caught.value


def _tiny(seed: int = 7) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return tiny_net(num_classes=4)  # stem (3, 3, 3, 3) + (3,), head (3, 4) + (4,): four distinct shapes


@pytest.fixture
def target():
    """The model files are loaded into, and a copy of its weights to show a refusal left it alone."""
    model = _tiny(seed=11)
    return model, [w.copy() for w in model.get_weights()]


def _untouched(target) -> None:
    model, before = target
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def keras_file(tmp_path):
    source = _tiny()
    path = tmp_path / "tiny.weights.h5"
    source.save_weights(path)
    return path, source


def _write_legacy(model: keras.Model, path: Path) -> Path:
    """keras.applications' layout, with dense attribute storage so that long name lists fit."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w", libver="latest") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    return path


@pytest.fixture
def legacy_file(tmp_path):
    source = _tiny()
    return _write_legacy(source, tmp_path / "tiny_legacy.h5"), source


def _replace(path: Path, name: str, **dataset) -> None:
    """Replaces dataset ``name`` of the file with ``h5py.create_dataset(name, **dataset)``."""
    with h5py.File(path, "r+") as handle:
        del handle[name]
        handle.create_dataset(name, **dataset)


def _set(path: Path, name: str, value) -> None:
    with h5py.File(path, "r+") as handle:
        del handle[name]
        handle[name] = value


def _load(model, path, **kwargs):
    return lambda: weights_lib.load_weights_file(model, path, **kwargs)


# ----------------------------------------------------------------------------------------
# Valid files still load exactly (float16 and float64 too: the documented decision)
# ----------------------------------------------------------------------------------------


def test_valid_files_load_exactly_in_both_layouts(keras_file, legacy_file):
    for path, source in (keras_file, legacy_file):
        model = _tiny(seed=1)
        weights_lib.load_weights_file(model, path)
        for a, b in zip(model.get_weights(), source.get_weights()):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float16", "float64", ">f4"])
def test_float16_float64_and_big_endian_load_as_the_values_the_file_holds(keras_file, legacy_file, dtype):
    for path, name in ((keras_file[0], KERNEL), (legacy_file[0], LEGACY_KERNEL)):
        with h5py.File(path, "r") as handle:
            stored = handle[name][()].astype(dtype)
        _set(path, name, stored)
        model = _tiny(seed=1)
        weights_lib.load_weights_file(model, path)
        np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], stored.astype("float32"))


# ----------------------------------------------------------------------------------------
# Values: NaN, Inf, and float64 beyond float32's range
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("layout", ["keras", "legacy"])
def test_non_finite_values_are_refused(keras_file, legacy_file, target, layout, bad):
    path, name = (keras_file[0], KERNEL) if layout == "keras" else (legacy_file[0], LEGACY_KERNEL)
    with h5py.File(path, "r+") as handle:
        values = handle[name][()]
        values.reshape(-1)[17] = bad
        handle[name][...] = values
    refused(_load(target[0], path), "finite values", name, "flat index 17", file=path)
    _untouched(target)


def test_float64_beyond_float32_range_is_refused(keras_file, target):
    path, _ = keras_file
    _set(path, HEAD, np.full((3, 4), 1e39, "float64"))
    refused(_load(target[0], path), "float32's range", HEAD, file=path)
    _untouched(target)


def test_a_nan_in_the_last_dataset_leaves_the_model_untouched(keras_file, target):
    path, _ = keras_file
    with h5py.File(path, "r+") as handle:
        handle["layers/dense/vars/1"][0] = np.nan
    refused(_load(target[0], path), "finite values", "layers/dense/vars/1", file=path)
    _untouched(target)


# ----------------------------------------------------------------------------------------
# Dtypes Keras would cast silently
# ----------------------------------------------------------------------------------------

SHAPE = (3, 3, 3, 3)


def _opaque_bfloat16():
    import ml_dtypes

    return np.ones(SHAPE, ml_dtypes.bfloat16).view("V2")


WRONG_DTYPES = {
    "int32": lambda: np.arange(81, dtype="int32").reshape(SHAPE),
    "uint64": lambda: np.full(SHAPE, 2**64 - 1, "uint64"),  # 1.8e19
    "bool": lambda: np.ones(SHAPE, bool),
    "enum": lambda: np.ones(SHAPE, h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1")),
    "complex": lambda: np.ones(SHAPE, "complex64"),
    "strings": lambda: np.full(SHAPE, b"0.125"),
    "compound": lambda: np.zeros(SHAPE, [("a", "f4"), ("b", "f4")]),
}


@pytest.mark.parametrize("kind", sorted(WRONG_DTYPES))
@pytest.mark.parametrize("layout", ["keras", "legacy"])
def test_wrong_dtypes_are_refused_not_cast(keras_file, legacy_file, target, layout, kind):
    path, name = (keras_file[0], KERNEL) if layout == "keras" else (legacy_file[0], LEGACY_KERNEL)
    _replace(path, name, data=WRONG_DTYPES[kind]())
    refused(_load(target[0], path), "float16, float32 or float64", "float32", name, file=path)
    _untouched(target)


def test_bfloat16_is_taken_only_by_bfloat16_variables(keras_file, target, tmp_path):
    path, _ = keras_file
    with h5py.File(path, "r+") as handle:
        del handle[KERNEL]
        handle.create_dataset(KERNEL, data=_opaque_bfloat16()).attrs["dtype"] = "bfloat16"
    refused(_load(target[0], path), "bfloat16", KERNEL, file=path)
    _untouched(target)
    # A bfloat16 model: Keras writes opaque 2-byte values marked dtype="bfloat16"; they load.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, dtype="bfloat16")])
    own = tmp_path / "bf16.weights.h5"
    model.save_weights(own)
    copy = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, dtype="bfloat16")])
    weights_lib.load_weights_file(copy, own)
    for a, b in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------------------
# A weights file never reads another file: external storage, links, virtual datasets
# ----------------------------------------------------------------------------------------


def _external(target_file: str):
    def mutate(path: Path, name: str) -> None:
        _replace(path, name, shape=SHAPE, dtype="float32", external=[(target_file, 0, 81 * 4)])

    return mutate


def _external_link(path: Path, name: str) -> None:
    other = path.with_name("other.weights.h5")
    _tiny(seed=3).save_weights(other)
    with h5py.File(path, "r+") as handle:
        del handle[name]
        handle[name] = h5py.ExternalLink(str(other), "/" + KERNEL)


def _soft_link_out(path: Path, name: str) -> None:
    """A soft link whose path leaves the file through an external link."""
    other = path.with_name("other.weights.h5")
    _tiny(seed=3).save_weights(other)
    with h5py.File(path, "r+") as handle:
        handle["elsewhere"] = h5py.ExternalLink(str(other), "/")
        del handle[name]
        handle[name] = h5py.SoftLink("/elsewhere/" + KERNEL)


def _soft_link_in(path: Path, name: str) -> None:
    with h5py.File(path, "r+") as handle:
        handle.move(name, "stash")
        handle[name] = h5py.SoftLink("/stash")


def _virtual(source_file: str):
    def mutate(path: Path, name: str) -> None:
        layout = h5py.VirtualLayout(shape=SHAPE, dtype="float32")
        layout[...] = h5py.VirtualSource(source_file, "/" + KERNEL, shape=SHAPE)
        with h5py.File(path, "r+") as handle:
            del handle[name]
            handle.create_virtual_dataset(name, layout, fillvalue=0)

    return mutate


def _unstored(path: Path, name: str) -> None:
    _replace(path, name, shape=SHAPE, dtype="float32")


def _missing_chunks(path: Path, name: str) -> None:
    _replace(path, name, shape=SHAPE, dtype="float32", chunks=(1, 3, 3, 3))
    with h5py.File(path, "r+") as handle:
        handle[name][0] = 1.0


def _plugin_filter(path: Path, name: str) -> None:
    _replace(path, name, data=np.ones(SHAPE, "float32"), scaleoffset=3)  # lossy; HDF5 filter id 6


def _alias(path: Path, name: str) -> None:
    with h5py.File(path, "r+") as handle:
        handle["alias"] = handle[name]  # a second hard link to the same dataset


def _sibling(path: Path, relative: str) -> str:
    sibling = path.parent / relative
    sibling.parent.mkdir(parents=True, exist_ok=True)
    sibling.write_bytes(np.arange(81, dtype="float32").tobytes())
    return relative


MUTATIONS = {
    "external storage /etc/passwd": (_external("/etc/passwd"), "external raw storage"),
    "external storage /proc/self/environ": (_external("/proc/self/environ"), "external raw storage"),
    "external storage /dev/urandom": (_external("/dev/urandom"), "external raw storage"),
    "external storage ../": (None, "external raw storage"),  # built in the test: a path beside tmp_path
    "external storage, another weights file": (None, "external raw storage"),
    "external link": (_external_link, "an external link"),
    "soft link leaving the file": (_soft_link_out, "hard links only"),
    "soft link inside the file": (_soft_link_in, "a soft link"),
    "virtual dataset, missing file": (_virtual("missing.h5"), "a virtual dataset"),
    "virtual dataset, another file": (None, "a virtual dataset"),
    "no stored data": (_unstored, "no stored data"),
    "missing chunks": (_missing_chunks, "chunks stored"),
    "plugin filter": (_plugin_filter, "compression filter"),
    "hard-link alias": (_alias, "each object linked once"),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
@pytest.mark.parametrize("layout", ["keras", "legacy"])
def test_nothing_outside_the_file_is_read(keras_file, legacy_file, target, layout, case, tmp_path):
    path, name = (keras_file[0], KERNEL) if layout == "keras" else (legacy_file[0], LEGACY_KERNEL)
    mutate, rule = MUTATIONS[case]
    if case == "external storage ../":
        mutate = _external(_sibling(tmp_path / "inner", "../raw.bin"))
    if case in ("virtual dataset, another file", "external storage, another weights file"):
        other = tmp_path / "other.weights.h5"
        _tiny(seed=3).save_weights(other)
        mutate = _virtual(str(other)) if case.startswith("virtual") else _external(str(other))
    mutate(path, name)
    refused(_load(target[0], path), rule, file=path)
    _untouched(target)


# ----------------------------------------------------------------------------------------
# Counts, nesting and declared sizes: refused from metadata, fast and without allocating
# ----------------------------------------------------------------------------------------


def test_deep_nesting_is_refused_without_walking_it(keras_file, target):
    path, _ = keras_file
    with h5py.File(path, "r+") as handle:
        handle.create_group("layers/deep/" + "/".join(["g"] * 5000))
    refused(_load(target[0], path), f"nested at most {weights_guard.MAX_DEPTH} deep", file=path)
    _untouched(target)


def test_more_entries_than_the_model_can_have_are_refused_before_listing(keras_file, target):
    path, _ = keras_file
    with h5py.File(path, "r+") as handle:
        wide = handle.create_group("layers/wide")
        for i in range(3000):
            wide.create_group(str(i))
    refused(_load(target[0], path), "entries in all", "a group of 3000 members", file=path)
    _untouched(target)


def test_more_datasets_than_variables_are_refused(keras_file, target):
    path, _ = keras_file
    with h5py.File(path, "r+") as handle:
        handle["layers/dense/vars/2"] = np.zeros(4, "float32")
    refused(_load(target[0], path), "expected 4 variables, received more than 4", file=path)


def test_a_dataset_at_a_path_keras_does_not_read_is_refused(keras_file, target):
    path, _ = keras_file
    with h5py.File(path, "r+") as handle:
        handle.move("layers/dense", "layers/dense_renamed")  # Keras would load the stem, then fail
    refused(_load(target[0], path), "at a path no variable of the model has", file=path)
    _untouched(target)


@pytest.mark.parametrize("layout", ["keras", "legacy"])
def test_huge_declared_shape_is_refused_before_reading(keras_file, legacy_file, target, layout):
    path, name = (keras_file[0], KERNEL) if layout == "keras" else (legacy_file[0], LEGACY_KERNEL)
    _replace(path, name, shape=(250_000_000,), dtype="float32", chunks=(1024,), compression="gzip")
    with h5py.File(path, "r+") as handle:
        handle[name][:1024] = 1.0  # one chunk stored: 1 GB declared, a few bytes on disk
    tracemalloc.start()
    try:
        where = name if layout == "keras" else "layer 'stem_conv'"
        error = refused(_load(target[0], path), where, "(250000000,)", file=path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "shape" in str(error)
    model_bytes = weights_guard.Limits.for_model(target[0]).variable_bytes
    assert peak < 2 * model_bytes + (8 << 20), f"peak {peak:,} bytes"
    _untouched(target)


def test_oversized_optimizer_variables_are_refused(keras_file, target):
    path, _ = keras_file
    with h5py.File(path, "r+") as handle:
        handle.create_dataset("optimizer/vars/0", shape=(10_000_000,), dtype="float32", chunks=(1024,))[:1024] = 0
    refused(_load(target[0], path), "optimizer variable no larger", "optimizer/vars/0", file=path)


def test_a_file_larger_than_the_model_allows_is_refused(keras_file, target):
    path, _ = keras_file
    limits = weights_guard.Limits.for_model(target[0])
    with open(path, "ab") as handle:
        handle.truncate(limits.file_bytes + 1)  # sparse: no disk used
    refused(_load(target[0], path), f"at most {limits.file_bytes:,} bytes", file=path)


def _legacy_with(path: Path, model: keras.Model, *, layer_names=None, weight_names=None) -> Path:
    _write_legacy(model, path)
    with h5py.File(path, "r+") as handle:
        if layer_names is not None:
            del handle.attrs["layer_names"]
            handle.attrs["layer_names"] = np.array(layer_names, dtype="S")
        if weight_names is not None:
            del handle["stem_conv"].attrs["weight_names"]
            handle["stem_conv"].attrs["weight_names"] = np.array(weight_names, dtype="S")
    return path


def test_legacy_layer_names_repeated_50000_times_are_refused(tmp_path, target):
    path = _legacy_with(tmp_path / "repeated.h5", _tiny(), layer_names=[b"stem_conv"] * 50_000)
    refused(_load(target[0], path), "'layer_names'", "at most", "50000 names", file=path)


def test_legacy_weight_listed_200000_times_is_refused(tmp_path, target):
    path = _legacy_with(tmp_path / "listed.h5", _tiny(), weight_names=[b"stem_conv/kernel"] * 200_000)
    refused(_load(target[0], path), "'weight_names'", "layer 'stem_conv'", "200000 names", file=path)


def test_legacy_names_listed_twice_are_refused(tmp_path, target):
    names = [b"image", b"stem_conv", b"stem_conv", b"pool", b"predictions"]
    path = _legacy_with(tmp_path / "twice.h5", _tiny(), layer_names=names)
    refused(_load(target[0], path), "each name once", "stem_conv", file=path)
    path = _legacy_with(tmp_path / "twice_w.h5", _tiny(), weight_names=[b"stem_conv/kernel", b"stem_conv/kernel"])
    refused(_load(target[0], path), "each name once", file=path)


def test_legacy_absolute_weight_names_are_refused(tmp_path, target):
    path = _legacy_with(tmp_path / "absolute.h5", _tiny(), weight_names=[b"/predictions/predictions/bias", b"x"])
    refused(_load(target[0], path), "a relative path", file=path)


def test_legacy_deep_weight_names_are_refused(tmp_path, target):
    deep = "/".join(["g"] * 5000)
    path = _legacy_with(tmp_path / "deep.h5", _tiny(), weight_names=[deep.encode(), b"stem_conv/bias"])
    refused(_load(target[0], path), "non-empty names of at most", file=path)


# ----------------------------------------------------------------------------------------
# Path-like pretrained= values
# ----------------------------------------------------------------------------------------


def _fifo(tmp_path: Path) -> str:
    path = tmp_path / "pipe.weights.h5"
    os.mkfifo(path)
    return str(path)


def _link_to_mem(tmp_path: Path) -> str:
    link = tmp_path / "mem.weights.h5"
    link.symlink_to("/proc/self/mem")
    return str(link)


def _empty(tmp_path: Path) -> str:
    (tmp_path / "empty.weights.h5").touch()
    return str(tmp_path / "empty.weights.h5")


def _keras_directory(tmp_path: Path) -> str:
    (tmp_path / "run.keras").mkdir()
    return str(tmp_path / "run.keras")


def _unreadable(tmp_path: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "locked.weights.h5"
    _tiny().save_weights(path)
    path.chmod(0)
    return str(path)


PATHS = {
    "/proc/self/mem": (lambda tmp: "/proc/self/mem", "size 0"),
    "symlink to /proc/self/mem": (_link_to_mem, "size 0"),
    "/proc/self/environ": (lambda tmp: "/proc/self/environ", "size 0"),
    "/dev/urandom": (lambda tmp: "/dev/urandom", "a character device"),
    "/dev/null": (lambda tmp: "/dev/null", "a character device"),
    "directory": (lambda tmp: str(tmp), "a directory"),
    "directory named .keras": (_keras_directory, "a directory"),
    "named pipe": (_fifo, "a named pipe"),
    "empty file": (_empty, "a non-empty regular file"),
    "name too long": (lambda tmp: str(tmp / ("x" * 5000 + ".weights.h5")), "File name too long"),
    "component too long": (lambda tmp: "x" * 300 + ".weights.h5", "File name too long"),
    "unknown ~user": (lambda tmp: "~kzoo_no_such_user_21/x.weights.h5", "~user"),
    "NUL byte": (lambda tmp: "a\0b.weights.h5", "NUL"),
    "unreadable": (_unreadable, "Permission denied"),
    "missing": (lambda tmp: str(tmp / "absent.weights.h5"), "an existing file"),
}


@pytest.mark.parametrize("case", sorted(PATHS))
def test_every_path_like_value_gets_a_kzoo_error(tmp_path, case):
    make, rule = PATHS[case]
    value = make(tmp_path)
    refused(lambda: kzoo.get("lenet5", pretrained=value), rule)
    refused(lambda: weights_lib.load_weights_file(_tiny(), value), rule)


# ----------------------------------------------------------------------------------------
# .keras archives
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet_archive(tmp_path_factory):
    keras.utils.set_random_seed(3)
    source = kzoo.get("lenet5", num_classes=5)
    path = tmp_path_factory.mktemp("archive") / "lenet.keras"
    source.save(path)
    return path, source.get_weights()


def _rewrite(
    source: Path,
    target: Path,
    *,
    weights: Callable[[Path], None] | None = None,
    config: Callable[[dict], dict] | None = None,
    extra: tuple = (),
    drop: tuple = (),
    compress: int = zipfile.ZIP_STORED,
) -> Path:
    """A copy of a .keras archive with its weights file or config changed, members added or dropped
    (stored uncompressed, as Keras writes them, unless ``compress`` says otherwise)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in drop:
                continue
            data = old.read(info.filename)
            if info.filename == "model.weights.h5" and weights is not None:
                inner = target.with_name(target.name + ".inner.h5")
                inner.write_bytes(data)
                weights(inner)
                data = inner.read_bytes()
                inner.unlink()
            if info.filename == "config.json" and config is not None:
                data = json.dumps(config(json.loads(data))).encode()
            new.writestr(info.filename, data, compress_type=compress)
        for name, data in extra:
            new.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return target


def _get(path, **kwargs):
    return lambda: kzoo.get("lenet5", pretrained=path, num_classes=5, **kwargs)


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_a_rewritten_archive_still_loads_exactly(lenet_archive, tmp_path, compress):
    path, weights = lenet_archive
    copy = _rewrite(path, tmp_path / "copy.keras", compress=compress)
    for a, b in zip(kzoo.get("lenet5", pretrained=copy, num_classes=5).get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    nan = _rewrite(path, tmp_path / "nan.keras", weights=_nan_kernel, compress=compress)
    refused(_get(nan), "finite values", "model.weights.h5", file=nan)


def test_an_archive_that_expands_past_the_bound_is_refused_before_extraction(lenet_archive, tmp_path, monkeypatch):
    path, _ = lenet_archive
    zeros = bytes(10 << 20)  # eight 10 MiB members of zeros: 80 MiB declared, a few KB on disk
    bomb = _rewrite(path, tmp_path / "bomb.keras", extra=[(f"assets/blob{i}", zeros) for i in range(8)])
    assert bomb.stat().st_size < 1 << 20
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("a member was read"))
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras opened the archive"))
    refused(_get(bomb), "uncompressed in all", "11 members declaring", "before extracting", file=bomb)


def test_an_archive_of_thousands_of_members_is_refused_from_its_end_record(lenet_archive, tmp_path):
    path, _ = lenet_archive
    many = _rewrite(path, tmp_path / "many.keras", extra=[(f"assets/{i}", b"") for i in range(5000)])
    refused(_get(many), f"at most {weights_guard.MAX_ARCHIVE_MEMBERS} archive members", "5003", file=many)


def test_member_names_leaving_the_archive_are_refused(lenet_archive, tmp_path):
    path, _ = lenet_archive
    escape = _rewrite(path, tmp_path / "escape.keras", extra=[("assets/../../evil.txt", b"x")])
    refused(_get(escape), "relative names", "evil.txt", file=escape)


def test_an_optimizer_at_the_top_level_is_refused(lenet_archive, tmp_path):
    path, _ = lenet_archive
    adam = keras.saving.serialize_keras_object(keras.optimizers.Adam())
    archive = _rewrite(path, tmp_path / "adam.keras", config=lambda config: adam)
    refused(_get(archive), "a keras.Model at the top level", "'Adam'", file=archive)


def test_a_layer_at_the_top_level_is_refused(lenet_archive, tmp_path):
    path, _ = lenet_archive
    dense = keras.saving.serialize_keras_object(keras.layers.Dense(3))
    archive = _rewrite(path, tmp_path / "dense.keras", config=lambda config: dense)
    refused(_get(archive), "a keras.Model at the top level", "'Dense'", file=archive)


def _billion(layer_name: str, key: str) -> Callable[[dict], dict]:
    def change(config: dict) -> dict:
        for layer in config["config"]["layers"]:
            if layer["config"].get("name") == layer_name:
                layer["config"][key] = 10**9
        return config

    return change


@pytest.mark.parametrize(
    "layer, key, rule",
    [
        ("predictions", "units", "a model declaring"),  # 84 x 1e9 floats: refused from the stateless build
        ("c1_conv", "filters", "could not be loaded safely"),  # the next layer's build config no longer fits
    ],
)
def test_a_config_declaring_a_billion_units_is_refused_before_it_allocates(lenet_archive, tmp_path, layer, key, rule):
    path, _ = lenet_archive
    archive = _rewrite(path, tmp_path / "billion.keras", config=_billion(layer, key))
    tracemalloc.start()
    try:
        refused(_get(archive), rule, file=archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"peak {peak:,} bytes"


def _nan_kernel(inner: Path) -> None:
    with h5py.File(inner, "r+") as handle:
        handle[KERNEL][0, 0, 0, 0] = np.nan


def _int_kernel(inner: Path) -> None:
    with h5py.File(inner, "r+") as handle:
        shape = handle[KERNEL].shape
        del handle[KERNEL]
        handle[KERNEL] = np.ones(shape, "int64")


def _external_kernel(inner: Path) -> None:
    with h5py.File(inner, "r+") as handle:
        shape = handle[KERNEL].shape
        del handle[KERNEL]
        handle.create_dataset(KERNEL, shape=shape, dtype="float32", external=[("/etc/passwd", 0, 4 * math.prod(shape))])


@pytest.mark.parametrize(
    "mutate, rule",
    [(_nan_kernel, "finite values"), (_int_kernel, "float16, float32 or float64"), (_external_kernel, "external")],
    ids=["nan", "int64", "external storage"],
)
def test_the_archive_weights_pass_every_hdf5_rule(lenet_archive, tmp_path, mutate, rule):
    path, _ = lenet_archive
    archive = _rewrite(path, tmp_path / "inner.keras", weights=mutate)
    refused(_get(archive), rule, "model.weights.h5", KERNEL, file=archive)


def test_an_archive_without_weights_or_not_a_zip_is_refused(lenet_archive, tmp_path):
    path, _ = lenet_archive
    archive = _rewrite(path, tmp_path / "noweights.keras", drop=("model.weights.h5",))
    refused(_get(archive), "with model.weights.h5", file=archive)
    text = tmp_path / "text.keras"
    text.write_text("not a zip at all")
    refused(_get(text), "a zip archive", file=text)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # the cast being refused
def test_float64_archive_values_beyond_float32_are_refused_after_transfer(tmp_path):
    """A float64 model's finite values that would be Inf in the float32 model they go to."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            pytest.skip("JAX without x64 stores float64 variables as float32 (Inf already in the file)")
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        wide = kzoo.get("lenet5", num_classes=5)
    finally:
        keras.config.set_dtype_policy(policy)
    layer = wide.get_layer("c5_conv")
    assert layer.kernel.dtype == "float64"
    layer.set_weights([np.full(layer.kernel.shape, 1e300), *layer.get_weights()[1:]])
    archive = tmp_path / "float64.keras"
    wide.save(archive)
    refused(_get(archive), "finite values", "c5_conv", "after loading", file=archive)


# ----------------------------------------------------------------------------------------
# Seeded fuzz: a load either succeeds with the file's own finite floats, or is a WeightsError
# ----------------------------------------------------------------------------------------


def _mutations(rng: np.random.Generator, path: Path, layout: str) -> str:
    """Applies one random mutation to the file; returns its name."""
    names = [KERNEL, BIAS, HEAD, "layers/dense/vars/1"]
    if layout == "legacy":
        names = [LEGACY_KERNEL, "stem_conv/stem_conv/bias", "predictions/predictions/kernel"]
    name = names[rng.integers(len(names))]
    kind = rng.integers(7)
    if kind == 0:  # bytes of the file flipped
        data = bytearray(path.read_bytes())
        for _ in range(rng.integers(1, 6)):
            data[rng.integers(len(data))] = rng.integers(256)
        path.write_bytes(bytes(data))
        return "bytes"
    if kind == 1:  # truncated
        data = path.read_bytes()
        path.write_bytes(data[: rng.integers(8, len(data))])
        return "truncated"
    with h5py.File(path, "r+") as handle:
        values = handle[name][()]
        if kind == 2:  # a special value somewhere
            values.reshape(-1)[rng.integers(values.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e30, -0.0])
            handle[name][...] = values
            return "value"
        del handle[name]
        if kind == 3:  # another dtype
            dtype = ["int8", "int64", "uint64", "bool", "float16", "float64", "complex64", "S8", ">f4"][rng.integers(9)]
            with np.errstate(over="ignore", invalid="ignore"):
                handle[name] = (values * 1e6).astype(dtype) if dtype != "S8" else values.astype("S8")
            return f"dtype {dtype}"
        if kind == 4:  # another shape
            shape = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 4)))
            handle[name] = rng.standard_normal(shape).astype("float32")
            return f"shape {shape}"
        if kind == 5:  # a link or storage trick
            trick = rng.integers(4)
            if trick == 0:
                handle[name] = h5py.SoftLink("/" + name + "_elsewhere")
            elif trick == 1:
                handle[name] = h5py.ExternalLink("/etc/passwd", "/x")
            elif trick == 2:
                handle.create_dataset(name, shape=values.shape, dtype="f4", external=[("/dev/zero", 0, values.nbytes)])
            else:
                handle.create_dataset(name, shape=values.shape, dtype="f4")
            return f"trick {trick}"
        # float64 values, sometimes beyond float32
        scale = [1.0, 1e38, 1e39, 1e300][rng.integers(4)]
        handle[name] = values.astype("float64") * scale
        return f"float64 x{scale:g}"


def _file_values(path: Path, layout: str) -> dict[tuple, np.ndarray]:
    """The file's arrays where the model's variables are stored, by shape (the tiny model's four
    shapes are distinct), as float32."""
    names = [KERNEL, BIAS, HEAD, "layers/dense/vars/1"]
    if layout == "legacy":
        names = [f"{layer}/{layer}/{weight}" for layer in ("stem_conv", "predictions") for weight in ("kernel", "bias")]
    with h5py.File(path, "r") as handle:
        arrays = [handle[name][()] for name in names]
    return {a.shape: a.astype("float32") for a in arrays}


def test_seeded_fuzz_never_gives_another_exception_or_non_finite_weights(keras_file, legacy_file, tmp_path):
    rng = np.random.default_rng(21)
    model = _tiny(seed=5)
    sentinel = [np.full_like(w, 0.25) for w in model.get_weights()]
    outcomes: dict[str, int] = {}
    start = time.perf_counter()
    for index in range(300):
        layout = "keras" if index % 3 else "legacy"
        base = keras_file[0] if layout == "keras" else legacy_file[0]
        path = tmp_path / (f"fuzz{index}.weights.h5" if layout == "keras" else f"fuzz{index}.h5")
        shutil.copyfile(base, path)
        mutation = _mutations(rng, path, layout)
        model.set_weights(sentinel)
        try:
            weights_lib.load_weights_file(model, path)
        except errors.WeightsError:
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            for a, b in zip(model.get_weights(), sentinel):  # refused files leave the model alone
                np.testing.assert_array_equal(a, b, err_msg=f"{mutation} of {layout} file {index}")
        except Exception as error:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{mutation} of {layout} file {index}: {type(error).__name__}: {error}")
        else:
            outcomes["loaded"] = outcomes.get("loaded", 0) + 1
            stored = _file_values(path, layout)
            for weight in model.get_weights():
                assert np.isfinite(weight).all(), f"{mutation} of {layout} file {index}"
                np.testing.assert_array_equal(weight, stored[weight.shape], err_msg=f"{mutation} of file {index}")
        path.unlink()
    assert outcomes.get("refused", 0) > 50 and outcomes.get("loaded", 0) > 20, outcomes
    assert time.perf_counter() - start < 60
