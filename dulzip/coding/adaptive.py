"""Binary decisions with adaptive probabilities, over the njit arithmetic coder.

The plain coders (:mod:`dulzip.codecs.lpc` for audio, :mod:`dulzip.codecs.image16` for 16-bit
images, :mod:`dulzip.formats.deflate_tokens` for deflate streams) code every decision with the
mean of a fast and a slow adaptive estimate of its probability (each a 1/65536 fraction that
moves by its rate towards each outcome): the fast one follows local changes, the slow one keeps
the average, and their mean does better than either on the data these coders meet. The same
function encodes (``mode`` ENC: ``bit`` is coded) and decodes (DEC: the bit is returned), so
both sides update the same estimates in the same order.

A residual (a signed integer) is coded as decisions in one row of estimates:
:func:`residual`.
"""
from __future__ import annotations

from numba import njit

from dulzip.coding import binary

ENC, DEC = 0, 1


@njit(cache=True, inline="always")
def bit(probs, i, j, fast, slow, b, st, out, data, end, mode):
    """Code (ENC) or decode (DEC) one decision of stream 0 with P(1) the mean of probs[i]
    (moving at 1/2^fast) and probs[j] (at 1/2^slow); returns the bit."""
    p = min(max((probs[i] + probs[j]) >> 1, 64), 65472)
    if mode == ENC:
        binary.encode_bit(st, 0, out, b, p)
    else:
        b = binary.decode_bit(st, 0, data, end, p)
    probs[i] += ((b << 16) - probs[i]) >> fast
    probs[j] += ((b << 16) - probs[j]) >> slow
    return b


@njit(cache=True, inline="always")
def residual(row, e, n_len, n_probs, fast, slow, st, out, data, end, mode):
    """Code (ENC: e) or decode (DEC: returned) a residual as decisions in ``row``: zero? (slot 0),
    its sign (1), the bit length of |e| - 1 in unary (2 .. 2 + n_len - 1, at most n_len - 1 ones),
    its bits below the leading one (2 + n_len + length * n_len + bit); each decision's slow
    estimate sits n_probs slots on."""
    if bit(row, 0, n_probs, fast, slow, 1 if e == 0 else 0, st, out, data, end, mode):
        return 0
    neg = bit(row, 1, 1 + n_probs, fast, slow, 1 if e < 0 else 0, st, out, data, end, mode)
    m = abs(e) - 1
    k = 0
    while k < n_len - 1 and bit(row, 2 + k, 2 + k + n_probs, fast, slow, 1 if (m >> k) > 0 else 0,
                                st, out, data, end, mode):
        k += 1
    v = 0 if k == 0 else 1
    for i in range(k - 2, -1, -1):
        s = 2 + n_len + k * n_len + i
        v = 2 * v + bit(row, s, s + n_probs, fast, slow, (m >> i) & 1, st, out, data, end, mode)
    return -(v + 1) if neg else v + 1


@njit(cache=True, inline="always")
def half_octave(v):
    """0 for 0, then two classes per octave of v (v >= 0): the class of a recent mean magnitude
    that the audio and 16-bit image coders keep their probabilities by."""
    if v <= 0:
        return 0
    k = 0
    t = v
    while t > 1:
        t >>= 1
        k += 1
    half = (v >> (k - 1)) & 1 if k > 0 else 0
    return 1 + 2 * k + half
