"""Model families. Importing this package registers every variant, one family file at a time."""

from kzoo.models import (  # noqa: F401
    alexnet,
    autoencoders,
    bert,
    cyclegan,
    gan,
    lenet,
    resnet,
    rnn,
    seq2seq,
    unet,
    vgg,
    word2vec,
)
