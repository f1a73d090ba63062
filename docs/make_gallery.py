"""Builds the README's examples gallery: a thumbnail of each example's main figure and a table.

Run from the repository root after running the examples (their figures under ``--runs``):

    python docs/make_gallery.py --runs runs/examples            # figures from `kzoo examples run NAME`
    python docs/make_gallery.py --runs runs/examples --run quick  # run the examples that have no figure yet

Writes ``docs/gallery/NAME.png`` (240 px wide, palette PNG) and replaces the README between
the ``<!-- gallery:start -->`` and ``<!-- gallery:end -->`` markers. Examples without a
figure keep their previous thumbnail, or get none (the table says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from kzoo import examples as gallery

REPO = Path(__file__).resolve().parent.parent
START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"


def thumbnail(figure: Path, target: Path, width: int) -> None:
    with Image.open(figure) as image:
        image = image.convert("RGB")
        height = max(1, round(image.height * width / image.width))
        small = image.resize((width, height), Image.Resampling.LANCZOS).quantize(colors=128)
    target.parent.mkdir(parents=True, exist_ok=True)
    small.save(target, optimize=True)


def table(examples: list[gallery.Example]) -> str:
    rows = ["| | example | what it shows | data | default run |", "| --- | --- | --- | --- | --- |"]
    for example in examples:
        image = REPO / "docs" / "gallery" / f"{example.name}.png"
        cell = f'<img src="docs/gallery/{example.name}.png" width="240">' if image.is_file() else "(no figure yet)"
        link = f"[{example.title}](examples/{example.path.name})<br>`kzoo examples run {example.name}`"
        data = example.fields.get("Data", "").replace("|", "/")
        rows.append(f"| {cell} | {link} | {example.description} | {data} | {example.fields.get('Runtime', '')} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/examples", help="RUNS/NAME/ holds each example's figures")
    parser.add_argument("--run", choices=["quick", "full"], default=None, help="run the examples lacking a figure")
    parser.add_argument("--width", type=int, default=240)
    args = parser.parse_args()
    examples = gallery.discover(REPO / "examples")
    for example in examples:
        figure = Path(args.runs) / example.name / example.figure
        if not figure.is_file() and args.run:
            code, _, _ = gallery.run_example(example.name, quick=args.run == "quick", output_dir=figure.parent)
            if code:
                print(f"{example.name}: exit code {code}, no thumbnail", file=sys.stderr)
        if figure.is_file():
            target = REPO / "docs" / "gallery" / f"{example.name}.png"
            thumbnail(figure, target, args.width)
            print(f"{target.relative_to(REPO)}: {target.stat().st_size / 1024:.0f} KB from {figure}")
        else:
            print(f"{example.name}: no figure at {figure}", file=sys.stderr)
    readme = REPO / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"expected the markers {START} and {END} in {readme}")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{table(examples)}\n{END}{after}")
    print(f"wrote the gallery table of {len(examples)} examples into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
