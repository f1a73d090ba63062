"""User data as tf.data pipelines, and (re-exported from :mod:`kzoo.datasets`) the shared datasets.

User data (:func:`image_folder`, :func:`arrays`, :func:`text_file`, :func:`tfds`) comes
back as :class:`Datasets`: batched ``tf.data`` pipelines resized and preprocessed for the
model they are built for (raw pixels for a model that preprocesses them itself, else the
preprocessing its weights declare), ready for :func:`kzoo.finetune`. The readers of the
shared datasets (``kzoo.data.load_mnist`` ...) live in :mod:`kzoo.datasets`.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from kzoo import datasets as datasets_lib
from kzoo.datasets import (  # noqa: F401  (re-exported: kzoo.data.load_mnist etc. keep working)
    has_data,
    load_conll2003,
    load_isbi2012,
    load_mnist,
    load_sst2,
    load_text_corpus,
    load_uci_digits,
    sst2_sentences,
    sst2_validation_split,
)
from kzoo.errors import DataNotFoundError, InvalidArgumentError, expected_received, import_tensorflow

logger = logging.getLogger("kzoo")
data_dir = datasets_lib.data_dir  # re-exported (tfds below has a data_dir parameter too)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF87a", b"GIF89a")
AUGMENTATIONS = ("flip", "crop", "rotation", "zoom", "noise", "grayscale")
ON_ERROR = ("raise", "skip")
_SHOWN_BAD_FILES = 10  # unreadable files named one by one in a message; the rest are counted


@dataclasses.dataclass
class Datasets:
    """Batched training and validation pipelines and what training needs to know about them.

    ``train`` and ``validation`` yield ``(inputs, labels)`` batches already resized and
    preprocessed for the model they were built for. Pass the whole object to
    :func:`kzoo.finetune`.

    Attributes:
        train: Shuffled, augmented (if asked), batched, prefetched training pipeline.
        validation: The held-out pipeline (no shuffling, no augmentation), or ``None``.
        class_names: Class names in label order.
        input_shape: Shape of one input example, or ``None`` for text.
        preprocessing: What maps raw pixels (0-255) to the model's input, if images.
        train_size: Number of training examples.
        validation_size: Number of validation examples.
        batch_size: Batch size of both pipelines.
        skipped_files: Paths of the files left out because they could not be decoded
            (:func:`image_folder` with ``on_error="skip"``); ``skipped`` is their count.
    """

    train: Any
    validation: Any
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...] | None = None
    preprocessing: Any = None
    train_size: int = 0
    validation_size: int = 0
    batch_size: int | None = None
    skipped_files: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def skipped(self) -> int:
        """Number of unreadable files left out (see ``skipped_files``)."""
        return len(self.skipped_files)

    def samples(self, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``count`` validation (else training) examples as NumPy arrays, in model-input form."""
        source = self.validation if self.validation is not None else self.train
        inputs, labels = [], []
        for x, y in source.unbatch().take(count):
            inputs.append(np.asarray(x))
            labels.append(np.asarray(y))
        return np.stack(inputs), np.stack(labels)


def _model_image_spec(
    model: Any, preprocessing: Any = None
) -> tuple[tuple[int, int] | None, int | None, Any, int | None]:
    """(image size, channels, preprocessing the pipeline applies, number of output classes).

    The preprocessing comes from the model's kzoo identity: none in the pipeline when the
    model applies it itself (its input is raw pixels), else the weights' preprocessing. A
    model kzoo did not build takes ``preprocessing`` as given, else the 0-1 default, with a
    warning that names the argument.
    """
    from kzoo import identity as identity_lib
    from kzoo import weights as weights_lib

    if preprocessing is not None and not isinstance(preprocessing, weights_lib.Preprocessing):
        raise InvalidArgumentError(
            expected_received("preprocessing", "a kzoo.weights.Preprocessing or None", type(preprocessing).__name__)
        )
    if model is None:
        return None, None, preprocessing, None
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise InvalidArgumentError(
            expected_received(
                "model for an image pipeline",
                "a model with one image input (batch, height, width, channels)",
                [tuple(t.shape) for t in model.inputs],
            )
        )
    _, height, width, channels = model.inputs[0].shape
    identity = identity_lib.of(model)
    if identity is not None and identity.preprocessing_in_model:
        if preprocessing is not None:
            raise InvalidArgumentError(
                expected_received(
                    "preprocessing",
                    f"None: {model.name} applies its own preprocessing to raw 0-255 pixels",
                    preprocessing.describe(),
                    "Leave preprocessing out, or rebuild the model with include_preprocessing=False.",
                )
            )
        preprocessing = None
    elif preprocessing is None and identity is not None and identity.preprocessing is not None:
        preprocessing = identity.preprocessing_object()
    elif preprocessing is None:
        preprocessing = weights_lib.Preprocessing(channel_order="grayscale" if channels == 1 else "rgb")
        logger.warning(
            "kzoo: %s was not built by kzoo.get, so its preprocessing is unknown; scaling pixels to [0, 1]. "
            "Pass preprocessing=kzoo.weights.Preprocessing(...) to say what it expects.",
            model.name,
        )
    outputs = model.outputs[0].shape[-1] if len(model.outputs) == 1 and len(model.outputs[0].shape) == 2 else None
    size = (height, width) if height and width else None
    return size, channels, preprocessing, outputs


