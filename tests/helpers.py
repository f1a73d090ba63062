"""Small models with kzoo's shared vision signature, for registry and weights tests; the CLI in-process."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from kzoo import registry
from kzoo.models._vision import check_vision_args, classifier


def tiny_net(
    *,
    input_shape=None,
    num_classes=4,
    include_top=True,
    pooling=None,
    classifier_activation=None,
    name="tiny_net",
    width=3,
):
    """A small vision model with the shared signature, for registry tests."""
    input_shape = check_vision_args(
        model=name,
        input_shape=input_shape,
        default_input_shape=(8, 8, 3),
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
    )
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(width, 3, name="stem_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if include_top:
        x = classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def tiny_spec(name="tiny_net", task="image-classification"):
    return registry.ModelSpec(
        name=name,
        builder=tiny_net,
        family="tiny",
        task=task,
        paper="none",
        stem_layer="stem_conv",
        test_kwargs={"num_classes": 2},
    )


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(capfd, *args: str) -> CliResult:
    """``kzoo ARGS`` in this process: ``kzoo.cli.main`` with the output captured at the file
    descriptors, so what an example's subprocess prints is captured too. A TensorFlow start per
    call (seconds of CPU each) is what this saves; tests/test_cli.py runs the console command
    itself in a subprocess once."""
    from kzoo import cli

    capfd.readouterr()  # what was printed before is not this call's
    try:
        code = cli.main(list(args))
    except SystemExit as stop:  # argparse's usage errors exit 2
        code = stop.code if isinstance(stop.code, int) else 1
    out, err = capfd.readouterr()
    return CliResult(code, out, err)


class ExamplesInProcess:
    """What ``kzoo.examples.run_example`` calls instead of ``subprocess.call`` while the
    ``examples_in_process`` fixture (tests/conftest.py) is active: the example script runs in
    this interpreter, as ``python SCRIPT ARGS`` would run it (``__main__``, ``sys.argv``, its
    folder first on ``sys.path``, the environment it was given), and its exit code is returned.

    Why: a subprocess starts TensorFlow, Keras and kzoo again (4-5 s of CPU each), and the CI
    runs about 25 examples. tests/test_unet.py still runs its example through the real
    subprocess, so run_example's own path stays tested."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def call(self, command: list[str], env: dict | None = None) -> int:
        import os
        import runpy
        import sys
        import traceback
        from pathlib import Path

        script, arguments = command[1], command[2:]
        saved = (sys.argv, list(sys.path), dict(os.environ), keras.config.dtype_policy().name)
        sys.argv, sys.path[:0] = [script, *arguments], [str(Path(script).parent)]
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        self.ran.append(Path(script).stem)
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as stop:  # argparse errors, sys.exit(N)
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except Exception:  # what the subprocess would print before exiting 1
            traceback.print_exc()
            code = 1
        finally:
            sys.argv, sys.path[:] = saved[0], saved[1]
            os.environ.clear()
            os.environ.update(saved[2])
            keras.config.set_dtype_policy(saved[3])
            keras.backend.clear_session()
            if "matplotlib.pyplot" in sys.modules:
                sys.modules["matplotlib.pyplot"].close("all")
        sys.stdout.flush()
        sys.stderr.flush()
        return code


def run_example(capfd, script: str, *arguments: str) -> CliResult:
    """``python examples/SCRIPT ARGS``, run in this process by :class:`ExamplesInProcess`."""
    import sys
    from pathlib import Path

    capfd.readouterr()
    path = Path(__file__).resolve().parent.parent / "examples" / script
    code = ExamplesInProcess().call([sys.executable, str(path), *arguments])
    out, err = capfd.readouterr()
    return CliResult(code, out, err)
