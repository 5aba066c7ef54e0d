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
- a bias.

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
that could collide are resolved by a fixed rule (segment order).
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

MIXER_VERSION = 2  # bumped whenever what the mixer computes changes (a file records the version it was made with)
ORDERS = (0, 1, 2, 3, 4, 5, 6, 8, 12, 16)  # byte contexts: the last k bytes
N_WORDS = 4  # word contexts: the current word with 0, 1 or 2 words before it, and with the second word before
N_CTX = len(ORDERS) + N_WORDS + 2  # and two column contexts: the bytes above with the last byte, the byte above with the column
SLOT_BITS = 27  # count slots at most, shared by all contexts: 2**SLOT_BITS of (n0, n1, check) (fewer for short texts)
COUNT_LIMIT = 30  # counts are halved past this (they then stay adaptive)
MAP_LIMIT = 4095  # the (n0, n1) -> probability maps halve their counts past this total
MATCH_MIN = 6  # bytes of context that find a match
MATCH_BITS = 20
MATCH_LEN_MAX = 15
ST_MAX = 4095  # stretched probabilities: 1/256 logit units, |st| <= 16 logits
N_INPUTS = 1 + N_CTX + 4  # char-RNN, contexts, match, bias, the char-RNN refined by the previous byte and by the word
N_ORDERS = len(ORDERS)
_C_WORD = N_ORDERS  # the contexts after the orders: four word contexts, then the two column contexts
_C_ABOVE = N_ORDERS + N_WORDS
N_MIX = 4  # first-layer mixers, each with its own choice of weight set: by node x match (512), previous
MIX_OFF = np.array([0, 512, 768, 768 + (N_ORDERS + 1) * 8])  # byte (256), orders seen x bit, word/column contexts seen x bit
N_SETS = 768 + (N_ORDERS + 1) * 8 + 32 * 8
LR_F = 2  # the second layer's learning rate
LR = 3  # mixer learning rate: weights change by LR * x * err / 2**18 per bit
APM_BUCKETS = 33  # the final refinement: per (previous byte, node), the mixer's output in 33 steps
APM_LIMIT = 1023  # the refinements' counts are halved past this total
APM_PRIOR = 32
APM_W = 2  # the final probability: (4 - APM_W) parts the mixer's, APM_W parts the refinement's (of 4)
PARTS = ("rnn", "orders", "words", "match", "apm", "mixer2", "apm2", "columns")  # what can be switched off (to measure what each brings)
_P1 = np.uint64(0x9E3779B97F4A7C15)
_MASKS = np.array([(1 << (8 * min(k, 8))) - 1 for k in ORDERS], dtype=np.uint64)  # of the last 8 bytes
_MASKS_OLD = np.array([(1 << (8 * max(k - 8, 0))) - 1 for k in ORDERS], dtype=np.uint64)  # of the 8 before
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

    STATE = ("counts", "maps", "match_stats", "weights", "weights_f", "apm", "apm2")

    def __init__(self, luts: dict[str, torch.Tensor], parts: tuple[str, ...] = PARTS,
                 prime: dict[str, torch.Tensor] | None = None, slot_bits: int = SLOT_BITS):
        """``luts``: the stretch and squash tables; ``prime``: a starting state learned on
        training text (:func:`primed_state`) for the mixer weights and the maps, else priors;
        ``slot_bits``: 2**slot_bits count slots shared by the contexts (a short text needs fewer)."""
        self.slot_bits = slot_bits
        self.node_hash = _node_offsets(slot_bits)
        self.on_vec = np.array([p in parts for p in PARTS], dtype=np.int64)
        self.ctx_on = np.array([self.on_vec[1]] * N_ORDERS + [self.on_vec[2]] * N_WORDS + [self.on_vec[7]] * 2,
                               dtype=np.int64)  # orders, words, columns
        self.stretch = luts["lut.stretch"].cpu().numpy().astype(np.int64)
        self.squash = luts["lut.squash"].cpu().numpy().astype(np.int64)
        self.counts = np.zeros((1 << slot_bits) * 3, dtype=np.uint8)  # (slot, (n0, n1, check)) flattened
        self.counts_used = False  # whether anything has been coded into the counts (else all zeros)
        n = np.arange(COUNT_LIMIT + 2)
        n0, n1 = np.meshgrid(n, n, indexing="ij")
        prior = np.stack([(4 * (2 * n1 + 1)) // (2 * (n0 + n1) + 2), np.full_like(n0, 4)], axis=-1)
        self.maps = np.broadcast_to(prior, (N_CTX, *prior.shape)).reshape(-1, 2).astype(np.int64).copy()
        self.match_stats = np.tile(np.array([[3, 4]], dtype=np.int64), (MATCH_LEN_MAX + 1, 1))
        self.weights = np.zeros((N_SETS, N_INPUTS), dtype=np.int64)
        self.weights[:, 0] = 1 << 16  # start by trusting the char-RNN
        self.weights[:, 1:1 + N_CTX] = 1 << 13
        self.weights[:, 1 + N_CTX] = 1 << 15
        self.weights_f = np.full(((N_ORDERS + 1) * 256, N_MIX), (1 << 16) // N_MIX, dtype=np.int64)
        b = np.arange(APM_BUCKETS, dtype=np.int64)
        centre = self.squash[np.clip(b * 256 - 4096, -ST_MAX, ST_MAX) + ST_MAX]  # bucket b sits at st = 256 b - 4096
        apm = np.stack([(centre * APM_PRIOR + 32768) >> 16, np.full_like(centre, APM_PRIOR)], axis=-1)
        self.apm = np.tile(apm, (65536, 1)).astype(np.int32)  # (prev byte, node, bucket) flattened
        # (hash of the two previous bytes and the node, bucket); then the char-RNN's refinements:
        # (previous byte, node, bucket) and (hash of the current word and the node, bucket)
        self.apm2 = np.concatenate([self.apm, self.apm, self.apm])
        for name, t in (prime or {}).items():
            target = getattr(self, name.removeprefix("prime."))
            target[...] = t.cpu().numpy().reshape(target.shape)

    def primed_state(self) -> dict[str, torch.Tensor]:
        """What a model ships as its adaptive state's start (all but the file-specific counts)."""
        return {"prime.weights": torch.from_numpy(np.clip(self.weights, -2 ** 31, 2 ** 31 - 1).astype(np.int32)),
                "prime.maps": torch.from_numpy(self.maps.astype(np.int16)),
                "prime.match_stats": torch.from_numpy(self.match_stats.astype(np.int16)),
                "prime.weights_f": torch.from_numpy(np.clip(self.weights_f, -2 ** 31, 2 ** 31 - 1).astype(np.int32)),
                "prime.apm": torch.from_numpy(_bytes_counts(self.apm)),
                "prime.apm2": torch.from_numpy(_bytes_counts(self.apm2))}

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


def _bytes_counts(table: np.ndarray) -> np.ndarray:
    """(hits, total) rows halved until every total fits a byte (the shipped start keeps each
    row's ratio, with less confidence)."""
    t = table.astype(np.int64)
    while (big := t[:, 1] > 255).any():
        t[big] >>= 1
    return t.astype(np.uint8)


def _node_offsets(slot_bits: int) -> np.ndarray:
    """Where each node of a byte's tree sits among a context's slots, as an offset xor-ed with
    the context's base: the 15 nodes of the first nibble in the base's bucket of 16 slots, the
    15 of the second nibble in a bucket picked by the first nibble (one cache line each)."""
    out = np.zeros(256, dtype=np.int64)
    for nd in range(1, 256):
        j = nd.bit_length() - 1
        if j < 4:
            out[nd] = nd
        else:
            hi = (nd >> (j - 4)) - 16
            sub = (1 << (j - 4)) | (nd & ((1 << (j - 4)) - 1))
            out[nd] = ((((hi + 1) * int(_P1)) % (1 << 64)) >> (64 - slot_bits + 4)) << 4 | sub
    return out


class BlockState:
    """Per-block state: the segments' bytes so far, their contexts and the match model."""

    def __init__(self, lens: np.ndarray):
        self.B = len(lens)
        self.S = int(lens.max()) if len(lens) else 0
        self.lens = lens.astype(np.int64)
        self.hist = np.zeros(self.B * max(self.S, 1), dtype=np.int64)
        self.last8 = np.zeros((self.B, 2), dtype=np.uint64)  # the last 8 bytes, the 8 before
        self.word = np.zeros(self.B, dtype=np.uint64)  # hash of the current word (0: none)
        self.prev_word = np.zeros((self.B, 2), dtype=np.uint64)  # the word before, and the one before it
        self.lines = np.zeros((self.B, 2), dtype=np.int64)  # where the current line and the line before start
        self.match_table = np.zeros(1 << MATCH_BITS, dtype=np.int64)  # position + 1 of a byte
        self.match_ptr = np.zeros(self.B, dtype=np.int64)
        self.match_len = np.zeros(self.B, dtype=np.int64)


@njit(cache=True)
def _begin_byte(t, act, last8, word, prev_word, lines, hist, lens, S, match_ptr, match_len, match_stats, stretch, slot_bits,
                base, chk, prev_byte, ctx2, predicted, mbucket, mconf):
    """Per segment at a byte boundary: the context slot bases, the previous byte(s), and the
    match model's prediction (where the pointed-to byte is already known to every segment)."""
    n, nctx = base.shape
    B = len(lens)
    shift = np.uint64(64 - slot_bits)
    for k in range(n):
        a = act[k]
        h = last8[a, 0]
        ho = last8[a, 1]
        w = word[a]
        for c in range(nctx):
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
            else:  # the column contexts: the byte(s) at this column of the line before
                col = t - lines[a, 0]
                up = lines[a, 1] + col
                if c == _C_ABOVE:
                    above = hist[a * S + up] + 256 * hist[a * S + up + 1] if up + 1 < lines[a, 0] else 65536
                    hc = (((np.uint64(above) << np.uint64(8)) | (h & np.uint64(255))) ^ _TAGS[c]) * _P1
                else:
                    above = hist[a * S + up] if up < lines[a, 0] else 256
                    hc = (((np.uint64(above) << np.uint64(8)) | np.uint64(min(col, 255))) ^ _TAGS[c]) * _P1
            base[k, c] = np.int64(hc >> (shift + np.uint64(4))) << 4
            chk[k, c] = np.int64((hc >> (shift - np.uint64(8))) & np.uint64(255))
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
def _end_byte(t, act, byte, predicted, last8, word, prev_word, lines, hist, S, match_table, match_ptr, match_len):
    """After byte t of every active segment: history, contexts, words, match model. Lookups of
    new matches all come before this step's insertions; of repeated keys the last segment's
    insertion stays (a fixed order)."""
    n = len(act)
    for k in range(n):
        a = act[k]
        b = byte[k]
        hist[a * S + t] = b
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
    for k in range(n):
        a = act[k]
        keys[k] = np.int64((last8[a, 0] & _MATCH_MASK) * _P1 >> np.uint64(64 - MATCH_BITS))
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
def _find(counts, sl, ck):
    """The slot of a (context, node) whose check byte is ck: sl or sl ^ 16 (the same node in the
    neighbouring bucket); if neither holds it, the one with fewer counts is taken over (reset)."""
    if counts[3 * sl + 2] == ck:
        return sl
    alt = sl ^ 16
    if counts[3 * alt + 2] == ck:
        return alt
    if np.int64(counts[3 * alt]) + counts[3 * alt + 1] < np.int64(counts[3 * sl]) + counts[3 * sl + 1]:
        sl = alt
    counts[3 * sl] = 0
    counts[3 * sl + 1] = 0
    counts[3 * sl + 2] = ck
    return sl


@njit(cache=True)
def _predict(j, node, base, chk, cum, predicted, mconf, prev_byte, ctx2, wkey, counts, maps, weights, weights_f, apm, apm2,
             stretch, squash, on, ctx_on, node_hash, x, slots, wset, dots, apm_rows, p, fsel):
    """Probabilities (1/65536) that bit j of each segment's byte is 1; keeps what the update needs."""
    n, nctx = base.shape
    for k in range(n):
        nd = node[k]
        w = 1 << (8 - j)
        lo = (nd << (8 - j)) - 256
        m = cum[k, lo + w] - cum[k, lo]
        m1 = cum[k, lo + w] - cum[k, lo + w // 2]
        x[k, 0] = stretch[max((m1 << 16) // m, 1)] * on[0]
        seen = 0
        wseen = 0
        for c in range(nctx):
            sl = _find(counts, base[k, c] ^ node_hash[nd], (chk[k, c] ^ nd) & 255)
            slots[k, c] = sl
            n0 = counts[3 * sl]
            n1 = counts[3 * sl + 1]
            if c < N_ORDERS and n0 + n1 > 0:
                seen += 1
            elif _C_WORD <= c <= _C_ABOVE and n0 + n1 > 0:
                wseen |= 1 << (c - _C_WORD)
            r = (c << 10) + (n0 << 5) + n1
            x[k, 1 + c] = stretch[_ratio(maps[r, 0], maps[r, 1])] * ctx_on[c]
        has = 0
        pb = predicted[k]
        if pb >= 0 and ((pb + 256) >> (8 - j)) == nd:
            has = 1
            x[k, nctx + 1] = (mconf[k] if (pb >> (7 - j)) & 1 else -mconf[k]) * on[3]
        else:
            x[k, nctx + 1] = 0
        x[k, nctx + 2] = 256
        # the char-RNN's probability refined per (previous byte, node) and per hashed (current
        # word, node): adaptive maps of its logit in 33 steps (rows after apm2's own)
        rb = (min(max(x[k, 0], -4096), 4096) + 4096 + 128) >> 8
        apm_rows[k, 2] = (65536 + (prev_byte[k] << 8) + nd) * APM_BUCKETS + rb
        apm_rows[k, 3] = (131072 + ((wkey[k] ^ (nd * 0x9E3B)) & 0xFFFF)) * APM_BUCKETS + rb
        for r in range(2):
            a = apm_rows[k, 2 + r]
            x[k, nctx + 3 + r] = stretch[_ratio(np.int64(apm2[a, 0]), np.int64(apm2[a, 1]))] * on[0]
        # first layer: mixers whose weight sets are chosen by the node (and match), the
        # previous byte, and how many order contexts have been seen (and the bit position)
        wset[k, 0] = 2 * nd + has
        wset[k, 1] = MIX_OFF[1] + prev_byte[k]
        wset[k, 2] = MIX_OFF[2] + seen * 8 + j
        wset[k, 3] = MIX_OFF[3] + wseen * 8 + j
        fsel[k] = seen * 256 + nd
        for mi in range(N_MIX):
            ws = wset[k, mi]
            dot = 0
            for i in range(N_INPUTS):
                dot += x[k, i] * weights[ws, i]
            dots[k, mi] = min(max(dot >> 16, -ST_MAX), ST_MAX)
        # second layer: the first layer's logits mixed by weights chosen by the orders seen and the node
        if on[5]:
            dot = 0
            for mi in range(N_MIX):
                dot += dots[k, mi] * weights_f[fsel[k], mi]
            dot = min(max(dot >> 16, -ST_MAX), ST_MAX)
        else:
            dot = dots[k, 0]
        dots[k, N_MIX] = dot
        # the final refinement: the mixed probability per (previous byte, node) and per hashed
        # (two previous bytes, node), in 33 steps of its logit
        lo = (dot + 4096) >> 8
        fr = (dot + 4096) & 255
        if lo == APM_BUCKETS - 1:
            lo, fr = lo - 1, 256
        ar = ((prev_byte[k] << 8) + nd) * APM_BUCKETS + lo
        ar2 = ((ctx2[k] ^ (nd * 0x9E3B)) & 0xFFFF) * APM_BUCKETS + lo
        apm_rows[k, 0] = ar + (fr >= 128)  # the nearer bucket learns
        apm_rows[k, 1] = ar2 + (fr >= 128)
        pa = (_ratio(np.int64(apm[ar, 0]), np.int64(apm[ar, 1])) * (256 - fr)
              + _ratio(np.int64(apm[ar + 1, 0]), np.int64(apm[ar + 1, 1])) * fr) >> 8
        if on[6]:
            pa2 = (_ratio(np.int64(apm2[ar2, 0]), np.int64(apm2[ar2, 1])) * (256 - fr)
                   + _ratio(np.int64(apm2[ar2 + 1, 0]), np.int64(apm2[ar2 + 1, 1])) * fr) >> 8
            pa = (pa + pa2) >> 1
        p[k] = min(max((squash[dot + ST_MAX] * (4 - APM_W * on[4]) + APM_W * on[4] * pa) >> 2, 1), 65535)


@njit(cache=True)
def learn_row(table, a, b, limit):
    """Bit b seen by row a of an adaptive map of (hits, total) rows, halved past ``limit``."""
    table[a, 0] += b
    table[a, 1] += 1
    if table[a, 1] > limit:
        table[a, 0] >>= 1
        table[a, 1] >>= 1


@njit(cache=True)
def learn_slot(counts, maps, c, sl, b):
    """Bit b seen in slot sl of context kind c: the kind's map learns what followed the slot's
    (n0, n1) state; the seen bit's count grows, the other forgets part of itself (nonstationary)."""
    n0 = np.int64(counts[3 * sl])
    n1 = np.int64(counts[3 * sl + 1])
    r = (c << 10) + (n0 << 5) + n1
    learn_row(maps, r, b, MAP_LIMIT)
    if b:
        n1 += 1
        if n0 > 6:
            n0 = (n0 >> 1) + 3
    else:
        n0 += 1
        if n1 > 6:
            n1 = (n1 >> 1) + 3
    if n0 > COUNT_LIMIT or n1 > COUNT_LIMIT:
        n0 >>= 1
        n1 >>= 1
    counts[3 * sl] = n0
    counts[3 * sl + 1] = n1


@njit(cache=True)
def _update(j, bits, node, predicted, mbucket, prev_byte, counts, maps, match_stats, weights, weights_f, apm, apm2,
            squash, x, slots, wset, dots, apm_rows, lr, fsel):
    """Learn from the coded bits, segment after segment (a fixed order: the same on both sides)."""
    n, nctx = slots.shape
    for k in range(n):
        b = bits[k]
        for mi in range(N_MIX):
            ws = wset[k, mi]
            err = (b << 16) - squash[dots[k, mi] + ST_MAX]
            for i in range(N_INPUTS):
                weights[ws, i] += (x[k, i] * err * lr) >> 18
        err = (b << 16) - squash[dots[k, N_MIX] + ST_MAX]
        for mi in range(N_MIX):
            weights_f[fsel[k], mi] += (dots[k, mi] * err * LR_F) >> 18
        for c in range(nctx):
            learn_slot(counts, maps, c, slots[k, c], b)
        pb = predicted[k]
        if pb >= 0 and (wset[k, 0] & 1):
            mb = mbucket[k]
            match_stats[mb, 0] += ((pb >> (7 - j)) & 1) == b
            match_stats[mb, 1] += 1
            if match_stats[mb, 1] > MAP_LIMIT:
                match_stats[mb, 0] >>= 1
                match_stats[mb, 1] >>= 1
        for a, table in ((apm_rows[k, 0], apm), (apm_rows[k, 1], apm2), (apm_rows[k, 2], apm2), (apm_rows[k, 3], apm2)):
            learn_row(table, a, b, APM_LIMIT)
        node[k] = 2 * node[k] + b


@njit(cache=True)
def _code_known(bits, probs, node, base, chk, cum, predicted, mbucket, mconf, prev_byte, ctx2, wkey, counts, maps,
                match_stats, weights, weights_f, apm, apm2, stretch, squash, on, ctx_on, node_hash, x, slots,
                wset, dots, apm_rows, p, fsel):
    """The eight decisions of a step whose bits are known (the encoder): probabilities into ``probs``."""
    for j in range(8):
        _predict(j, node, base, chk, cum, predicted, mconf, prev_byte, ctx2, wkey, counts, maps, weights, weights_f, apm, apm2,
                 stretch, squash, on, ctx_on, node_hash, x, slots, wset, dots, apm_rows, p, fsel)
        probs[j] = p
        _update(j, bits[j], node, predicted, mbucket, prev_byte, counts, maps, match_stats, weights, weights_f, apm,
                apm2, squash, x, slots, wset, dots, apm_rows, LR, fsel)


def code_step(mix: TextMixer, blk: BlockState, t: int, act: np.ndarray, rnn_weights: np.ndarray, coder) -> np.ndarray:
    """Code byte t of the active segments ``act``; returns their bytes.

    rnn_weights: (len(act), 256) integer byte weights of the char-RNN. ``coder(p16)`` is
    called once per bit with the probabilities (in 1/65536) that the bit is 1 and returns
    the bits (the decoder's decoded ones). A coder that knows the bytes (the encoder) has
    ``known()`` -> the active segments' bytes and ``take(bits, p16)`` -> codes (8, n) bits with
    their probabilities, bit 0 of every segment first: the same symbols in the same order, in
    one call per step instead of eight.
    """
    n = len(act)
    cum = np.zeros((n, 257), dtype=np.int64)
    np.cumsum(rnn_weights, axis=1, out=cum[:, 1:])
    base = np.empty((n, N_CTX), dtype=np.int64)
    chk = np.empty((n, N_CTX), dtype=np.int64)
    prev_byte, ctx2, predicted, mbucket, mconf = (np.empty(n, dtype=np.int64) for _ in range(5))
    _begin_byte(t, act, blk.last8, blk.word, blk.prev_word, blk.lines, blk.hist, blk.lens, max(blk.S, 1), blk.match_ptr,
                blk.match_len, mix.match_stats, mix.stretch, mix.slot_bits, base, chk, prev_byte, ctx2, predicted, mbucket,
                mconf)
    mix.counts_used = True
    node = np.ones(n, dtype=np.int64)
    wkey = ((blk.word[act] * _P1) >> np.uint64(48)).astype(np.int64)  # the current word, hashed to 16 bits
    fsel = np.zeros(n, dtype=np.int64)
    x = np.empty((n, N_INPUTS), dtype=np.int64)
    slots = np.empty((n, N_CTX), dtype=np.int64)
    wset, p = np.empty((n, N_MIX), dtype=np.int64), np.empty(n, dtype=np.int64)
    dots, apm_rows = np.empty((n, N_MIX + 1), dtype=np.int64), np.empty((n, 4), dtype=np.int64)
    if hasattr(coder, "known"):
        bits = (coder.known()[None, :] >> np.arange(7, -1, -1)[:, None]) & 1  # (8, n)
        probs = np.empty((8, n), dtype=np.int64)
        _code_known(bits, probs, node, base, chk, cum, predicted, mbucket, mconf, prev_byte, ctx2, wkey, mix.counts,
                    mix.maps, mix.match_stats, mix.weights, mix.weights_f, mix.apm, mix.apm2, mix.stretch, mix.squash,
                    mix.on_vec, mix.ctx_on, mix.node_hash, x, slots, wset, dots, apm_rows, p, fsel)
        coder.take(bits, probs)
    else:
        for j in range(8):
            _predict(j, node, base, chk, cum, predicted, mconf, prev_byte, ctx2, wkey, mix.counts, mix.maps, mix.weights,
                     mix.weights_f, mix.apm, mix.apm2, mix.stretch, mix.squash, mix.on_vec, mix.ctx_on, mix.node_hash,
                     x, slots, wset, dots, apm_rows, p, fsel)
            bits = np.asarray(coder(p), dtype=np.int64)
            _update(j, bits, node, predicted, mbucket, prev_byte, mix.counts, mix.maps, mix.match_stats, mix.weights,
                    mix.weights_f, mix.apm, mix.apm2, mix.squash, x, slots, wset, dots, apm_rows, LR, fsel)
    byte = node - 256
    _end_byte(t, act, byte, predicted, blk.last8, blk.word, blk.prev_word, blk.lines, blk.hist, max(blk.S, 1), blk.match_table,
              blk.match_ptr, blk.match_len)
    return byte
