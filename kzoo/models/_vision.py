"""The keyword-only signature every vision builder shares, and its checks.

Vision builders take ``input_shape``, ``num_classes``, ``include_top``, ``pooling``,
``classifier_activation`` and ``name`` (plus family arguments). This module validates
them once, with kzoo's error messages, and builds the pieces every family shares:
the input and the classification head.
"""

from __future__ import annotations

from typing import Any

import keras

from kzoo.errors import InvalidArgumentError, expected_received

POOLINGS = (None, "avg", "max")


def check_vision_args(
    *,
    model: str,
    input_shape: Any,
    default_input_shape: tuple[int, int, int],
    num_classes: Any,
    include_top: Any,
    pooling: Any,
    classifier_activation: Any,
    min_size: int = 1,
) -> tuple[int, int, int]:
    """Validates the shared vision arguments and returns the input shape to build with.

    Raises:
        InvalidArgumentError: an argument has the wrong type or value; the message says
            what was expected, what was received and how to fix it.
    """
    if input_shape is None:
        input_shape = default_input_shape
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)
    ):
        raise InvalidArgumentError(
            expected_received(
                f"{model}: input_shape",
                "a tuple (height, width, channels) of positive ints, channels last",
                input_shape,
                f"For example input_shape={tuple(default_input_shape)}.",
            )
        )
    height, width, _ = input_shape
    if height < min_size or width < min_size:
        raise InvalidArgumentError(
            expected_received(
                f"{model}: input_shape",
                f"height and width of at least {min_size} pixels",
                tuple(input_shape),
                f"Resize or pad your images to at least {min_size}x{min_size}.",
            )
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise InvalidArgumentError(
            expected_received(f"{model}: num_classes", "a positive int", num_classes, "For example num_classes=10.")
        )
    if not isinstance(include_top, bool):
        raise InvalidArgumentError(expected_received(f"{model}: include_top", "True or False", include_top))
    if pooling not in POOLINGS:
        raise InvalidArgumentError(expected_received(f"{model}: pooling", "None, 'avg' or 'max'", pooling))
    if classifier_activation is not None:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError):
            raise InvalidArgumentError(
                expected_received(
                    f"{model}: classifier_activation",
                    "None (logits), 'softmax', 'sigmoid' or another Keras activation",
                    classifier_activation,
                )
            ) from None
    return tuple(input_shape)


def global_pooling(x: Any, pooling: str | None, name: str = "pool") -> Any:
    """Applies the ``pooling`` option to a feature map (``None`` keeps the map)."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=f"{name}_avg")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name=f"{name}_max")(x)
    return x


def classifier(x: Any, *, num_classes: int, classifier_activation: Any, name: str = "predictions") -> Any:
    """The final dense layer. It computes in float32 so outputs stay float32 under mixed precision."""
    return keras.layers.Dense(num_classes, activation=classifier_activation, dtype="float32", name=name)(x)


def check_image_shape(model: str, input_shape: Any, default: tuple[int, int, int], multiple: int = 1) -> tuple:
    """Validates an ``(height, width, channels)`` shape whose sides are multiples of ``multiple``."""
    # The shape checks every vision builder shares; the classifier arguments are neutral here.
    input_shape = check_vision_args(
        model=model,
        input_shape=input_shape,
        default_input_shape=default,
        num_classes=1,
        include_top=True,
        pooling=None,
        classifier_activation=None,
    )
    if input_shape[0] % multiple or input_shape[1] % multiple:
        nearest = max(multiple, round(input_shape[0] / multiple) * multiple)
        raise InvalidArgumentError(
            expected_received(
                f"{model}: input_shape",
                f"height and width divisible by {multiple} (each stride-2 stage halves them)",
                tuple(input_shape),
                f"Resize or pad your images, e.g. to {nearest}x{nearest}.",
            )
        )
    return tuple(input_shape)
