"""Audio by online adaptive filters in integers: the default coder of WAVs (issue 22).

The WaveNet coders (:mod:`dulzip.codecs.audio`) decoded music at about real time and speech at
a few times real time, and were level with FLAC on music they had not seen. The best classical
coders (Monkey's Audio, OptimFROG, sac) instead learn from every sample as it is coded, with
cheap integer filters. This coder does so, with no network and no torch (the file's header
names no model): a block of a channel pair (or of a lone channel) is coded sample by sample,
channel 0 then channel 1 of each frame, in one njit loop that releases the GIL, so that the
blocks of a file are coded on several threads.

* **Pre-filter.** u = x - 31/32 x[t - 1] (in integers), so that the filters see a flatter spectrum.
* **Cascade.** Stages in series, each predicting its input (u, then the residual of the stage
  before) from its last inputs and learning towards its own residual, after every sample:
  normalized LMS stages (the step divided by the energy of the inputs, in fixed point with
  60 - bits fraction bits) and, for music rates, long sign-sign stages: each weight moves by a
  step against the error's sign, the step set when its input arrived (8, 16 or 32, larger for
  inputs large against their recent mean, halved as the input ages past 1, 2 and 8 samples:
  Monkey's Audio's rule), which learn far faster than normalized LMS on music's uneven
  spectrum (on 15 s of an orchestral MIDI render: a lone 256-tap NLMS stage, 37% above FLAC;
  32-tap NLMS, then 256 taps sign-sign, then 16-tap NLMS, 6% below). Each stage's prediction
  of its next input is computed in the pass that updates its weights.
* **Mix.** The final prediction is a learnt (NLMS) combination of the cumulative predictions
  (stage 1, stages 1-2, ..., all stages plus the cross-channel stage), so that a stage that
  adds noise is weighed down.
* **Stereo.** Channel 1 is coded as its difference from channel 0 where that difference varies
  less (a test on the block's samples; recorded), and a cross-channel stage predicts each
  channel's last residual from the other channel's last residuals (for channel 1, channel 0's
  of the same frame).
* **Grids.** Where a channel's samples all lie near a grid of a step above 2 that need not be
  an integer (a low-resolution recording scaled by a gain: some sample libraries' violins sit
  on multiples of 40.6), the block is also coded with each sample replaced by its grid index,
  and the smaller kept (the table of used values and their indices in the payload). On the
  held-out music this took two VSCO violin samples from 179,092 and 179,899 bytes to 66,969
  and 90,342 (sac: 58,831 and 82,329), and the folder from 0.953 of FLAC's size to 0.938.
* **Residuals** are coded by :mod:`dulzip.coding.binary` (zero?, sign, the bit length of
  |e| - 1 counted from the length the recent residuals suggest, then the bits below the leading
  one), each decision's probability the mean of a fast and a slow adaptive estimate kept per
  half-octave class of the recent mean magnitude; only the three bits below the leading one are
  modelled, lower ones go at 1/2.

Settings (the stages' taps and steps, the rates, the stereo choice) are written at the start
of each block's payload, so that later tuning never changes how a file decodes; the decoder
refuses settings outside the ranges it runs. Every value is an integer; a residual, a decoded
sample or a setting out of range is a CorruptDataError.

What each part brings (size against ``flac -8``, on the tuning sets: 13 excerpts of
``music-tune`` and the 62 English prompts of ``speech-test``; ``benchmarks/experiments/cascade_ablation.py``):
see ``benchmarks/results/cascade-ablation.md``.

Payload: the number of settings (1 byte), the settings (uint16 each, little-endian), the
grids' section (:func:`pack_grids`: a byte of mapped channels, then their tables), then the
coded residuals.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from dulzip.codecs.stream import Stream, cuts
from dulzip.coding import adaptive, binary, zstdio
from dulzip.errors import CorruptDataError
from dulzip.formats.wav import Layout, frames_of, sample_bytes

ENC, DEC = adaptive.ENC, adaptive.DEC
WIN = 4096  # history buffers: WIN samples appended before the last orders are moved to the front
W_MAX = 1 << 24  # a weight's bound (256 in 1/65536)
N_CLASSES = 48  # half-octave classes of the recent mean magnitude
N_LEN = 28  # magnitude bit lengths: a residual of 24-bit audio (its side channel: 25 bits) stays below 2^26
UP, DOWN = 3, 3 + N_LEN  # the length decisions away from the pivot, upwards and downwards
LOW = 3 + 2 * N_LEN  # the bits below the leading one, per length
N_PROBS = LOW + N_LEN * N_LEN
MAX_DECISIONS = 3 + (N_LEN - 1) + (N_LEN - 2)  # zero, sign, pivot, length steps, bits below the leading one
MODELLED = 3  # bits below a residual's leading one that are modelled (the rest: probability 1/2)
GRID_SEARCH = 32  # grid sizes tried on either side of the one the common gaps suggest

# A block's settings (a row of small integers, stored in its payload):
# [bits, stereo, cross taps, pre-filter, fast rate, slow rate, magnitude rate, mix rate, stages,
#  then per stage: taps, step]
BITS, STEREO, CROSS, PRE, RATE_FAST, RATE_SLOW, AVG_RATE, MIX, N_STAGES = range(9)
HEAD = 9
MAX_STAGES = 8
MAX_ORDER = 2048  # a stage's taps at most
MAX_CROSS = 8  # the cross-channel stage's taps at most
SIGN = 200  # a step of SIGN + k (k <= 3): a sign-sign stage (steps of 8, 16 or 32 << k); below: NLMS, 2^-(step - 8)
CROSS_STEP = 12  # the cross-channel stage's NLMS step shift
BLOCK = 1 << 18  # frames per block (5.9 s at 44.1 kHz): blocks are coded independently, in parallel
CASCADE_VERSION = 1  # the layout's ``cascade``: files record it, schema.CASCADE_VERSIONS lists those decoded
SPEECH_RATE = 16000  # sample rates up to this one take SPEECH_STAGES, faster ones MUSIC_STAGES
SPEECH_STAGES = ((64, 10), (32, 11), (16, 11), (8, 10))
MUSIC_STAGES = ((32, 13), (1024, SIGN + 1), (256, SIGN + 3), (16, 12))
# a file of one block decodes on one thread: half the long taps, a quarter faster, 0.3% larger
MUSIC_STAGES_ONE_BLOCK = ((32, 13), (512, SIGN + 2), (256, SIGN + 3), (16, 12))


@njit(cache=True, inline="always")
def _residual(row, e, pivot, fast, slow, st, out, data, end, mode):
    """A residual as decisions in ``row``: zero?, its sign, the bit length k of |e| - 1 from
    ``pivot`` (the length its class expects): k >= pivot?, then one step at a time away from
    the pivot (up: k > j?, down: k < j?), then the bits below the leading one, of which only
    the MODELLED highest are modelled (the lower ones are about even, and go at probability
    1/2). Starting from the expected length, a residual takes two or three length decisions
    instead of k + 1 (unary from 0): on 10 s of an orchestral render, 0.2% smaller and 6% faster."""
    if adaptive.bit(row, 0, N_PROBS, fast, slow, 1 if e == 0 else 0, st, out, data, end, mode):
        return 0
    neg = adaptive.bit(row, 1, 1 + N_PROBS, fast, slow, 1 if e < 0 else 0, st, out, data, end, mode)
    m = abs(e) - 1
    k = 0  # the bit length of m (the encoder's; the decoder finds it from the decisions)
    while mode == ENC and k < N_LEN - 1 and (m >> k) > 0:
        k += 1
    up = adaptive.bit(row, 2, 2 + N_PROBS, fast, slow, 1 if k >= pivot else 0, st, out, data, end, mode)
    if up:
        j = pivot
        while j < N_LEN - 1 and adaptive.bit(row, UP + j, UP + j + N_PROBS, fast, slow, 1 if k > j else 0,
                                             st, out, data, end, mode):
            j += 1
    else:
        j = pivot - 1
        while j > 0 and adaptive.bit(row, DOWN + j, DOWN + j + N_PROBS, fast, slow, 1 if k < j else 0,
                                     st, out, data, end, mode):
            j -= 1
    k = j
    v = 0 if k == 0 else 1
    for i in range(k - 2, -1, -1):
        if i >= k - 1 - MODELLED:
            sl = LOW + k * N_LEN + i
            b = adaptive.bit(row, sl, sl + N_PROBS, fast, slow, (m >> i) & 1, st, out, data, end, mode)
        elif mode == ENC:
            b = (m >> i) & 1
            binary.encode_bit(st, 0, out, b, 32768)
        else:
            b = binary.decode_bit(st, 0, data, end, 32768)
        v = 2 * v + b
    return -(v + 1) if neg else v + 1


@njit(cache=True, nogil=True)
def _run(x, cfg, st, out, cap, data, end, mode):
    """Code (ENC: from x) or decode (DEC: into x) the (n, C) samples of a block, C = 1 or 2.
    Returns 0, -1 when a decoder's stream ended early or gave an impossible sample, -2 when an
    encoder's output passed ``cap`` bytes."""
    n, C = x.shape
    bits, stereo, xs, pre = cfg[BITS], cfg[STEREO], cfg[CROSS], cfg[PRE]
    fast, slow, arate, mix, S = cfg[RATE_FAST], cfg[RATE_SLOW], cfg[AVG_RATE], cfg[MIX], cfg[N_STAGES]
    order = np.zeros(S, dtype=np.int64)
    step = np.zeros(S, dtype=np.int64)
    for s in range(S):
        order[s] = cfg[HEAD + 2 * s]
        step[s] = cfg[HEAD + 2 * s + 1]
    omax = max(order.max(), 8)
    L = omax + WIN
    gbits = 60 - bits  # an NLMS step's fraction bits: |residual| < 2^(bits + 1), so |g * input| < 2^61
    lo = -(np.int64(1) << (bits - 1))
    hi = (np.int64(1) << (bits - 1)) - 1
    h = np.zeros((S, C, L), dtype=np.int64)  # stage s's inputs: u (the pre-filtered signal), then residuals
    dh = np.zeros((S, C, L), dtype=np.int64)  # a sign-sign stage's step for each of its inputs
    pos = omax  # next write index: the last omax inputs lie before it
    w = np.zeros((S, C, omax), dtype=np.int64)
    en = np.zeros((S, C), dtype=np.int64)  # energies of each NLMS stage's last order inputs
    ain = np.zeros((S, C), dtype=np.int64)  # 16 x the mean magnitude of a sign-sign stage's inputs
    pn = np.zeros((S, C), dtype=np.int64)  # each stage's prediction of its next input
    cum = np.zeros(S, dtype=np.int64)  # the prediction of the stages up to s
    r = np.zeros(S + 1, dtype=np.int64)
    a_mix = np.zeros((C, S + 1), dtype=np.int64)  # the mix of the cumulative predictions (1/65536)
    a_mix[:, S] = 1 << 16
    fr = np.zeros((C, MAX_CROSS), dtype=np.int64)  # each channel's last stage residuals, newest first
    wx = np.zeros((C, MAX_CROSS), dtype=np.int64)
    probs = np.full((C * N_CLASSES, 2 * N_PROBS), 32768, dtype=np.int64)  # fast, then slow
    probs[:, UP:LOW] = 20000  # a prior: the length is near the pivot
    probs[:, N_PROBS + UP:N_PROBS + LOW] = 20000
    avg = np.full(C, 16 * 64, dtype=np.int64)
    prev = np.zeros(C, dtype=np.int64)
    for t in range(n):
        for c in range(C):
            o = 1 - c
            for s in range(S):  # the stages' predictions (pn), made when the last sample was learnt
                cum[s] = pn[s, c] + (cum[s - 1] if s > 0 else 0)
            px = np.int64(0)  # the cross-channel stage: the other channel's last stage residuals
            if xs > 0 and C == 2:  # (channel 1: channel 0's of this very frame)
                acc = np.int64(0)
                for j in range(xs):
                    acc += wx[c, j] * fr[o, j]
                px = acc >> 16
            cx = cum[S - 1] + px
            if mix > 0:
                acc = np.int64(0)
                for s in range(S):
                    acc += a_mix[c, s] * cum[s]
                acc += a_mix[c, S] * cx
                tot = acc >> 16
            else:
                tot = cx
            side = c == 1 and stereo == 1  # channel 1 coded as its difference from channel 0
            ref = x[t, 0] if side else 0
            clo = lo - ref
            chi = hi - ref
            base = (prev[c] * pre) >> 5
            pred = min(max(base + tot, clo), chi)
            cls = min(adaptive.half_octave(avg[c] >> 4), N_CLASSES - 1)
            pivot = min(max((cls - 1) >> 1, 0), N_LEN - 1)
            e = x[t, c] - ref - pred if mode == ENC else 0
            e = _residual(probs[c * N_CLASSES + cls], e, pivot, fast, slow, st, out, data, end, mode)
            if mode == DEC:
                v = pred + e
                if st[0, 4] > 0 or v < clo or v > chi:
                    return -1
                x[t, c] = v + ref
            elif st[0, 2] > cap:
                return -2
            xv = x[t, c] - ref
            avg[c] += ((abs(e) << 4) - avg[c]) >> arate
            r[0] = xv - base
            for s in range(S):
                r[s + 1] = r[s] - pn[s, c]
            if mix > 0:  # NLMS over the cumulative predictions, towards u
                em = r[0] - tot
                ee = np.int64(S + 1) + cx * cx
                for s in range(S):
                    ee += cum[s] * cum[s]
                g = (em << gbits) // ee
                for s in range(S):
                    a_mix[c, s] = min(max(a_mix[c, s] + ((g * cum[s]) >> (gbits - 16 + mix)), -W_MAX), W_MAX)
                a_mix[c, S] = min(max(a_mix[c, S] + ((g * cx) >> (gbits - 16 + mix)), -W_MAX), W_MAX)
            for s in range(S):  # each stage learns towards its own residual, and predicts its next input
                m = order[s]
                es = r[s + 1]
                vv = r[s]
                h[s, c, pos] = vv
                q = pos - m  # its inputs were h[q:pos]; the next ones are h[q + 1:pos + 1]
                acc = np.int64(0)
                ws = w[s, c]
                hs = h[s, c, q:pos + 1]
                if step[s] >= SIGN:  # sign-sign: each weight moves by its input's step, against the error's sign
                    ds = dh[s, c, q:pos]  # (no bound needed: a block moves a weight by at most 256 x 2^18)
                    if es > 0:
                        for j in range(m):
                            wj = ws[j] + ds[j]
                            ws[j] = wj
                            acc += wj * hs[j + 1]
                    elif es < 0:
                        for j in range(m):
                            wj = ws[j] - ds[j]
                            ws[j] = wj
                            acc += wj * hs[j + 1]
                    else:
                        for j in range(m):
                            acc += ws[j] * hs[j + 1]
                    av = abs(vv)  # the new input's step: larger for inputs large against the mean;
                    a16 = ain[s, c]  # halved as it ages past 1, 2 and 8 samples (Monkey's Audio's rule)
                    k = np.int64(0)
                    if av * 16 > a16 * 3:
                        k = 32
                    elif av * 48 > a16 * 4:
                        k = 16
                    elif av != 0:
                        k = 8
                    k <<= step[s] - SIGN
                    dh[s, c, pos] = k if vv > 0 else -k
                    ain[s, c] += av - (a16 >> 4)
                    dh[s, c, pos - 1] >>= 1
                    dh[s, c, pos - 2] >>= 1
                    dh[s, c, pos - 8] >>= 1
                else:  # normalized LMS: by the energy of its inputs
                    g = (es << gbits) // (en[s, c] + m + 1)
                    sh = step[s] + gbits - 24
                    for j in range(m):
                        wj = min(max(ws[j] + ((g * hs[j]) >> sh), -W_MAX), W_MAX)
                        ws[j] = wj
                        acc += wj * hs[j + 1]
                    old = h[s, c, q]
                    en[s, c] += vv * vv - old * old
                pn[s, c] = acc >> 16
            if xs > 0 and C == 2:
                fin = r[S]
                ee = np.int64(xs)
                for j in range(xs):
                    ee += fr[o, j] * fr[o, j]
                g = ((fin - px) << gbits) // ee
                for j in range(xs):
                    wx[c, j] = min(max(wx[c, j] + ((g * fr[o, j]) >> (gbits - 24 + CROSS_STEP)), -W_MAX), W_MAX)
                for j in range(MAX_CROSS - 1, 0, -1):
                    fr[c, j] = fr[c, j - 1]
                fr[c, 0] = fin
            prev[c] = xv
        pos += 1
        if pos == L:
            for s in range(S):
                for c in range(C):
                    for j in range(omax):
                        h[s, c, j] = h[s, c, L - omax + j]
                        dh[s, c, j] = dh[s, c, L - omax + j]
            pos = omax
    return 0


