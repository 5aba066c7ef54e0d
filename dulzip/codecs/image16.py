"""A predictive coder of 16-bit image samples, with no network (issue 24).

The image models take 8-bit samples; 16-bit PNGs and PGM/PPMs (maxval above 255) went the bytes
way (zstd of the PNG), 60% above ``optipng -o7``. This coder is a two-dimensional sibling of
:mod:`dulzip.codecs.lpc`, all in integers (so both sides agree on every machine):

* **Levels.** Many 16-bit files hold fewer levels than 65536 (12-bit data shifted up, 8-bit data
  times 257, an average of a few 8-bit values scaled to 0..65535). The values a plane group (the
  color channels, or alpha) uses are found first, less the least one, divided by their greatest
  common divisor (16 for 12-bit data shifted up, 257 for 8-bit data times 257): when they fill
  less than half their range and
  are about evenly spaced, each sample is coded as its rank among them (the used values travel
  as a zstd bitmap), when they fill more, as its offset from the least one; few values unevenly
  spaced are coded both ways (ranks bend gradients), the smaller kept.
* **Prediction.** Per pixel in raster order, channel by channel, a set of fixed predictors from
  the causal neighbours (W, N, NE, W + N - NW, W + NE - N, LOCO-I's median, CALIC's gradient-
  adjusted one), for the second and later channels four more that carry the previous channel's
  local difference over (W + X' - W', N + X' - N', NE + X' - NE', and the gradient one's), and a
  normalized LMS predictor learnt as the plane is coded (W plus weights times the neighbours'
  differences from W), are blended with weights falling with the square of each predictor's
  error around the pixel (W and N twice, NW, NE, WW). A bias per context (activity and the
  signs of the neighbours against the prediction, as in CALIC) is learnt and added, in eighths
  of a level.
* **Residuals.** Coded as lpc codes them (:mod:`dulzip.coding.binary`): zero?, sign, the
  magnitude's bit length in unary, its low bits; each decision's probability (the mean of an
  estimate adapting at 1/32 and one at 1/256) is kept per class of the local activity: the
  final residuals at W, N, NW, NE (and the previous channel's at the same pixel) with the best
  predictor's local error, in half-octave steps; the first channel apart from the others.

What each part brought on three 384x256 crops of the 16-bit photographs (Dune, LadyBird, Storm,
RGB; bytes in all): the blend of the 11 fixed predictors with lpc's residual decisions 558,725;
the best predictor's error in the coding context 557,553; W and N counted twice and WW added in
the blend's errors 556,050; the LMS predictor 555,016; slower probability rates (1/32 and 1/256
instead of 1/16 and 1/128) 552,488. Weights falling with the cube instead of the square: worse
(560,194 against 557,553).

Payload: channels (1 byte), the least value, the step and the largest level (uint16 each, little-endian),
the level rule (0: offsets, 1: ranks, then the bitmap's zstd frame with its length in 4 bytes),
then the coded residuals. Every decoded value is checked against the largest level; a stream
that ends early, has bytes left over or holds an impossible value is a CorruptDataError.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dulzip.coding import adaptive, binary, zstdio
from dulzip.errors import CorruptDataError

IMAGE16_VERSION = 1  # the layout's ``image16``: files record it, schema.IMAGE16_VERSIONS lists those decoded
N_PRED = 12  # predictors: 7 from the channel itself, 4 more from the previous channel, the LMS one
N_SPATIAL = 7
N_LMS = 8  # the LMS predictor's inputs: neighbours' differences from W
LMS_MAX = 1 << 18  # its weights' bound (4.0 in 1/65536)
N_CLASSES = 40  # half-octave classes of the local activity
N_LEN = 18  # magnitude bit lengths: a residual stays below 2^17
N_PROBS = 2 + 2 * N_LEN + N_LEN * N_LEN  # decisions per class: zero, sign, lengths, low bits
N_BIAS = 16 * 16  # bias contexts per channel: activity class (16) x neighbour signs (16)
FRAC = 3  # the blended prediction's fractional bits
MAX_DECISIONS = 2 + (N_LEN - 1) + (N_LEN - 2)  # per sample, each at most 10 bits of output
ENC, DEC = adaptive.ENC, adaptive.DEC
RULE_OFFSET, RULE_RANK = 0, 1


@njit(cache=True, inline="always")
def _clamp(v, lo, hi):
    return min(max(v, lo), hi)


@njit(cache=True, inline="always")
def _neighbours(x, y, i, c):
    """(W, N, NW, NE) of sample (y, i, c), not the first of its plane; past an edge, the nearest
    known one (the first row: W; the first column: N)."""
    W = x.shape[1]
    if y == 0:
        w = x[y, i - 1, c]
        return w, w, w, w
    n = x[y - 1, i, c]
    return (x[y, i - 1, c] if i > 0 else n, n, x[y - 1, i - 1, c] if i > 0 else n,
            x[y - 1, i + 1, c] if i + 1 < W else n)


@njit(cache=True)
def _predictors(x, y, i, c, M, P):
    """The predictions of sample (y, i, c) into P; returns how many (causal samples only)."""
    H, W, C = x.shape
    if y == 0 and i == 0:
        w = n = nw = ne = (M + 1) >> 1
    else:
        w, n, nw, ne = _neighbours(x, y, i, c)
    ww = x[y, i - 2, c] if i > 1 else w
    nn = x[y - 2, i, c] if y > 1 else n
    nne = x[y - 2, i + 1, c] if y > 1 and i + 1 < W else ne
    P[0] = w
    P[1] = n
    P[2] = ne
    P[3] = _clamp(w + n - nw, 0, M)
    P[4] = _clamp(w + ne - n, 0, M)
    if nw >= max(w, n):  # LOCO-I's median edge detector
        P[5] = min(w, n)
    elif nw <= min(w, n):
        P[5] = max(w, n)
    else:
        P[5] = w + n - nw
    dh = abs(w - ww) + abs(n - nw) + abs(n - ne)  # CALIC's gradient-adjusted prediction
    dv = abs(w - nw) + abs(n - nn) + abs(ne - nne)
    if dv - dh > 80 * (M + 1) // 256:
        g = w
    elif dh - dv > 80 * (M + 1) // 256:
        g = n
    else:
        g2 = 2 * (w + n) + ne - nw  # (w + n) / 2 + (ne - nw) / 4, in quarters
        if dv - dh > 32 * (M + 1) // 256:
            g2 = g2 + 4 * w
            g = g2 // 8
        elif dv - dh > 8 * (M + 1) // 256:
            g2 = 3 * g2 + 4 * w
            g = g2 // 16
        elif dh - dv > 32 * (M + 1) // 256:
            g2 = g2 + 4 * n
            g = g2 // 8
        elif dh - dv > 8 * (M + 1) // 256:
            g2 = 3 * g2 + 4 * n
            g = g2 // 16
        else:
            g = g2 // 4
    P[6] = _clamp(g, 0, M)
    if c == 0:
        return N_SPATIAL
    r = c - 1  # the previous channel, coded at this pixel already
    xr = x[y, i, r]
    if y == 0 and i == 0:
        return N_SPATIAL
    wr, nr, nwr, ner = _neighbours(x, y, i, r)
    P[7] = _clamp(w + xr - wr, 0, M)
    P[8] = _clamp(n + xr - nr, 0, M)
    P[9] = _clamp(ne + xr - ner, 0, M)
    P[10] = _clamp(w + n - nw + xr - (wr + nr - nwr), 0, M)
    return N_PRED


@njit(cache=True)
def _lms_inputs(x, y, i, c, U):
    """The LMS predictor's inputs: causal neighbours minus W (and the previous channel's local
    differences at this pixel), 0 where outside the image."""
    H, W, C = x.shape
    for j in range(N_LMS):
        U[j] = 0
    if y == 0 and i == 0:
        return np.int64(0)
    w = x[y, i - 1, c] if i > 0 else x[y - 1, i, c]
    if y > 0:
        U[0] = x[y - 1, i, c] - w
        if i > 0:
            U[1] = x[y - 1, i - 1, c] - w
        if i + 1 < W:
            U[2] = x[y - 1, i + 1, c] - w
        if y > 1:
            U[4] = x[y - 2, i, c] - w
            if i + 1 < W:
                U[5] = x[y - 2, i + 1, c] - w
    if i > 1:
        U[3] = x[y, i - 2, c] - w
    if c > 0:
        if i > 0:
            U[6] = x[y, i, c - 1] - x[y, i - 1, c - 1]
        if y > 0:
            U[7] = x[y, i, c - 1] - x[y - 1, i, c - 1]
    return w


@njit(cache=True)
def _run(x, M, st, out, cap, data, end, mode):
    """Code (ENC: from x) or decode (DEC: into x) the (H, W, C) levels in [0, M]. Returns 0, -1
    when a decoder's stream ended early or gave a level above M, -2 when an encoder's output
    passed ``cap`` bytes (the caller retries with room for the worst case)."""
    H, W, C = x.shape
    probs = np.full((2 * N_CLASSES, 2 * N_PROBS), 32768, dtype=np.int64)  # fast, then slow
    for k in range(2 * N_CLASSES):  # a prior: class q's residuals have about q / 2 bits
        q = (k % N_CLASSES) >> 1
        for b in range(N_LEN):
            v = 62000 if b < q - 1 else (3500 if b > q + 1 else 32768)
            probs[k, 2 + b] = v
            probs[k, N_PROBS + 2 + b] = v
    perr = np.zeros((2, W, C, N_PRED), dtype=np.int64)  # each predictor's |error| (this row, the one above)
    ferr = np.zeros((2, W, C), dtype=np.int64)  # the final residual's magnitude
    bias_sum = np.zeros((C, N_BIAS), dtype=np.int64)
    bias_n = np.zeros((C, N_BIAS), dtype=np.int64)
    P = np.zeros(N_PRED, dtype=np.int64)
    U = np.zeros(N_LMS, dtype=np.int64)
    lms = np.zeros((C, N_LMS), dtype=np.int64)
    wgt = np.zeros(N_PRED, dtype=np.int64)
    scale = max(1, (M + 1) >> 8)  # activity in units of an 8-bit level, for the bias contexts
    for y in range(H):
        cur = y & 1
        up = cur ^ 1
        for i in range(W):
            for c in range(C):
                n_p = _predictors(x, y, i, c, M, P)
                base_w = _lms_inputs(x, y, i, c, U)
                acc = np.int64(0)
                norm = np.int64(1)
                for j in range(N_LMS):
                    acc += lms[c, j] * U[j]
                    norm += U[j] * U[j]
                p_lms = _clamp(base_w + (acc >> 16), 0, M)
                P[n_p] = p_lms
                n_p += 1
                best = -1
                for k in range(n_p):  # each predictor's error at W, N, NW, NE
                    s = 1
                    if i > 0:
                        s += 2 * perr[cur, i - 1, c, k]
                    if i > 1:
                        s += perr[cur, i - 2, c, k]
                    if y > 0:
                        s += 2 * perr[up, i, c, k]
                        if i > 0:
                            s += perr[up, i - 1, c, k]
                        if i + 1 < W:
                            s += perr[up, i + 1, c, k]
                    wgt[k] = s
                    if best < 0 or s < best:
                        best = s
                num = np.int64(0)
                den = np.int64(0)
                for k in range(n_p):  # weights best^2 / s^2 in 1/65536: the best predictor 65536
                    w_k = (((65536 * best) // wgt[k]) * best) // wgt[k]
                    num += w_k * P[k]
                    den += w_k
                pred8 = ((num << FRAC) + (den >> 1)) // den
                e_w = ferr[cur, i - 1, c] if i > 0 else 0
                e_n = ferr[up, i, c] if y > 0 else 0
                e_nw = ferr[up, i - 1, c] if y > 0 and i > 0 else 0
                e_ne = ferr[up, i + 1, c] if y > 0 and i + 1 < W else 0
                act = 2 * e_w + 2 * e_n + e_nw + e_ne
                if c > 0:
                    act += 2 * ferr[cur, i, c - 1]
                pat = 0  # the neighbours' signs against the prediction (CALIC's texture)
                if y > 0 or i > 0:
                    base = pred8 >> FRAC
                    if (x[y, i - 1, c] if i > 0 else x[y - 1, i, c]) > base:
                        pat |= 1
                    if y > 0 and x[y - 1, i, c] > base:
                        pat |= 2
                    if y > 0 and i > 0 and x[y - 1, i - 1, c] > base:
                        pat |= 4
                    if y > 0 and i + 1 < W and x[y - 1, i + 1, c] > base:
                        pat |= 8
                bctx = min(adaptive.half_octave(act // scale), 15) * 16 + pat
                if bias_n[c, bctx] > 0:
                    pred8 += bias_sum[c, bctx] // bias_n[c, bctx]
                pred = _clamp((pred8 + (1 << (FRAC - 1))) >> FRAC, 0, M)
                row = probs[min(adaptive.half_octave((act + best) >> 2), N_CLASSES - 1) + (N_CLASSES if c > 0 else 0)]
                e = x[y, i, c] - pred if mode == ENC else 0
                e = adaptive.residual(row, e, N_LEN, N_PROBS, 5, 8, st, out, data, end, mode)
                if mode == DEC:
                    val = pred + e
                    if st[0, 4] > 0 or val < 0 or val > M:
                        return -1
                    x[y, i, c] = val
                elif st[0, 2] > cap:
                    return -2
                xv = x[y, i, c]
                for k in range(n_p):
                    perr[cur, i, c, k] = abs(xv - P[k])
                for k in range(n_p, N_PRED):
                    perr[cur, i, c, k] = abs(xv - P[5])
                d = xv - p_lms
                for j in range(N_LMS):
                    lms[c, j] = _clamp(lms[c, j] + ((d * U[j]) << 14) // norm, -LMS_MAX, LMS_MAX)
                ferr[cur, i, c] = abs(e)
                bias_sum[c, bctx] += (xv << FRAC) - pred8
                bias_n[c, bctx] += 1
                if bias_n[c, bctx] >= 256:
                    bias_sum[c, bctx] //= 2
                    bias_n[c, bctx] //= 2
    return 0


def levels(planes: np.ndarray) -> tuple[int, int, int, np.ndarray | None]:
    """(least value, step, largest level, the used levels or None) of ``planes`` (uint16): the
    values less the least one are all multiples of the step (their greatest common divisor);
    divided by it, they are coded as ranks among the used ones where those fill less than half
    their range, else as they are."""
    lo = int(planes.min())
    used = np.unique(planes).astype(np.int64) - lo
    step = int(np.gcd.reduce(used)) or 1
    used //= step
    if 2 * len(used) <= used[-1] + 1:
        return lo, step, len(used) - 1, used
    return lo, step, int(used[-1]), None


def regular(used: np.ndarray) -> bool:
    """Are the used values about evenly spaced (the largest gap at most twice the least), so that
    their ranks are about a linear map of them (12-bit data shifted up, 8-bit data times 257, an
    average of a few 8-bit values scaled to 0..65535)?"""
    gaps = np.diff(used.astype(np.int64))
    return len(gaps) == 0 or int(gaps.max()) <= 2 * int(gaps.min())


def encode_image16(planes: np.ndarray) -> bytes:
    """(H, W, C) uint16 samples (C <= 4) -> the ``image16`` payload: the levels as ranks where the
    used values are few and evenly spaced, as offsets where they are many; where they are few but
    unevenly spaced (ranks bend the image's gradients), both ways, the smaller kept."""
    lo, step, M, used = levels(planes)
    x = (planes.astype(np.int64) - lo) // step
    if used is None or regular(used):
        return _encode_levels(x, lo, step, M, used)
    return min(_encode_levels(x, lo, step, int(used[-1]), None), _encode_levels(x, lo, step, M, used), key=len)


def _encode_levels(x: np.ndarray, lo: int, step: int, M: int, used: np.ndarray | None) -> bytes:
    """The payload of (H, W, C) values (the samples less ``lo``, divided by ``step``)."""
    H, W, C = x.shape
    head = bytes([C]) + lo.to_bytes(2, "little") + step.to_bytes(2, "little") + M.to_bytes(2, "little")
    if used is None:
        head += bytes([RULE_OFFSET])
    else:
        x = np.searchsorted(used, x).astype(np.int64)
        bitmap = np.zeros(int(used[-1]) + 1, dtype=bool)
        bitmap[used] = True
        frame = zstdio.compress(np.packbits(bitmap).tobytes())
        head += bytes([RULE_RANK]) + len(frame).to_bytes(4, "little") + frame
    x = np.ascontiguousarray(x)
    n = H * W * C
    for cap in (2 * n + 1024, (10 * MAX_DECISIONS + 7) // 8 * n + 1024):
        st = binary.new_state(1)
        out = np.zeros((1, cap + 64), dtype=np.uint8)  # a sample adds at most MAX_DECISIONS * 10 bits
        if _run(x, M, st, out, cap, np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64), ENC) == 0:
            return head + out[0, :st[0, 2]].tobytes() + binary.finish(st, 0)
    raise AssertionError("the coder's output outgrew its worst case")  # cannot happen: cap is that bound


def decode_image16(payload: bytes, H: int, W: int, C: int) -> np.ndarray:
    """Inverse of :func:`encode_image16`: the (H, W, C) uint16 samples."""
    if len(payload) < 8 or payload[0] != C or payload[7] not in (RULE_OFFSET, RULE_RANK):
        raise CorruptDataError("a 16-bit image stream has an invalid head")
    lo = int.from_bytes(payload[1:3], "little")
    step = int.from_bytes(payload[3:5], "little")
    M = int.from_bytes(payload[5:7], "little")
    pos = 8
    used = None
    if payload[7] == RULE_RANK:
        n = int.from_bytes(payload[8:12], "little")
        if len(payload) < 12 + n:
            raise CorruptDataError("a 16-bit image stream's levels are truncated")
        bits = zstdio.decompress(payload[12:12 + n], 8192, "a 16-bit image stream's levels", exact=False)
        used = np.flatnonzero(np.unpackbits(np.frombuffer(bits, dtype=np.uint8)))
        if len(used) != M + 1 or used[0] != 0:
            raise CorruptDataError("a 16-bit image stream's levels do not fit its head")
        pos = 12 + n
    top = int(used[-1]) if used is not None else M
    if step == 0 or lo + step * top > 65535:
        raise CorruptDataError("a 16-bit image stream's levels do not fit its head")
    coded = payload[pos:]
    data = np.frombuffer(coded or b"\0", dtype=np.uint8).copy()
    end = np.array([len(coded)], dtype=np.int64)
    st = binary.new_state(1)
    binary.start_decoding(st, 0, data, end)
    x = np.zeros((H, W, C), dtype=np.int64)
    if _run(x, M, st, np.zeros((1, 1), dtype=np.uint8), 0, data, end, DEC) < 0:
        raise CorruptDataError("a 16-bit image stream ends early or holds an impossible level (damaged file)")
    if st[0, 2] != len(coded) or st[0, 4]:
        raise CorruptDataError("a 16-bit image stream has bytes its samples do not use (damaged file)")
    return (lo + step * (used[x] if used is not None else x)).astype(np.uint16)
