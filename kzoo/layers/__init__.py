"""Blocks shared by several model families (conv-bn-act, residual, attention, ...)."""

from kzoo.layers.crf import CRF, CRFLoss
from kzoo.layers.gradient_reversal import GradientReversal
from kzoo.layers.identity import ImagePreprocessing, KzooIdentity
from kzoo.layers.lipschitz import GroupSort
from kzoo.layers.masking import MaskedGlobalMaxPooling1D, MaskFromIds, UnknownWords
from kzoo.layers.transformer import Bias, GatherPositions, PositionEmbedding, TokenEmbedding, TransformerEncoderBlock

__all__ = [
    "Bias",
    "CRF",
    "CRFLoss",
    "GatherPositions",
    "GradientReversal",
    "GroupSort",
    "ImagePreprocessing",
    "KzooIdentity",
    "MaskFromIds",
    "MaskedGlobalMaxPooling1D",
    "PositionEmbedding",
    "TokenEmbedding",
    "TransformerEncoderBlock",
    "UnknownWords",
]