def encode_block(x: np.ndarray, cfg: np.ndarray, grids: tuple = ()) -> bytes:
    """(n, C) values of one block of one channel group (C: 1 or 2) -> its ``cascade`` payload:
    the settings (a byte giving their count, then each as uint16, little-endian), the grids'
    section (:func:`pack_grids`; ``grids``: per channel None or the (values, indices) its
    samples were mapped by), then the coded residuals."""
    x = np.ascontiguousarray(x, dtype=np.int64)
    n = x.size
    head = bytes([len(cfg)]) + np.asarray(cfg, dtype="<u2").tobytes() + pack_grids(grids or (None,) * x.shape[1])
    for cap in (4 * n + 1024, (10 * MAX_DECISIONS + 7) // 8 * n + 1024):
        st = binary.new_state(1)
        out = np.zeros((1, cap + 64), dtype=np.uint8)  # a sample adds at most MAX_DECISIONS * 10 bits
        if _run(x, cfg, st, out, cap, np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64),
                ENC) == 0:
            return head + out[0, :st[0, 2]].tobytes() + binary.finish(st, 0)
    raise AssertionError("the coder's output outgrew its worst case")  # cannot happen: cap is that bound


def find_grid(v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, indices) where a channel's samples all lie near a grid of some step g > 2 (not
    an integer, say 40.6: a low-resolution recording scaled up, as some sample libraries are):
    value i of the sorted used values sits at grid point indices[i]. Coding each sample as its
    grid index instead (:func:`map_grid`) takes the scale and its rounding noise away. None
    where the used values are not such a grid (the encoder decides; the decoder only reads)."""
    lo, hi = int(v.min(initial=0)), int(v.max(initial=0))
    if hi - lo < (1 << 20):  # the used values by counting (much faster than np.unique's hashing)
        u = np.flatnonzero(np.bincount(v - lo)) + lo
    else:
        u = np.unique(v)
    if len(u) < 16 or 4 * len(u) > int(u[-1] - u[0]):
        return None
    d = np.diff(u)
    if d.min() < 2:
        return None
    span = int(u[-1] - u[0])
    guess = int(round(span / float(d[d < 1.5 * d.min()].mean())))  # exact-ok: the encoder's choice, sent as integers
    off = (u - u[0]).astype(np.int64)
    for k in sorted(range(max(len(u) - 1, guess - GRID_SEARCH), guess + GRID_SEARCH + 1), key=lambda k: abs(k - guess)):
        idx = (off * k + span // 2) // span  # the nearest of k + 1 evenly spaced points, in integers
        if np.all(np.diff(idx) >= 1) and np.abs(off * k - idx * span).max() * 3 <= span:
            return u.astype(np.int64), idx
    return None


def map_grid(v: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Samples -> their grid indices, centred on 0."""
    u, idx = grid
    return idx[np.searchsorted(u, v)] - int(idx[-1]) // 2


