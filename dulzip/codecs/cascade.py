"""Audio by online adaptive filters: a cascade of normalized LMS predictors, in integers.

(prototype: described fully once measured)
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from dulzip.codecs.stream import Stream, cuts
from dulzip.coding import adaptive, binary, zstdio
from dulzip.errors import CorruptDataError

ENC, DEC = adaptive.ENC, adaptive.DEC
WIN = 4096  # history buffers: WIN samples appended before the last orders are moved to the front
W_MAX = 1 << 24  # a weight's bound (256 in 1/65536)
N_CLASSES = 48  # half-octave classes of the recent mean magnitude
N_LEN = 28  # magnitude bit lengths: a residual of 24-bit audio (its side channel: 25 bits) stays below 2^26
N_PROBS = 2 + 2 * N_LEN + N_LEN * N_LEN
MAX_DECISIONS = 2 + (N_LEN - 1) + (N_LEN - 2)

# cfg: [bits, cross, pre, rate_fast, rate_slow, avg_rate, n_stages, order_0, mu_0, order_1, mu_1, ...]
BITS, STEREO, CROSS, PRE, RATE_FAST, RATE_SLOW, AVG_RATE, MIX, N_STAGES = range(9)
HEAD = 9
MAX_STAGES = 8
STAGES = ((64, 14), (32, 13), (16, 12), (8, 11))  # (taps, step shift) of each stage, longest first
BLOCK = 1 << 20  # frames per block: blocks are coded independently (in parallel)
CASCADE_VERSION = 1  # the layout's ``cascade``: files record it, schema.CASCADE_VERSIONS lists those decoded
MAX_ORDER = 2048  # a stage's taps (and the cross-channel ones) at most


@njit(cache=True, inline="always")
def _half_octave(v):
    if v <= 0:
        return 0
    k = 0
    t = v
    while t > 1:
        t >>= 1
        k += 1
    half = (v >> (k - 1)) & 1 if k > 0 else 0
    return 1 + 2 * k + half


@njit(cache=True, nogil=True)
def _run(x, cfg, st, out, cap, data, end, mode):
    """Code (ENC: from x) or decode (DEC: into x) the (n, C) samples. Returns 0, -1 when a
    decoder's stream ended early or gave an impossible sample, -2 when an encoder passed cap."""
    n, C = x.shape
    bits, cross, pre, stereo = cfg[BITS], cfg[CROSS], cfg[PRE], cfg[STEREO]
    fast, slow, arate, S = cfg[RATE_FAST], cfg[RATE_SLOW], cfg[AVG_RATE], cfg[N_STAGES]
    mix = cfg[MIX]
    a_mix = np.full((C, S), 1 << 14, dtype=np.int64)
    order = np.zeros(S, dtype=np.int64)
    mu = np.zeros(S, dtype=np.int64)
    for s in range(S):
        order[s] = cfg[HEAD + 2 * s]
        mu[s] = cfg[HEAD + 2 * s + 1]
    omax = max(order.max(), cross)
    L = omax + WIN
    lo = -(np.int64(1) << (bits - 1))
    hi = (np.int64(1) << (bits - 1)) - 1
    h = np.zeros((S, C, L), dtype=np.int64)  # stage s's inputs: u (the pre-filtered signal), then residuals
    pos = omax  # next write index: the last omax inputs lie before it
    w = np.zeros((S, C, omax), dtype=np.int64)
    wx = np.zeros((C, max(cross, 1)), dtype=np.int64)
    en = np.zeros((S, C), dtype=np.int64)  # energies of each stage's last order inputs
    ex = np.zeros(C, dtype=np.int64)  # of the last cross values of u
    p = np.zeros(S, dtype=np.int64)
    r = np.zeros(S + 1, dtype=np.int64)
    probs = np.full((C * N_CLASSES, 2 * N_PROBS), 32768, dtype=np.int64)
    for k in range(C * N_CLASSES):
        q = (k % N_CLASSES) >> 1
        for b in range(N_LEN):
            v = 62000 if b < q - 1 else (3500 if b > q + 1 else 32768)
            probs[k, 2 + b] = v
            probs[k, N_PROBS + 2 + b] = v
    avg = np.full(C, 16 * 64, dtype=np.int64)
    prev = np.zeros(C, dtype=np.int64)
    for t in range(n):
        for c in range(C):
            o = 1 - c
            # channel 1 sees channel 0's u at t already (written at pos), channel 0 sees channel 1's up to t - 1
            xq = pos + 1 if c == 1 else pos
            tot = np.int64(0)
            for s in range(S):
                m = order[s]
                acc = np.int64(0)
                for j in range(m):
                    acc += w[s, c, j] * h[s, c, pos - m + j]
                if s == 0 and cross > 0 and C == 2:
                    for j in range(cross):
                        acc += wx[c, j] * h[0, o, xq - cross + j]
                p[s] = acc >> 16
                tot += a_mix[c, s] * p[s]
            tot >>= 14
            base = (prev[c] * pre) >> 5
            side = c == 1 and stereo == 1  # channel 1 coded as its difference from channel 0
            ref = x[t, 0] if side else 0
            clo = lo - ref
            chi = hi - ref
            pred = min(max(base + tot, clo), chi)
            a = avg[c] >> 4
            cls = min(_half_octave(a), N_CLASSES - 1)
            e = x[t, c] - ref - pred if mode == ENC else 0
            e = adaptive.residual(probs[c * N_CLASSES + cls], e, N_LEN, N_PROBS, fast, slow,
                                  st, out, data, end, mode)
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
            if mix > 0:
                sg = 1 if e > 0 else (-1 if e < 0 else 0)
                for s in range(S):
                    ps = 1 if p[s] > 0 else (-1 if p[s] < 0 else 0)
                    a_mix[c, s] = min(max(a_mix[c, s] + sg * ps * mix, 0), 1 << 15)
            for s in range(S):
                r[s + 1] = r[s] - p[s]
            # each stage learns towards its own residual, normalized by its inputs' energy
            for s in range(S):
                m = order[s]
                if m == 0:
                    continue
                extra = ex[o] if (s == 0 and cross > 0 and C == 2) else 0
                g = (r[s + 1] << 24) // (en[s, c] + extra + m + 1)
                sh = mu[s]
                for j in range(m):
                    w[s, c, j] = min(max(w[s, c, j] + ((g * h[s, c, pos - m + j]) >> sh), -W_MAX), W_MAX)
                if s == 0 and cross > 0 and C == 2:
                    for j in range(cross):
                        wx[c, j] = min(max(wx[c, j] + ((g * h[0, o, xq - cross + j]) >> sh), -W_MAX), W_MAX)
            for s in range(S):
                m = order[s]
                vv = r[s]
                old = h[s, c, pos - m]
                en[s, c] += vv * vv - old * old
                h[s, c, pos] = vv
            if cross > 0:
                old = h[0, c, pos - cross]
                ex[c] += r[0] * r[0] - old * old
            prev[c] = xv
        pos += 1
        if pos == L:
            for s in range(S):
                for c in range(C):
                    for j in range(omax):
                        h[s, c, j] = h[s, c, L - omax + j]
            pos = omax
    return 0