def _identity(model: Any) -> Any:
    from kzoo import identity as identity_lib

    return identity_lib.of(model)


def _check_classes(found: int, model_outputs: int | None, names: Any, source: str) -> None:
    if model_outputs is not None and model_outputs != found:
        raise InvalidArgumentError(
            f"{source} has {found} classes ({list(names)[:10]}{'...' if found > 10 else ''}): expected {model_outputs} "
            f"to match the model's outputs, received {found}. Build the model for these classes, e.g. "
            f"kzoo.get(name, pretrained=True, num_classes={found})."
        )


def augmentation(augment: Any, *, seed: int | None = None) -> Any:
    """Builds a Keras augmentation pipeline from names or ``{name: strength}``.

    Names (the course's augmentations): ``"flip"`` (horizontal), ``"crop"`` (random crop of
    a 12.5% larger image; set up by the pipelines), ``"rotation"`` (fraction of a full turn,
    default 0.05), ``"zoom"`` (default 0.1), ``"noise"`` (Gaussian, std as a fraction of the 0-255
    range, default 0.03), ``"grayscale"`` (probability, default 0.2). Runs on raw 0-255 pixels before
    the weights' preprocessing; active only in training.

    Returns:
        A ``keras.Sequential``, or ``None`` when ``augment`` is empty.
    """
    import keras

    if not augment:
        return None
    if isinstance(augment, str):
        augment = [augment]
    options = dict(augment) if isinstance(augment, dict) else {name: None for name in augment}
    unknown = [name for name in options if name not in AUGMENTATIONS]
    if unknown:
        raise InvalidArgumentError(expected_received("augment", f"names from {AUGMENTATIONS}", unknown))
    layers = []
    if "flip" in options:
        layers.append(keras.layers.RandomFlip(options["flip"] or "horizontal", seed=seed))
    if "rotation" in options:
        layers.append(keras.layers.RandomRotation(options["rotation"] or 0.05, fill_mode="constant", seed=seed))
    if "zoom" in options:
        layers.append(keras.layers.RandomZoom(options["zoom"] or 0.1, fill_mode="constant", seed=seed))
    if "grayscale" in options:
        layers.append(keras.layers.RandomGrayscale(options["grayscale"] or 0.2, seed=seed))
    if "noise" in options:
        # GaussianNoise takes a std in [0, 1]: apply it on the 0-1 scale and come back to 0-255.
        layers += [
            keras.layers.Rescaling(1.0 / 255.0),
            keras.layers.GaussianNoise(options["noise"] or 0.03, seed=seed),
            keras.layers.Rescaling(255.0),
        ]
    return keras.Sequential(layers, name="augmentation") if layers else None


def _finish(
    dataset: Any,
    *,
    training: bool,
    batch_size: int,
    size: int,
    seed: int | None,
    augment: Any,
    crop: tuple[int, int] | None,
    preprocessing: Any,
    cache: bool,
) -> Any:
    """Cache -> shuffle -> batch -> augment -> crop -> preprocess -> prefetch, for raw 0-255 examples."""
    import keras

    tf = import_tensorflow("kzoo.data pipelines (tf.data)")

    autotune = tf.data.AUTOTUNE
    if cache:
        dataset = dataset.cache()  # decoded and resized once; augmentation stays random per epoch
    if training:
        dataset = dataset.shuffle(max(size, 1), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=False)
    pipeline = augmentation(augment, seed=seed) if training else None
    cropper = None
    if crop:
        # Random crops in training, the centre crop for evaluation.
        cropper = keras.layers.RandomCrop(*crop, seed=seed) if training else keras.layers.CenterCrop(*crop)
    if pipeline is not None:
        dataset = dataset.map(lambda x, y: (pipeline(x, training=True), y), num_parallel_calls=autotune)
    if cropper is not None:
        dataset = dataset.map(lambda x, y: (cropper(x, training=training), y), num_parallel_calls=autotune)
    if preprocessing is not None:
        dataset = dataset.map(lambda x, y: (preprocessing(x), y), num_parallel_calls=autotune)
    return dataset.prefetch(autotune)


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(expected_received(name, "a positive int", value))


def _check_split(validation_split: Any) -> None:
    if not isinstance(validation_split, (int, float)) or not 0.0 <= validation_split < 1.0:
        raise InvalidArgumentError(
            expected_received("validation_split", "a fraction in [0, 1)", validation_split, "For example 0.2.")
        )


