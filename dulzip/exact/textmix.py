"""Exact adaptive context mixing around the char-RNN, bit by bit (as PAQ/lpaq).

A byte is coded as 8 binary decisions, high bit first; the decision at a node of the byte's
binary tree gets a probability from two layers of logistic mixing whose inputs are the
stretched (logit) probabilities of:

- the char-RNN: the mass of the node's 1-subtree over the node's mass, from its byte table;
  and the same refined by adaptive maps per (previous byte, node) and per (current word, node);
- context models: order-k byte contexts (k in ORDERS), word contexts (the current word;
  with the word before; with the two words before; with the word before that one only) and
  column contexts (the bytes above in the line before, with the last byte or the column):
  bit counts (n0, n1) kept per (context, node) slot of one shared hash table (a check byte
  per slot; the 15 nodes of a nibble share a cache line), turned into a probability by an
  adaptive map per context kind (what followed each (n0, n1) state), so the file being
  coded teaches the coder its own statistics;
- a match model: the byte that followed the last occurrence of the current MATCH_MIN bytes
  predicts the next one, with a confidence learned per match length;
- a bias;

and since version 3:

- more contexts: two sparse ones, the field of a line (separators so far), and the segment's own
  order-1, 2, 3, 4 and 6 contexts (see below);
- a run model: the first bucket slot of some contexts remembers the byte that followed the
  context last and how many times in a row; where it agrees with the bits coded so far it
  predicts the next bit, with a confidence learnt per run length;
- an online layer: a logistic unit per node over the char-RNN's hidden state, whose integer
  weights learn from the file being coded (the network's own output is fixed; this part of it
  is not): the network adapts to a genre it was not trained on, exactly on every machine.

The first layer has N_MIX mixers whose weight sets are chosen by the node and match state,
the previous byte, how many order contexts have been seen before, and which word and column
contexts have; the second layer mixes their outputs by weights chosen by the node and the
seen orders. Two adaptive maps refine the result (per previous byte and per hashed two
previous bytes, interpolated between 33 steps of the logit). Everything learns online by
gradient steps on coding cost. Every quantity is an integer and every update a sum, so the
encoder and the decoder compute the same tables bit for bit on any machine.

Segments of a block are decoded in lockstep (step t decodes byte t of every segment), and
the adaptive statistics are shared by all of them: what any segment coded at steps < t is
known to all at step t. Concurrent updates are sums (order-independent), and table writes
that could collide are resolved by a fixed rule (segment order). Shared statistics mix the
far parts of a text that the segments are, which costs much where a text's neighbouring
lines are alike (a sorted list: 13% on one); version 3's private contexts (hashed with the
segment's number) and the match model's first look into the segment's own past give the
nearby text its weight back.

Version 2 files decode with the same functions: a version 2 mixer has N_CTX_2 contexts and
none of version 3's parts (its extra inputs are zero, so its sums are version 2's).

The counts, maps, APMs, mixing layers and their learning are the shared kernel
(:mod:`dulzip.exact.cm`); this module holds what is the text's own: its contexts (orders,
words, columns), the match model, the choice of weight sets and the final refinement.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

from dulzip.coding.bitdecoder import check, decode_bit
from dulzip.exact.cm import apm as cm_apm
from dulzip.exact.cm.apm import APM_BUCKETS
from dulzip.exact.cm.counts import MAP_LIMIT, MAP_ROWS, context_inputs, map_prior, new_counts, node_offsets
from dulzip.exact.cm.counts import P1 as _P1
from dulzip.exact.cm.luts import ST_MAX, tables
from dulzip.exact.cm.maps import learn_row, ratio
from dulzip.exact.cm.mixer import learn, mix
from dulzip.exact.cm.state import MixerState, Scratch, borrowed, new_scratch, typed_namedtuple

MIXER_VERSION = 3  # bumped whenever what the mixer computes changes (a file records the version it was made with)
VERSIONS = (2, 3)  # the versions this mixer computes (2: without what VERSION_3 lists)
ORDERS = (0, 1, 2, 3, 4, 5, 6, 8, 12, 16)  # byte contexts: the last k bytes
N_WORDS = 4  # word contexts: the current word with 0, 1 or 2 words before it, and with the second word before
N_CTX_2 = len(ORDERS) + N_WORDS + 2  # and two column contexts: the bytes above with the last byte, the byte above with the column
# Version 3's contexts after those: two sparse ones (the 2nd and 3rd bytes back; the 1st and the
# 3rd) and the field (how many separators the line has had, with the last two bytes); then the
# segment's own: order-k contexts for k in PRIVATE hashed with the segment's number, which learn
# from that segment's bytes only (the segments of a block are coded in lockstep, so the shared
# statistics mix far parts of the text)
PRIVATE = (1, 2, 3, 4, 6)
N_CTX = N_CTX_2 + 3 + len(PRIVATE)
_C_SPARSE = N_CTX_2
_C_FIELD = N_CTX_2 + 2
_C_PRIVATE = N_CTX_2 + 3
_MASKS_PRIVATE = np.array([(1 << (8 * k)) - 1 for k in PRIVATE], dtype=np.uint64)
# Version 3's run model: the contexts whose bucket remembers the byte that followed them last
# (and how many times in a row), an input each where that byte agrees with the bits coded so far
RUN_CTX = np.array([1, 2, 3, 4, 5, 6, 7, 10, 11], dtype=np.int64)
N_RUN = len(RUN_CTX)
RUN_BUCKETS = 16  # runs of 1 .. 15 and more
SLOT_BITS = 27  # count slots at most, shared by all contexts: 2**SLOT_BITS of (n0, n1, check) (fewer for short texts)
MATCH_MIN = 6  # bytes of context that find a match
MATCH_BITS = 20
MATCH_LEN_MAX = 15
N_INPUTS_2 = 1 + N_CTX_2 + 4  # version 2's
N_INPUTS = 1 + N_CTX + 4 + N_RUN + 1  # char-RNN, contexts, match, bias, the char-RNN refined by the previous byte and
_X_RUN = 1 + N_CTX + 4  # by the word, the run model's, the online layer's
_X_ONLINE = _X_RUN + N_RUN
# Version 3's online layer: a logistic unit per node of the byte tree over the char-RNN's hidden
# state (and a constant), learnt on the file being coded: logit = sum(h w) >> ONLINE_SHIFT (1/256),
# each weight moved by h * err >> ONLINE_LR per bit (err = bit - p in 1/65536)
ONLINE_SHIFT = 14
ONLINE_LR = 12
ONLINE_ONE = 64  # the constant input (the unit's bias), as large as the largest h
ONLINE_WMAX = (1 << 23) - 1  # weights are int32 within +-ONLINE_WMAX: h * w fits an int32 (|h| <= 64)
N_ORDERS = len(ORDERS)
_C_WORD = N_ORDERS  # the contexts after the orders: four word contexts, then the two column contexts
_C_ABOVE = N_ORDERS + N_WORDS
N_MIX = 4  # first-layer mixers, each with its own choice of weight set: by node x match (512), previous
MIX_OFF = np.array([0, 512, 768, 768 + (N_ORDERS + 1) * 8])  # byte (256), orders seen x bit, word/column contexts seen x bit
N_SETS = 768 + (N_ORDERS + 1) * 8 + 32 * 8
LR_F = 2  # the second layer's learning rate
LR = 3  # mixer learning rate: weights change by LR * x * err / 2**18 per bit
APM_W = 2  # the final probability: (4 - APM_W) parts the mixer's, APM_W parts the refinement's (of 4)
# The one APM table's contexts, APM_BUCKETS rows each: the final refinement per (previous byte,
# node) ("apm" in a model's primed state), then ("apm2") per hashed (two previous bytes, node),
# the char-RNN refined per (previous byte, node) and per hashed (current word, node)
_APM2 = 65536 * APM_BUCKETS  # the first row of "apm2"
N_APM_ROWS = 4  # rows that learn each bit: the two final refinements', the char-RNN's two
PARTS = ("rnn", "orders", "words", "match", "apm", "mixer2", "apm2", "columns",  # what can be switched off (to measure
         "runs", "sparse", "field", "private", "online")  # what each brings); version 3's:
VERSION_3 = ("runs", "sparse", "field", "private", "online")  # the run model, contexts, the online layer
# (the parts up to "columns" only zero their inputs; version 3's are not computed at all when off)
_ON_RUNS, _ON_ONLINE = PARTS.index("runs"), PARTS.index("online")
_ON_NCTX = len(PARTS)  # the switches' last entry: how many contexts there are (version 2: N_CTX_2)
_MASKS = np.array([(1 << (8 * min(k, 8))) - 1 for k in ORDERS], dtype=np.uint64)  # of the last 8 bytes
_MASKS_OLD = np.array([(1 << (8 * max(k - 8, 0))) - 1 for k in ORDERS], dtype=np.uint64)  # of the 8 before
_TAGS = np.array([(k + 1) << 56 for k in range(N_CTX)], dtype=np.uint64)
_LETTER = np.zeros(256, dtype=bool)
_LETTER[list(range(65, 91)) + list(range(97, 123)) + list(range(128, 256))] = True
_SEPARATOR = np.zeros(256, dtype=bool)  # what separates the fields of a line (the field context)
_SEPARATOR[[9, 32, 44, 59, 124]] = True  # tab, space, comma, semicolon, bar
_FOLD = np.arange(256, dtype=np.uint64)
_FOLD[65:91] += np.uint64(32)  # words are hashed case-folded
_MATCH_MASK = np.uint64((1 << (8 * MATCH_MIN)) - 1)
_ORDER_BITS = (1 << N_ORDERS) - 1  # of the mask of seen contexts: the orders'

# A step's text-only scratch beside the kernel's Scratch (row k: active segment k): the char-RNN's
# cumulative byte weights, the match model's predicted byte (-1: none), length bucket and
# stretched confidence, the previous byte, the two previous bytes hashed, the current word hashed;
# the run model's byte per run context and its run length (0: none); the network's features (and
# the constant), the online layer's logit
ByteStep = typed_namedtuple("ByteStep", ["cum", "predicted", "mbucket", "mconf", "prev_byte", "ctx2", "wkey",
                                         "rpred", "rrun", "feat", "ologit"], __name__)
# A block's arrays (see BlockState), as one argument of the njit functions
BlockArrays = typed_namedtuple("BlockArrays", ["hist", "lens", "last8", "word", "prev_word", "lines",
                                               "match_table", "match_ptr", "match_len", "field"], __name__)


def mixer_luts() -> dict[str, torch.Tensor]:
    """stretch (p in 1/65536 -> logit in 1/256) and squash (its inverse), shipped with a model's
    weights at export: the kernel's tables (:func:`dulzip.exact.cm.luts.tables`)."""
    stretch, squash = tables()
    return {"lut.stretch": torch.from_numpy(stretch.copy()), "lut.squash": torch.from_numpy(squash.copy())}


