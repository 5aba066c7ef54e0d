"""Exact adaptive context mixing around the char-RNN, bit by bit (as PAQ/lpaq).

A byte is coded as 8 binary decisions, high bit first; the decision at a node of the byte's
binary tree gets a probability from a logistic mixer whose inputs are the stretched
(logit) probabilities of:

- the char-RNN: the mass of the node's 1-subtree over the node's mass, from its byte table;
- order-k context models (k in ORDERS): bit counts (n0, n1) kept per hashed (context, node)
  slot, turned into a probability by an adaptive map (counts of what followed each (n0, n1)
  state), so the file being coded teaches the coder its own statistics;
- a match model: the byte that followed the last occurrence of the current MATCH_MIN bytes
  predicts the next one, with a confidence learned per match length;
- a bias.

The mixer's weights (one set per bit position and match state) learn online by gradient
steps on coding cost. Every quantity is an integer and every update a sum, so the encoder
and the decoder compute the same tables bit for bit on any machine.

Segments of a block are decoded in lockstep (step t decodes byte t of every segment), and
the adaptive statistics are shared by all of them: what any segment coded at steps < t is
known to all at step t. Concurrent updates are sums (order-independent), and table writes
that could collide are resolved by a fixed rule.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

ORDERS = (0, 1, 2, 3, 4, 5, 6, 8)  # byte contexts: the last k bytes
N_CTX = len(ORDERS) + 2  # and two word contexts: the current word, and it with the word before
SLOT_BITS = 23  # slots per context at most: 2**SLOT_BITS (n0, n1) pairs of bytes (fewer for short texts)
COUNT_LIMIT = 30  # counts are halved past this (they then stay adaptive)
MAP_LIMIT = 1023  # the (n0, n1) -> probability maps halve their counts past this total
MATCH_MIN = 6  # bytes of context that find a match
MATCH_BITS = 20
MATCH_LEN_MAX = 15
ST_MAX = 4095  # stretched probabilities: 1/256 logit units, |st| <= 16 logits
N_INPUTS = 1 + N_CTX + 2  # char-RNN, contexts, match, bias
N_SETS = 512  # weight sets: the node of the byte's tree (the bits so far) x (match predicts or not)
LR = 5  # mixer learning rate: weights change by LR * x * err / 2**18 per bit
APM_BUCKETS = 33  # the final refinement: per (previous byte, node), the mixer's output in 33 steps
APM_LIMIT = 255
APM_PRIOR = 32
APM_W = 2  # the final probability: (4 - APM_W) parts the mixer's, APM_W parts the refinement's (of 4)
PARTS = ("rnn", "orders", "words", "match", "apm", "mixer2", "apm2")  # what can be switched off (to measure what each brings)
_P1 = np.uint64(0x9E3779B97F4A7C15)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in ORDERS], dtype=np.uint64)
_TAGS = np.array([(k + 1) << 56 for k in range(N_CTX)], dtype=np.uint64)
_LETTER = np.zeros(256, dtype=bool)
_LETTER[list(range(65, 91)) + list(range(97, 123)) + list(range(128, 256))] = True
_FOLD = np.arange(256, dtype=np.uint64)
_FOLD[65:91] += np.uint64(32)  # words are hashed case-folded
_MATCH_MASK = np.uint64((1 << (8 * MATCH_MIN)) - 1)


def mixer_luts() -> dict[str, torch.Tensor]:
    """stretch (p in 1/65536 -> logit in 1/256) and squash (its inverse), made at export."""
    p = (torch.arange(1 << 16, dtype=torch.float64) + 0.5) / (1 << 16)
    st = torch.arange(-ST_MAX, ST_MAX + 1, dtype=torch.float64) / 256
    # exact-ok: export-time tables shipped with the weights
    logit = torch.round(256 * torch.log(p / (1 - p)))  # exact-ok
    return {"lut.stretch": logit.clamp(-ST_MAX, ST_MAX).to(torch.int64),
            "lut.squash": torch.round(65536 * torch.sigmoid(st)).clamp(1, 65535).to(torch.int64)}  # exact-ok


class TextMixer:
    """The adaptive state of a text being coded (it lives across blocks)."""

    STATE = ("counts", "maps", "match_stats", "weights", "weights2", "apm", "apm2")

    def __init__(self, luts: dict[str, torch.Tensor], parts: tuple[str, ...] = PARTS,
                 prime: dict[str, torch.Tensor] | None = None, slot_bits: int = SLOT_BITS):
        """``luts``: the stretch and squash tables; ``prime``: a starting state learned on
        training text (:func:`primed_state`) for the mixer weights and the maps, else priors;
        ``slot_bits``: 2**slot_bits count slots per context (a short text needs fewer)."""
        self.slot_bits = slot_bits
        # a fixed scatter of the 256 tree nodes over the slots of a context (integer hash)
        self.node_hash = ((np.arange(256, dtype=np.uint64) * _P1) >> np.uint64(64 - slot_bits)).astype(np.int64)
        self.on_vec = np.array([p in parts for p in PARTS], dtype=np.int64)
        self.ctx_on = np.array([self.on_vec[1]] * len(ORDERS) + [self.on_vec[2]] * 2, dtype=np.int64)  # orders, words
        self.stretch = luts["lut.stretch"].cpu().numpy().astype(np.int64)
        self.squash = luts["lut.squash"].cpu().numpy().astype(np.int64)
        self.counts = np.zeros((N_CTX << slot_bits) * 2, dtype=np.uint8)  # (slot, bit) flattened; counts <= 31
        n = np.arange(COUNT_LIMIT + 2)
        n0, n1 = np.meshgrid(n, n, indexing="ij")
        prior = np.stack([(4 * (2 * n1 + 1)) // (2 * (n0 + n1) + 2), np.full_like(n0, 4)], axis=-1)
        self.maps = np.broadcast_to(prior, (N_CTX, *prior.shape)).reshape(-1, 2).astype(np.int64).copy()
        self.match_stats = np.tile(np.array([[3, 4]], dtype=np.int64), (MATCH_LEN_MAX + 1, 1))
        self.weights = np.zeros((N_SETS, N_INPUTS), dtype=np.int64)
        self.weights[:, 0] = 1 << 16  # start by trusting the char-RNN
        self.weights[:, 1:1 + N_CTX] = 1 << 13
        self.weights[:, 1 + N_CTX] = 1 << 15
        self.weights2 = self.weights[:256].copy()  # the second mixer's sets: by the previous byte
        b = np.arange(APM_BUCKETS, dtype=np.int64)
        centre = self.squash[np.clip(b * 256 - 4096, -ST_MAX, ST_MAX) + ST_MAX]  # bucket b sits at st = 256 b - 4096
        apm = np.stack([(centre * APM_PRIOR + 32768) >> 16, np.full_like(centre, APM_PRIOR)], axis=-1)
        self.apm = np.tile(apm, (65536, 1)).astype(np.int32)  # (prev byte, node, bucket) flattened
        self.apm2 = self.apm.copy()  # (hash of the two previous bytes and the node, bucket)
        for name, t in (prime or {}).items():
            target = getattr(self, name.removeprefix("prime."))
            target[...] = t.cpu().numpy().reshape(target.shape)

    def primed_state(self) -> dict[str, torch.Tensor]:
        """What a model ships as its adaptive state's start (all but the file-specific counts)."""
        return {"prime.weights": torch.from_numpy(np.clip(self.weights, -2 ** 31, 2 ** 31 - 1).astype(np.int32)),
                "prime.maps": torch.from_numpy(self.maps.astype(np.int16)),
                "prime.match_stats": torch.from_numpy(self.match_stats.astype(np.int16)),
                "prime.weights2": torch.from_numpy(np.clip(self.weights2, -2 ** 31, 2 ** 31 - 1).astype(np.int32)),
                "prime.apm": torch.from_numpy(self.apm.astype(np.uint8)),
                "prime.apm2": torch.from_numpy(self.apm2.astype(np.uint8))}

    def snapshot(self) -> tuple:
        return tuple(getattr(self, k).copy() for k in self.STATE)

    def restore(self, snap: tuple) -> None:
        for k, a in zip(self.STATE, snap):
            setattr(self, k, a.copy())


