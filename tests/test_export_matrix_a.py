"""The export parity matrix, first half of the registry: every format, run by its own runtime."""

import pytest
from export_parity import check, support

import kzoo

MODELS = kzoo.list_models()[: len(kzoo.list_models()) // 2]


@pytest.mark.parametrize("name", MODELS)
def test_every_format_runs_like_keras_or_is_recorded_as_unsupported(name, tmp_path):
    check(name, tmp_path, recorded=support()[name])
