"""Exports every registered model (its tiny test configuration) to every format and runs each file.

    python tests/scripts/export_matrix.py [NAME ...] [--write]
    python tests/scripts/export_matrix.py --signatures

Runs ``tests/export_parity.check`` for each model: ``kzoo.export`` to every format, each file
run in its own runtime and compared with Keras. Prints what it measured; ``--write`` records
it in ``kzoo/export_support.json`` (which ``kzoo info`` shows and the tests check) and in the
README's export table. Both forms record each model's export signature in
``tests/export_signatures.json`` (``--signatures`` only builds the models, in about a minute),
from which tests/test_export_matrix.py chooses the models CI exports.
"""

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

import keras  # noqa: E402
from export_parity import (  # noqa: E402
    SIGNATURES_FILE,
    TABLE_END,
    TABLE_START,
    build,
    check,
    export_signature,
    render_table,
    signatures_json,
    stored_signatures,
)

import kzoo  # noqa: E402
from kzoo.export import SUPPORT_FILE  # noqa: E402


def measure(names):
    table = {}
    with tempfile.TemporaryDirectory() as directory:
        for name in names:
            started = time.perf_counter()
            folder = Path(directory) / name
            folder.mkdir()
            table[name] = check(name, folder)
            print(f"{name} ({time.perf_counter() - started:.1f} s): {table[name]}", flush=True)
    return table


def write_signatures(names):
    """Builds each model and records its export signature (the other models' stay as recorded)."""
    signatures = stored_signatures() if SIGNATURES_FILE.exists() else {}
    for name in names:
        signatures[name] = export_signature(build(name))
        keras.backend.clear_session()
    signatures = {name: signatures[name] for name in signatures if name in kzoo.list_models()}
    SIGNATURES_FILE.write_text(signatures_json(signatures))
    print(f"wrote {SIGNATURES_FILE} ({len(signatures)} models)")


def main(argv):
    names = [a for a in argv if not a.startswith("--")] or kzoo.list_models()
    if "--signatures" in argv:
        write_signatures(names)
        return
    write = "--write" in argv
    table = measure(names)
    if write:
        previous = json.loads(SUPPORT_FILE.read_text()) if SUPPORT_FILE.exists() else {}
        previous.update(table)
        SUPPORT_FILE.write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")
        readme = TESTS.parent / "README.md"
        text = readme.read_text()
        block = f"{TABLE_START}\n{render_table(previous)}\n{TABLE_END}"
        text = re.sub(re.escape(TABLE_START) + ".*?" + re.escape(TABLE_END), lambda _: block, text, flags=re.S)
        readme.write_text(text)
        print(f"wrote {SUPPORT_FILE} and the README's export table")
        write_signatures(names)


if __name__ == "__main__":
    main(sys.argv[1:])
