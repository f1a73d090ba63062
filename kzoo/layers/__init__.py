"""Blocks shared by several model families (conv-bn-act, residual, attention, ...)."""