def pack_grids(grids) -> bytes:
    """The grids' section: a byte whose bit c says channel c is mapped, then for each mapped
    channel its table (4-byte length, then zstd of int64 little-endian: the count, the least
    value, then the values' and the indices' steps)."""
    mask, body = 0, b""
    for c, grid in enumerate(grids):
        if grid is not None:
            u, idx = grid
            mask |= 1 << c
            table = zstdio.compress(np.concatenate([[len(u), u[0]], np.diff(u), np.diff(idx)]).astype("<i8").tobytes())
            body += len(table).to_bytes(4, "little") + table
    return bytes([mask]) + body


def read_grids(data: bytes, C: int, bits: int) -> tuple[list, bytes]:
    """(per channel None or (lookup of index -> value, -2^40 where unused; centre), the rest) of a
    grids' section; CorruptDataError where a table is damaged or does not fit ``bits``."""
    if not data or data[0] >> C:
        raise CorruptDataError("a cascade audio block's grids are damaged")
    mask, pos, out = data[0], 1, []
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for c in range(C):
        if not mask >> c & 1:
            out.append(None)
            continue
        n = int.from_bytes(data[pos:pos + 4], "little")
        raw = zstdio.decompress(data[pos + 4:pos + 4 + n], 16 << bits, "a cascade audio block's grid", exact=False)
        pos += 4 + n
        if len(raw) < 32 or len(raw) % 8:
            raise CorruptDataError("a cascade audio block's grid is damaged")
        t = np.frombuffer(raw, dtype="<i8").astype(np.int64)
        count = int(t[0])
        if count < 2 or len(t) != 2 * count or not lo <= t[1] <= hi:
            raise CorruptDataError("a cascade audio block's grid is damaged")
        steps = t[2:]  # each bounded first, so that their sums cannot overflow
        if (steps.min() < 1 or steps.max() > hi - lo or t[1] + steps[:count - 1].sum() > hi
                or steps[count - 1:].sum() > hi - lo):
            raise CorruptDataError("a cascade audio block's grid is damaged")
        u = t[1] + np.concatenate([[0], np.cumsum(steps[:count - 1])])
        idx = np.concatenate([[0], np.cumsum(steps[count - 1:])])
        lut = np.full(int(idx[-1]) + 1, -1 << 40, dtype=np.int64)
        lut[idx] = u
        out.append((lut, int(idx[-1]) // 2))
    return out, data[pos:]


def read_settings(payload: bytes, bits: int, C: int) -> tuple[np.ndarray, bytes]:
    """(settings, coded residuals) of a ``cascade`` payload; CorruptDataError where the settings
    are not ones this coder runs (a damaged or hostile file)."""
    k = payload[0] if payload else 0
    if k < HEAD or len(payload) < 1 + 2 * k:
        raise CorruptDataError("a cascade audio block's settings are truncated")
    cfg = np.frombuffer(payload[1:1 + 2 * k], dtype="<u2").astype(np.int64)
    S = int(cfg[N_STAGES])
    ok = (cfg[BITS] == bits and 0 < S <= MAX_STAGES and k == HEAD + 2 * S and cfg[CROSS] <= MAX_CROSS
          and cfg[PRE] <= 32 and 1 <= cfg[RATE_FAST] <= 16 and 1 <= cfg[RATE_SLOW] <= 16 and 1 <= cfg[AVG_RATE] <= 12
          and cfg[MIX] <= 40 and (C == 2 or cfg[CROSS] == 0 and cfg[STEREO] == 0) and cfg[STEREO] <= 1)
    for s in range(S if ok else 0):
        step = cfg[HEAD + 2 * s + 1]
        ok = ok and cfg[HEAD + 2 * s] <= MAX_ORDER and (8 <= step <= 40 or SIGN <= step <= SIGN + 3)
    if not ok:
        raise CorruptDataError("a cascade audio block has settings this coder does not run")
    return cfg, payload[1 + 2 * k:]


def decode_block(payload: bytes, n: int, C: int, bits: int) -> np.ndarray:
    """Inverse of :func:`encode_block`: the block's (n, C) samples (int64)."""
    cfg, rest = read_settings(payload, bits, C)
    grids, coded = read_grids(rest, C, bits)
    data = np.frombuffer(coded or b"\0", dtype=np.uint8).copy()
    end = np.array([len(coded)], dtype=np.int64)
    st = binary.new_state(1)
    binary.start_decoding(st, 0, data, end)
    x = np.zeros((n, C), dtype=np.int64)
    if _run(x, cfg, st, np.zeros((1, 1), dtype=np.uint8), 0, data, end, DEC) < 0:
        raise CorruptDataError("a cascade audio block ends early or holds an impossible sample (damaged file)")
    if st[0, 2] != len(coded) or st[0, 4]:
        raise CorruptDataError("a cascade audio block has bytes its samples do not use (damaged file)")
    for c, grid in enumerate(grids):
        if grid is not None:
            lut, centre = grid
            i = x[:, c] + centre
            if i.size and (i.min() < 0 or i.max() >= len(lut)):
                raise CorruptDataError("a cascade audio block holds a sample off its grid (damaged file)")
            x[:, c] = lut[i]
            if x[:, c].min(initial=0) < -(1 << (bits - 1)):
                raise CorruptDataError("a cascade audio block holds a sample off its grid (damaged file)")
    return x


def settings(bits: int, rate: int, C: int, x: np.ndarray | None = None, one_block: bool = False) -> np.ndarray:
    """The settings a block is coded with (recorded in its payload, so that later tuning never
    changes how an old file decodes): the stages by sample rate; for a pair of channels the
    cross-channel stage, and whether channel 1 goes as its difference from channel 0 (where the
    difference varies less than channel 1 itself: a cheap test on the block's samples ``x``)."""
    stereo = 0
    if C == 2 and x is not None and len(x) > 1:
        stereo = int(np.abs(np.diff(x[:, 1] - x[:, 0])).sum() < np.abs(np.diff(x[:, 1])).sum())
    stages = SPEECH_STAGES if rate <= SPEECH_RATE else MUSIC_STAGES_ONE_BLOCK if one_block else MUSIC_STAGES
    cfg = [bits, stereo, 4 if C == 2 else 0, 31, 4, 7, 3, 7, len(stages)]
    for order, step in stages:
        cfg += [order, step]
    return np.array(cfg, dtype=np.int64)


def groups(channels: int) -> list[tuple[int, int]]:
    """(first channel, count) of each channel group: pairs, the last one alone if odd."""
    return [(c, min(2, channels - c)) for c in range(0, channels, 2)]


def _from_pcm(raw: bytes, bits: int, C: int) -> np.ndarray:
    return frames_of(raw, Layout(0, bits, C, 0, len(raw) // (C * bits // 8))).astype(np.int64)


def encode_frames(x: np.ndarray, bits: int, rate: int, allow_zstd: bool = True, one_block: bool = False) -> list[Stream]:
    """One block of (n, channels) samples -> one stream per channel group: the ``cascade``
    payload or, where smaller, zstd -19 of the group's PCM bytes. ``one_block``: the file's
    only block (lighter settings: nothing to decode in parallel with it)."""
    out = []
    for c0, C in groups(x.shape[1]):
        g = np.ascontiguousarray(x[:, c0:c0 + C], dtype=np.int64)
        coded = Stream("cascade", encode_block(g, settings(bits, rate, C, g, one_block)))
        grids = tuple(find_grid(g[:, c]) for c in range(C))
        if any(grids):  # samples on a grid: coded as their grid indices too, the smaller kept
            y = np.stack([g[:, c] if grid is None else map_grid(g[:, c], grid) for c, grid in enumerate(grids)], 1)
            mapped = encode_block(y, settings(bits, rate, C, y, one_block), grids)
            if len(mapped) < len(coded.payload):
                coded = Stream("cascade", mapped)
        if allow_zstd:
            raw = sample_bytes(g, bits)
            if zstdio.could_win(raw, len(coded.payload), 0, far=False):  # zstd -19 is slow: only where it could win
                packed = Stream("zstd", zstdio.compress(raw))
                if len(packed.payload) < len(coded.payload):
                    coded = packed
        out.append(coded)
    return out


def decode_frames(streams: list[Stream], n: int, channels: int, bits: int) -> np.ndarray:
    """Inverse of :func:`encode_frames`: the block's (n, channels) samples, int16 (int32 for 24-bit)."""
    out = np.zeros((n, channels), dtype=np.int32 if bits == 24 else np.int16)
    for (c0, C), st in zip(groups(channels), streams):
        if st.coder == "cascade":
            x = decode_block(st.payload, n, C, bits)
        elif st.coder == "zstd":
            x = _from_pcm(zstdio.decompress(st.payload, n * C * bits // 8, "an audio block"), bits, C)
        else:
            raise CorruptDataError(f"unknown coder '{st.coder}' for an audio block")
        out[:, c0:c0 + C] = x
    return out


def encode_samples(samples: np.ndarray, bits: int, rate: int, block: int = BLOCK, threads: int = 1,
                   allow_zstd: bool = True) -> list[Stream]:
    """(frames, channels) samples -> for each block in turn, one stream per channel group
    (:func:`encode_frames`). Blocks are coded on ``threads`` threads (the njit loop releases the
    GIL); the output does not depend on it."""
    with ThreadPoolExecutor(max(1, threads)) as pool:
        blocks = cuts(len(samples), block)
        parts = pool.map(lambda b: encode_frames(samples[b[0]:b[0] + b[1]], bits, rate, allow_zstd, len(blocks) == 1),
                         blocks)
        return [s for part in parts for s in part]


def decode_samples(streams: list[Stream], frames: int, channels: int, bits: int, block: int,
                   threads: int = 1) -> np.ndarray:
    """Inverse of :func:`encode_samples`: the (frames, channels) samples, int16 (int32 for 24-bit)."""
    G = len(groups(channels))
    blocks = cuts(frames, block)
    if len(streams) != len(blocks) * G:
        raise CorruptDataError(f"expected {len(blocks) * G} audio blocks, found {len(streams)}")
    out = np.zeros((frames, channels), dtype=np.int32 if bits == 24 else np.int16)

    def run(i: int) -> None:
        s, n = blocks[i]
        out[s:s + n] = decode_frames(streams[i * G:(i + 1) * G], n, channels, bits)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(run, range(len(blocks))))
    return out
