"""A plain linear-prediction coder for the audio blocks a model codes worse (issue 24).

Synthetic speech (espeak-ng) and other very regular signals are predicted better by a short
linear predictor refitted every few thousand samples (what FLAC does) than by a trained model:
without a fallback, such WAVs came out 5-11% larger than ``flac -8``'s files. The audio codec
(:mod:`dulzip.codecs.audio`) codes every block both ways and keeps the smaller (coder ``lpc``).

A block of one channel is cut into frames of FRAME samples. Each frame has its own predictor:
an order from ORDERS and integer coefficients with a shift (fitted by the encoder in floating
point, Levinson-Durbin on the frame's Tukey-windowed autocorrelation; sent as side data, so the
decoder computes nothing in floating point). The prediction of sample t is the coefficients
times the samples before it (the block's earlier frames included), floor-shifted, plus a
second stage: a normalized LMS filter of order N_LMS over the first stage's past residuals,
learnt as the block is coded (integers; as Monkey's Audio's cascades). The residual is coded by
the binary arithmetic coder of :mod:`dulzip.coding.binary` as decisions: zero?, sign, the
magnitude's bit length in unary, its low bits; each decision's probability (the mean of a fast
and a slow adaptive estimate, starting from a prior) is kept per octave class of the recent
residuals' mean magnitude, which stands in for FLAC's Rice parameters.

What each part brought on three espeak-ng files (numbers at 16 and 22.05 kHz, fox at 16 kHz,
bytes; ``flac -8 --no-padding``: 154,561, 187,411, 174,788): LPC with a Hann window and one
adaptive rate, 156,221, 190,088, 177,066; a Tukey(0.5) window 155,886, 188,902, 176,757; two
rates and half-octave classes 155,509, 188,198, 176,332; the LMS stage 146,209, 177,124, 167,074
(of order 32 instead of 16: 148,019, 178,215, 168,954); octave classes again 145,940, 176,904,
166,806; the mean magnitude adapting at 1/8 instead of 1/16, and the length decisions starting
from a prior, 144,349, 175,444, 165,094. On two short noisy files (FluidR3 snare samples of
23,232 and 20,640 samples; flac 20,147 and 19,352 bytes) those last steps took the payload from
20,586 and 19,792 bytes to 19,982 and 19,217: within the container's 184 bytes of flac's file.

Payload: the side data's length (4 bytes, little-endian), per frame its order, shift and
coefficients (int16 little-endian), then the coded residuals.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dulzip.codecs.stream import cuts
from dulzip.coding import adaptive, binary
from dulzip.errors import CorruptDataError

FRAME = 4096
ORDERS = (0, 1, 2, 4, 8, 12, 16, 24, 32)
MAX_ORDER = 32
PRECISION = 14  # coefficients' bits (below int16's range)
N_CLASSES = 24  # octave classes of the recent mean magnitude (its bit length)
N_LEN = 20  # magnitude bit lengths: a residual of 8- or 16-bit audio stays below 2^19
N_LMS = 16  # the second stage's order
LMS_MAX = 1 << 20  # its weights' bound (1/65536)
R_MAX = 1 << 17  # the first stage's predictions and residuals' bound
N_PROBS = 2 + 2 * N_LEN + N_LEN * N_LEN  # decisions per class: zero, sign, lengths, low bits
# the coder's output can never outgrow this many bytes per sample: at most 2 + (N_LEN - 1) + (N_LEN - 2)
# decisions, each at most 10 bits (probabilities are kept within [64, 65472] / 65536)
MAX_BYTES_PER_SAMPLE = (10 * (2 * N_LEN - 1) + 7) // 8
ENC, DEC = adaptive.ENC, adaptive.DEC


def _fit(x: np.ndarray, s: int, m: int) -> tuple[int, int, np.ndarray]:
    """The frame's predictor: (order, shift, int coefficients), the order whose residual's
    estimated cost (plus the coefficients') is least."""
    seg = x[s:s + m].astype(np.float64)
    hist = x[max(0, s - MAX_ORDER):s + m].astype(np.float64)
    off = s - max(0, s - MAX_ORDER)
    best = (0, 0, np.zeros(0, dtype=np.int64))
    best_bits = _cost(seg) if m else 0.0
    if m < 64:
        return best
    w = seg * _tukey(m)
    r = np.array([np.dot(w[:m - k], w[k:]) for k in range(MAX_ORDER + 1)])
    if r[0] <= 0:
        return best
    r[0] *= 1 + 1e-9
    a = np.zeros(0)
    err = r[0]
    lpcs = {}
    for p in range(1, MAX_ORDER + 1):  # Levinson-Durbin
        k = (r[p] - np.dot(a, r[p - 1:0:-1])) / err
        a = np.concatenate([a - k * a[::-1], [k]])
        err *= 1 - k * k
        if err <= 0:
            break
        lpcs[p] = a.copy()
    for p in ORDERS[1:]:
        if p not in lpcs:
            continue
        c = lpcs[p]
        top = int(np.ceil(np.log2(max(np.abs(c).max(), 1e-9))))
        shift = PRECISION - max(top, 0)
        if shift < 0 or shift > 30:
            continue
        q = np.round(c * (1 << shift)).astype(np.int64)
        res = seg - np.floor(_predict_float(hist, off, q, m) / (1 << shift))
        bits = _cost(res) + 16 * p
        if bits < best_bits:
            best, best_bits = (p, shift, q), bits
    return best


def _tukey(m: int, a: float = 0.5) -> np.ndarray:
    """The Tukey window of m samples (cosine tapers over a fraction ``a``): less leakage than
    Hann's for the autocorrelation (the window FLAC uses)."""
    n = np.arange(m)
    w = np.ones(m)
    k = int(a * (m - 1) / 2)
    if k > 0:
        w[:k] = 0.5 * (1 - np.cos(np.pi * n[:k] / k))
        w[m - k:] = w[:k][::-1]
    return w


def _predict_float(hist: np.ndarray, off: int, q: np.ndarray, m: int) -> np.ndarray:
    """Integer-exact in float64 (|sum| < 2^53): the unshifted predictions of the frame."""
    out = np.zeros(m)
    for j, c in enumerate(q):
        lo = off - 1 - j  # sample t - 1 - j for t = off ..
        src = hist[max(lo, 0):lo + m] if lo + m > 0 else hist[:0]
        out[m - len(src):] += c * src
    return out


def _cost(res: np.ndarray) -> float:
    """Estimated bits of residuals (a Laplacian of their mean magnitude)."""
    mean = float(np.abs(res).mean()) if len(res) else 0.0
    return len(res) * (np.log2(mean + 1.0) + 1.5)


@njit(cache=True)
def _run(x, n, orders, shifts, coefs, st, out, data, end, mode):
    """Code (mode ENC: from x) or decode (DEC: into x) the n residuals; returns -1 when a
    decoder's stream ended early."""
    probs = np.full((N_CLASSES, 2 * N_PROBS), 32768, dtype=np.int64)  # fast, then slow
    for c in range(N_CLASSES):  # a prior: class c's residuals have about c + 1 bits
        for k in range(N_LEN):
            q = 62000 if k < c - 1 else (3500 if k > c + 1 else 32768)
            probs[c, 2 + k] = q
            probs[c, N_PROBS + 2 + k] = q
    avg = np.int64(16 * 64)
    r = np.zeros(n + N_LMS, dtype=np.int64)  # the first stage's residuals, N_LMS zeros first
    w2 = np.zeros(N_LMS, dtype=np.int64)
    for f in range((n + FRAME - 1) // FRAME):
        s = f * FRAME
        p = orders[f]
        sh = shifts[f]
        for t in range(s, min(n, s + FRAME)):
            acc = np.int64(0)
            for j in range(p):
                if t - 1 - j >= 0:
                    acc += coefs[f, j] * x[t - 1 - j]
            p1 = min(max(acc >> sh, -R_MAX), R_MAX)  # bounded (an unstable filter, a damaged file)
            a2 = np.int64(0)
            norm = np.int64(64)
            for j in range(N_LMS):
                a2 += w2[j] * r[t + N_LMS - 1 - j]
                norm += r[t + N_LMS - 1 - j] * r[t + N_LMS - 1 - j]
            pred = min(max(p1 + (a2 >> 16), -32768), 32767)  # |residual| < 2^16
            e = x[t] - pred if mode == ENC else 0
            a = avg >> 4
            c = 0
            while a > 0 and c < N_CLASSES - 1:
                a >>= 1
                c += 1
            e = adaptive.residual(probs[c], e, N_LEN, N_PROBS, 4, 7, st, out, data, end, mode)
            if mode == DEC:
                if st[0, 4] > 0:
                    return -1
                x[t] = pred + e
            avg += ((abs(e) << 4) - avg) >> 3
            r[t + N_LMS] = min(max(x[t] - p1, -R_MAX), R_MAX)  # so that the LMS's sums stay in int64
            for j in range(N_LMS):
                w2[j] = min(max(w2[j] + ((e * r[t + N_LMS - 1 - j]) << 12) // norm, -LMS_MAX), LMS_MAX)
    return 0


def encode_lpc(x: np.ndarray) -> bytes:
    """One block of one channel (int64 samples) -> the ``lpc`` payload."""
    x = np.ascontiguousarray(x, dtype=np.int64)
    n = len(x)
    fr = cuts(n, FRAME)
    orders = np.zeros(len(fr), dtype=np.int64)
    shifts = np.zeros(len(fr), dtype=np.int64)
    coefs = np.zeros((len(fr), MAX_ORDER), dtype=np.int64)
    side = bytearray()
    for f, (s, m) in enumerate(fr):
        p, sh, q = _fit(x, s, m)
        orders[f], shifts[f], coefs[f, :p] = p, sh, q
        side += bytes([p, sh]) + q.astype("<i2").tobytes()
    st = binary.new_state(1)
    out = np.zeros((1, MAX_BYTES_PER_SAMPLE * n + 16), dtype=np.uint8)  # encode_bit does not check bounds
    _run(x, n, orders, shifts, coefs, st, out, np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64), ENC)
    coded = out[0, :st[0, 2]].tobytes() + binary.finish(st, 0)
    return len(side).to_bytes(4, "little") + bytes(side) + coded


def decode_lpc(payload: bytes, n: int) -> np.ndarray:
    """Inverse of :func:`encode_lpc`: the block's n samples (int64)."""
    fr = cuts(n, FRAME)
    if len(payload) < 4:
        raise CorruptDataError("an lpc audio block is truncated")
    ns = int.from_bytes(payload[:4], "little")
    side, coded = payload[4:4 + ns], payload[4 + ns:]
    if len(side) != ns:
        raise CorruptDataError("an lpc audio block's predictors are truncated")
    orders = np.zeros(len(fr), dtype=np.int64)
    shifts = np.zeros(len(fr), dtype=np.int64)
    coefs = np.zeros((len(fr), MAX_ORDER), dtype=np.int64)
    pos = 0
    for f in range(len(fr)):
        if pos + 2 > len(side):
            raise CorruptDataError("an lpc audio block's predictors are truncated")
        p, sh = side[pos], side[pos + 1]
        if p not in ORDERS or sh > 30 or pos + 2 + 2 * p > len(side):
            raise CorruptDataError("an lpc audio block has an invalid predictor")
        coefs[f, :p] = np.frombuffer(side[pos + 2:pos + 2 + 2 * p], dtype="<i2")
        orders[f], shifts[f] = p, sh
        pos += 2 + 2 * p
    if pos != len(side):
        raise CorruptDataError("an lpc audio block's predictors have bytes left over")
    data = np.frombuffer(coded or b"\0", dtype=np.uint8).copy()
    end = np.array([len(coded)], dtype=np.int64)
    st = binary.new_state(1)
    binary.start_decoding(st, 0, data, end)
    x = np.zeros(n, dtype=np.int64)
    if _run(x, n, orders, shifts, coefs, st, np.zeros((1, 1), dtype=np.uint8), data, end, DEC) < 0:
        raise CorruptDataError("an lpc audio block ends before its samples do (damaged file)")
    if st[0, 2] != len(coded) or st[0, 4]:
        raise CorruptDataError("an lpc audio block has bytes its samples do not use (damaged file)")
    return x

