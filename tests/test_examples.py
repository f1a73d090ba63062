"""The examples gallery: every example keeps the contract and runs in quick mode, through `kzoo examples`."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import kzoo
from kzoo import errors
from kzoo import examples as gallery
from kzoo import weights as weights_lib

from helpers import CliResult, run_cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = gallery.discover(REPO / "examples")


def test_the_gallery_is_discovered_from_the_files():
    names = [example.name for example in EXAMPLES]
    assert names == sorted(path.stem for path in (REPO / "examples").glob("*.py"))
    assert {"mlp_playground_2d", "adversarial_examples", "dann_mnist_to_uci_digits", "train_lenet5_mnist"} <= set(names)
    assert [example.name for example in gallery.discover()] == names  # the checkout's folder, from kzoo itself


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_example_keeps_the_contract(example):
    assert example.missing_fields() == [], f"{example.path.name}: header lacks {example.missing_fields()}"
    source = example.path.read_text()
    assert len(source.splitlines()) < gallery.MAX_LINES
    assert "--quick" in source or "example_parser(" in source
    assert "--output-dir" in source or "example_parser(" in source
    assert example.figure.endswith(".png") and example.tags
    if example.shared_data:  # the header says which shared data it needs, and where it is looked for
        assert "shared data directory" in example.fields["Data"]


def test_header_parsing_and_errors(tmp_path):
    (tmp_path / "toy.py").write_text('"""\nTitle: T\nDescription: D\nTags: a, b\nShared-data: mnist\n\n## Body\n"""\n')
    toy = gallery.get_example("toy.py", tmp_path)
    assert (toy.title, toy.description, toy.tags, toy.shared_data) == ("T", "D", ["a", "b"], ["mnist"])
    assert toy.body == "## Body" and toy.missing_fields() == ["Model", "Data", "Runtime", "Figure"]
    with pytest.raises(errors.InvalidArgumentError, match=r"expected one of \['toy'\], received 'tyo'.*'toy'"):
        gallery.get_example("tyo", tmp_path)


def test_cli_lists_shows_and_rejects(tmp_path, capfd, quiet_examples):
    def kzoo_cli(*args: str) -> CliResult:
        return run_cli(capfd, *args)

    listing = kzoo_cli("examples")
    assert listing.returncode == 0, listing.stderr
    for example in EXAMPLES:
        assert f"{example.name}  " in listing.stdout and example.description in listing.stdout
    tagged = kzoo_cli("examples", "--tag", "mnist")
    assert tagged.returncode == 0 and "train_lenet5_mnist" in tagged.stdout and "double_descent" not in tagged.stdout
    shown = kzoo_cli("examples", "show", "double_descent")
    assert shown.returncode == 0 and shown.stdout == (REPO / "examples" / "double_descent.py").read_text()
    passed_on = kzoo_cli("examples", "run", "double_descent", "--output-dir", str(tmp_path), "--", "--bogus")
    assert passed_on.returncode == 2 and "unrecognized arguments: --bogus" in passed_on.stderr  # the script's argparse
    unknown = kzoo_cli("examples", "run", "adversarial")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "received 'adversarial'" in unknown.stderr and "did you mean 'adversarial_examples'" in unknown.stderr


# Examples whose quick mode a dedicated test already runs, with checks of its own (and of the
# figure); running them twice would cost CI minutes for nothing.
RUN_ELSEWHERE = {
    "train_lenet5_mnist": "tests/test_lenet5.py",
    "train_unet_isbi": "tests/test_unet.py",
    "transfer_lenet5_uci_digits": "tests/test_finetune.py",
    "saliency_gradcam_occlusion": "tests/test_classifiers.py",
    "finetune_resnet_folder": "tests/test_classifiers.py",
}


def test_examples_run_elsewhere_exist():
    assert set(RUN_ELSEWHERE) <= {example.name for example in EXAMPLES}
    for name, test_file in RUN_ELSEWHERE.items():
        assert f"{name}.py" in (REPO / test_file).read_text(), f"{test_file} no longer runs {name}"


def reproduced_by(name: str):
    """The first weights record (default first) whose recipe is example ``name`` and has a quick range."""
    records = [
        record
        for record in weights_lib.all_records()
        if record.recipe.startswith(f"examples/{name}.py") and record.reproduce.get("quick_range")
    ]
    return min(records, key=lambda record: (not record.default, record.key), default=None)


def run_quick_mode(example, tmp_path, capfd, in_process=None) -> None:
    """Runs ``kzoo examples run NAME --quick`` and checks the figure it says it wrote; for a recipe of
    shipped weights with a quick range, ``kzoo reproduce NAME:TAG --quick`` instead (the same run with
    the record's flags, and its figure checked).

    The command runs in this process, and with ``in_process`` (the ``examples_in_process``
    fixture) the example too: a TensorFlow start per example would cost CI minutes."""
    if example.name in RUN_ELSEWHERE:
        pytest.skip(f"its quick mode runs in {RUN_ELSEWHERE[example.name]}")
    missing = [name for name in example.shared_data if not kzoo.data.has_data(name)]
    if missing:
        pytest.skip(f"shared dataset(s) {missing} not found under {kzoo.data.data_dir()} (set KZOO_DATA_DIR)")
    figure = tmp_path / "out" / example.figure
    record = reproduced_by(example.name)
    if record is not None:  # a recipe of shipped weights: its quick figure must also fall in the manifest's range
        result = run_cli(capfd, "reproduce", record.key, "--quick", "--output-dir", str(tmp_path / "out"))
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        assert f"{record.key}: {record.reproduce['metric']} " in result.stdout and "): reproduced" in result.stdout
        assert figure.is_file()
    else:
        result = run_cli(capfd, "examples", "run", example.name, "--quick", "--output-dir", str(tmp_path / "out"))
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        assert f"figure(s) written to {tmp_path / 'out'}\n" in result.stdout  # the command says where they went
        assert f"\n  {figure}\n" in result.stdout
    if in_process is not None:
        assert in_process.ran == [example.name]
    with Image.open(figure) as image:
        assert image.format == "PNG" and min(image.size) >= 100


# Half of the quick runs are here, the other half in test_examples_quick.py: the CI runs one
# test file per worker, and all of them in one file made it the longest by far.
@pytest.mark.parametrize("example", EXAMPLES[0::2], ids=lambda example: example.name)
def test_example_runs_in_quick_mode_and_writes_its_figure(
    example, tmp_path, capfd, quiet_examples, examples_in_process
):
    run_quick_mode(example, tmp_path, capfd, examples_in_process)