def encode_block(x: np.ndarray, cfg: np.ndarray) -> bytes:
    """(n, C) samples of one block of one channel group (C: 1 or 2) -> its ``cascade`` payload:
    the settings (a byte giving their count, then each as uint16, little-endian), then the coded
    residuals."""
    x = np.ascontiguousarray(x, dtype=np.int64)
    n = x.size
    head = bytes([len(cfg)]) + np.asarray(cfg, dtype="<u2").tobytes()
    for cap in (4 * n + 1024, (10 * MAX_DECISIONS + 7) // 8 * n + 1024):
        st = binary.new_state(1)
        out = np.zeros((1, cap + 64), dtype=np.uint8)  # a sample adds at most MAX_DECISIONS * 10 bits
        if _run(x, cfg, st, out, cap, np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64),
                ENC) == 0:
            return head + out[0, :st[0, 2]].tobytes() + binary.finish(st, 0)
    raise AssertionError("the coder's output outgrew its worst case")  # cannot happen: cap is that bound


def read_settings(payload: bytes, bits: int, C: int) -> tuple[np.ndarray, bytes]:
    """(settings, coded residuals) of a ``cascade`` payload; CorruptDataError where the settings
    are not ones this coder runs (a damaged or hostile file)."""
    k = payload[0] if payload else 0
    if k < HEAD or len(payload) < 1 + 2 * k:
        raise CorruptDataError("a cascade audio block's settings are truncated")
    cfg = np.frombuffer(payload[1:1 + 2 * k], dtype="<u2").astype(np.int64)
    S = int(cfg[N_STAGES])
    ok = (cfg[BITS] == bits and 0 < S <= MAX_STAGES and k == HEAD + 2 * S and cfg[CROSS] <= MAX_ORDER
          and cfg[PRE] <= 32 and 1 <= cfg[RATE_FAST] <= 16 and 1 <= cfg[RATE_SLOW] <= 16 and 1 <= cfg[AVG_RATE] <= 12
          and cfg[MIX] <= 1024 and (C == 2 or cfg[CROSS] == 0 and cfg[STEREO] == 0) and cfg[STEREO] <= 1)
    for s in range(S if ok else 0):
        ok = ok and cfg[HEAD + 2 * s] <= MAX_ORDER and 8 <= cfg[HEAD + 2 * s + 1] <= 40
    if not ok:
        raise CorruptDataError("a cascade audio block has settings this coder does not run")
    return cfg, payload[1 + 2 * k:]


