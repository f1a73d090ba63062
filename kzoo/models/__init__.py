"""Model families. Importing this package registers every variant, one family file at a time."""

from kzoo.models import alexnet, autoencoders, cyclegan, gan, imagenet_weights, lenet, resnet, unet, vgg  # noqa: F401
