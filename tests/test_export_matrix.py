"""The export parity matrix in CI: every format, run by its own runtime, for each kind of model.

Whether a converter takes a model, and how exactly its runtime reproduces it, depends on the
operations the model uses, not on how many times it repeats them. A model's *export signature*
is its layer types with the settings converters treat differently (groups, activations,
recurrence direction, padding); ``tests/export_signatures.json`` records each model's.
CI exports to every format, and runs each file in its runtime, for:

- every model kzoo/export_support.json records a format refusing (the refusal is checked again);
- a greedy set cover of the other models' layer entries (``export_parity.export_cover``): a few
  models (16 of the 55 today) whose entries together are every entry of the models every
  format takes.

Every other model is built, its signature checked against the recorded one, and skipped: the
support file must record that every format takes it, and each of its entries is exported in
this run by a model of the cover, whose own outcome is checked against the file. The
converters lower layer by layer, so a new combination of entries they have each lowered and
matched adds little. Before the cover, each model with one new entry was exported, smallest
first: 25 models, about 11 minutes of one CI worker.

``tests/scripts/export_matrix.py`` exports every model, skipping none, and writes the support
file and the signatures; ``KZOO_FULL_EXPORT_MATRIX=1`` makes this test skip none too (about
15 minutes on 2 cores).
"""

import os

import pytest
from export_parity import build, check, export_cover, export_signature, stored_signatures, support, takes_every_format

import kzoo
from kzoo import registry
from kzoo.export import FORMATS

MODELS = sorted(kzoo.list_models(), key=lambda name: (registry.spec(name).num_params or 0, name))
SIGNATURES = stored_signatures()
TABLE = support()
TAKES_ALL = takes_every_format(TABLE)
COVER = export_cover(SIGNATURES, TABLE)
FULL = os.environ.get("KZOO_FULL_EXPORT_MATRIX") == "1"
# Each layer entry -> the first model of the cover, among those every format takes, that holds it.
EXPORTER = {}
for _name in COVER.keys() & TAKES_ALL:
    for _entry in SIGNATURES[_name]:
        EXPORTER.setdefault(_entry, _name)
RECORD = "rerun python tests/scripts/export_matrix.py --signatures"


def test_every_model_has_a_recorded_signature_and_the_cover_covers_them():
    assert sorted(SIGNATURES) == sorted(MODELS), RECORD
    for name in MODELS:
        if name not in COVER:  # skipped below: every format must take it, and the cover must hold each entry
            assert name in TAKES_ALL and SIGNATURES[name] <= EXPORTER.keys(), name


@pytest.mark.parametrize("name", MODELS)
def test_every_format_runs_like_keras_or_is_recorded_as_unsupported(name, tmp_path):
    model = build(name)
    signature = export_signature(model)
    assert signature == SIGNATURES.get(name), f"{name}: its export signature changed; {RECORD}"
    if name not in COVER and not FULL:
        exporters = sorted({EXPORTER[entry] for entry in signature})
        pytest.skip(f"every format takes it (kzoo/export_support.json); its layer entries are exported by {exporters}")
    measured = check(name, tmp_path, recorded=TABLE[name], model=model)
    assert set(measured) == set(FORMATS)
