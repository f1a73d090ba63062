"""Official ImageNet weights of keras.applications, as kzoo weight records.

The families declare their own files beside their builders (``vgg.py``, ``resnet.py``, as
torchvision keeps each model's weights beside it) through :func:`register_imagenet`. Each
record names the publisher's URL and the MD5 that keras.applications pins for it (the
publisher gives no size). The files are Keras 2 weights-only HDF5 files, loaded by layer name
into kzoo's models, whose layer names match keras.applications'.
"""

from __future__ import annotations

from kzoo.imagenet import WordNetIds
from kzoo.weights import Preprocessing, WeightsRecord, register_weights

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"

# Caffe-style preprocessing (keras.applications "caffe" mode): RGB -> BGR, minus the ImageNet mean.
CAFFE = Preprocessing(scale=1.0, mean=(103.939, 116.779, 123.68), channel_order="bgr")
# "tf" mode, used by the v2 ResNets: pixels to [-1, 1].
TF = Preprocessing(scale=1.0 / 127.5, offset=-1.0, channel_order="rgb")

# Read from tensorflow-datasets on first use (kzoo.imagenet.WordNetIds), not on `import kzoo`.
_CLASS_IDS = WordNetIds()


def register_imagenet(
    model: str,
    *,
    stem: str,
    md5_top: str,
    md5_notop: str,
    preprocessing: Preprocessing,
    num_params_top: int,
    num_params_notop: int,
) -> None:
    """Registers the ``imagenet`` and ``imagenet_notop`` records of one keras.applications model.

    Args:
        model: The kzoo model name (``"vgg16"``).
        stem: ``folder/file stem`` under keras.applications' download URL (``"vgg16/vgg16"``).
        md5_top, md5_notop: The MD5 hashes keras.applications pins for the two files.
        preprocessing: What the weights expect (:data:`CAFFE` or :data:`TF`).
        num_params_top, num_params_notop: Parameters the two files hold.
    """
    for top in (True, False):
        file = f"{stem.split('/')[-1]}_weights_tf_dim_ordering_tf_kernels{'' if top else '_notop'}.h5"
        register_weights(
            WeightsRecord(
                model=model,
                tag="imagenet" if top else "imagenet_notop",
                file=file,
                url=_BASE + stem.rsplit("/", 1)[0] + "/" + file,
                md5=md5_top if top else md5_notop,
                size=None,
                format="h5-legacy",
                dataset="ImageNet ILSVRC-2012 training set",
                metrics={},  # not measured here: the files cannot be downloaded on kzoo's build machines
                eval_split="not measured by kzoo (keras.applications' documentation gives the publisher's figures)",
                num_classes=1000,
                class_names=_CLASS_IDS,
                input_shape=(224, 224, 3),
                include_top=top,
                preprocessing=preprocessing,
                license="See keras.applications (Apache-2.0 code; weights by the Keras team / original authors)",
                source="keras.applications (Keras team)",
                recipe="keras.applications " + model + " (official file)",
                default=top,
                notes="the publisher pins only the MD5 hash; kzoo records no size for this file",
                num_params=num_params_top if top else num_params_notop,
            )
        )


def register_imagenet_files(files: dict[str, tuple], *, preprocessing: dict[str, Preprocessing]) -> None:
    """:func:`register_imagenet` for each ``model: (stem, md5_top, md5_notop, params_top, params_notop)``."""
    for model, (stem, md5_top, md5_notop, params_top, params_notop) in files.items():
        register_imagenet(
            model,
            stem=stem,
            md5_top=md5_top,
            md5_notop=md5_notop,
            preprocessing=preprocessing[model],
            num_params_top=params_top,
            num_params_notop=params_notop,
        )
