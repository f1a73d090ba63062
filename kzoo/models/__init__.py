"""Model families. Importing this package registers every variant, one family file at a time."""

from kzoo.models import alexnet, imagenet_weights, lenet, resnet, rnn, seq2seq, unet, vgg, word2vec  # noqa: F401
