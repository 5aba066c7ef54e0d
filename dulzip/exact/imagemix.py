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

The counts, maps, APMs, mixing layers and their learning are the shared kernel
(:mod:`dulzip.exact.cm`); this module holds what is the image's own: its contexts
(:func:`contexts`), the network's inputs and the choice of weight sets and APM rows.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dulzip.exact.cm import apm as cm_apm
from dulzip.exact.cm.apm import APM_BUCKETS
from dulzip.exact.cm.counts import context_inputs, map_prior, new_counts, node_offsets
from dulzip.exact.cm.luts import ST_MAX, tables
from dulzip.exact.cm.mixer import learn, mix
from dulzip.exact.cm.state import MixerState, Scratch, new_scratch, typed_namedtuple

from dulzip.schema import IMAGE_MIXER_VERSIONS  # noqa: E402,F401 (the versions this dulzip decodes)
IMAGE_MIXER_VERSION = 2  # bumped whenever what the mixer computes changes (files record it)
assert IMAGE_MIXER_VERSION in IMAGE_MIXER_VERSIONS  # the version it writes is one it decodes
N_CTX = 14
SLOT_BITS_MAX = 26  # count slots (n0, n1, check): 2**slot_bits of 3 bytes, chosen by image size
SLOT_BITS_MIN = 16
LR = 6  # mixer learning rate: weights change by LR * x * err / 2**18 per bit
LR_F = 2
N_INPUTS = 1 + N_CTX + 2 + 1  # network, contexts, the network refined twice, bias
N_ACT = 16  # activity classes
N_MIX = 2  # first-layer mixers: weight sets by (channel, node), and by (channel, bit, activity)
_W2 = 3 * 256  # the first weight set of the second mixer
_APM2 = 3 * 256 * N_ACT * APM_BUCKETS  # the first APM row of the refinement per (channel, node, mean level / 4)
N_APM_ROWS = 2  # APM rows that learn each bit: the network's two refinements
PARTS = ("net", "contexts", "refine")  # what can be switched off (to measure what each brings)


def slot_bits_for(n_symbols: int) -> int:
    """Count slots for an image of n_symbols sub-pixels (recorded in the file)."""
    return int(min(max((64 * n_symbols).bit_length(), SLOT_BITS_MIN), SLOT_BITS_MAX))


class ImageMixer:
    """The adaptive state of one image plane set being coded."""

    def __init__(self, slot_bits: int, parts: tuple[str, ...] = PARTS, version: int = IMAGE_MIXER_VERSION):
        self.version = version  # the decode order (see dulzip.codecs.image.decode_order); the rest is the same
        self.slot_bits = slot_bits
        self.on = np.array([p in parts for p in PARTS], dtype=np.int64)
        stretch, squash = tables()
        weights = np.zeros((_W2 + 3 * 8 * N_ACT, N_INPUTS), dtype=np.int64)  # by (channel, node), (channel, bit, activity)
        weights[:, 0] = 1 << 16  # start by trusting the network
        self.state = MixerState(
            counts=new_counts(slot_bits), maps=map_prior(N_CTX), node_hash=node_offsets(slot_bits),
            ctx_on=np.full(N_CTX, self.on[1], dtype=np.int64), on=self.on, weights=weights,
            weights_f=np.full((3 * 256, N_MIX), 1 << 15, dtype=np.int64),  # by (channel, node)
            # the network refined per (channel, node, activity), then per (channel, node, mean level / 4)
            apm=cm_apm.new_table(squash, 3 * 256 * N_ACT + 3 * 256 * 64),
            stretch=stretch, squash=squash, lr=LR, lr_f=LR_F)
        self._state = tuple(self.state)  # the per-bit calls' view (see dulzip.exact.cm.state)

    def predict(self, st: "Step", ch: int, cc: np.ndarray, cf: np.ndarray, j: int, a: int, b: int) -> None:
        """Bit j's probabilities of sub-pixels a..b-1 into ``st.p`` and ``st.pq``."""
        _predict_entry(j, ch, self._state, st._sc, st._px, cc, cf, a, b)

    def learn(self, st: "Step", bits: np.ndarray, a: int, b: int) -> None:
        """Learn the coded bits of sub-pixels a..b-1, one after another."""
        _update_entry(bits, self._state, st._sc, a, b)

    def code_known(self, st: "Step", ch: int, levels: np.ndarray, cc: np.ndarray, cf: np.ndarray,
                   bits: np.ndarray, probs: np.ndarray, groups: np.ndarray) -> None:
        """See :func:`code_known`."""
        code_known(ch, levels, self.state, st.sc, st.px, cc, cf, bits, probs, groups)


