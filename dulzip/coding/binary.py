"""A binary arithmetic coder in njit code, for mixers that code one decision at a time.

The pyramid image coder's mixer (:mod:`dulzip.exact.pyramidmix`) codes each sub-pixel as a few
binary decisions whose probabilities depend on every decision before (the mixer learns after
each), so the coder must run inside the mixer's njit loop: a call into constriction
(:mod:`dulzip.coding.rangecoder`) per decision would cost microseconds of Python each, more
than the mixing itself. This is the carry-less 32-bit coder of lpaq (Matt Mahoney): the
interval [x1, x2] is split at x1 + (x2 - x1) p / 2^16 (p: the probability of a 1 in 1/65536,
1..65535, so both parts are non-empty); equal leading bytes of x1 and x2 are shifted out.

The encoder ends a stream with the four bytes of x1, so the decoder, which reads four bytes
at its start and one per shifted byte, reads exactly the bytes the encoder wrote: a read past
the end, or bytes left over, can only come from a damaged stream (the codec turns them into a
CorruptDataError).

State of stream k: ``st[k] = (x1, x2, pos, x)``; the encoder writes into ``out[k, pos]``, the
decoder reads ``data[pos]`` with ``pos < end[k]`` (bytes past it read as 0 and count in
``st[k, 4]``, the overrun).
"""
from __future__ import annotations

import numpy as np
from numba import njit

TOP = 0xFFFFFFFF
N_STATE = 5  # x1, x2, pos, x, overrun


def new_state(n: int) -> np.ndarray:
    """n streams at their start (encoder side; the decoder's :func:`start_decoding` reads x)."""
    st = np.zeros((n, N_STATE), dtype=np.int64)
    st[:, 1] = TOP
    return st


@njit(cache=True, inline="always")
def encode_bit(st, k, out, bit, p):
    """Code ``bit`` with P(1) = p / 65536 into stream k."""
    x1 = st[k, 0]
    x2 = st[k, 1]
    xmid = x1 + (((x2 - x1) * p) >> 16)
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    pos = st[k, 2]
    while ((x1 ^ x2) & 0xFF000000) == 0:
        out[k, pos] = x2 >> 24
        pos += 1
        x1 = (x1 << 8) & TOP
        x2 = ((x2 << 8) & TOP) | 255
    st[k, 0] = x1
    st[k, 1] = x2
    st[k, 2] = pos


@njit(cache=True, inline="always")
def _byte(st, k, data, end):
    pos = st[k, 2]
    st[k, 2] = pos + 1
    if pos < end[k]:
        return np.int64(data[pos])
    st[k, 4] += 1
    return np.int64(0)


@njit(cache=True, inline="always")
def decode_bit(st, k, data, end, p):
    """The bit that stream k holds next, coded with P(1) = p / 65536."""
    x1 = st[k, 0]
    x2 = st[k, 1]
    x = st[k, 3]
    xmid = x1 + (((x2 - x1) * p) >> 16)
    bit = 1 if x <= xmid else 0
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        x1 = (x1 << 8) & TOP
        x2 = ((x2 << 8) & TOP) | 255
        x = ((x << 8) & TOP) | _byte(st, k, data, end)
    st[k, 0] = x1
    st[k, 1] = x2
    st[k, 3] = x
    return bit


@njit(cache=True)
def start_decoding(st, k, data, end):
    """Stream k's first four bytes into its x (its pos: the stream's first byte)."""
    x = np.int64(0)
    for _ in range(4):
        x = (x << 8) | _byte(st, k, data, end)
    st[k, 3] = x


def finish(st: np.ndarray, k: int) -> bytes:
    """The four bytes that end stream k (x1, big-endian)."""
    return int(st[k, 0]).to_bytes(4, "big")
