"""Exact adaptive context mixing around an image model's PMFs, bit by bit (as PAQ's image models).

A sub-pixel is coded as 8 binary decisions, high bit first. The decision at a node of the
level's binary tree gets a probability from two logistic mixers and a final refinement,
whose inputs are the stretched (logit) probabilities of:

- the network (PixelCNN): the mass of the node's 1-subtree over the node's mass, from its
  integer PMF (the 16-bucket table for the first four bits, the in-bucket table for the
  last four); and the same refined by adaptive maps per (channel, node, local activity) and
  per (channel, node, the network's mean level / 4);
- context models: bit counts (n0, n1) per (context, node) slot of one shared hash table, made
  a probability by an adaptive map per context kind. The contexts combine the pixel's
  channels coded before (exactly: in photographs a colour is a strong hint of the next
  channel) with the network's mean level (its prediction) and the neighbours in the tile
  (W, N, NW, NE, WW, NN); the gradient predictor W + N - NW; the neighbours moved by the
  other channels' differences (W + R - R_W, ...); the W pixel's colour; and the network's
  errors at W and N;
- a bias.

The mixers choose their weight sets by (channel, node) and by (channel, bit, activity); a
second layer mixes the two by weights chosen per (channel, node). (A final adaptive map of
the result, as the text coder has, made photographs 0.1-0.4% larger: there is none.)
Everything learns online from the image being coded: the network gives what photographs in general look like, the contexts
what this image looks like.

All tiles of an image are coded in lockstep and share the adaptive state. A step codes one or
more positions of every tile (one in raster order, several in the PixelCNN's wavefront order;
see dulzip.codecs.image.decode_order), channel by channel; at each bit, position by position,
every tile's probability at that position is computed first, then the state learns from the
bits, tile after tile (a fixed order, the same on both sides). Every
quantity is an integer, so the encoder and the decoder compute the same probabilities on any
machine.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
from numba import njit

from dulzip.exact.textmix import COUNT_LIMIT, _find, _node_offsets, learn_row, learn_slot

from dulzip.schema import IMAGE_MIXER_VERSIONS  # noqa: E402,F401 (the versions this dulzip decodes)
IMAGE_MIXER_VERSION = 2  # bumped whenever what the mixer computes changes (files record it)
N_CTX = 14
SLOT_BITS_MAX = 26  # count slots (n0, n1, check): 2**slot_bits of 3 bytes, chosen by image size
SLOT_BITS_MIN = 16
APM_LIMIT = 1023
APM_BUCKETS = 33
APM_PRIOR = 32
ST_MAX = 4095
LR = 6  # mixer learning rate: weights change by LR * x * err / 2**18 per bit
LR_F = 2
N_INPUTS = 1 + N_CTX + 2 + 1  # network, contexts, the network refined twice, bias
N_ACT = 16  # activity classes
PARTS = ("net", "contexts", "refine")  # what can be switched off (to measure what each brings)
# sha256 of the stretch table then the squash table (int64, little-endian), as built by
# _luts_decimal: the fast float64 build is used only when it gives exactly these
LUT_SHA256 = "2cd1afa69f6f333c221a37038be499aa28bb85a9bd58d47ddbf4187ebd78fbce"


def _luts_float() -> tuple[np.ndarray, np.ndarray]:
    p = (np.arange(1 << 16, dtype=np.float64) + 0.5) / (1 << 16)
    st = np.arange(-ST_MAX, ST_MAX + 1, dtype=np.float64) / 256
    # exact-ok: checked against LUT_SHA256 (else rebuilt with correctly rounded decimals)
    stretch = np.clip(np.round(256 * np.log(p / (1 - p))), -ST_MAX, ST_MAX).astype(np.int64)  # exact-ok
    squash = np.clip(np.round(65536 / (1 + np.exp(-st))), 1, 65535).astype(np.int64)  # exact-ok
    return stretch, squash


def _luts_decimal() -> tuple[np.ndarray, np.ndarray]:
    """The same tables from correctly rounded decimal arithmetic (slow: about 2 s)."""
    from decimal import ROUND_HALF_EVEN, Context, Decimal
    ctx = Context(prec=34)
    one, half = Decimal(1), Decimal("0.5")

    def rnd(d):
        return int(d.to_integral_value(rounding=ROUND_HALF_EVEN))
    stretch = []
    for i in range(1 << 16):
        p = ctx.divide(Decimal(i) + half, 65536)
        stretch.append(min(max(rnd(256 * ctx.ln(ctx.divide(p, one - p))), -ST_MAX), ST_MAX))
    squash = [min(max(rnd(ctx.divide(65536, one + ctx.exp(ctx.divide(Decimal(-s), 256)))), 1), 65535)
              for s in range(-ST_MAX, ST_MAX + 1)]
    return np.array(stretch, dtype=np.int64), np.array(squash, dtype=np.int64)


def _digest(stretch: np.ndarray, squash: np.ndarray) -> str:
    return hashlib.sha256(stretch.astype("<i8").tobytes() + squash.astype("<i8").tobytes()).hexdigest()


@lru_cache(maxsize=1)
def luts() -> tuple[np.ndarray, np.ndarray]:
    """(stretch, squash): p in 1/65536 -> logit in 1/256, and back; the same integers everywhere."""
    tables = _luts_float()
    if _digest(*tables) != LUT_SHA256:
        tables = _luts_decimal()
        if _digest(*tables) != LUT_SHA256:
            raise RuntimeError("the image mixer's lookup tables do not match their checksum")
    return tables


def slot_bits_for(n_symbols: int) -> int:
    """Count slots for an image of n_symbols sub-pixels (recorded in the file)."""
    return int(min(max((64 * n_symbols).bit_length(), SLOT_BITS_MIN), SLOT_BITS_MAX))


class ImageMixer:
    """The adaptive state of one image plane set being coded."""

    def __init__(self, slot_bits: int, parts: tuple[str, ...] = PARTS, version: int = IMAGE_MIXER_VERSION):
        self.version = version  # the decode order (see dulzip.codecs.image.decode_order); the rest is the same
        self.slot_bits = slot_bits
        self.node_hash = _node_offsets(slot_bits)
        self.on = np.array([p in parts for p in PARTS], dtype=np.int64)
        self.stretch, self.squash = luts()
        self.counts = np.zeros((1 << slot_bits) * 3, dtype=np.uint8)
        n = np.arange(COUNT_LIMIT + 2)
        n0, n1 = np.meshgrid(n, n, indexing="ij")
        prior = np.stack([(4 * (2 * n1 + 1)) // (2 * (n0 + n1) + 2), np.full_like(n0, 4)], axis=-1)
        self.maps = np.broadcast_to(prior, (N_CTX, *prior.shape)).reshape(-1, 2).astype(np.int64).copy()
        self.w1 = np.zeros((3 * 256, N_INPUTS), dtype=np.int64)  # by (channel, node)
        self.w2 = np.zeros((3 * 8 * N_ACT, N_INPUTS), dtype=np.int64)  # by (channel, bit, activity)
        self.w1[:, 0] = 1 << 16  # start by trusting the network
        self.w2[:, 0] = 1 << 16
        self.wf = np.full((3 * 256, 2), 1 << 15, dtype=np.int64)
        b = np.arange(APM_BUCKETS, dtype=np.int64)
        centre = self.squash[np.clip(b * 256 - 4096, -ST_MAX, ST_MAX) + ST_MAX]
        row = np.stack([(centre * APM_PRIOR + 32768) >> 16, np.full_like(centre, APM_PRIOR)], axis=-1).astype(np.int32)
        self.apm1 = np.tile(row, (3 * 256 * N_ACT, 1))  # the network refined per (channel, node, activity)
        self.apm2 = np.tile(row, (3 * 256 * 64, 1))  # per (channel, node, mean level / 4)


class Step:
    """Scratch of one coding step (one sub-pixel of n tiles)."""

    def __init__(self, n: int):
        self.ctx = np.empty((n, N_CTX), dtype=np.int64)
        self.chk = np.empty((n, N_CTX), dtype=np.int64)
        self.qa = np.empty(n, dtype=np.int64)
        self.md = np.empty(n, dtype=np.int64)  # the network's mean, as a level
        self.node = np.ones(n, dtype=np.int64)
        self.x = np.empty((n, N_INPUTS), dtype=np.int64)
        self.slots = np.empty((n, N_CTX), dtype=np.int64)
        self.sets = np.empty((n, 2), dtype=np.int64)
        self.dots = np.empty((n, 3), dtype=np.int64)
        self.rows = np.empty((n, 2), dtype=np.int64)
        self.p = np.empty(n, dtype=np.int64)
        self.pq = np.empty((n, 2), dtype=np.float64)  # (1 - p, p) in 1/65536: the coder's table


@njit(cache=True)
def _qerr(e):
    a = abs(e)
    q = 0 if a == 0 else (1 if a == 1 else (2 if a <= 3 else (3 if a <= 7 else (4 if a <= 15 else 5))))
    return q if e >= 0 else 8 + q


@njit(cache=True)
def _hash(a, b, c, d):
    h = np.uint64(a) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(b) * np.uint64(0xC2B2AE3D27D4EB4F)
    h = (h ^ (h >> np.uint64(29))) + np.uint64(c) * np.uint64(0x165667B19E3779F9) + np.uint64(d) * np.uint64(0x27D4EB2F165667C5)
    return h ^ (h >> np.uint64(32))


@njit(cache=True)
def _level(m):
    return min(max((m + 8) >> 4, 0), 255)


@njit(cache=True)
def contexts(pix, mean, present, tiles, rows, cols, ch, slot_bits, ctx, chk, qa, mds):
    """The contexts of sub-pixel (rows[k], cols[k], ch) of tile tiles[k], for each k, from what
    is known: the pixels before it in its tile (pix: (B, 3, T, T)) and the network's means
    (mean: (B, 3, T, T) in 1/16 level, the current one included); also each one's activity
    class and mean level. (Every decode order dulzip uses has decoded, before (r, c), the pixels
    W, WW, N, NN, NW and NE read here.)"""
    T = pix.shape[2]
    for k in range(len(tiles)):
        t = tiles[k]
        r = rows[k]
        c = cols[k]
        md = _level(mean[t, ch, r, c])
        mds[k] = md
        W = pix[t, ch, r, c - 1] if c > 0 else (pix[t, ch, r - 1, c] if r > 0 else md)
        N = pix[t, ch, r - 1, c] if r > 0 else W
        NW = pix[t, ch, r - 1, c - 1] if (r > 0 and c > 0) else N
        NE = pix[t, ch, r - 1, c + 1] if (r > 0 and c + 1 < T and present[t, r - 1, c + 1]) else N
        WW = pix[t, ch, r, c - 2] if c > 1 else W
        NN = pix[t, ch, r - 2, c] if r > 1 else N
        act = abs(W - NW) + abs(N - NW) + abs(N - NE)
        q = 0
        while q < N_ACT - 1 and act > (1 << q) - 1 + q:
            q += 1
        qa[k] = q
        grad = min(max(W + N - NW, 0), 255)
        R = G = RW = RN = GW = GN = pc = pc2 = pg = pg2 = 0
        if ch > 0:  # the pixel's channels coded before, and what they say through the neighbours
            R = pix[t, 0, r, c]
            RW = pix[t, 0, r, c - 1] if c > 0 else R
            RN = pix[t, 0, r - 1, c] if r > 0 else R
            pc = min(max(W + R - RW, 0), 255)
            pc2 = min(max(N + R - RN, 0), 255)
        else:
            pc = NN
        if ch == 2:
            G = pix[t, 1, r, c]
            GW = pix[t, 1, r, c - 1] if c > 0 else G
            GN = pix[t, 1, r - 1, c] if r > 0 else G
            pg = min(max(W + G - GW, 0), 255)
            pg2 = min(max(N + G - GN, 0), 255)
        RG = R * 256 + G
        eW = W - _level(mean[t, ch, r, c - 1]) if c > 0 else 0
        eN = N - _level(mean[t, ch, r - 1, c]) if r > 0 else 0
        colour = 0  # the W pixel's colour, 6 bits a channel
        if c > 0:
            colour = 1 + ((pix[t, 0, r, c - 1] >> 2) << 12) + ((pix[t, 1, r, c - 1] >> 2) << 6) + (pix[t, 2, r, c - 1] >> 2)
        h = (_hash(1, ch, RG, md), _hash(2, ch, RG, W), _hash(3, ch, RG, N), _hash(4, ch, pg, pg2),
             _hash(5, ch, N, NE), _hash(6, ch, (W >> 2) * 64 + (N >> 2), NW >> 2), _hash(7, ch, grad, md >> 3),
             _hash(8, ch, pc, pc2), _hash(9, ch, W, WW), _hash(10, ch, (R - RW + 256) * 512 + G - GW + 256, W),
             _hash(11, ch, RG, md >> 2), _hash(12, ch, (R - RN + 256) * 512 + G - GN + 256, N),
             _hash(13, ch, md, _qerr(eW) * 16 + _qerr(eN)), _hash(14, ch, colour, md >> 2 if ch == 0 else RG))
        for i in range(N_CTX):
            ctx[k, i] = np.int64(h[i] >> np.uint64(64 - slot_bits + 4)) << 4  # a bucket of 16 slots
            chk[k, i] = np.int64(h[i] & np.uint64(255))


@njit(cache=True)
def _ratio(hits, total):
    return ((2 * hits + 1) << 16) // (2 * total + 2)


@njit(cache=True)
def predict(j, ch, md, cc, cf, ctx, chk, qa, node, counts, maps, w1, w2, wf, apm1, apm2, stretch, squash,
            on, node_hash, x, slots, sets, dots, rows, p, pq, start, stop):
    """Probabilities (1/65536) that bit j of sub-pixels start..stop - 1 is 1. cc: (n, 17)
    cumulative bucket counts; cf: (n, 17) cumulative in-bucket counts (read from bit 4 on)."""
    for k in range(start, stop):
        nd = node[k]
        if j < 4:
            w = 1 << (4 - j)
            lo = (nd << (4 - j)) - 16
            m = cc[k, lo + w] - cc[k, lo]
            m1 = cc[k, lo + w] - cc[k, lo + w // 2]
        else:
            sub = (1 << (j - 4)) | (nd & ((1 << (j - 4)) - 1))
            w = 1 << (8 - j)
            lo = (sub << (8 - j)) - 16
            m = cf[k, lo + w] - cf[k, lo]
            m1 = cf[k, lo + w] - cf[k, lo + w // 2]
        pn = min(max((m1 << 16) // m, 1), 65535)
        x[k, 0] = stretch[pn] * on[0]
        for i in range(N_CTX):
            sl = _find(counts, ctx[k, i] ^ node_hash[nd], (chk[k, i] ^ nd) & 255)
            slots[k, i] = sl
            r = (i << 10) + (np.int64(counts[3 * sl]) << 5) + counts[3 * sl + 1]
            x[k, 1 + i] = stretch[_ratio(maps[r, 0], maps[r, 1])] * on[1]
        a = qa[k]
        rb = (min(max(stretch[pn], -4096), 4096) + 4096 + 128) >> 8
        r1 = ((ch * 256 + nd) * N_ACT + a) * APM_BUCKETS + rb
        r2 = ((ch * 256 + nd) * 64 + (md[k] >> 2)) * APM_BUCKETS + rb
        x[k, 1 + N_CTX] = stretch[_ratio(np.int64(apm1[r1, 0]), np.int64(apm1[r1, 1]))] * on[2] * on[0]
        x[k, 2 + N_CTX] = stretch[_ratio(np.int64(apm2[r2, 0]), np.int64(apm2[r2, 1]))] * on[2] * on[0]
        x[k, 3 + N_CTX] = 256
        s1 = ch * 256 + nd
        s2 = (ch * 8 + j) * N_ACT + a
        d1 = 0
        d2 = 0
        for i in range(N_INPUTS):
            d1 += x[k, i] * w1[s1, i]
            d2 += x[k, i] * w2[s2, i]
        d1 = min(max(d1 >> 16, -ST_MAX), ST_MAX)
        d2 = min(max(d2 >> 16, -ST_MAX), ST_MAX)
        df = min(max((d1 * wf[s1, 0] + d2 * wf[s1, 1]) >> 16, -ST_MAX), ST_MAX)
        p[k] = min(max(squash[df + ST_MAX], 1), 65535)
        pq[k, 0] = 65536 - p[k]
        pq[k, 1] = p[k]
        sets[k, 0] = s1
        sets[k, 1] = s2
        dots[k, 0] = d1
        dots[k, 1] = d2
        dots[k, 2] = df
        rows[k, 0] = r1
        rows[k, 1] = r2


@njit(cache=True)
def update(bits, node, counts, maps, w1, w2, wf, apm1, apm2, squash, x, slots, sets, dots, rows, start, stop):
    """Learn from the coded bits of sub-pixels start..stop - 1, one after another (the same order
    on both sides)."""
    for k in range(start, stop):
        b = bits[k]
        s1 = sets[k, 0]
        s2 = sets[k, 1]
        e1 = (b << 16) - squash[dots[k, 0] + ST_MAX]
        e2 = (b << 16) - squash[dots[k, 1] + ST_MAX]
        for i in range(N_INPUTS):
            w1[s1, i] += (x[k, i] * e1 * LR) >> 18
            w2[s2, i] += (x[k, i] * e2 * LR) >> 18
        ef = (b << 16) - squash[dots[k, 2] + ST_MAX]
        wf[s1, 0] += (dots[k, 0] * ef * LR_F) >> 18
        wf[s1, 1] += (dots[k, 1] * ef * LR_F) >> 18
        for i in range(N_CTX):
            learn_slot(counts, maps, i, slots[k, i], b)
        for a, table in ((rows[k, 0], apm1), (rows[k, 1], apm2)):
            learn_row(table, a, b, APM_LIMIT)
        node[k] = 2 * node[k] + b


@njit(cache=True)
def code_known(ch, levels, md, cc, cf, ctx, chk, qa, node, counts, maps, w1, w2, wf, apm1, apm2, stretch,
               squash, on, node_hash, x, slots, sets, dots, rows, p, pq, bits, probs, groups):
    """The eight decisions of a step whose levels are known (the encoder): the bits and their
    probabilities into ``bits`` and ``probs`` (8, n). Each bit is predicted and learnt group by
    group: ``groups`` (g, 2) holds each group's (start, stop)."""
    for j in range(8):
        for g in range(len(groups)):
            a = groups[g, 0]
            b = groups[g, 1]
            predict(j, ch, md, cc, cf, ctx, chk, qa, node, counts, maps, w1, w2, wf, apm1, apm2, stretch, squash,
                    on, node_hash, x, slots, sets, dots, rows, p, pq, a, b)
            for k in range(a, b):
                bits[j, k] = (levels[k] >> (7 - j)) & 1
                probs[j, k] = p[k]
            update(bits[j], node, counts, maps, w1, w2, wf, apm1, apm2, squash, x, slots, sets, dots, rows, a, b)
