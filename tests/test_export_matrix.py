"""The export parity matrix in CI: every format, run by its own runtime, for each kind of model.

Whether a converter takes a model, and how exactly its runtime reproduces it, depends on the
operations the model uses, not on how many times it repeats them. Each test builds its model;
the first model (smallest first) with a new export signature (its layer types with the
settings converters treat differently: groups, activations, recurrence direction) is exported
to every format and each file run by its runtime. A later model with the same signature (a
deeper ResNet, a wider VGG) is skipped, after checking that kzoo/export_support.json records
the same outcome for it as for the model that was exported. ``tests/scripts/export_matrix.py``
exports every model, skipping none, and writes that file; ``KZOO_FULL_EXPORT_MATRIX=1`` makes
this test skip none too (about 15 minutes on 2 cores).
"""

import os

import pytest
from export_parity import build, check, export_signature, support

import kzoo
from kzoo import registry

# Smallest first (the card's parameter count), so each signature is exported by its cheapest model.
MODELS = sorted(kzoo.list_models(), key=lambda name: (registry.spec(name).num_params or 0, name))
_EXPORTED: dict[frozenset, str] = {}
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
    _EXPORTED.setdefault(signature, name)
    check(name, tmp_path, recorded=table[name], model=model)
