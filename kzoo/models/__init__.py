"""Model families. Importing this package registers every variant, one family file at a time."""

from kzoo.models import lenet, unet  # noqa: F401
