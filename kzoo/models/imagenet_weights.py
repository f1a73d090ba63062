"""Official ImageNet weights of keras.applications, as kzoo weight records.

Each record names the publisher's URL and the MD5 that keras.applications pins for it
(the publisher gives no size). The files are Keras 2 weights-only HDF5 files, loaded by
layer name into kzoo's models, whose layer names match keras.applications'.
"""

from __future__ import annotations

from kzoo.imagenet import WordNetIds
from kzoo.weights import Preprocessing, WeightsRecord, register_weights

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"

# Caffe-style preprocessing (keras.applications "caffe" mode): RGB -> BGR, minus the ImageNet mean.
CAFFE = Preprocessing(scale=1.0, mean=(103.939, 116.779, 123.68), channel_order="bgr")
# "tf" mode, used by the v2 ResNets: pixels to [-1, 1].
TF = Preprocessing(scale=1.0 / 127.5, offset=-1.0, channel_order="rgb")

# model: (folder/file stem, md5 with top, md5 without top, preprocessing)
_FILES = {
    "vgg16": ("vgg16/vgg16", "64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc", CAFFE),
    "vgg19": ("vgg19/vgg19", "cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6", CAFFE),
    "resnet50": ("resnet/resnet50", "2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626", CAFFE),
    "resnet101": ("resnet/resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21", CAFFE),
    "resnet152": ("resnet/resnet152", "100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c", CAFFE),
    "resnet50v2": ("resnet/resnet50v2", "3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917", TF),
    "resnet101v2": ("resnet/resnet101v2", "6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5", TF),
    "resnet152v2": ("resnet/resnet152v2", "a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33", TF),
}


# Read from tensorflow-datasets on first use (kzoo.imagenet.WordNetIds), not on `import kzoo`.
_CLASS_IDS = WordNetIds()

for _model, (_stem, _md5_top, _md5_notop, _preprocessing) in _FILES.items():
    for _top in (True, False):
        _file = f"{_stem.split('/')[-1]}_weights_tf_dim_ordering_tf_kernels{'' if _top else '_notop'}.h5"
        register_weights(
            WeightsRecord(
                model=_model,
                tag="imagenet" if _top else "imagenet_notop",
                file=_file,
                url=_BASE + _stem.rsplit("/", 1)[0] + "/" + _file,
                md5=_md5_top if _top else _md5_notop,
                size=None,
                format="h5-legacy",
                dataset="ImageNet ILSVRC-2012 training set",
                metrics={},  # not measured here: the files cannot be downloaded on kzoo's build machines
                eval_split="not measured by kzoo (keras.applications' documentation gives the publisher's figures)",
                num_classes=1000,
                class_names=_CLASS_IDS,
                input_shape=(224, 224, 3),
                include_top=_top,
                preprocessing=_preprocessing,
                license="See keras.applications (Apache-2.0 code; weights by the Keras team / original authors)",
                source="keras.applications (Keras team)",
                recipe="keras.applications " + _model + " (official file)",
                default=_top,
                notes="the publisher pins only the MD5 hash; kzoo records no size for this file",
            )
        )
