"""The export parity matrix in CI: every format, run by its own runtime, for each kind of model.

Whether a converter takes a model, and how exactly its runtime reproduces it, depends on the
operations the model uses, not on how many times it repeats them. Each test builds its model;
the first model (smallest first) with a new export signature (its layer types with the
settings converters treat differently: groups, activations, recurrence direction) is exported
to every format and each file run by its runtime. A later model with the same signature (a
deeper ResNet, a wider VGG) is skipped, after checking that kzoo/export_support.json records
the same outcome for it as for the model that was exported. So is a model whose every entry
(layer type with those settings) was already exported in this run by models that every format
took, when the file records that every format takes it too: the converters lower layer by layer,
so a new combination of entries they have each lowered and matched adds little, and exporting
such models (ResNet50V2, the VGGs, the U-Net on VGG16, ...) cost CI three minutes. A
model with an entry not yet exported, or one the file records a format refusing, is exported.
``tests/scripts/export_matrix.py`` exports every model, skipping none, and writes that file;
``KZOO_FULL_EXPORT_MATRIX=1`` makes this test skip none too (about 15 minutes on 2 cores).
"""

import os

import pytest
from export_parity import build, check, export_signature, support

import kzoo
from kzoo import registry
from kzoo.export import FORMATS

# Smallest first (the card's parameter count), so each signature is exported by its cheapest model.
MODELS = sorted(kzoo.list_models(), key=lambda name: (registry.spec(name).num_params or 0, name))
_EXPORTED: dict[frozenset, str] = {}
# Entry -> the model that exported it to every format in this run.
_EVERY_FORMAT: dict[tuple, str] = {}
FULL = os.environ.get("KZOO_FULL_EXPORT_MATRIX") == "1"


@pytest.mark.parametrize("name", MODELS)
def test_every_format_runs_like_keras_or_is_recorded_as_unsupported(name, tmp_path):
    model = build(name)
    signature = export_signature(model)
    table = support()
    if signature in _EXPORTED and not FULL:
        representative = _EXPORTED[signature]
        same = {fmt: status == "ok" for fmt, status in table[name].items()}
        assert same == {fmt: status == "ok" for fmt, status in table[representative].items()}, (name, representative)
        pytest.skip(f"same export signature as {representative}, exported in this run")
    recorded_everywhere = all(table[name].get(fmt) == "ok" for fmt in FORMATS)
    if signature <= _EVERY_FORMAT.keys() and recorded_everywhere and not FULL:
        exporters = sorted({_EVERY_FORMAT[entry] for entry in signature})
        pytest.skip(f"every layer entry exported to every format in this run, by {exporters}")
    _EXPORTED.setdefault(signature, name)
    measured = check(name, tmp_path, recorded=table[name], model=model)
    if all(measured[fmt] == "ok" for fmt in FORMATS):
        for entry in signature:
            _EVERY_FORMAT.setdefault(entry, name)
