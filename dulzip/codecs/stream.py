"""What every codec returns: one coded stream per band, block or batch, by the model or by zstd.

A codec codes a piece of its input with its model and keeps the model's stream only where it is
smaller than zstd -19 of the same bytes (``allow_zstd=False`` keeps the model's, for tests of the
model path): the container records which coder each stream used.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stream:
    """One coded stream: its coder ('model' or 'zstd') and payload."""
    coder: str
    payload: bytes
    est_bits: float = 0.0  # the model's own -log2 p of this stream (model streams)


def cuts(n: int, size: int) -> list[tuple[int, int]]:
    """(start, length) of the pieces of ``size`` (the last one shorter) of n items: the blocks of
    a text or audio layout, the frames of the lpc coder."""
    return [(s, min(size, n - s)) for s in range(0, n, size)]
