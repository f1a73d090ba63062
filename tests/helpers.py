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