# A step's image-only scratch beside the kernel's Scratch: each sub-pixel's activity class,
# the network's mean as a level, and (1 - p, p) in 1/65536 (the coder's table)
PixelStep = typed_namedtuple("PixelStep", ["qa", "md", "pq"], __name__)


class Step:
    """Scratch of one coding step (one sub-pixel of n tiles): the kernel's (``sc``) and the
    image's own (``px``); ``ctx``, ``chk``, ``node``, ``p``, ``qa``, ``md``, ``pq`` name their arrays."""

    def __init__(self, n: int):
        self.sc = new_scratch(n, N_CTX, N_INPUTS, N_MIX, N_APM_ROWS)
        self.px = PixelStep(qa=np.empty(n, dtype=np.int64), md=np.empty(n, dtype=np.int64),
                            pq=np.empty((n, 2), dtype=np.float64))
        self.ctx, self.chk, self.node, self.p = self.sc.base, self.sc.chk, self.sc.node, self.sc.p
        self.qa, self.md, self.pq = self.px
        self._sc, self._px = tuple(self.sc), tuple(self.px)  # the per-bit calls' view


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
def predict(j, ch, S, sc, px, cc, cf, start, stop):
    """Probabilities (1/65536) that bit j of sub-pixels start..stop - 1 is 1. cc: (n, 17)
    cumulative bucket counts; cf: (n, 17) cumulative in-bucket counts (read from bit 4 on)."""
    on, stretch, squash, apm = S.on, S.stretch, S.squash, S.apm  # fields read once: see dulzip.exact.cm.state
    node, x, sets, fsel, p_out, rows = sc.node, sc.x, sc.sets, sc.fsel, sc.p, sc.rows
    qa, md, pq = px.qa, px.md, px.pq
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
        context_inputs(S, sc, k, nd, 1, N_CTX)
        a = qa[k]
        rb = cm_apm.input_bucket(stretch[pn])
        r1 = ((ch * 256 + nd) * N_ACT + a) * APM_BUCKETS + rb
        r2 = _APM2 + ((ch * 256 + nd) * 64 + (md[k] >> 2)) * APM_BUCKETS + rb
        x[k, 1 + N_CTX] = cm_apm.read(apm, r1, stretch) * on[2] * on[0]
        x[k, 2 + N_CTX] = cm_apm.read(apm, r2, stretch) * on[2] * on[0]
        x[k, 3 + N_CTX] = 256
        s1 = ch * 256 + nd
        sets[k, 0] = s1
        sets[k, 1] = _W2 + (ch * 8 + j) * N_ACT + a
        fsel[k] = s1
        df = mix(S, sc, k, 1, N_MIX, N_INPUTS)
        p = min(max(squash[df + ST_MAX], 1), 65535)
        p_out[k] = p
        pq[k, 0] = 65536 - p
        pq[k, 1] = p
        rows[k, 0] = r1
        rows[k, 1] = r2


@njit(cache=True)
def update(bits, S, sc, start, stop):
    """Learn from the coded bits of sub-pixels start..stop - 1, one after another (the same order
    on both sides)."""
    for k in range(start, stop):
        learn(S, sc, k, bits[k], N_MIX, N_INPUTS, N_CTX, N_APM_ROWS)


@njit(cache=True)
def code_known(ch, levels, S, sc, px, cc, cf, bits, probs, groups):
    """The eight decisions of a step whose levels are known (the encoder): the bits and their
    probabilities into ``bits`` and ``probs`` (8, n). Each bit is predicted and learnt group by
    group: ``groups`` (g, 2) holds each group's (start, stop)."""
    for j in range(8):
        for g in range(len(groups)):
            a = groups[g, 0]
            b = groups[g, 1]
            predict(j, ch, S, sc, px, cc, cf, a, b)
            p = sc.p
            for k in range(a, b):
                bits[j, k] = (levels[k] >> (7 - j)) & 1
                probs[j, k] = p[k]
            update(bits[j], S, sc, a, b)


# The decoder's per-bit entry points: plain tuples from Python (numba types them in C, a
# namedtuple in Python: 7.5 us a call against 4 us, measured), named again inside
@njit(cache=True)
def _predict_entry(j, ch, S, sc, px, cc, cf, start, stop):
    predict(j, ch, MixerState(*S), Scratch(*sc), PixelStep(*px), cc, cf, start, stop)


@njit(cache=True)
def _update_entry(bits, S, sc, start, stop):
    update(bits, MixerState(*S), Scratch(*sc), start, stop)