def _index_image_folder(directory: str | os.PathLike) -> tuple[Path, tuple[str, ...], dict[str, list[Path]]]:
    """(root, class names, image files per class) of a folder, checked for its layout only."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise InvalidArgumentError(
            expected_received("image folder", "a directory of class-named subfolders of images", str(root))
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise InvalidArgumentError(
            f"image folder {root}: expected at least two class subfolders (one per class, e.g. cats/ and dogs/), "
            f"received {len(classes)} ({classes}). Put each class's images in its own subfolder."
        )
    files: dict[str, list[Path]] = {}
    for name in classes:
        images = sorted(p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InvalidArgumentError(
                f"image folder {root}: expected images ({', '.join(IMAGE_SUFFIXES)}) in class folder {name!r}, "
                "received none. Add images or remove the empty folder."
            )
        files[name] = images
    return root, tuple(classes), files


def _header_problem(head: bytes) -> str | None:
    """Why a file starting with ``head`` is no PNG/JPEG/BMP/GIF image, or ``None`` if it may be one."""
    if head.startswith(_IMAGE_SIGNATURES):
        return None
    return "an empty file" if not head else f"a file starting with {head[:8]!r}, no image signature"


def _decode_problem(tf: Any, data: bytes, channels: int) -> str | None:
    """Why TensorFlow cannot decode ``data`` as the pipeline will, or ``None`` if it can."""
    try:
        tf.io.decode_image(data, channels=channels, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        text = getattr(error, "message", None) or str(error)
        text = re.sub(r"\{\{.*?\}\}\s*", "", text)  # "{{function_node __wrapped__DecodeImage_device_...}}"
        text = re.sub(r"\s*\[Op:.*$", "", text, flags=re.DOTALL).strip()
        return text or type(error).__name__
    return None


def _unreadable_images(files: dict[str, list[Path]], channels: int | None) -> list[tuple[Path, str]]:
    """``(path, reason)`` of each file that cannot be read or does not look like an image; with
    ``channels``, also of each file that TensorFlow's decoder (the pipeline's) fails on. Files
    are read, never written."""
    tf = import_tensorflow("kzoo.data.image_folder (decoding images)") if channels is not None else None
    bad = []
    for path in (path for paths in files.values() for path in paths):
        try:
            data = path.read_bytes() if tf is not None else _read_head(path)
        except OSError as error:
            bad.append((path, f"cannot be read: {error.strerror or error}"))
            continue
        problem = _header_problem(data[:8])
        if problem is None and tf is not None:
            problem = _decode_problem(tf, data, channels)
        if problem is not None:
            bad.append((path, problem))
    return bad


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(8)


def _unreadable_message(root: Path, bad: list[tuple[Path, str]], total: int, *, can_skip: bool) -> str:
    shown = "; ".join(f"{path} ({reason})" for path, reason in bad[:_SHOWN_BAD_FILES])
    if len(bad) > _SHOWN_BAD_FILES:
        shown += f"; and {len(bad) - _SHOWN_BAD_FILES} more"
    fix = f"Remove or re-save {'it' if len(bad) == 1 else 'them'}"
    fix += ', or pass on_error="skip" to leave them out (counted in data.skipped).' if can_skip else "."
    return (
        f"image folder {root}: expected PNG, JPEG, BMP or GIF images that decode, received {len(bad)} of {total} "
        f"image files that do not: {shown}. {fix}"
    )


def scan_image_folder(directory: str | os.PathLike) -> tuple[tuple[str, ...], dict[str, list[Path]]]:
    """Checks a folder of class-named subfolders of images and returns (class names, files per class).

    The check is the folder's layout and the first bytes of each file (an image signature);
    :func:`image_folder` also decodes every file.

    Raises:
        InvalidArgumentError: the folder is missing, has fewer than two class folders, a
            class folder without images, or files that are not PNG/JPEG/BMP/GIF images (all
            of them named, up to ten, and counted).
    """
    root, classes, files = _index_image_folder(directory)
    bad = _unreadable_images(files, channels=None)
    if bad:
        total = sum(len(paths) for paths in files.values())
        raise InvalidArgumentError(_unreadable_message(root, bad, total, can_skip=False))
    return classes, files


def image_folder(
    directory: str | os.PathLike,
    *,
    model: Any = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    batch_size: int = 32,
    validation_split: float = 0.2,
    seed: int = 1337,
    augment: Any = None,
    cache: bool = True,
    preprocessing: Any = None,
    on_error: str = "raise",
) -> Datasets:
    """A folder of class-named subfolders of images as training and validation pipelines.

    PNG, JPEG, BMP and GIF files may be mixed, grayscale or colour: each is decoded to the
    model's channel count and resized to its input size. The split is by file, reproducible
    with ``seed``. Pixels go through the preprocessing of the model's weights.

    Every file is checked while the pipeline is built, so a truncated, empty or mislabelled
    file is named here rather than failing the first batch inside ``tf.data``: its first
    bytes must be an image signature, and it is decoded once with the pipeline's own decoder
    (``tf.io.decode_image``, same channels). The check reads each file once and never writes
    to the folder. It costs one extra decode per file: about 0.3 ms per small image (0.3 to
    0.7 s for 2,000 32x32 PNG/JPEG files on two busy CPU cores, about as long as the first
    epoch's own decoding), 5 to 9 ms per 512x512 photo.

    Args:
        directory: ``directory/<class name>/<image>``; at least two classes.
        model: The model to feed (from :func:`kzoo.get`): gives the size, channels,
            preprocessing and the number of classes to check against.
        image_size: ``(height, width)``; default the model's.
        channels: 1 or 3; default the model's.
        batch_size: Batch size of both pipelines.
        validation_split: Fraction of the files held out for validation (0 for none).
        seed: Seed of the split, the shuffling and the augmentation.
        augment: Augmentations for training, see :func:`augmentation`.
        cache: Keep decoded images in memory after the first epoch.
        preprocessing: For a model kzoo did not build: the
            :class:`kzoo.weights.Preprocessing` its input needs (a kzoo model knows its own).
        on_error: What to do with files that cannot be decoded: ``"raise"`` (default)
            raises naming them; ``"skip"`` leaves them out, logs a warning naming them, and
            lists them in the result's ``skipped_files`` (``skipped`` is their count).

    Returns:
        :class:`Datasets`.

    Raises:
        InvalidArgumentError: an argument is invalid; the folder is missing, has fewer than
            two class folders or a class folder without images; its class count does not
            match the model's outputs; files cannot be decoded (``on_error="raise"``, all
            of them counted and up to ten named with the decoder's reason); or, with
            ``on_error="skip"``, a class or a split is left without a readable image.

    Example:
        >>> import kzoo
        >>> model = kzoo.get("lenet5", pretrained=True, num_classes=2)  # doctest: +SKIP
        >>> data = kzoo.data.image_folder("photos/", model=model)  # doctest: +SKIP
    """
    import keras

    _check_positive("batch_size", batch_size)
    _check_split(validation_split)
    if not isinstance(on_error, str) or on_error not in ON_ERROR:
        raise InvalidArgumentError(
            expected_received(
                "on_error",
                "'raise' or 'skip'",
                on_error,
                "'raise' names the files that cannot be decoded; 'skip' leaves them out and counts them.",
            )
        )
    model_size, model_channels, preprocessing, model_outputs = _model_image_spec(model, preprocessing)
    image_size = tuple(image_size or model_size or (224, 224))
    channels = channels or model_channels or 3
    if channels not in (1, 3):
        raise InvalidArgumentError(expected_received("channels", "1 (grayscale) or 3 (RGB)", channels))
    if model_channels is not None and channels != model_channels:
        raise InvalidArgumentError(
            expected_received("channels", f"{model_channels} to match the model's input", channels)
        )
    root, class_names, files = _index_image_folder(directory)
    _check_classes(len(class_names), model_outputs, class_names, f"image folder {directory}")
    total = sum(len(paths) for paths in files.values())
    bad = _unreadable_images(files, channels)
    if bad and on_error == "raise":
        raise InvalidArgumentError(_unreadable_message(root, bad, total, can_skip=True))
    skipped = {_same_file(path) for path, _ in bad}
    if bad:
        for name, paths in files.items():
            left_out = sum(_same_file(path) in skipped for path in paths)
            if left_out == len(paths):
                raise InvalidArgumentError(
                    f"image folder {root}: expected at least one readable image in class folder {name!r}, received "
                    f"none ({left_out} unreadable skipped with on_error='skip'). Repair or add images of {name!r}."
                )
        logger.warning(
            "kzoo: image folder %s: skipped %d unreadable image file(s) of %d (on_error='skip'): %s",
            root,
            len(bad),
            total,
            "; ".join(f"{path} ({reason})" for path, reason in bad),
        )
    crop = None
    load_size = image_size
    if augment and "crop" in (augment if not isinstance(augment, str) else [augment]):
        crop = image_size
        load_size = (int(round(image_size[0] * 1.125)), int(round(image_size[1] * 1.125)))
        augment = (
            [a for a in augment if a != "crop"]
            if not isinstance(augment, dict)
            else {k: v for k, v in augment.items() if k != "crop"}
        )
    splits = keras.utils.image_dataset_from_directory(
        directory,
        labels="inferred",
        label_mode="int",
        class_names=list(class_names),
        color_mode="grayscale" if channels == 1 else "rgb",
        batch_size=None,
        image_size=load_size,
        shuffle=True,
        seed=seed,
        validation_split=validation_split or None,
        subset="both" if validation_split else None,
        verbose=False,
    )
    train, validation = splits if validation_split else (splits, None)
    common = {"batch_size": batch_size, "seed": seed, "crop": crop, "preprocessing": preprocessing, "cache": cache}

    def readable(split: Any, subset: str) -> tuple[Any, int]:
        """The split without the skipped files (their decoding fails and is dropped), and its size."""
        if not skipped:
            return split, len(split.file_paths)
        size = sum(_same_file(path) not in skipped for path in split.file_paths)
        if not size:
            raise InvalidArgumentError(
                f"image folder {root}: expected at least one readable image in the {subset} split, received none "
                f"(its {len(split.file_paths)} files were all skipped as unreadable). Repair the images, or change "
                "validation_split or seed."
            )
        return split.ignore_errors(), size

    train, train_size = readable(train, "training")
    validation, validation_size = readable(validation, "validation") if validation is not None else (None, 0)
    return Datasets(
        train=_finish(train, training=True, size=train_size, augment=augment, **common),
        validation=_finish(validation, training=False, size=validation_size, augment=None, **common)
        if validation is not None
        else None,
        class_names=class_names,
        input_shape=(*image_size, channels),
        preprocessing=preprocessing,
        train_size=train_size,
        validation_size=validation_size,
        batch_size=batch_size,
        skipped_files=tuple(str(path) for path, _ in bad),
    )


def _same_file(path: str | os.PathLike) -> str:
    """A key under which a path and the same path spelt another way (relative, ``..``) compare equal."""
    return os.path.normcase(os.path.abspath(os.path.expanduser(os.fspath(path))))


def arrays(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    model: Any = None,
    batch_size: int = 32,
    validation_split: float = 0.2,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 1337,
    augment: Any = None,
    class_names: Any = None,
    preprocessed: bool = False,
    preprocessing: Any = None,
) -> Datasets:
    """NumPy images and integer labels as training and validation pipelines.

    Args:
        images: ``(N, height, width, channels)`` or ``(N, height, width)``, raw 0-255 pixels
            unless ``preprocessed=True``; finite numbers (an object array only if every
            element is a number).
        labels: ``(N,)`` integers in ``[0, num_classes)``; the class count is the model's,
            else ``len(class_names)``, else the largest label (of both splits) plus one.
        model: The model to feed: gives the expected shape, preprocessing and class count.
        batch_size: Batch size.
        validation_split: Fraction held out (after a seeded shuffle) when ``validation`` is not given.
        validation: Explicit ``(images, labels)`` for validation.
        seed: Seed of the split, shuffling and augmentation.
        augment: Augmentations for training, see :func:`augmentation`.
        class_names: Names of the classes; default ``"0"``, ``"1"``, ...
        preprocessed: The images are already in model-input form; skip the preprocessing.
        preprocessing: For a model kzoo did not build: the
            :class:`kzoo.weights.Preprocessing` its input needs (a kzoo model knows its own).

    Returns:
        :class:`Datasets`.

    Raises:
        InvalidArgumentError: an argument is invalid; ``images`` (or the validation images)
            are empty, not numbers, hold NaN or infinity, or are not ``(N, height, width[,
            channels])`` of the model's input size; labels are not one integer per image in
            ``[0, num_classes)``; or the class count does not match the model's outputs.
    """
    tf = import_tensorflow("kzoo.data pipelines (tf.data)")

    _check_positive("batch_size", batch_size)
    _check_split(validation_split)
    images = _image_array(images, "images")
    labels = _label_array(labels, "labels", len(images))
    if not len(images):
        raise InvalidArgumentError(
            expected_received("images", "at least one image", f"shape {images.shape}", "Pass a non-empty array.")
        )
    if validation is None and validation_split and len(images) < 2:
        raise InvalidArgumentError(
            expected_received(
                "images",
                f"at least 2 images to hold a fraction out (validation_split={validation_split})",
                f"shape {images.shape}",
                "Pass more images, or validation_split=0.",
            )
        )
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise InvalidArgumentError(
                expected_received("validation", "a pair (images, labels)", type(validation).__name__)
            )
        validation_images = _image_array(validation[0], "validation images")
        if validation_images.shape[1:] != images.shape[1:]:
            raise InvalidArgumentError(
                expected_received(
                    "validation images",
                    f"shape (N, {', '.join(str(d) for d in images.shape[1:])}) like the training images",
                    f"shape {validation_images.shape}",
                )
            )
        validation = (validation_images, _label_array(validation[1], "validation labels", len(validation_images)))
    if preprocessed and model is not None and getattr(_identity(model), "preprocessing_in_model", False):
        raise InvalidArgumentError(
            expected_received(
                "preprocessed",
                f"False: {model.name} takes raw 0-255 pixels and preprocesses them itself",
                True,
                "Pass the raw images, or rebuild the model with include_preprocessing=False.",
            )
        )
    from kzoo import weights as weights_lib

    # Already preprocessed: any Preprocessing stands in (it is dropped below), so no warning.
    model_size, model_channels, preprocessing, model_outputs = _model_image_spec(
        model, weights_lib.Preprocessing() if preprocessed and _identity(model) is None else preprocessing
    )
    if preprocessed:
        preprocessing = None
    if model_size is not None and (tuple(images.shape[1:3]) != tuple(model_size) or images.shape[3] != model_channels):
        raise InvalidArgumentError(
            expected_received(
                "images",
                f"shape (N, {model_size[0]}, {model_size[1]}, {model_channels}) to match the model's input",
                f"shape {images.shape}",
                "Resize the images (e.g. keras.ops.image.resize), or build the model for them with "
                f"kzoo.get(name, input_shape={tuple(images.shape[1:])}).",
            )
        )
    every_label = labels if validation is None or not len(validation[1]) else np.concatenate([labels, validation[1]])
    num_classes = model_outputs or (len(class_names) if class_names is not None else int(every_label.max()) + 1)
    for what, values in (("labels", labels), ("validation labels", validation[1] if validation is not None else None)):
        if values is not None and len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise InvalidArgumentError(
                expected_received(
                    what,
                    f"integers in [0, {num_classes})",
                    f"values from {values.min()} to {values.max()}",
                    "Relabel your data or build the model with num_classes covering every label.",
                )
            )
    if class_names is None:
        class_names = tuple(str(i) for i in range(num_classes))
    _check_classes(len(class_names), model_outputs, class_names, "the arrays")
    if validation is None and validation_split:
        order = np.random.default_rng(seed).permutation(len(images))
        cut = len(images) - max(1, int(round(len(images) * validation_split)))
        validation = (images[order[cut:]], labels[order[cut:]])
        images, labels = images[order[:cut]], labels[order[:cut]]
    common = {"batch_size": batch_size, "seed": seed, "crop": None, "preprocessing": preprocessing, "cache": False}

    def dataset(x: np.ndarray, y: np.ndarray) -> Any:
        return tf.data.Dataset.from_tensor_slices((x.astype("float32"), y.astype("int64")))

    return Datasets(
        train=_finish(dataset(images, labels), training=True, size=len(images), augment=augment, **common),
        validation=_finish(dataset(*validation), training=False, size=len(validation[0]), augment=None, **common)
        if validation is not None
        else None,
        class_names=tuple(class_names),
        input_shape=tuple(images.shape[1:]),
        preprocessing=preprocessing,
        train_size=len(images),
        validation_size=len(validation[0]) if validation is not None else 0,
        batch_size=batch_size,
    )


def _image_array(images: Any, what: str) -> np.ndarray:
    """``images`` as a NumPy array of finite numbers, ``(N, height, width, channels)``."""
    try:
        array = np.asarray(images)
    except ValueError as error:  # ragged nesting
        raise InvalidArgumentError(
            expected_received(what, "an array (N, height, width[, channels])", "nested sequences of uneven sizes")
        ) from error
    if array.dtype.kind == "O":
        # NumPy would turn None into NaN: look at the elements themselves (object arrays are rare and small).
        flat = array.reshape(len(array), -1) if array.ndim else array.reshape(1, 1)
        where = next(((i, v) for i, row in enumerate(flat) for v in row if not _is_number(v)), None)
        if where is not None:
            raise InvalidArgumentError(
                expected_received(
                    what,
                    "numbers (uint8 or float pixels)",
                    f"an object array holding {type(where[1]).__name__} {where[1]!r} in image {where[0]}",
                    "Drop or repair those images, then pass np.asarray(images, dtype='float32').",
                )
            )
        array = array.astype(np.float32)
    elif array.dtype.kind not in "biuf":
        raise InvalidArgumentError(
            expected_received(what, "numbers (uint8 or float pixels)", f"an array of dtype {array.dtype}")
        )
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise InvalidArgumentError(
            expected_received(what, "an array (N, height, width[, channels])", f"shape {array.shape}")
        )
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            per_image = bad.reshape(len(array), -1).any(axis=1)
            first = int(np.argmax(per_image))
            value = array[first][bad[first]][0]
            raise InvalidArgumentError(
                expected_received(
                    what,
                    "finite pixel values",
                    f"{value} in image {first} ({int(bad.sum())} non-finite values in {int(per_image.sum())} images)",
                    "Drop or repair those images (e.g. np.nan_to_num) before building the pipeline.",
                )
            )
    return array


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.bool_))


def _label_array(labels: Any, what: str, count: int) -> np.ndarray:
    """``labels`` as a 1-D integer array of ``count`` labels."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != count or not np.issubdtype(labels.dtype, np.integer):
        raise InvalidArgumentError(
            expected_received(what, f"{count} integer labels, shape ({count},)", f"{labels.dtype} {labels.shape}")
        )
    return labels


def text_file(
    path: str | os.PathLike,
    *,
    text_column: str | int = 0,
    label_column: str | int = 1,
    delimiter: str | None = None,
    header: bool = True,
    validation_split: float = 0.1,
    validation_path: str | os.PathLike | None = None,
    batch_size: int = 32,
    seed: int = 1337,
    class_names: Any = None,
) -> Datasets:
    """A CSV or TSV file of texts and labels as ``(string, label)`` pipelines.

    Args:
        path: The file; ``.tsv`` files are tab-separated, others comma-separated, unless
            ``delimiter`` says otherwise. Quotes are not special in TSV files (as in GLUE).
        text_column: Column name (with a header) or index of the text.
        label_column: Column name or index of the label (integers, or names mapped to
            integers in sorted order or in the order of ``class_names``).
        delimiter: Field separator; inferred from the suffix by default.
        header: The first row names the columns.
        validation_split: Fraction held out when ``validation_path`` is not given.
        validation_path: A second file with the same layout, used for validation.
        batch_size: Batch size.
        seed: Seed of the split and the shuffling.
        class_names: The label names in label order.

    Returns:
        :class:`Datasets` whose inputs are scalar ``tf.string`` tensors.

    Example:
        >>> import kzoo
        >>> data = kzoo.data.text_file(kzoo.data.data_dir() / "sst2/train.tsv",
        ...                            validation_path=kzoo.data.data_dir() / "sst2/dev.tsv")  # doctest: +SKIP
    """
    tf = import_tensorflow("kzoo.data pipelines (tf.data)")

    _check_positive("batch_size", batch_size)
    _check_split(validation_split)
    texts, raw_labels = _read_table(path, text_column, label_column, delimiter, header)
    if validation_path is not None:
        val_texts, val_raw = _read_table(validation_path, text_column, label_column, delimiter, header)
    names = _label_names(raw_labels + (val_raw if validation_path is not None else []), class_names)
    if len(set(raw_labels)) < 2:
        raise InvalidArgumentError(
            expected_received(
                f"labels in {path}", "at least two classes", sorted(set(raw_labels)), "Check label_column."
            )
        )
    labels = _encode_labels(raw_labels, names, path)
    if validation_path is not None:
        validation = (val_texts, _encode_labels(val_raw, names, validation_path))
    elif validation_split:
        order = np.random.default_rng(seed).permutation(len(texts))
        cut = len(texts) - max(1, int(round(len(texts) * validation_split)))
        validation = ([texts[i] for i in order[cut:]], labels[order[cut:]])
        texts, labels = [texts[i] for i in order[:cut]], labels[order[:cut]]
    else:
        validation = None

    def pipeline(x: list[str], y: np.ndarray, training: bool) -> Any:
        dataset = tf.data.Dataset.from_tensor_slices((tf.constant(x, tf.string), y.astype("int64")))
        if training:
            dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    return Datasets(
        train=pipeline(texts, labels, True),
        validation=pipeline(*validation, False) if validation is not None else None,
        class_names=tuple(names),
        train_size=len(texts),
        validation_size=len(validation[0]) if validation is not None else 0,
        batch_size=batch_size,
    )


def _read_table(
    path: str | os.PathLike, text_column: str | int, label_column: str | int, delimiter: str | None, header: bool
) -> tuple[list[str], list[str]]:
    import csv

    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(expected_received("text file", "an existing CSV or TSV file", str(path)))
    tab = path.suffix.lower() == ".tsv"
    delimiter = delimiter or ("\t" if tab else ",")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_NONE if tab else csv.QUOTE_MINIMAL))
    if header:
        if not rows:
            raise InvalidArgumentError(
                expected_received(f"text file {path}", "a header row and data rows", "an empty file")
            )
        columns, rows = rows[0], rows[1:]
    else:
        columns = []
    rows = [row for row in rows if row]
    if not rows:
        raise InvalidArgumentError(expected_received(f"text file {path}", "at least one data row", "none"))

    def index(column: str | int) -> int:
        if isinstance(column, int):
            return column
        if column not in columns:
            raise InvalidArgumentError(expected_received(f"column of {path}", f"one of {columns}", column))
        return columns.index(column)

    text_index, label_index = index(text_column), index(label_column)
    texts, labels = [], []
    for number, row in enumerate(rows, start=2 if header else 1):
        if max(text_index, label_index) >= len(row):
            raise InvalidArgumentError(
                f"{path} line {number}: expected at least {max(text_index, label_index) + 1} fields separated by "
                f"{delimiter!r}, received {len(row)}. Check the delimiter and the column indices."
            )
        texts.append(row[text_index].strip())
        labels.append(row[label_index].strip())
    return texts, labels


