"""Blocks shared by several model families (conv-bn-act, residual, attention, ...)."""

from kzoo.layers.gradient_reversal import GradientReversal
from kzoo.layers.lipschitz import GroupSort

__all__ = ["GradientReversal", "GroupSort"]