class BlockState:
    """Per-block state: the segments' bytes so far, their contexts and the match model."""

    def __init__(self, lens: np.ndarray):
        self.B = len(lens)
        self.S = int(lens.max()) if len(lens) else 0
        self.lens = lens.astype(np.int64)
        self.hist = np.zeros(self.B * max(self.S, 1), dtype=np.int64)
        self.last8 = np.zeros(self.B, dtype=np.uint64)
        self.word = np.zeros(self.B, dtype=np.uint64)  # hash of the current word (0: none)
        self.prev_word = np.zeros(self.B, dtype=np.uint64)
        self.match_table = np.zeros(1 << MATCH_BITS, dtype=np.int64)  # position + 1 of a byte
        self.match_ptr = np.zeros(self.B, dtype=np.int64)
        self.match_len = np.zeros(self.B, dtype=np.int64)


@njit(cache=True)
def _begin_byte(t, act, last8, word, prev_word, hist, lens, S, match_ptr, match_len, match_stats, stretch, slot_bits,
                base, prev_byte, ctx2, predicted, mbucket, mconf):
    """Per segment at a byte boundary: the context slot bases, the previous byte(s), and the
    match model's prediction (where the pointed-to byte is already known to every segment)."""
    n, nctx = base.shape
    B = len(lens)
    shift = np.uint64(64 - slot_bits)
    for k in range(n):
        a = act[k]
        h = last8[a]
        for c in range(len(_MASKS)):
            base[k, c] = np.int64(((h & _MASKS[c]) ^ _TAGS[c]) * _P1 >> shift)
        w = word[a]
        base[k, nctx - 2] = np.int64((w ^ _TAGS[nctx - 2]) * _P1 >> shift)
        base[k, nctx - 1] = np.int64((((w * _P1) ^ prev_word[a]) ^ _TAGS[nctx - 1]) * _P1 >> shift)
        prev_byte[k] = np.int64(h & np.uint64(255))
        ctx2[k] = np.int64((h & np.uint64(0xFFFF)) * _P1 >> np.uint64(48))
        ptr = match_ptr[a]
        ml = match_len[a]
        seg = min(ptr // S, B - 1)
        predicted[k] = -1
        if ml > 0 and ptr < B * S and ptr % S < min(t, lens[seg]):
            predicted[k] = hist[ptr]
        mb = min(ml, MATCH_LEN_MAX)
        mbucket[k] = mb
        mconf[k] = stretch[_ratio(match_stats[mb, 0], match_stats[mb, 1])]


@njit(cache=True)
def _end_byte(t, act, byte, predicted, last8, word, prev_word, hist, S, match_table, match_ptr, match_len):
    """After byte t of every active segment: history, contexts, words, match model. Lookups of
    new matches all come before this step's insertions; of repeated keys the last segment's
    insertion stays (a fixed order)."""
    n = len(act)
    for k in range(n):
        a = act[k]
        b = byte[k]
        hist[a * S + t] = b
        last8[a] = (last8[a] << np.uint64(8)) | np.uint64(b)
        w = word[a]
        if _LETTER[b]:
            word[a] = (w ^ _FOLD[b]) * _P1 + np.uint64(1)
        else:
            if w != np.uint64(0):
                prev_word[a] = w
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
    for k in range(n):
        a = act[k]
        keys[k] = np.int64((last8[a] & _MATCH_MASK) * _P1 >> np.uint64(64 - MATCH_BITS))
        if match_len[a] == 0:  # look for a new match where there is none
            cand = match_table[keys[k]]
            if cand > 0:
                match_ptr[a] = cand - 1
                match_len[a] = 1
    for k in range(n):
        match_table[keys[k]] = act[k] * S + t + 2  # the next byte's position + 1


@njit(cache=True)
def _ratio(hits, total):
    """(2 hits + 1) / (2 total + 2) in 1/65536: a count-based probability, never 0 or 1."""
    return ((2 * hits + 1) << 16) // (2 * total + 2)


@njit(cache=True)
def _predict(j, node, base, cum, predicted, mconf, prev_byte, ctx2, counts, maps, weights, weights2, apm, apm2,
             stretch, squash, on, ctx_on, node_hash, slot_bits, x, slots, wset, dots, apm_rows, p):
    """Probabilities (1/65536) that bit j of each segment's byte is 1; keeps what the update needs."""
    n, nctx = base.shape
    for k in range(n):
        nd = node[k]
        w = 1 << (8 - j)
        lo = (nd << (8 - j)) - 256
        m = cum[k, lo + w] - cum[k, lo]
        m1 = cum[k, lo + w] - cum[k, lo + w // 2]
        x[k, 0] = stretch[max((m1 << 16) // m, 1)] * on[0]
        for c in range(nctx):
            sl = (base[k, c] ^ node_hash[nd]) + (c << slot_bits)
            slots[k, c] = sl
            r = (c << 10) + (counts[2 * sl] << 5) + counts[2 * sl + 1]
            x[k, 1 + c] = stretch[_ratio(maps[r, 0], maps[r, 1])] * ctx_on[c]
        has = 0
        pb = predicted[k]
        if pb >= 0 and ((pb + 256) >> (8 - j)) == nd:
            has = 1
            x[k, nctx + 1] = (mconf[k] if (pb >> (7 - j)) & 1 else -mconf[k]) * on[3]
        else:
            x[k, nctx + 1] = 0
        x[k, nctx + 2] = 256
        ws = 2 * nd + has
        wset[k] = ws
        # two mixers: weights chosen by the node (and match), and by the previous byte
        dot = 0
        dot2 = 0
        for i in range(nctx + 3):
            dot += x[k, i] * weights[ws, i]
            dot2 += x[k, i] * weights2[prev_byte[k], i]
        dot = min(max(dot >> 16, -ST_MAX), ST_MAX)
        dot2 = min(max(dot2 >> 16, -ST_MAX), ST_MAX)
        dots[k, 0] = dot
        dots[k, 1] = dot2
        if on[5]:
            dot = (dot + dot2) >> 1
        # the final refinement: the mixed probability per (previous byte, node) and per hashed
        # (two previous bytes, node), in 33 steps of its logit
        bucket = (dot + 4096 + 128) >> 8
        ar = ((prev_byte[k] << 8) + nd) * APM_BUCKETS + bucket
        ar2 = ((ctx2[k] ^ (nd * 0x9E3B)) & 0xFFFF) * APM_BUCKETS + bucket
        apm_rows[k, 0] = ar
        apm_rows[k, 1] = ar2
        pa = _ratio(np.int64(apm[ar, 0]), np.int64(apm[ar, 1]))
        if on[6]:
            pa = (pa + _ratio(np.int64(apm2[ar2, 0]), np.int64(apm2[ar2, 1]))) >> 1
        p[k] = min(max((squash[dot + ST_MAX] * (4 - APM_W * on[4]) + APM_W * on[4] * pa) >> 2, 1), 65535)


@njit(cache=True)
def _update(j, bits, node, predicted, mbucket, prev_byte, counts, maps, match_stats, weights, weights2, apm, apm2,
            squash, x, slots, wset, dots, apm_rows, lr):
    """Learn from the coded bits, segment after segment (a fixed order: the same on both sides)."""
    n, nctx = slots.shape
    for k in range(n):
        b = bits[k]
        ws = wset[k]
        err = (b << 16) - squash[dots[k, 0] + ST_MAX]
        err2 = (b << 16) - squash[dots[k, 1] + ST_MAX]
        pv = prev_byte[k]
        for i in range(nctx + 3):
            weights[ws, i] += (x[k, i] * err * lr) >> 18
            weights2[pv, i] += (x[k, i] * err2 * lr) >> 18
        for c in range(nctx):
            sl = slots[k, c]
            n0 = counts[2 * sl]
            n1 = counts[2 * sl + 1]
            r = (c << 10) + (n0 << 5) + n1
            maps[r, 0] += b
            maps[r, 1] += 1
            if maps[r, 1] > MAP_LIMIT:
                maps[r, 0] >>= 1
                maps[r, 1] >>= 1
            # the seen bit's count grows, the other forgets part of itself (nonstationary)
            if b:
                n1 += 1
                if n0 > 2:
                    n0 = (n0 >> 1) + 1
            else:
                n0 += 1
                if n1 > 2:
                    n1 = (n1 >> 1) + 1
            if n0 > COUNT_LIMIT or n1 > COUNT_LIMIT:
                n0 >>= 1
                n1 >>= 1
            counts[2 * sl] = n0
            counts[2 * sl + 1] = n1
        pb = predicted[k]
        if pb >= 0 and (ws & 1):
            mb = mbucket[k]
            match_stats[mb, 0] += ((pb >> (7 - j)) & 1) == b
            match_stats[mb, 1] += 1
            if match_stats[mb, 1] > MAP_LIMIT:
                match_stats[mb, 0] >>= 1
                match_stats[mb, 1] >>= 1
        for a, table in ((apm_rows[k, 0], apm), (apm_rows[k, 1], apm2)):
            table[a, 0] += b
            table[a, 1] += 1
            if table[a, 1] > APM_LIMIT:
                table[a, 0] >>= 1
                table[a, 1] >>= 1
        node[k] = 2 * node[k] + b


def code_step(mix: TextMixer, blk: BlockState, t: int, act: np.ndarray, rnn_weights: np.ndarray, coder) -> np.ndarray:
    """Code byte t of the active segments ``act``; returns their bytes.

    rnn_weights: (len(act), 256) integer byte weights of the char-RNN. ``coder(p16)`` is
    called once per bit with the probabilities (in 1/65536) that the bit is 1 and returns
    the bits (the encoder's known bits, or the decoder's decoded ones).
    """
    n = len(act)
    cum = np.zeros((n, 257), dtype=np.int64)
    np.cumsum(rnn_weights, axis=1, out=cum[:, 1:])
    base = np.empty((n, N_CTX), dtype=np.int64)
    prev_byte, ctx2, predicted, mbucket, mconf = (np.empty(n, dtype=np.int64) for _ in range(5))
    _begin_byte(t, act, blk.last8, blk.word, blk.prev_word, blk.hist, blk.lens, max(blk.S, 1), blk.match_ptr,
                blk.match_len, mix.match_stats, mix.stretch, mix.slot_bits, base, prev_byte, ctx2, predicted, mbucket,
                mconf)
    node = np.ones(n, dtype=np.int64)
    x = np.empty((n, N_INPUTS), dtype=np.int64)
    slots = np.empty((n, N_CTX), dtype=np.int64)
    wset, p = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    dots, apm_rows = np.empty((n, 2), dtype=np.int64), np.empty((n, 2), dtype=np.int64)
    for j in range(8):
        _predict(j, node, base, cum, predicted, mconf, prev_byte, ctx2, mix.counts, mix.maps, mix.weights,
                 mix.weights2, mix.apm, mix.apm2, mix.stretch, mix.squash, mix.on_vec, mix.ctx_on, mix.node_hash,
                 mix.slot_bits, x, slots, wset, dots, apm_rows, p)
        bits = np.asarray(coder(p), dtype=np.int64)
        _update(j, bits, node, predicted, mbucket, prev_byte, mix.counts, mix.maps, mix.match_stats, mix.weights,
                mix.weights2, mix.apm, mix.apm2, mix.squash, x, slots, wset, dots, apm_rows, LR)
    byte = node - 256
    _end_byte(t, act, byte, predicted, blk.last8, blk.word, blk.prev_word, blk.hist, max(blk.S, 1), blk.match_table,
              blk.match_ptr, blk.match_len)
    return byte