def decode_block(payload: bytes, n: int, C: int, bits: int) -> np.ndarray:
    """Inverse of :func:`encode_block`: the block's (n, C) samples (int64)."""
    cfg, coded = read_settings(payload, bits, C)
    data = np.frombuffer(coded or b"\0", dtype=np.uint8).copy()
    end = np.array([len(coded)], dtype=np.int64)
    st = binary.new_state(1)
    binary.start_decoding(st, 0, data, end)
    x = np.zeros((n, C), dtype=np.int64)
    if _run(x, cfg, st, np.zeros((1, 1), dtype=np.uint8), 0, data, end, DEC) < 0:
        raise CorruptDataError("a cascade audio block ends early or holds an impossible sample (damaged file)")
    if st[0, 2] != len(coded) or st[0, 4]:
        raise CorruptDataError("a cascade audio block has bytes its samples do not use (damaged file)")
    return x


def settings(bits: int, C: int, x: np.ndarray | None = None) -> np.ndarray:
    """The settings a block is coded with (recorded in its payload, so later tuning never
    changes how an old file decodes): the cascade's stages, and for a pair of channels the
    cross-channel taps and whether channel 1 goes as its difference from channel 0 (where the
    difference varies less than channel 1 itself: a cheap test on the block's samples ``x``)."""
    stereo = 0
    if C == 2 and x is not None and len(x) > 1:
        d1 = np.abs(np.diff(x[:, 1])).sum()
        ds = np.abs(np.diff(x[:, 1] - x[:, 0])).sum()
        stereo = int(ds < d1)
    cfg = [bits, stereo, 32 if C == 2 else 0, 31, 4, 7, 3, 16, len(STAGES)]
    for order, mu in STAGES:
        cfg += [order, mu]
    return np.array(cfg, dtype=np.int64)


def groups(channels: int) -> list[tuple[int, int]]:
    """(first channel, count) of each channel group: pairs, the last one alone if odd."""
    return [(c, min(2, channels - c)) for c in range(0, channels, 2)]


def _pcm(x: np.ndarray, bits: int) -> bytes:
    from dulzip.formats.wav import sample_bytes
    return sample_bytes(x, bits)


def _from_pcm(raw: bytes, bits: int, C: int) -> np.ndarray:
    from dulzip.formats.wav import Layout, frames_of
    return frames_of(raw, Layout(0, bits, C, 0, len(raw) // (C * bits // 8))).astype(np.int64)


def _encode_job(samples: np.ndarray, bits: int, c0: int, C: int, s: int, n: int, allow_zstd: bool) -> Stream:
    x = samples[s:s + n, c0:c0 + C].astype(np.int64)
    coded = Stream("cascade", encode_block(x, settings(bits, C, x)))
    if allow_zstd:
        packed = Stream("zstd", zstdio.compress(_pcm(x, bits)))
        if len(packed.payload) < len(coded.payload):
            return packed
    return coded


def encode_samples(samples: np.ndarray, bits: int, block: int = BLOCK, threads: int = 1,
                   allow_zstd: bool = True) -> list[Stream]:
    """(frames, channels) samples -> one stream per channel group and block (group by group),
    each the ``cascade`` payload or, where smaller, zstd -19 of its PCM bytes. Blocks are coded
    on ``threads`` threads (the njit loop releases the GIL); the output does not depend on it."""
    jobs = [(c0, C, s, n) for c0, C in groups(samples.shape[1]) for s, n in cuts(len(samples), block)]
    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(lambda j: _encode_job(samples, bits, *j, allow_zstd), jobs))


def decode_samples(streams: list[Stream], frames: int, channels: int, bits: int, block: int,
                   threads: int = 1) -> np.ndarray:
    """Inverse of :func:`encode_samples`: the (frames, channels) samples, int16 (int32 for 24-bit)."""
    jobs = [(c0, C, s, n) for c0, C in groups(channels) for s, n in cuts(frames, block)]
    if len(streams) != len(jobs):
        raise CorruptDataError(f"expected {len(jobs)} audio blocks, found {len(streams)}")
    out = np.zeros((frames, channels), dtype=np.int32 if bits == 24 else np.int16)

    def run(i: int) -> None:
        (c0, C, s, n), st = jobs[i], streams[i]
        if st.coder == "cascade":
            x = decode_block(st.payload, n, C, bits)
        elif st.coder == "zstd":
            x = _from_pcm(zstdio.decompress(st.payload, n * C * bits // 8, "an audio block"), bits, C)
        else:
            raise CorruptDataError(f"unknown coder '{st.coder}' for an audio block")
        out[s:s + n, c0:c0 + C] = x

    with ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(run, range(len(jobs))))
    return out