def _label_names(raw: list[str], class_names: Any) -> list[str]:
    if class_names is not None:
        return [str(name) for name in class_names]
    unique = sorted(set(raw))
    if all(label.lstrip("-").isdigit() for label in unique):
        values = sorted(int(label) for label in unique)
        if values[0] < 0:
            raise InvalidArgumentError(expected_received("integer labels", "values >= 0", values[0]))
        return [str(i) for i in range(values[-1] + 1)]
    return unique


def _encode_labels(raw: list[str], names: list[str], path: Any) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - set(lookup))
    if unknown:
        raise InvalidArgumentError(
            expected_received(f"labels in {path}", f"one of {names}", unknown[:5], "Pass class_names covering them.")
        )
    return np.asarray([lookup[label] for label in raw], np.int64)


def tfds(
    name: str,
    *,
    splits: tuple[str, str | None] = ("train", "validation"),
    model: Any = None,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    seed: int = 1337,
    augment: Any = None,
    download: bool | None = None,
) -> Datasets:
    """A TensorFlow Datasets dataset by name, as training and validation pipelines.

    Image datasets are resized to the model's input and preprocessed for its weights;
    other datasets pass through. The dataset must have supervised keys (``as_supervised``).

    Args:
        name: TFDS name, e.g. ``"mnist"`` or ``"tf_flowers"``.
        splits: ``(train split, validation split or None)``, TFDS slicing allowed
            (``("train[:90%]", "train[90%:]")``).
        model: The model to feed.
        data_dir: Where TFDS keeps its data (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        batch_size: Batch size.
        seed: Seed of the shuffling and augmentation.
        augment: Augmentations for training images, see :func:`augmentation`.
        download: Let TFDS download and prepare; default: yes unless ``KZOO_OFFLINE=1``.

    Returns:
        :class:`Datasets`.
    """
    tf = import_tensorflow("kzoo.data.tfds (tf.data and TensorFlow Datasets)")
    import tensorflow_datasets

    from kzoo import weights as weights_lib

    _check_positive("batch_size", batch_size)
    if download is None:
        download = not weights_lib.offline()
    train_split, validation_split = splits
    wanted = [train_split] + ([validation_split] if validation_split else [])
    try:
        loaded, info = tensorflow_datasets.load(
            name, split=wanted, as_supervised=True, with_info=True, data_dir=data_dir, download=download
        )
    except (tensorflow_datasets.core.registered.DatasetNotFoundError, KeyError) as error:
        raise InvalidArgumentError(
            expected_received("TFDS dataset", "a registered TFDS name (see tfds.list_builders())", name)
        ) from error
    except AssertionError as error:  # TFDS asserts when data is missing and download=False
        raise DataNotFoundError(
            f"TFDS dataset {name!r} is not prepared under {data_dir or '~/tensorflow_datasets'} and downloading is "
            f"off ({error}). Prepare it online first, or unset KZOO_OFFLINE."
        ) from error
    label = info.features[info.supervised_keys[1]]
    class_names = tuple(label.names) if hasattr(label, "names") else ()
    model_size, model_channels, preprocessing, model_outputs = _model_image_spec(model)
    _check_classes(len(class_names), model_outputs, class_names, f"TFDS dataset {name!r}")
    image_like = len(info.features[info.supervised_keys[0]].shape) == 3

    def prepare(dataset: Any) -> Any:
        if not image_like:
            return dataset

        def resize(x: Any, y: Any) -> Any:
            x = tf.cast(x, tf.float32)
            if model_channels == 1 and x.shape[-1] == 3:
                x = tf.image.rgb_to_grayscale(x)
            elif model_channels == 3 and x.shape[-1] == 1:
                x = tf.image.grayscale_to_rgb(x)
            if model_size is not None:
                x = tf.image.resize(x, model_size)
            return x, y

        return dataset.map(resize, num_parallel_calls=tf.data.AUTOTUNE)

    sizes = [int(info.splits[split].num_examples) for split in wanted]
    common = {"batch_size": batch_size, "seed": seed, "crop": None, "cache": True}
    prep = preprocessing if image_like else None
    train = _finish(
        prepare(loaded[0]),
        training=True,
        size=sizes[0],
        augment=augment if image_like else None,
        preprocessing=prep,
        **common,
    )
    validation = (
        _finish(prepare(loaded[1]), training=False, size=sizes[1], augment=None, preprocessing=prep, **common)
        if validation_split
        else None
    )
    return Datasets(
        train=train,
        validation=validation,
        class_names=class_names,
        input_shape=(*model_size, model_channels)
        if model_size
        else tuple(info.features[info.supervised_keys[0]].shape),
        preprocessing=prep,
        train_size=sizes[0],
        validation_size=sizes[1] if validation_split else 0,
        batch_size=batch_size,
    )
