"""The other half of the examples' quick runs (see tests/test_examples.py), in a file of its own."""

from __future__ import annotations

import pytest
from test_examples import EXAMPLES, run_quick_mode


@pytest.mark.parametrize("example", EXAMPLES[1::2], ids=lambda example: example.name)
def test_example_runs_in_quick_mode_and_writes_its_figure(
    example, tmp_path, capfd, quiet_examples, examples_in_process
):
    run_quick_mode(example, tmp_path, capfd, examples_in_process)
