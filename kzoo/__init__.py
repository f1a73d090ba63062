"""kzoo: a Keras 3 model zoo of the classic deep-learning architectures.

Example:
    >>> import kzoo
    >>> kzoo.list_models("lenet*")
    ['lenet5']
    >>> model = kzoo.get("lenet5", pretrained=True)
"""

import importlib
import sys

from kzoo import _quiet

# TensorFlow's C++ start-up lines stay off stderr (KZOO_TF_LOGS=1 shows them); see kzoo/_quiet.py.
with _quiet.native_stderr():
    from kzoo import data, errors, identity, models, segmentation, text  # noqa: F401  (importing models registers every family)
    from kzoo.export import export
    from kzoo.features import feature_extractor
    from kzoo.finetune import FinetuneResult, finetune, freeze, unfreeze
    from kzoo.identity import KzooModel
    from kzoo.imagenet import decode_predictions
    from kzoo.lora import merge_lora
    from kzoo.registry import ModelCard, ModelSpec, get, info, list_models, register_model

    # List the devices now (12 ms), inside the filter: CUDA's start-up lines. Memory growth and
    # visible devices can still be set afterwards. (A blocked TensorFlow is a None entry.)
    if getattr(sys.modules.get("tensorflow"), "config", None) is not None:
        sys.modules["tensorflow"].config.list_physical_devices()

__version__ = "0.1.0"

# These load on first use; the parts of them that need TensorFlow (tf.summary, SavedModels,
# tf.data) import it only when called, so `import kzoo` works on JAX without TensorFlow.
_LAZY_MODULES = ("callbacks", "generative", "hub")


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"kzoo.{name}")
    raise AttributeError(f"module 'kzoo' has no attribute {name!r}")


__all__ = [
    "FinetuneResult",
    "KzooModel",
    "ModelCard",
    "ModelSpec",
    "__version__",
    "callbacks",
    "data",
    "decode_predictions",
    "errors",
    "export",
    "feature_extractor",
    "finetune",
    "freeze",
    "generative",
    "get",
    "hub",
    "identity",
    "info",
    "list_models",
    "merge_lora",
    "register_model",
    "segmentation",
    "text",
    "unfreeze",
]
