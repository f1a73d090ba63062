"""kzoo: a Keras 3 model zoo of the classic deep-learning architectures.

Example:
    >>> import kzoo
    >>> kzoo.list_models("lenet*")
    ['lenet5']
    >>> model = kzoo.get("lenet5", pretrained=True)
"""

from kzoo import data, errors, models  # noqa: F401  (importing models registers every family)
from kzoo.registry import ModelCard, ModelSpec, get, info, list_models, register_model

__version__ = "0.1.0"

__all__ = ["ModelCard", "ModelSpec", "data", "errors", "get", "info", "list_models", "register_model", "__version__"]
