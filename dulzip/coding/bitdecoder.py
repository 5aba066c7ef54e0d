"""Decoding binary decisions from a range-coded stream inside a compiled loop.

The text mixer decodes eight decisions per byte for each of up to 64 segments, each with a
probability it has just computed. Calling constriction from Python per decision (a numpy array
in, one out) cost the text decoder about an eighth of its time; this decoder runs inside the
mixer's njit loop instead. It reads the streams that :class:`dulzip.coding.rangecoder.RangeEncoder`
writes (constriction's queue range coder: 32-bit words, a 64-bit state, 24-bit probabilities)
for a two-symbol table (65536 - p, p) given as integers in 1/65536, which constriction's
``Categorical(perfect=False)`` quantizes to symbol 0 owning [0, cut) of 2**24 with
cut = (65536 - p) * (2**24 - 2) // 65536 + 1 (every float in that computation is an exact
integer, so the cut is too). The same symbols in the same order as constriction's decoder,
checked against it in tests/test_bitdecoder.py, damaged streams included.

(:mod:`dulzip.coding.binary` is another coder run inside njit loops, with its own format, for
the coders made for it; this one reads the range coder's format, so text files keep theirs.)

A damaged or hostile stream ends as the same two errors as :class:`RangeDecoder`'s: a quantile
outside the table (DAMAGED), or more than TAIL_BITS of information decoded once the last word
has been read (ENDED_EARLY), so garbage costs work in proportion to its length.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from dulzip.coding.rangecoder import TAIL_BITS
from dulzip.errors import CorruptDataError

PRECISION = 24
DAMAGED = -1  # decode_bit's results other than a bit
ENDED_EARLY = -2
_ONE = np.uint64(1 << PRECISION)
_FREE = np.uint64((1 << PRECISION) - 2)  # constriction's weight to share out: 2**24 less one per symbol
_WORD = np.uint64(32)
_LOW = np.uint64(1 << 32)  # range below this: shift a word in
_MAX_DIFF = np.uint64((1 << 33) - 1)  # point - lower below this once the words are read: maybe at the end
_LOWER, _RANGE, _POINT, _POS = 0, 1, 2, 3  # the state array's entries


class BitDecoder:
    """The state of one stream being decoded: ``state`` (lower, range, point, words read) as
    uint64, ``tail`` (information decoded since the stream was maybe exhausted; negative: not
    yet) and the stream's words, for :func:`decode_bit` in njit code."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise CorruptDataError("range-coded stream length is not a multiple of 4 bytes")
        self.words = np.frombuffer(data, dtype="<u4").astype(np.uint64)
        point, n = 0, min(2, len(self.words))
        for i in range(n):
            point = (point << 32) | int(self.words[i])
        if n == 1:
            point <<= 32
        self.state = np.array([0, (1 << 64) - 1, point, n], dtype=np.uint64)
        self.tail = np.full(1, -1.0)

    def decode(self, p16: np.ndarray) -> np.ndarray:
        """Decisions whose probabilities of being 1 are ``p16`` (1/65536), one after the other
        (what the njit loops do; for tests and for Python callers)."""
        out = np.asarray(_decode_many(self.state, self.tail, self.words, np.asarray(p16, dtype=np.int64)))
        check(int(out[-1]) if len(out) and out[-1] < 0 else 0)
        return out


def check(status: int) -> None:
    """Raise the error that a negative result of :func:`decode_bit` stands for."""
    if status == DAMAGED:
        raise CorruptDataError("a range-coded stream is damaged (a value outside its table)")
    if status == ENDED_EARLY:
        raise CorruptDataError("a range-coded stream ends before its symbols do (damaged file)")


@njit(cache=True, inline="always")
def decode_bit(state, tail, words, p16):
    """The next decision (0 or 1) of probability p16 (1/65536, 1..65535) of being 1, or
    DAMAGED / ENDED_EARLY."""
    lower, rng, point = state[_LOWER], state[_RANGE], state[_POINT]
    scale = rng >> np.uint64(PRECISION)
    quantile = (point - lower) // scale
    if quantile >= _ONE:
        return DAMAGED
    cut = ((np.uint64(65536 - p16) * _FREE) >> np.uint64(16)) + np.uint64(1)
    if quantile < cut:
        bit, prob = 0, cut
    else:
        bit, prob = 1, _ONE - cut
        lower += scale * cut
    rng = scale * prob
    pos = state[_POS]
    if rng < _LOW:
        lower <<= _WORD
        rng <<= _WORD
        point <<= _WORD
        if pos < np.uint64(len(words)):
            point |= words[pos]
            pos += np.uint64(1)
    state[_LOWER], state[_RANGE], state[_POINT], state[_POS] = lower, rng, point, pos
    if tail[0] >= 0.0:
        tail[0] += PRECISION - math.log2(float(prob))
        if tail[0] > TAIL_BITS:
            return ENDED_EARLY
    elif pos >= np.uint64(len(words)) and point - lower < _MAX_DIFF:
        tail[0] = 0.0  # constriction's maybe_exhausted(): from here on, information counts
    return bit


@njit(cache=True)
def _decode_many(state, tail, words, p16):
    out = np.empty(len(p16), dtype=np.int64)
    for i in range(len(p16)):
        out[i] = decode_bit(state, tail, words, p16[i])
        if out[i] < 0:
            return out[:i + 1]
    return out
