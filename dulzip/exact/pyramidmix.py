"""Exact adaptive context mixing for the pyramid image coder (dulzip.codecs.pyramid).

The pyramid coder's network gives, per sub-pixel, an integer PMF over the 256 levels (the
flow's discretized logistic: a mean in 1/8 level, a scale class; :func:`mass`); this mixer
codes the sub-pixel as a few binary decisions about the residual e = x - pred, pred the PMF's
mean rounded to a level, so that the common case (a small residual) takes few decisions:

1. e == 0 ?
2. e > 0 ? (not coded where the range [0, 255] allows one sign only)
3. the magnitude class k = floor(log2 |e|), unary: k > 0 ?, k > 1 ?, ... up to the largest
   class the range allows on that side;
4. the k low bits of |e| - 2^k, high bit first (a bit whose 1 would leave the range is not
   coded: it is 0).

Each decision's probability is mixed (the shared kernel, :mod:`dulzip.exact.cm`) from:

- the network: the PMF's mass of the decision's "1" side over the mass of what is still
  possible, stretched; and the same refined by two APMs, per (decision, channel, activity)
  and per (decision, channel, the network's scale class): how far to trust the network's
  sharpness here is learnt from the image;
- the same PMF moved by the network's errors around the pixel (a local bias, as CALIC's
  error feedback), and the same PMF recentred on the adaptive linear prediction, read the
  same way. The linear predictor (normalized LMS, per phase-level and channel, learnt from the
  image as it is coded: :func:`_lms_predict`) corrects the network's prediction from the
  nearest known pixels, the same group's W and N, a V pixel's diagonals, a classical
  prediction (green and blue: the channel before at this pixel plus the neighbours'
  difference between the two channels; red and gray: the mean of the nearest known pixels)
  and the residual of the channel before;
- context models (bit counts per context and decision): the nearest known neighbours at the
  pixel's level (coarse values, their spread, the prediction against their mean, against
  each pair of opposite neighbours, and their exact values), the residuals of the pixel's
  channels coded before, the inter-channel prediction against the network's, the network's
  errors at those neighbours and at the same group's pixels W and N (the same network's),
  the levels of those two against the prediction, and for a V pixel its four diagonal
  neighbours (the level's H pixels, coded before it: a context the raster order never has),
  the linear prediction against the network's, the intensity, the pattern of the neighbours
  above or below the prediction, the network's scale class, the phase and the level
  (:func:`contexts`);
- a bias.

Four first-layer mixers choose their weights by (decision, channel, phase and level),
(decision kind, channel, activity), (decision kind, channel, the network's scale class) and
(decision kind, channel, the residuals of the pixel's channels before; for red and gray the
opposite neighbours' difference); a second layer weighs them per (decision, channel); a final
APM per (decision, channel, the linear prediction against the network's) refines the result
(3/4 of the output).

What the additions of mixer version 2 brought, each over the one before, with the early
network (pyramid-6cbf2b00, in git history at 758974b) on six crops (benchmarks/experiments/
pyramid_crops.py: ladybird-256; 384 x 384 of Storm, coffee,
Dragonfly; camera in gray; 256 x 256 of Stripes): opposite-pair and inter-channel contexts
-1.3% (Stripes -17%), the recentred PMF -0.07%, the third mixer -0.55%, the fourth -0.25%,
the final APM -0.17%, the exact neighbours -0.24% (Stripes -6.5%), the diagonals of V pixels
and the same group's levels -0.3%, edge-directed interpolation and finer network errors for red
and gray -0.25%, the intensity -0.14%, the linear predictor (context and recentred PMF) -0.5%
(Storm -1.2%; its rate 1/8 vs 1/16 -0.01%, rows per activity too 0, the channel before's
residual as an input -0.02%, the network's errors around as inputs +0.1%: left out), the final
APM keyed by the linear prediction instead of the classical one -0.14% (with weights of step
2900: a fifth mixer by the same -0.03%, left out), the pattern of the neighbours against the
prediction -0.1% (Stripes -0.7%; the final APM's share 1/2 instead of 3/4 +0.01%). Version 1 (never released) measured, with an untrained
network on ladybird-256 and a 512 x 512 crop: its contexts 5.5% and 6.9%, the network's errors
at the neighbours 0.5%, the same group's errors 0.2-0.3%, the APM refinements 0.1%, the moved
PMF 0.3% and -0.03% (benchmarks/measure/pyramid_time.py --ablate). The part "future" of
:data:`PARTS` switched off keeps from the contexts every pixel a raster order would not have
yet (below, or right on the row): what the grouped order's "future" contexts bring.

Every quantity is an integer and every function njit: the encoder and the decoder compute the
same probabilities on any machine. The decisions are coded in the same njit loop
(:mod:`dulzip.coding.binary`): they are sequential, each depends on the mixer's learning
from the one before.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

from dulzip.coding.binary import decode_bit, encode_bit
from dulzip.errors import FormatError
from dulzip.exact.cm import apm as cm_apm
from dulzip.exact.cm.apm import APM_BUCKETS
from dulzip.exact.cm.counts import context_inputs, map_prior, new_counts, node_offsets
from dulzip.exact.cm.luts import ST_MAX, tables
from dulzip.exact.cm.mixer import learn, mix
from dulzip.exact.cm.state import MixerState, borrowed, new_scratch, typed_namedtuple
from dulzip.schema import PYRAMID_MIXER_VERSIONS  # the versions this dulzip decodes

PYRAMID_MIXER_VERSION = 2  # bumped whenever what the mixer computes changes (files record it)
assert PYRAMID_MIXER_VERSION in PYRAMID_MIXER_VERSIONS  # the version it writes is one it decodes
N_CTX = 17
N_LMS = 9  # inputs of the adaptive linear predictor (:func:`_lms_predict`)
N_INPUTS = 1 + N_CTX + 2 + 1 + 2  # the network, the contexts, the network refined twice, a bias, the moved PMF, the recentred PMF
N_MIX = 4
N_APM_ROWS = 3
SLOT_BITS_MIN, SLOT_BITS_MAX = 16, 24
LR, LR_F = 10, 2  # measured (early weights): 6 vs 10 vs 16 on ladybird-256 +0.4%, 0, -0.1%; on a 512 crop 0, +0.03%, +0.3%; version 2, six crops: 14 vs 10 -0.01%
MU_LO, MU_HI = -256, 2296  # the network's means (1/8 level)
N_SCALES = 56  # the network's scale classes (dulzip.models.idf.N_SCALES)
# decision nodes (the kernel's tree node of a decision; < 256): 1 e == 0, 2 e > 0, then the
# unary classes per (sign, k), then the low bits per (sign, k, bit)
ND_UNARY = 3
ND_LOW = ND_UNARY + 16
N_NODES = ND_LOW + 16 * 8
N_KINDS = 16  # decision kinds (zero, sign, unary k, low bit b): the second mixer's sets
N_GROUPS = 13  # phase and level classes: anchors, then (min(s, 3), phase)
N_ACT = 12  # activity classes
N_QD = 9  # classes of a difference (:func:`_qd`)
N_QE2 = 49  # classes of two residuals (:func:`_qe` squared)
_W2 = N_NODES * 3 * N_GROUPS  # the first weight set of the second mixer
_W3 = _W2 + N_KINDS * 3 * N_ACT  # the first of the third's
N_LS = 14  # the third mixer's scale classes (the network's, 4 to 1)
_W4 = _W3 + N_KINDS * 3 * N_LS  # the first of the fourth's (the residuals of the pixel's channels before)
N_WEIGHT_SETS = _W4 + N_KINDS * 3 * N_QE2
_APM2 = N_NODES * 3 * N_ACT * APM_BUCKETS  # the first APM row per (decision, channel, scale class)
_APM3 = _APM2 + N_NODES * 3 * N_SCALES * APM_BUCKETS  # the final APM's, per (decision, channel, linear prediction class)
PARTS = ("net", "contexts", "refine", "moved", "future")  # what can be switched off (to measure what each brings)
_ACT_EDGES = (0, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40)  # class q: spread above edges[q - 1], up to edges[q]
MODE_ENCODE, MODE_DECODE, MODE_KNOWN = 0, 1, 2  # what a stream's pixels do (known: a zstd stream's)


def slot_bits_for(n_symbols: int) -> int:
    """Count slots for n_symbols sub-pixels (a few decisions each; derived, not recorded)."""
    return int(min(max((16 * n_symbols).bit_length(), SLOT_BITS_MIN), SLOT_BITS_MAX))


# The coder side of a group's call: stream states (dulzip.coding.binary), what each stream does
# (MODE_*), the encoder's output buffers (streams, capacity), the decoder's input and its ends
Coding = typed_namedtuple("Coding", ["st", "mode", "out", "data", "end"], __name__)
# What a group's call needs of the image and the network: the planes (levels; the network's
# prediction at each coded sub-pixel), the group's pixels in coding order with their stream and
# the network's 9 outputs, the scale tables (cumulative weights, row starts, radii), and
# (phase, s, L, C, H, W, T)
Group = typed_namedtuple("Group", ["img", "netp", "ys", "xs", "band", "out9", "cum", "start", "radius", "geo"],
                         __name__)
# The mixer's own arrays: the linear predictors (per phase-level and channel, 1/65536; adaptive
# state) and the work arrays of a sub-pixel (neighbours' positions, what the decisions select
# by, the predictor's inputs, levels and errors around, context hashes, PMF positions; see
# :func:`contexts`), made once per image so that code_pixels can borrow them
Own = typed_namedtuple("Own", ["lms", "nb", "info", "lx", "v", "h", "pm"], __name__)


class PyramidMixer:
    """The adaptive state of one image plane set being coded (all its groups and tiles)."""

    def __init__(self, slot_bits: int, parts: tuple[str, ...] = PARTS, ctx_on: np.ndarray | None = None,
                 prime: dict[str, torch.Tensor] | None = None):
        """``prime``: a starting state learnt on training photographs (:meth:`primed_state`,
        shipped in the model's weights) for the weights, maps and linear predictors, else
        priors; the counts and APMs are the image's own."""
        self.slot_bits = slot_bits
        on = np.array([p in parts for p in PARTS], dtype=np.int64)
        stretch, squash = tables()
        weights = np.zeros((N_WEIGHT_SETS, N_INPUTS), dtype=np.int64)
        weights[:, 0] = 1 << 16  # start by trusting the network
        self.state = MixerState(
            counts=new_counts(slot_bits), maps=map_prior(N_CTX), node_hash=node_offsets(slot_bits),
            ctx_on=(np.full(N_CTX, on[1], dtype=np.int64) if ctx_on is None else ctx_on.astype(np.int64) * on[1]),
            on=on, weights=weights, weights_f=np.full((N_NODES * 3, N_MIX), (1 << 16) // N_MIX, dtype=np.int64),
            apm=cm_apm.new_table(squash, N_NODES * 3 * (N_ACT + N_SCALES + N_QD)),
            stretch=stretch, squash=squash, lr=LR, lr_f=LR_F)
        self.sc = new_scratch(1, N_CTX, N_INPUTS, N_MIX, N_APM_ROWS)
        self.own = Own(np.zeros((N_GROUPS * 3, N_LMS), dtype=np.int64), np.empty((6, 2), dtype=np.int64), np.zeros(6, dtype=np.int64),
                       np.zeros(N_LMS, dtype=np.int64), np.zeros(12, dtype=np.int64), np.zeros(N_CTX, dtype=np.uint64),
                       np.zeros(7, dtype=np.int64))
        for name, t in (prime or {}).items():
            target = self._parts().get(name.removeprefix("prime."))
            if target is None or t.numel() != target.size:
                raise FormatError(f"the model's primed mixer state has a part this mixer does not ({name}, "
                                  f"{t.numel()} values)")
            target[...] = t.numpy().reshape(target.shape)

    def _parts(self) -> dict[str, np.ndarray]:
        S = self.state
        return {"weights": S.weights, "weights_f": S.weights_f, "maps": S.maps, "lms": self.own.lms}

    def primed_state(self) -> dict[str, torch.Tensor]:
        """What a model ships as the mixer's start: the mixers' weights, the maps and the linear
        predictors, as int32 (the weights clipped to int32's range, as they are then loaded);
        not the image's counts, nor the APMs (9 MB, and priming them brought nothing: 16
        photographs, six crops -0.339% with them, -0.337% without)."""
        return {f"prime.{k}": torch.from_numpy(np.clip(v, -2 ** 31, 2 ** 31 - 1).astype(np.int32))
                for k, v in self._parts().items()}

    def code(self, g: "Group", cd: "Coding", a: int, b: int) -> int:
        """Code (or decode, or learn from) the group's pixels a..b-1; see :func:`code_pixels`."""
        return int(code_pixels(self.state, self.sc, g, cd, a, b, self.own))


@njit(cache=True, inline="always")
def mass(cum, st, base, r, la, lb):
    """The PMF's mass of levels la..lb (la <= lb): w[l] = flat[st + l - base + r] within the
    table's window |l - base| <= r, 1 outside (cum: the flat weights' prefix sums)."""
    wa = max(la, base - r)
    wb = min(lb, base + r)
    inside = 0
    n_in = 0
    if wa <= wb:
        inside = cum[st + wb - base + r + 1] - cum[st + wa - base + r]
        n_in = wb - wa + 1
    return inside + (lb - la + 1 - n_in)


@njit(cache=True, inline="always")
def _levels(cum, pm, la, lb):
    """The mass of levels la..lb under the network's PMF, the same PMF moved by the local bias
    and the same recentred on the linear prediction (``pm``: the radius, and (start, base) of
    each)."""
    return (mass(cum, pm[0], pm[1], pm[2], la, lb), mass(cum, pm[3], pm[4], pm[2], la, lb),
            mass(cum, pm[5], pm[6], pm[2], la, lb))


@njit(cache=True, inline="always")
def _signed(cum, pm, pred, pos, a, b):
    """:func:`_levels` of the residual magnitudes a..b on side ``pos`` (1: e > 0) of pred."""
    if pos:
        return _levels(cum, pm, pred + a, pred + b)
    return _levels(cum, pm, pred - b, pred - a)


@njit(cache=True, inline="always")
def _mixh(h, v):
    h = (h + np.uint64(v + 65536)) * np.uint64(0x9E3779B97F4A7C15)
    return h ^ (h >> np.uint64(29))


@njit(cache=True, inline="always")
def _qe(e):
    """A residual in 7 classes: 0, +-1, +-(2..4), +-(5..)."""
    a = abs(e)
    q = 0 if a == 0 else (1 if a == 1 else (2 if a <= 4 else 3))
    return q if e >= 0 else 3 + q


@njit(cache=True, inline="always")
def _qd(d):
    """A difference in 9 classes: 0, +-(1..2), +-(3..5), +-(6..10), +-(11..)."""
    a = abs(d)
    q = 0 if a == 0 else (1 if a <= 2 else (2 if a <= 5 else (3 if a <= 10 else 4)))
    return q if d >= 0 else 4 + q


@njit(cache=True, inline="always")
def _activity(spread):
    """The spread of the neighbours in N_ACT classes, finer where small."""
    q = 0
    while q < N_ACT - 1 and spread > _ACT_EDGES[q]:
        q += 1
    return q


@njit(cache=True, inline="always")
def _set_ctx(sc, c, h, slot_bits):
    sc.base[0, c] = np.int64(h >> np.uint64(64 - slot_bits + 4)) << 4
    sc.chk[0, c] = np.int64(h & np.uint64(255))


@njit(cache=True)
def neighbours(g, y, x, out, future):
    """The 4 nearest known pixels of (y, x) at its level into ``out[:4]`` (row, column),
    (-1, -1) where absent or not known yet: D the cell's diagonal corners, H and V the axis
    neighbours at distance d, the anchors W, N, NW and NE (NE only where already coded: in an
    earlier tile row, or within the tile); then ``out[4:6]`` the pixels of the same group
    before it, W and N (a cell away: the errors of the same network there). ``future`` 0 keeps
    only what a raster order would have (above, or left on the row): the ablation's switch."""
    phase, s, L, H, W, T = g.geo[0], g.geo[1], g.geo[2], g.geo[4], g.geo[5], g.geo[6]
    if phase == 0:
        A = 1 << L
        out[0, 0], out[0, 1] = y, x - A
        out[1, 0], out[1, 1] = y - A, x
        out[2, 0], out[2, 1] = y - A, x - A
        out[3, 0], out[3, 1] = y - A, x + A
        if (x + A) % T == 0 and y % T != 0:
            out[3, 0] = -1
    else:
        d = 1 << s
        if phase == 1:
            out[0, 0], out[0, 1] = y - d, x - d
            out[1, 0], out[1, 1] = y - d, x + d
            out[2, 0], out[2, 1] = y + d, x - d
            out[3, 0], out[3, 1] = y + d, x + d
        else:
            out[0, 0], out[0, 1] = y - d, x
            out[1, 0], out[1, 1] = y + d, x
            out[2, 0], out[2, 1] = y, x - d
            out[3, 0], out[3, 1] = y, x + d
    step = 1 << L if phase == 0 else 2 << s
    out[4, 0], out[4, 1] = y, x - step
    out[5, 0], out[5, 1] = y - step, x
    for k in range(6):
        if not (0 <= out[k, 0] < H and 0 <= out[k, 1] < W) or (
                not future and (out[k, 0] > y or (out[k, 0] == y and out[k, 1] > x))):
            out[k, 0] = -1
            out[k, 1] = -1


@njit(cache=True, inline="always")
def _lms_predict(lms, row, lx):
    """The adaptive linear predictor's correction to the network's prediction: its weights (row
    ``row``: per phase and level, channel) times the inputs ``lx`` (the neighbours, the same
    group's W and N, a V pixel's diagonals, the classical prediction, each less the network's
    prediction), in levels, rounded."""
    acc = 0
    for k in range(N_LMS):
        acc += lms[row, k] * lx[k]
    return (acc + 32768) >> 16


@njit(cache=True, inline="always")
def _lms_learn(lms, row, lx, err):
    """Normalized LMS: each weight moves by err * x_k / (sum of x^2), 1/8 of the way."""
    norm = 32
    for k in range(N_LMS):
        norm += lx[k] * lx[k]
    for k in range(N_LMS):
        lms[row, k] = min(max(lms[row, k] + ((err * lx[k]) << 13) // norm, -(1 << 18)), 1 << 18)


@njit(cache=True)
def contexts(S, sc, g, nb, y, x, ch, pred, ls, eR, eG, prev, slot_bits, info, v, h, lms, lx):
    """Hash the sub-pixel's contexts into ``sc.base[0]``, ``sc.chk[0]``; ``info`` gets what
    the decisions select by: [0] the activity class, [1] the phase-level class, [2] the fourth
    mixer's class, [3] the linear prediction's class against the network's, [4] the linear
    prediction (a level), [5] its row of ``lms``. ``v`` (12,), ``h`` (N_CTX,), ``lx``
    (N_LMS,): work arrays (levels and errors of the neighbours; hashes; the linear predictor's
    inputs, which its learning reads after the sub-pixel is coded)."""
    img = g.img
    netp = g.netp
    phase, s = g.geo[0], g.geo[1]
    n = 0
    tot = 0
    for k in range(6):  # levels v[k], the network's errors there v[6 + k]
        v[k] = -1
        v[6 + k] = 0
        if nb[k, 0] >= 0:
            v[k] = img[ch, nb[k, 0], nb[k, 1]]
            v[6 + k] = v[k] - netp[ch, nb[k, 0], nb[k, 1]]
            if k < 4:
                tot += v[k]
                n += 1
    mean = (tot + n // 2) // n if n else pred
    lo = 255
    hi = 0
    for k in range(4):
        if v[k] < 0:
            v[k] = mean
        lo = min(lo, v[k])
        hi = max(hi, v[k])
    qa = _activity(hi - lo)
    grp = 0 if phase == 0 else 1 + min(s, 3) * 3 + phase - 1
    info[0] = qa
    info[1] = grp
    info[2] = _qe(eR) * 7 + _qe(eG) if ch > 0 else _qd(v[0] - v[1]) * 5 + min(n, 4)
    dm = min(max(pred - mean, -32), 32)
    esum = min(max(v[6] + v[7] + v[8] + v[9], -63), 63)
    qs = (_qe(v[6]) * 7 + _qe(v[7])) * 49 + _qe(v[8]) * 7 + _qe(v[9])
    eW, eN = min(max(v[10], -15), 15), min(max(v[11], -15), 15)  # in the group, before (y, x)
    base = np.uint64(ch + 1)
    h[0] = _mixh(_mixh(_mixh(base, 1), eW), eN)
    if ch > 0:
        h[1] = _mixh(_mixh(_mixh(_mixh(base, 2), _qe(eR)), _qe(eG)), ls >> 2)
        h[2] = _mixh(_mixh(_mixh(base, 3), min(max(eR, -20), 20)), min(max(eG, -20), 20))
    else:  # red and gray: the interpolation along the smoother of the two opposite pairs (edge-directed)
        a0, a1, b0, b1 = (0, 3, 1, 2) if phase == 1 else (0, 1, 2, 3)
        da, db = abs(v[a0] - v[a1]), abs(v[b0] - v[b1])
        axis = (v[a0] + v[a1] + 1) >> 1 if da <= db else (v[b0] + v[b1] + 1) >> 1
        h[1] = _mixh(_mixh(_mixh(_mixh(base, 2), _qd(axis - pred)), 1 if da <= db else 0), _activity(min(da, db)) >> 1)
        h[2] = _mixh(_mixh(_mixh(_mixh(_mixh(base, 3), _qd(v[6])), _qd(v[7])), _qd(v[8])), _qd(v[9]))
    h[3] = _mixh(_mixh(_mixh(base, 4), qs), n)
    h[4] = _mixh(_mixh(_mixh(base, 5), qa), dm >> 1)
    h[5] = _mixh(_mixh(_mixh(_mixh(_mixh(base, 7), v[0] >> 4), v[1] >> 4), v[2] >> 4), v[3] >> 4)
    h[6] = _mixh(_mixh(_mixh(_mixh(_mixh(base, 8), _qe(eW)), _qe(eN)), _qe(esum)), grp)
    h[7] = _mixh(_mixh(_mixh(base, 9), esum >> 1), ls >> 2)
    h[8] = _mixh(_mixh(_mixh(_mixh(base, 10), dm), _qe(eR)), qa >> 1)
    h[9] = _mixh(_mixh(_mixh(_mixh(base, 11), _qd(v[0] - pred)), _qd(v[1] - pred)), grp)
    h[10] = _mixh(_mixh(_mixh(_mixh(base, 12), _qd(v[2] - pred)), _qd(v[3] - pred)), grp)
    if ch > 0:  # the channel before at this pixel plus the neighbours' difference between the two
        dt = 0
        for k in range(4):
            if nb[k, 0] >= 0:
                dt += v[k] - img[ch - 1, nb[k, 0], nb[k, 1]]
        pc = prev + ((2 * dt + n) // (2 * n) if n else 0)
        h[11] = _mixh(_mixh(_mixh(base, 13), min(max(pc - pred, -24), 24)), qa >> 2)
        classical = pc
    else:  # the mean of the nearest known pixels, in 1/8 level, floored to a level
        classical = ((8 * tot + n // 2) // n) >> 3 if n else pred
        h[11] = _mixh(_mixh(_mixh(base, 13), _qd(v[0] - v[1])), _qd(v[2] - v[3]))
    h[12] = _mixh(_mixh(_mixh(_mixh(_mixh(_mixh(base, 14), v[0]), v[1]), v[2]), v[3]), pred)
    if phase == 3:  # V: its diagonal neighbours (the level's H pixels) are known too
        d = 1 << s
        dt = 0
        nd = 0
        dlo = 255
        dhi = 0
        for dy in (-d, d):
            for dx in (-d, d):
                if (dy < 0 or S.on[4]) and 0 <= y + dy < g.geo[4] and 0 <= x + dx < g.geo[5]:
                    w = np.int64(img[ch, y + dy, x + dx])
                    dt += w
                    nd += 1
                    dlo = min(dlo, w)
                    dhi = max(dhi, w)
        dm2 = (dt + nd // 2) // nd - pred if nd else 0
        h[13] = _mixh(_mixh(_mixh(base, 15), _qd(dm2)), _activity(max(dhi - dlo, 0)))
        lx[6] = dm2
    else:  # the same group's W and N pixels against the prediction
        h[13] = _mixh(_mixh(_mixh(_mixh(base, 16), _qd(v[4] - pred) if v[4] >= 0 else 9),
                            _qd(v[5] - pred) if v[5] >= 0 else 9), grp)
        lx[6] = 0
    h[14] = _mixh(_mixh(_mixh(_mixh(base, 17), pred >> 3), qa >> 1), ls >> 3)
    for k in range(4):
        lx[k] = v[k] - pred
    lx[4] = v[4] - pred if v[4] >= 0 else 0
    lx[5] = v[5] - pred if v[5] >= 0 else 0
    lx[7] = classical - pred
    lx[8] = eR if ch == 1 else eG
    info[5] = grp * 3 + ch
    info[4] = min(max(pred + _lms_predict(lms, info[5], lx), 0), 255)
    info[3] = _qd(info[4] - pred)
    h[15] = _mixh(_mixh(_mixh(base, 18), min(max(info[4] - pred, -24), 24)), qa >> 2)
    pat = 0
    for k in range(6):
        pat = pat * 3 + (0 if v[k] < 0 else (1 if v[k] <= pred else 2))
    h[16] = _mixh(_mixh(_mixh(base, 19), pat), qa >> 1)
    for c in range(N_CTX):
        _set_ctx(sc, c, h[c], slot_bits)


@njit(cache=True, inline="always")
def _decide(S, sc, cd, bd, nd, kind, one, every, bit, ch, info, ls):
    """One decision: the network's probability of a 1 (the masses of the "1" side and of all
    that is possible under the network's PMF, the moved one and the recentred one: ``one``,
    ``every``), mixed;
    coded into (or decoded from) stream bd, or only learnt where its pixels are known;
    returns the bit."""
    stretch = S.stretch
    on = S.on
    sn = stretch[min(max((one[0] << 16) // every[0], 1), 65535)]
    sc.x[0, 0] = sn * on[0]
    sc.x[0, 4 + N_CTX] = stretch[min(max((one[1] << 16) // every[1], 1), 65535)] * on[0] * on[3]
    sc.x[0, 5 + N_CTX] = stretch[min(max((one[2] << 16) // every[2], 1), 65535)] * on[0] * on[3]
    context_inputs(S, sc, 0, nd, 1, N_CTX)
    qa = info[0]
    rb = cm_apm.input_bucket(sn)
    r1 = ((nd * 3 + ch) * N_ACT + qa) * APM_BUCKETS + rb
    r2 = _APM2 + ((nd * 3 + ch) * N_SCALES + ls) * APM_BUCKETS + rb
    sc.x[0, 1 + N_CTX] = cm_apm.read(S.apm, r1, stretch) * on[2] * on[0]
    sc.x[0, 2 + N_CTX] = cm_apm.read(S.apm, r2, stretch) * on[2] * on[0]
    sc.x[0, 3 + N_CTX] = 256
    sc.sets[0, 0] = (nd * 3 + ch) * N_GROUPS + info[1]
    sc.sets[0, 1] = _W2 + (kind * 3 + ch) * N_ACT + qa
    sc.sets[0, 2] = _W3 + (kind * 3 + ch) * N_LS + (ls >> 2)
    sc.sets[0, 3] = _W4 + (kind * 3 + ch) * N_QE2 + info[2]
    sc.fsel[0] = nd * 3 + ch
    sc.rows[0, 0] = r1
    sc.rows[0, 1] = r2
    dot = mix(S, sc, 0, 1, N_MIX, N_INPUTS)
    lo, fr = cm_apm.interp_bucket(dot)
    rf = _APM3 + ((nd * 3 + ch) * N_QD + info[3]) * APM_BUCKETS + lo
    sc.rows[0, 2] = rf + (fr >> 7)
    p = min(max((S.squash[dot + ST_MAX] + 3 * cm_apm.interp(S.apm, rf, fr)) >> 2, 1), 65535)
    mode = cd.mode[bd]
    if mode == MODE_ENCODE:
        encode_bit(cd.st, bd, cd.out, bit, p)
    elif mode == MODE_DECODE:
        bit = decode_bit(cd.st, bd, cd.data, cd.end, p)
    sc.node[0] = nd
    learn(S, sc, 0, bit, N_MIX, N_INPUTS, N_CTX, N_APM_ROWS)
    return bit


@njit(cache=True, inline="always")
def _subpixel(S, sc, cd, bd, ch, v, pred, mu, ls, g, info, bias, pm):
    """The decisions of one sub-pixel (level v where known: encoder, zstd streams); returns
    its level. ``bias``: the local bias of the network's mean (1/8 level) for the moved PMF."""
    cum, start, radius = g.cum, g.start, g.radius
    pm[0] = start[(mu & 7) * N_SCALES + ls]
    pm[1] = mu >> 3
    pm[2] = radius[ls]
    mu2 = min(max(mu + bias, MU_LO), MU_HI)
    pm[3] = start[(mu2 & 7) * N_SCALES + ls]
    pm[4] = mu2 >> 3
    mu3 = 8 * info[4]  # the linear prediction, in 1/8 level (within [MU_LO, MU_HI])
    pm[5] = start[(mu3 & 7) * N_SCALES + ls]
    pm[6] = mu3 >> 3
    e = v - pred
    zero = _decide(S, sc, cd, bd, 1, 0, _levels(cum, pm, pred, pred), _levels(cum, pm, 0, 255),
                   1 if e == 0 else 0, ch, info, ls)
    if zero:
        return pred
    if pred == 0:
        pos = 1
    elif pred == 255:
        pos = 0
    else:
        up = _levels(cum, pm, pred + 1, 255)
        down = _levels(cum, pm, 0, pred - 1)
        pos = _decide(S, sc, cd, bd, 2, 1, up, (up[0] + down[0], up[1] + down[1], up[2] + down[2]), 1 if e > 0 else 0,
                      ch, info, ls)
    top = 255 - pred if pos else pred  # the largest magnitude on this side (>= 1)
    mag = abs(e)
    k = 0
    while (2 << k) <= top:  # class k + 1 is possible: is the class above k?
        if not _decide(S, sc, cd, bd, ND_UNARY + pos * 8 + k, 2 + k, _signed(cum, pm, pred, pos, 2 << k, top),
                       _signed(cum, pm, pred, pos, 1 << k, top), 1 if mag >= (2 << k) else 0, ch, info, ls):
            break
        k += 1
    lo = 1 << k
    for b in range(k - 1, -1, -1):
        if lo + (1 << b) > top:
            continue  # a 1 would leave the range: the bit is 0, not coded
        hi = min(lo + (2 << b) - 1, top)
        if _decide(S, sc, cd, bd, ND_LOW + (pos * 8 + k) * 8 + b, 9 + b, _signed(cum, pm, pred, pos, lo + (1 << b), hi),
                   _signed(cum, pm, pred, pos, lo, hi), (mag >> b) & 1, ch, info, ls):
            lo += 1 << b
    return pred + lo if pos else pred - lo


@njit(cache=True, inline="always")
def condition(o, ch, R, G):
    """The network's mean of channel ch (1/8 level) once the pixel's channels before are known
    (the spec's channel conditioning: coefficients in 1/64, floor shifts, clamped)."""
    if ch == 0:
        return o[0]
    g = min(max(o[1] + ((o[6] * (8 * R - o[0])) >> 6), MU_LO), MU_HI)
    if ch == 1:
        return g
    return min(max(o[2] + ((o[7] * (8 * R - o[0]) + o[8] * (8 * G - g)) >> 6), MU_LO), MU_HI)


@njit(cache=True)
def code_pixels(S, sc, g, cd, a, b, own):
    """The group's pixels a..b-1 in order, channel by channel: each sub-pixel's decisions coded
    into its stream (MODE_ENCODE, levels from ``g.img``), decoded into ``g.img`` (MODE_DECODE)
    or only learnt (MODE_KNOWN); ``g.netp`` gets the network's prediction. Returns the index
    of the first pixel not done: b, or earlier when an encoder's buffer is nearly full (the
    caller empties it and calls again), or -1 when a stream read past its end (damaged)."""
    # the caller holds these tuples until this returns: their arrays borrowed, no reference
    # counts per pass to an inlined function (half the time)
    S, sc, g, cd, own = borrowed(S), borrowed(sc), borrowed(g), borrowed(cd), borrowed(own)
    lms, nb, info, lx, v, h, pm = own
    C = g.geo[3]
    slot_bits = _log2(S.counts.shape[0] // 3)
    cap = cd.out.shape[1] - 256
    for i in range(a, b):
        bd = g.band[i]
        if cd.mode[bd] == MODE_ENCODE and cd.st[bd, 2] > cap:
            return i
        y = g.ys[i]
        x = g.xs[i]
        neighbours(g, y, x, nb, S.on[4])
        o = g.out9[i]
        R = G = 0
        eR = eG = 0
        for ch in range(C):
            mu = condition(o, ch, R, G)
            ls = o[3 + ch]
            pred = min(max((mu + 4) >> 3, 0), 255)
            contexts(S, sc, g, nb, y, x, ch, pred, ls, eR, eG, R if ch == 1 else G, slot_bits, info, v, h, lms, lx)
            bias = 2 * (v[6] + v[7] + v[8] + v[9]) + 2 * (v[10] + v[11])  # the network's errors around, 1/8 level
            lv = _subpixel(S, sc, cd, bd, ch, np.int64(g.img[ch, y, x]), pred, mu, ls, g, info, bias, pm)
            if cd.mode[bd] == MODE_DECODE:
                if cd.st[bd, 4] > 0:
                    return -1
                g.img[ch, y, x] = lv
            g.netp[ch, y, x] = pred
            _lms_learn(lms, info[5], lx, lv - info[4])
            if ch == 0:
                R = lv
                eR = lv - pred
            else:
                G = lv
                eG = lv - pred
    return b


@njit(cache=True, inline="always")
def _log2(n):
    """log2(n) for n a power of two (the count table's slots: its slot_bits)."""
    k = 0
    while (1 << k) < n:
        k += 1
    return k
