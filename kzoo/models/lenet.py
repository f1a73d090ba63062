"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998).

Layer by layer, as in the paper: C1 (6 5x5 convolutions), S2 (2x2 subsampling),
C3 (16 5x5 convolutions), S4 (2x2 subsampling), C5 (120 5x5 convolutions), F6 (84
units) and the output layer. Two deliberate, documented departures:

- C3 connects every S2 map to every C3 map (the paper's sparse connection table was a
  1998 compute saving); that gives 61,706 parameters instead of the paper's ~60,000.
- The output is a dense layer giving logits (trained with cross-entropy) instead of the
  paper's Euclidean RBF units.

The paper fed 28x28 MNIST digits centred in a 32x32 field. C1 here uses ``"same"``
padding on 28x28 inputs, which is exactly a valid convolution over the image
zero-padded to 32x32, so MNIST goes in as it comes.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received
from kzoo.models._vision import check_vision_args, classifier, global_pooling
from kzoo.registry import ModelSpec, register_model

PAPER = (
    "LeCun, Bottou, Bengio & Haffner 1998, Gradient-based learning applied to document recognition, Proc. IEEE 86(11)"
)

# (stage name, layer kind, filters or units, kernel size, padding)
LENET5 = (
    ("c1", "conv", 6, 5, "same"),
    ("s2", "pool", None, 2, None),
    ("c3", "conv", 16, 5, "valid"),
    ("s4", "pool", None, 2, None),
    ("c5", "conv", 120, 5, "valid"),
)
LENET5_HEAD = (("f6", 84),)


def _min_input_size(config: tuple) -> int:
    """Smallest square input for which every stage of ``config`` still has >= 1 pixel."""
    size = 1
    for _, kind, _, kernel, padding in reversed(config):
        if kind == "pool":
            size *= kernel
        elif padding == "valid":
            size += kernel - 1
    return size


def _build_lenet(
    *,
    config: tuple,
    head: tuple,
    input_shape: tuple[int, int, int] | None,
    num_classes: int,
    include_top: bool,
    pooling: str | None,
    classifier_activation: Any,
    name: str,
    activation: str,
    subsampling: str,
    dropout: float,
) -> keras.Model:
    input_shape = check_vision_args(
        model=name,
        input_shape=input_shape,
        default_input_shape=(28, 28, 1),
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        min_size=_min_input_size(config),
    )
    if subsampling not in ("avg", "max"):
        raise InvalidArgumentError(expected_received(f"{name}: subsampling", "'avg' or 'max'", subsampling))
    if not 0.0 <= dropout < 1.0:
        raise InvalidArgumentError(expected_received(f"{name}: dropout", "a rate in [0, 1)", dropout))
    pool_layer = keras.layers.AveragePooling2D if subsampling == "avg" else keras.layers.MaxPooling2D

    # Layers
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for stage, kind, filters, kernel, padding in config:
        if kind == "conv":
            x = keras.layers.Conv2D(filters, kernel, padding=padding, name=f"{stage}_conv")(x)
            x = keras.layers.Activation(activation, name=f"{stage}_act")(x)
        else:
            x = pool_layer(kernel, name=f"{stage}_pool")(x)

    # Head
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for stage, units in head:
            x = keras.layers.Dense(units, name=f"{stage}_dense")(x)
            x = keras.layers.Activation(activation, name=f"{stage}_act")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"{stage}_dropout")(x)
        x = classifier(x, num_classes=num_classes, classifier_activation=classifier_activation)
    else:
        x = global_pooling(x, pooling)
    return keras.Model(inputs, x, name=name)


def lenet5(
    *,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 10,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: Any = None,
    name: str = "lenet5",
    activation: str = "tanh",
    subsampling: str = "avg",
    dropout: float = 0.0,
) -> keras.Model:
    """LeNet-5, the convolutional network of LeCun et al. 1998.

    Args:
        input_shape: ``(height, width, channels)``, at least 28x28; default ``(28, 28, 1)``.
        num_classes: Number of output logits.
        include_top: Keep F6 and the classifier; ``False`` ends at C5's feature map.
        pooling: With ``include_top=False``: ``None`` (C5 feature map), ``"avg"`` or ``"max"``.
        classifier_activation: ``None`` for logits (default) or e.g. ``"softmax"``.
        name: Model name.
        activation: Activation after C1, C3, C5 and F6; the paper used (scaled) ``"tanh"``.
        subsampling: ``"avg"`` (the paper's S2/S4 averaging) or ``"max"``.
        dropout: Dropout rate after F6 (not in the paper).

    Returns:
        A functional ``keras.Model`` with stable layer names (``c1_conv`` ... ``predictions``).

    Example:
        >>> import kzoo
        >>> model = kzoo.get("lenet5", pretrained=True)
        >>> model.count_params()
        61706

    Reference: LeCun et al. 1998, Gradient-based learning applied to document recognition.
    """
    return _build_lenet(
        config=LENET5,
        head=LENET5_HEAD,
        input_shape=input_shape,
        num_classes=num_classes,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        name=name,
        activation=activation,
        subsampling=subsampling,
        dropout=dropout,
    )


# Facts of each variant's default configuration, shown by kzoo.info without building the
# model (tests/test_registry.py checks them against the built model).
CARD_FACTS = {
    "lenet5": {"num_params": 61_706, "input_shape": (28, 28, 1)},
}


register_model(
    ModelSpec(
        name="lenet5",
        **CARD_FACTS["lenet5"],
        builder=lenet5,
        family="lenet",
        task="image-classification",
        paper=PAPER,
        description="LeNet-5: C1-S2-C3-S4-C5-F6 convolutional network for 28x28 digits (61,706 parameters).",
        test_kwargs={"num_classes": 3},
        head_layers=("predictions",),
        stem_layer="c1_conv",
        stages=("c1", "s2", "c3", "s4", "c5", "f6"),
        example=(
            "import kzoo\n"
            "model = kzoo.get('lenet5', pretrained=True)          # MNIST digits, logits\n"
            "x_test, y_test = kzoo.data.load_mnist('test')       # needs ../shared/data or KZOO_DATA_DIR\n"
            "logits = model.predict(x_test[..., None] / 255.0)"
        ),
    )
)