class TextMixer:
    """The adaptive state of a text being coded (it lives across blocks)."""

    STATE = ("counts", "maps", "match_stats", "run_stats", "online", "weights", "weights_f", "apm")

    def __init__(self, luts: dict[str, torch.Tensor], parts: tuple[str, ...] = PARTS,
                 prime: dict[str, torch.Tensor] | None = None, slot_bits: int = SLOT_BITS,
                 version: int = MIXER_VERSION, n_features: int = 0):
        """``luts``: the stretch and squash tables the model ships (those its files were coded
        with; the same integers as :func:`dulzip.exact.cm.luts.tables`); ``prime``: a starting
        state learned on training text (:func:`primed_state`) for the mixer weights and the
        maps, else priors (a version 2 state starts a version 3 mixer too: its tables where
        version 2 has them); ``slot_bits``: 2**slot_bits count slots shared by the contexts (a
        short text needs fewer); ``version``: the mixer version (one of VERSIONS) to compute;
        ``n_features``: the width of the network's features (:meth:`TextRuntime.features`),
        what the online layer learns from."""
        if version not in VERSIONS:
            raise ValueError(f"text mixer version {version} is not one of {VERSIONS}")
        self.version = version
        if version == 2:
            parts = tuple(p for p in parts if p not in VERSION_3)
        self.slot_bits = slot_bits
        self.node_hash = node_offsets(slot_bits)
        n_ctx = N_CTX_2 if version == 2 else N_CTX
        self.on_vec = np.array([p in parts for p in PARTS] + [n_ctx], dtype=np.int64)
        on = dict(zip(PARTS, self.on_vec))
        self.ctx_on = np.array([on["orders"]] * N_ORDERS + [on["words"]] * N_WORDS + [on["columns"]] * 2
                               + [on["sparse"]] * 2 + [on["field"]]
                               + [on["private"]] * len(PRIVATE), dtype=np.int64)
        self.stretch = luts["lut.stretch"].cpu().numpy().astype(np.int64)
        self.squash = luts["lut.squash"].cpu().numpy().astype(np.int64)
        self.counts = new_counts(slot_bits)  # (slot, (n0, n1, check)) flattened
        self.counts_used = False  # whether anything has been coded into the counts (else all zeros)
        self.maps = map_prior(N_CTX)  # version 2 reads the first N_CTX_2 * MAP_ROWS rows only
        self.match_stats = np.tile(np.array([[3, 4]], dtype=np.int64), (MATCH_LEN_MAX + 1, 1))
        self.run_stats = np.tile(np.array([[6, 8]], dtype=np.int64), (N_RUN * RUN_BUCKETS, 1))
        self.weights = np.zeros((N_SETS, N_INPUTS), dtype=np.int64)
        self.weights[:, 0] = 1 << 16  # start by trusting the char-RNN
        self.weights[:, 1:1 + N_CTX] = 1 << 13
        self.weights[:, 1 + N_CTX] = 1 << 15
        self.weights[:, _X_RUN:] = 1 << 13
        self.online = np.zeros((256, n_features + 1), dtype=np.int32)  # per node, and the constant's
        self.weights_f = np.full(((N_ORDERS + 1) * 256, N_MIX), (1 << 16) // N_MIX, dtype=np.int64)
        self.apm = cm_apm.new_table(self.squash, 4 * 65536)
        self._state = None  # the kernel's view of the tables (made on first use, again after a restore)
        self._steps: dict[int, tuple] = {}  # a step's scratch by the number of segments it codes
        for name, t in (prime or {}).items():
            self._prime(name.removeprefix("prime."), t.cpu().numpy())

    @property
    def uses_features(self) -> bool:
        """Whether the online layer reads the network's features (code_step's ``features``)."""
        return bool(self.on_vec[_ON_ONLINE])

    def _prime(self, name: str, t: np.ndarray) -> None:
        """Start table ``name`` from a model's primed state ``t``: version 2's tables (weights
        of N_INPUTS_2 columns, maps of N_CTX_2 kinds) go where both versions read them."""
        target = self._part(name)
        if name == "weights" and t.shape[-1] == N_INPUTS_2:
            t = t.reshape(N_SETS, N_INPUTS_2)
            target[:, :1 + N_CTX_2] = t[:, :1 + N_CTX_2]  # the char-RNN, version 2's contexts
            target[:, 1 + N_CTX:_X_RUN] = t[:, 1 + N_CTX_2:]  # match, bias, the char-RNN refined
        elif name == "maps" and t.size == N_CTX_2 * MAP_ROWS * 2:
            target[:N_CTX_2 * MAP_ROWS] = t.reshape(-1, 2)
        else:
            target[...] = t.reshape(target.shape)

    def _part(self, name: str) -> np.ndarray:
        """A table of the state by the name a model's primed state gives it ("apm" and "apm2"
        are the two parts of the one APM table)."""
        if name == "apm":
            return self.apm[:_APM2]
        if name == "apm2":
            return self.apm[_APM2:]
        return getattr(self, name)

    def state_tuple(self) -> tuple:
        """The kernel's view of the current tables, a MixerState as a plain tuple (made once,
        anew after a restore replaced them; see the entry points on plain tuples)."""
        if self._state is None:
            self._state = tuple(MixerState(counts=self.counts, maps=self.maps, node_hash=self.node_hash,
                                           ctx_on=self.ctx_on, on=self.on_vec, weights=self.weights,
                                           weights_f=self.weights_f, apm=self.apm, stretch=self.stretch,
                                           squash=self.squash, lr=LR, lr_f=LR_F))
        return self._state

    def step_scratch(self, n: int) -> tuple:
        """(Scratch, ByteStep) for a step of n segments, made once per n (reset by the step)."""
        if n not in self._steps:
            sc = new_scratch(n, N_CTX, N_INPUTS, N_MIX, N_APM_ROWS)
            tb = ByteStep(np.zeros((n, 257), dtype=np.int64), *(np.empty(n, dtype=np.int64) for _ in range(6)),
                          np.zeros((n, N_RUN), dtype=np.int64), np.zeros((n, N_RUN), dtype=np.int64),
                          np.full((n, self.online.shape[1]), ONLINE_ONE, dtype=np.int32), np.zeros(n, dtype=np.int64))
            self._steps[n] = (sc, tb, tuple(sc), tuple(tb))
        return self._steps[n]

    def primed_state(self) -> dict[str, torch.Tensor]:
        """What a model ships as its adaptive state's start (all but the file-specific counts)."""
        return {"prime.weights": torch.from_numpy(np.clip(self.weights, -2 ** 31, 2 ** 31 - 1).astype(np.int32)),
                "prime.maps": torch.from_numpy(self.maps.astype(np.int16)),
                "prime.match_stats": torch.from_numpy(self.match_stats.astype(np.int16)),
                "prime.run_stats": torch.from_numpy(self.run_stats.astype(np.int16)),
                "prime.online": torch.from_numpy(self.online.copy()),
                "prime.weights_f": torch.from_numpy(np.clip(self.weights_f, -2 ** 31, 2 ** 31 - 1).astype(np.int32)),
                "prime.apm": torch.from_numpy(_bytes_counts(self._part("apm"))),
                "prime.apm2": torch.from_numpy(_bytes_counts(self._part("apm2")))}

    def snapshot(self) -> tuple:
        """A copy of the state to return to (the count table only while it holds any counts:
        before the first block it is all zeros, and restored as such without a copy)."""
        return tuple(None if k == "counts" and not self.counts_used else getattr(self, k).copy() for k in self.STATE)

    def restore(self, snap: tuple) -> None:
        """Back to ``snap`` (taken over: a snapshot is restored at most once)."""
        for k, a in zip(self.STATE, snap):
            if a is None:  # the counts, all zeros when the snapshot was taken
                self.counts_used = False
            setattr(self, k, np.zeros_like(getattr(self, k)) if a is None else a)
        self._state = None


def _bytes_counts(table: np.ndarray) -> np.ndarray:
    """(hits, total) rows halved until every total fits a byte (the shipped start keeps each
    row's ratio, with less confidence)."""
    t = table.astype(np.int64)
    while (big := t[:, 1] > 255).any():
        t[big] >>= 1
    return t.astype(np.uint8)


class BlockState:
    """Per-block state: the segments' bytes so far, their contexts and the match model."""

    def __init__(self, lens: np.ndarray):
        self.B = len(lens)
        self.S = int(lens.max()) if len(lens) else 0
        self.lens = lens.astype(np.int64)
        self.hist = np.zeros(self.B * max(self.S, 1), dtype=np.int64)
        self.arrays = BlockArrays(
            hist=self.hist, lens=self.lens,
            last8=np.zeros((self.B, 2), dtype=np.uint64),  # the last 8 bytes, the 8 before
            word=np.zeros(self.B, dtype=np.uint64),  # hash of the current word (0: none)
            prev_word=np.zeros((self.B, 2), dtype=np.uint64),  # the word before, and the one before it
            lines=np.zeros((self.B, 2), dtype=np.int64),  # where the current line and the line before start
            match_table=np.zeros(1 << MATCH_BITS, dtype=np.int64),  # position + 1 of a byte
            match_ptr=np.zeros(self.B, dtype=np.int64),
            match_len=np.zeros(self.B, dtype=np.int64),
            field=np.zeros(self.B, dtype=np.int64))  # separators in the current line so far
        self.arrays_t = tuple(self.arrays)  # the njit entry points' view (see code_step)


@njit(cache=True)
def _begin_byte(t, act, bk, S, match_stats, slot_bits, M, sc, tb):
    """Per segment at a byte boundary: the context slot bases and check bytes (into ``sc``), the
    previous byte(s), the match model's prediction (where the pointed-to byte is already known
    to every segment) and the run model's (into ``tb``). S: the segments' length; M: the
    mixer's state."""
    last8, word, prev_word, lines, hist, lens = bk.last8, bk.word, bk.prev_word, bk.lines, bk.hist, bk.lens
    field = bk.field
    base, chk = sc.base, sc.chk
    counts, stretch, on = M.counts, M.stretch, M.on
    rpred, rrun = tb.rpred, tb.rrun
    n_ctx = on[_ON_NCTX]
    runs = on[_ON_RUNS]
    n = base.shape[0]
    B = len(lens)
    shift = np.uint64(64 - slot_bits)
    for k in range(n):
        a = act[k]
        h = last8[a, 0]
        ho = last8[a, 1]
        w = word[a]
        for c in range(n_ctx):
            if c < len(_MASKS):
                hc = ((((ho & _MASKS_OLD[c]) * _P1) ^ (h & _MASKS[c])) ^ _TAGS[c]) * _P1
            elif c == _C_WORD:
                hc = (w ^ _TAGS[c]) * _P1
            elif c == _C_WORD + 1:
                hc = (((w * _P1) ^ prev_word[a, 0]) ^ _TAGS[c]) * _P1
            elif c == _C_WORD + 2:
                hc = (((((w * _P1) ^ prev_word[a, 0]) * _P1) ^ prev_word[a, 1]) ^ _TAGS[c]) * _P1
            elif c == _C_WORD + 3:
                hc = (((w * _P1) ^ prev_word[a, 1]) ^ _TAGS[c]) * _P1
            elif c < _C_SPARSE:  # the column contexts: the byte(s) at this column of the line before
                col = t - lines[a, 0]
                up = lines[a, 1] + col
                if c == _C_ABOVE:
                    above = hist[a * S + up] + 256 * hist[a * S + up + 1] if up + 1 < lines[a, 0] else 65536
                    hc = (((np.uint64(above) << np.uint64(8)) | (h & np.uint64(255))) ^ _TAGS[c]) * _P1
                else:
                    above = hist[a * S + up] if up < lines[a, 0] else 256
                    hc = (((np.uint64(above) << np.uint64(8)) | np.uint64(min(col, 255))) ^ _TAGS[c]) * _P1
            elif c == _C_SPARSE:  # the 2nd and 3rd bytes back
                hc = ((h & np.uint64(0xFFFF00)) ^ _TAGS[c]) * _P1
            elif c == _C_SPARSE + 1:  # the 1st and the 3rd
                hc = ((h & np.uint64(0xFF00FF)) ^ _TAGS[c]) * _P1
            elif c == _C_FIELD:  # the field: separators in the line so far, the last two bytes
                hc = (((np.uint64(min(field[a], 63)) << np.uint64(16)) | (h & np.uint64(0xFFFF))) ^ _TAGS[c]) * _P1
            else:  # the segment's own order-k contexts
                hc = ((((h & _MASKS_PRIVATE[c - _C_PRIVATE]) * _P1) ^ np.uint64(a)) ^ _TAGS[c]) * _P1
            base[k, c] = np.int64(hc >> (shift + np.uint64(4))) << 4
            chk[k, c] = np.int64((hc >> (shift - np.uint64(8))) & np.uint64(255))
        tb.prev_byte[k] = np.int64(h & np.uint64(255))
        tb.ctx2[k] = np.int64((h & np.uint64(0xFFFF)) * _P1 >> np.uint64(48))
        ptr = bk.match_ptr[a]
        ml = bk.match_len[a]
        seg = min(ptr // S, B - 1)
        tb.predicted[k] = -1
        if ml > 0 and ptr < B * S and ptr % S < min(t, lens[seg]):
            tb.predicted[k] = hist[ptr]
        mb = min(ml, MATCH_LEN_MAX)
        tb.mbucket[k] = mb
        tb.mconf[k] = stretch[ratio(match_stats[mb, 0], match_stats[mb, 1])]
        # the run model: slot 0 of a context's bucket (no node uses it) holds (byte, run, check)
        for r in range(N_RUN):
            c = RUN_CTX[r]
            rs = 3 * base[k, c]
            rrun[k, r] = 0
            if runs and counts[rs + 2] == chk[k, c] and counts[rs + 1] > 0:
                rpred[k, r] = counts[rs]
                rrun[k, r] = counts[rs + 1]


@njit(cache=True)
def _end_byte(t, act, byte, predicted, bk, S, counts, on, sc, tb):
    """After byte t of every active segment: history, contexts, words, match and run models.
    Lookups of new matches all come before this step's insertions; of repeated keys the last
    segment's insertion stays (a fixed order), as for the run model's slots."""
    last8, word, prev_word, lines, hist = bk.last8, bk.word, bk.prev_word, bk.lines, bk.hist
    match_table, match_ptr, match_len = bk.match_table, bk.match_ptr, bk.match_len
    field = bk.field
    base, chk, rpred, rrun = sc.base, sc.chk, tb.rpred, tb.rrun
    v3 = on[_ON_NCTX] > N_CTX_2
    runs = on[_ON_RUNS]
    n = len(act)
    for k in range(n):
        a = act[k]
        b = byte[k]
        hist[a * S + t] = b
        if v3:
            if b == 10:
                field[a] = 0
            elif _SEPARATOR[b] and not _SEPARATOR[last8[a, 0] & np.uint64(255)]:
                field[a] += 1
        if runs:
            for r in range(N_RUN):
                rs = 3 * base[k, RUN_CTX[r]]
                if rrun[k, r] > 0 and rpred[k, r] == b:
                    counts[rs + 1] = min(rrun[k, r] + 1, 255)
                else:
                    counts[rs] = b
                    counts[rs + 1] = 1
                    counts[rs + 2] = chk[k, RUN_CTX[r]]
        if b == 10:
            lines[a, 1] = lines[a, 0]
            lines[a, 0] = t + 1
        last8[a, 1] = (last8[a, 1] << np.uint64(8)) | (last8[a, 0] >> np.uint64(56))
        last8[a, 0] = (last8[a, 0] << np.uint64(8)) | np.uint64(b)
        w = word[a]
        if _LETTER[b]:
            word[a] = (w ^ _FOLD[b]) * _P1 + np.uint64(1)
        else:
            if w != np.uint64(0):
                prev_word[a, 1] = prev_word[a, 0]
                prev_word[a, 0] = w
            word[a] = np.uint64(0)
        if predicted[k] >= 0 and predicted[k] == b:
            match_len[a] = min(match_len[a] + 1, 1 << 16)
            match_ptr[a] += 1
        else:
            match_len[a] = 0
            match_ptr[a] = 0
    if t + 1 < MATCH_MIN:
        return
    keys = np.empty(n, dtype=np.int64)
    own = np.empty(n, dtype=np.int64)  # version 3: the same key in the segment's own part of the table
    for k in range(n):
        a = act[k]
        hk = (last8[a, 0] & _MATCH_MASK) * _P1
        keys[k] = np.int64(hk >> np.uint64(64 - MATCH_BITS))
        own[k] = np.int64(((hk ^ np.uint64(a + 1)) * _P1) >> np.uint64(64 - MATCH_BITS))
        if match_len[a] == 0:  # look for a new match where there is none (version 3: in the segment first)
            cand = match_table[own[k]] if v3 else 0
            if cand == 0:
                cand = match_table[keys[k]]
            if cand > 0:
                match_ptr[a] = cand - 1
                match_len[a] = 1
    for k in range(n):
        match_table[keys[k]] = act[k] * S + t + 2  # the next byte's position + 1
    if v3:
        for k in range(n):
            match_table[own[k]] = act[k] * S + t + 2


@njit(cache=True, inline="always")
def _run_row(rrun, rpred, k, r, nd, j):
    """The run model's statistics row for run context r of element k at node nd, and the bit it
    predicts; (-1, 0) where it predicts nothing (no run, or a byte the coded bits exclude).
    Takes the arrays, not the ByteStep: see dulzip.exact.cm.state on reading fields in loops."""
    rr = rrun[k, r]
    pb = rpred[k, r]
    if rr == 0 or ((pb + 256) >> (8 - j)) != nd:
        return -1, 0
    return r * RUN_BUCKETS + min(rr, RUN_BUCKETS - 1), (pb >> (7 - j)) & 1


@njit(cache=True, inline="always")
def _online_logit(feat, k, online, nd):
    """The online layer's logit (1/256) for element k at node nd."""
    dot = 0
    for i in range(feat.shape[1]):
        dot += np.int64(feat[k, i] * online[nd, i])
    return min(max(dot >> ONLINE_SHIFT, -ST_MAX), ST_MAX)


@njit(cache=True)
def _predict(j, S, sc, tb, run_stats, online):
    """Probabilities (1/65536) that bit j of each segment's byte is 1, into ``sc.p``; keeps what
    the update needs."""
    on, stretch, squash, apm = S.on, S.stretch, S.squash, S.apm
    node, x, rows, sets, fsel, p = sc.node, sc.x, sc.rows, sc.sets, sc.fsel, sc.p
    cum, predicted, mconf, prev_byte, wkey, ctx2 = tb.cum, tb.predicted, tb.mconf, tb.prev_byte, tb.wkey, tb.ctx2
    rrun, rpred, feat, ologit = tb.rrun, tb.rpred, tb.feat, tb.ologit  # fields read once: see dulzip.exact.cm.state
    n_ctx = on[_ON_NCTX]
    online_on = on[_ON_ONLINE]
    n = node.shape[0]
    for k in range(n):
        nd = node[k]
        w = 1 << (8 - j)
        lo = (nd << (8 - j)) - 256
        m = cum[k, lo + w] - cum[k, lo]
        m1 = cum[k, lo + w] - cum[k, lo + w // 2]
        x[k, 0] = stretch[max((m1 << 16) // m, 1)] * on[0]
        known = context_inputs(S, sc, k, nd, 1, n_ctx)
        for c in range(n_ctx, N_CTX):  # version 2: no more contexts
            x[k, 1 + c] = 0
        seen = 0  # how many order contexts have been seen before
        for c in range(N_ORDERS):
            seen += (known >> c) & 1
        wseen = (known >> _C_WORD) & 31  # which word contexts and the first column context have
        has = 0
        pb = predicted[k]
        if pb >= 0 and ((pb + 256) >> (8 - j)) == nd:
            has = 1
            x[k, N_CTX + 1] = (mconf[k] if (pb >> (7 - j)) & 1 else -mconf[k]) * on[3]
        else:
            x[k, N_CTX + 1] = 0
        x[k, N_CTX + 2] = 256
        # the char-RNN's probability refined per (previous byte, node) and per hashed (current
        # word, node): APMs of its logit read at the nearest of 33 steps
        rb = cm_apm.input_bucket(x[k, 0])
        rows[k, 2] = (2 * 65536 + (prev_byte[k] << 8) + nd) * APM_BUCKETS + rb
        rows[k, 3] = (3 * 65536 + ((wkey[k] ^ (nd * 0x9E3B)) & 0xFFFF)) * APM_BUCKETS + rb
        for r in range(2):
            x[k, N_CTX + 3 + r] = cm_apm.read(apm, rows[k, 2 + r], stretch) * on[0]
        # the run model: where a context's last byte agrees with the bits so far, its next bit
        # with the confidence learnt for runs of that length
        for r in range(N_RUN):
            row, rbit = _run_row(rrun, rpred, k, r, nd, j)
            x[k, _X_RUN + r] = 0
            if row >= 0:
                st = stretch[ratio(run_stats[row, 0], run_stats[row, 1])]
                x[k, _X_RUN + r] = st if rbit else -st
        # the online layer
        x[k, _X_ONLINE] = 0
        if online_on:
            x[k, _X_ONLINE] = _online_logit(feat, k, online, nd)
            ologit[k] = x[k, _X_ONLINE]
        # first layer: mixers whose weight sets are chosen by the node (and match), the
        # previous byte, how many order contexts have been seen and which word and column
        # contexts have (and the bit position); the second layer's by the orders seen and the node
        sets[k, 0] = 2 * nd + has
        sets[k, 1] = MIX_OFF[1] + prev_byte[k]
        sets[k, 2] = MIX_OFF[2] + seen * 8 + j
        sets[k, 3] = MIX_OFF[3] + wseen * 8 + j
        fsel[k] = seen * 256 + nd
        dot = mix(S, sc, k, on[5], N_MIX, N_INPUTS)
        # the final refinement: the mixed probability per (previous byte, node) and per hashed
        # (two previous bytes, node), interpolated between 33 steps of its logit
        lo, fr = cm_apm.interp_bucket(dot)
        ar = ((prev_byte[k] << 8) + nd) * APM_BUCKETS + lo
        ar2 = _APM2 + ((ctx2[k] ^ (nd * 0x9E3B)) & 0xFFFF) * APM_BUCKETS + lo
        rows[k, 0] = ar + (fr >= 128)  # the nearer bucket learns
        rows[k, 1] = ar2 + (fr >= 128)
        pa = cm_apm.interp(apm, ar, fr)
        if on[6]:
            pa = (pa + cm_apm.interp(apm, ar2, fr)) >> 1
        p[k] = min(max((squash[dot + ST_MAX] * (4 - APM_W * on[4]) + APM_W * on[4] * pa) >> 2, 1), 65535)


@njit(cache=True)
def _update(j, bits, S, sc, tb, match_stats, run_stats, online):
    """Learn from the coded bits, segment after segment (a fixed order: the same on both sides):
    the run model's statistics, the online layer, the kernel's tables, then the match model's
    confidence."""
    predicted, mbucket, sets, node = tb.predicted, tb.mbucket, sc.sets, sc.node  # fields read once: see dulzip.exact.cm.state
    rrun, rpred, feat, ologit, squash = tb.rrun, tb.rpred, tb.feat, tb.ologit, S.squash
    n_ctx = S.on[_ON_NCTX]
    online_on = S.on[_ON_ONLINE]
    for k in range(node.shape[0]):
        b = bits[k]
        for r in range(N_RUN):
            row, rbit = _run_row(rrun, rpred, k, r, node[k], j)
            if row >= 0:
                learn_row(run_stats, row, rbit == b, MAP_LIMIT)
        if online_on:
            nd = node[k]
            err = (b << 16) - squash[ologit[k] + ST_MAX]
            for i in range(feat.shape[1]):
                online[nd, i] = min(max(online[nd, i] + ((feat[k, i] * err) >> ONLINE_LR), -ONLINE_WMAX), ONLINE_WMAX)
        learn(S, sc, k, b, N_MIX, N_INPUTS, n_ctx, N_APM_ROWS)
        pb = predicted[k]
        if pb >= 0 and (sets[k, 0] & 1):
            mb = mbucket[k]
            match_stats[mb, 0] += ((pb >> (7 - j)) & 1) == b
            match_stats[mb, 1] += 1
            if match_stats[mb, 1] > MAP_LIMIT:
                match_stats[mb, 0] >>= 1
                match_stats[mb, 1] >>= 1


@njit(cache=True)
def _start_step(t, act, rnn_weights, features, bk, S, match_stats, slot_bits, M, sc, tb):
    """A step's inputs into its scratch (the char-RNN's cumulative byte weights, the current
    word's hash, the network's features where the online layer reads them; every node at the
    root), then :func:`_begin_byte`."""
    cum, wkey, feat, node, word = tb.cum, tb.wkey, tb.feat, sc.node, bk.word
    for k in range(len(act)):
        acc = 0
        for v in range(256):
            acc += rnn_weights[k, v]
            cum[k, v + 1] = acc
        wkey[k] = np.int64((word[act[k]] * _P1) >> np.uint64(48))  # the current word, hashed to 16 bits
        node[k] = 1
        for i in range(features.shape[1]):
            feat[k, i] = features[k, i]
    _begin_byte(t, act, bk, S, match_stats, slot_bits, M, sc, tb)


@njit(cache=True)
def _code_step(t, act, known, rnn_weights, features, bk, S, match_stats, run_stats, online, slot_bits, M, sc, tb,
               bits, probs, decoding, rc, tail, words):
    """A step's eight decisions into ``bits`` and their probabilities into ``probs`` ((8, n), bit
    0 of every segment first), the state learnt after each: the encoder's from its ``known``
    bytes; the decoder's (``decoding``) each read from the range decoder (rc, tail, words:
    :class:`dulzip.coding.bitdecoder.BitDecoder`) as soon as its probability is known. Returns
    0, or the decoder's error (a damaged stream)."""
    _start_step(t, act, rnn_weights, features, bk, S, match_stats, slot_bits, M, sc, tb)
    n = len(act)
    for j in range(8):
        _predict(j, M, sc, tb, run_stats, online)
        p = sc.p
        for k in range(n):
            if decoding:
                b = decode_bit(rc, tail, words, p[k])
                if b < 0:
                    return b
                bits[j, k] = b
            else:
                bits[j, k] = (known[k] >> (7 - j)) & 1
        probs[j] = p
        _update(j, bits[j], M, sc, tb, match_stats, run_stats, online)
    _end_byte(t, act, sc.node - 256, tb.predicted, bk, S, M.counts, M.on, sc, tb)
    return 0


def code_step(mix: TextMixer, blk: BlockState, t: int, act: np.ndarray, rnn_weights: np.ndarray, coder,
              features: np.ndarray | None = None) -> np.ndarray:
    """Code byte t of the active segments ``act``; returns their bytes.

    rnn_weights: (len(act), 256) integer byte weights of the char-RNN; features: (len(act),
    n_features) its features (the online layer's inputs; version 3, where
    :attr:`TextMixer.uses_features`). The coder is the encoder's, with ``known()`` -> the active
    segments' bytes, or the decoder's, with ``reader`` (a
    :class:`dulzip.coding.bitdecoder.BitDecoder`); both get ``take(bits, probs)``: the step's
    (8, n) decisions and their probabilities (1/65536 that a bit is 1), bit 0 of every segment
    first (the encoder codes them in that order; the decoder has read them so).
    """
    n = len(act)
    sc, tb, sc_t, tb_t = mix.step_scratch(n)
    S_t = mix.state_tuple()
    bk_t, ms, rs, ol = blk.arrays_t, mix.match_stats, mix.run_stats, mix.online
    feats = _NO_FEATURES if features is None else features
    bits = np.empty((8, n), dtype=np.int64)
    probs = np.empty((8, n), dtype=np.int64)
    mix.counts_used = True
    S, slot_bits = max(blk.S, 1), mix.slot_bits
    decoding = not hasattr(coder, "known")
    known, (rc, tail, words) = ((_NO_BYTES, (coder.reader.state, coder.reader.tail, coder.reader.words)) if decoding
                                else (coder.known(), _NO_READER))
    check(_code_step_entry(t, act, known, rnn_weights, feats, bk_t, S, ms, rs, ol, slot_bits, S_t, sc_t, tb_t, bits,
                           probs, decoding, rc, tail, words))
    coder.take(bits, probs)
    return sc.node - 256


_NO_FEATURES = np.zeros((0, 0), dtype=np.int32)
_NO_BYTES = np.zeros(0, dtype=np.int64)  # the decoder's known bytes, the encoder's range decoder: none
_NO_READER = (np.zeros(4, dtype=np.uint64), np.zeros(1), np.zeros(0, dtype=np.uint64))


# The entry point from Python: plain tuples (numba types a tuple in C, a namedtuple in Python,
# microseconds a call), named again inside, their arrays borrowed (the caller holds them for the
# call: see dulzip.exact.cm.state)
@njit(cache=True)
def _code_step_entry(t, act, known, rnn_weights, features, bk, S, match_stats, run_stats, online, slot_bits, M, sc,
                     tb, bits, probs, decoding, rc, tail, words):
    return _code_step(t, act, known, rnn_weights, features, BlockArrays(*borrowed(bk)), S, match_stats, run_stats,
                      online, slot_bits, MixerState(*borrowed(M)), Scratch(*borrowed(sc)), ByteStep(*borrowed(tb)),
                      bits, probs, decoding, rc, tail, words)
