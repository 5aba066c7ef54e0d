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

ORDERS = (0, 1, 2, 3, 4, 6)
SLOT_BITS = 22  # slots per order: 2**SLOT_BITS (n0, n1) pairs
COUNT_LIMIT = 30  # counts are halved past this (they then stay adaptive)
MAP_LIMIT = 1023  # the (n0, n1) -> probability maps halve their counts past this total
MATCH_MIN = 6  # bytes of context that find a match
MATCH_BITS = 20
MATCH_LEN_MAX = 15
ST_MAX = 4095  # stretched probabilities: 1/256 logit units, |st| <= 16 logits
N_INPUTS = 1 + len(ORDERS) + 2  # char-RNN, orders, match, bias
N_SETS = 16  # weight sets: bit position x (match predicts or not)
LR = 6  # mixer learning rate (weights change by LR * x * err / 2**14 per bit, averaged over streams)
_M64 = np.uint64((1 << 64) - 1)
_P1 = np.uint64(0x9E3779B97F4A7C15)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in ORDERS], dtype=np.uint64)
_ORDER_TAG = np.array([k << 56 for k in ORDERS], dtype=np.uint64)
_OFFSETS = (np.arange(len(ORDERS), dtype=np.int64) << SLOT_BITS)[None, :]
# a fixed scatter of the 256 tree nodes over a slot range (integer hash)
_NODE_HASH = ((np.arange(256, dtype=np.uint64) * _P1) >> np.uint64(64 - SLOT_BITS)).astype(np.int64)


def mixer_luts() -> dict[str, torch.Tensor]:
    """stretch (p in 1/65536 -> logit in 1/256) and squash (its inverse), made at export."""
    p = (torch.arange(1 << 16, dtype=torch.float64) + 0.5) / (1 << 16)
    st = torch.arange(-ST_MAX, ST_MAX + 1, dtype=torch.float64) / 256
    # exact-ok: export-time tables shipped with the weights
    return {"lut.stretch": torch.round(256 * torch.log(p / (1 - p))).clamp(-ST_MAX, ST_MAX).to(torch.int64),
            "lut.squash": torch.round(65536 * torch.sigmoid(st)).clamp(1, 65535).to(torch.int64)}  # exact-ok


class TextMixer:
    """The adaptive state of a text being coded (it lives across blocks)."""

    def __init__(self, luts: dict[str, torch.Tensor]):
        self.stretch = luts["lut.stretch"].cpu().numpy().astype(np.int64)
        self.squash = luts["lut.squash"].cpu().numpy().astype(np.int64)
        no = len(ORDERS)
        self.counts = np.zeros((no << SLOT_BITS, 2), dtype=np.int16)
        n = np.arange(COUNT_LIMIT + 2)
        n0, n1 = np.meshgrid(n, n, indexing="ij")
        prior = np.stack([(4 * (2 * n1 + 1)) // (2 * (n0 + n1) + 2), np.full_like(n0, 4)], axis=-1)
        self.maps = np.broadcast_to(prior, (no, *prior.shape)).astype(np.int64).copy()
        self.match_stats = np.tile(np.array([[3, 4]], dtype=np.int64), (MATCH_LEN_MAX + 1, 1))
        self.weights = np.zeros((N_SETS, N_INPUTS), dtype=np.int64)
        self.weights[:, 0] = 1 << 16  # start by trusting the char-RNN
        self.weights[:, 1:1 + no] = 1 << 13
        self.weights[:, 1 + no] = 1 << 15

    def snapshot(self) -> tuple:
        return tuple(a.copy() for a in (self.counts, self.maps, self.match_stats, self.weights))

    def restore(self, snap: tuple) -> None:
        self.counts, self.maps, self.match_stats, self.weights = (a.copy() for a in snap)


class BlockState:
    """Per-block state: the segments' bytes so far, their contexts and the match model."""

    def __init__(self, lens: np.ndarray):
        self.B = len(lens)
        self.S = int(lens.max()) if len(lens) else 0
        self.lens = lens.astype(np.int64)
        self.hist = np.zeros(self.B * max(self.S, 1), dtype=np.int64)
        self.last8 = np.zeros(self.B, dtype=np.uint64)
        self.match_table = np.zeros(1 << MATCH_BITS, dtype=np.int64)  # position + 1 of a byte
        self.match_ptr = np.zeros(self.B, dtype=np.int64)
        self.match_len = np.zeros(self.B, dtype=np.int64)


def _halve(table: np.ndarray, index: tuple, size: np.ndarray, limit: int) -> None:
    """Halve the count rows ``table[index]`` whose ``size`` exceeds ``limit``, as often as needed.

    Rows may repeat in ``index``: each repeat reads and writes the same value (deterministic)."""
    over = size > limit
    if not over.any():
        return
    sub = tuple(i[over] for i in index)
    v, s = table[sub], size[over]
    while (s > limit).any():
        big = s > limit
        v[big] >>= 1
        s = np.where(big, s >> 1, s)
    table[sub] = v


def _set_unique(table: np.ndarray, keys: np.ndarray, values: np.ndarray) -> None:
    """table[keys] = values where keys may repeat: the value of the last repeat wins (a fixed rule)."""
    k, first = np.unique(keys[::-1], return_index=True)
    table[k] = values[::-1][first]


def code_step(mix: TextMixer, blk: BlockState, t: int, act: np.ndarray, rnn_weights: np.ndarray, coder) -> np.ndarray:
    """Code byte t of the active segments ``act``; returns their bytes.

    rnn_weights: (len(act), 256) integer byte weights of the char-RNN. ``coder(p16)`` is
    called once per bit with the probabilities (in 1/65536) that the bit is 1 and returns
    the bits (the encoder's known bits, or the decoder's decoded ones).
    """
    n = len(act)
    st, sq = mix.stretch, mix.squash
    cum = np.zeros((n, 257), dtype=np.int64)
    np.cumsum(rnn_weights, axis=1, out=cum[:, 1:])
    rows = np.arange(n)
    ctx = blk.last8[act][:, None] & _MASKS[None, :]
    h = ((ctx ^ _ORDER_TAG[None, :]) * _P1) >> np.uint64(64 - SLOT_BITS)
    base = h.astype(np.int64)
    # match model: the predicted byte, where the pointed-to byte is known to every segment
    ptr = blk.match_ptr[act]
    mlen = blk.match_len[act]
    S = max(blk.S, 1)
    seg = np.minimum(ptr // S, blk.B - 1)
    valid = (mlen > 0) & (ptr < blk.B * S) & (ptr % S < np.minimum(t, blk.lens[seg]))
    predicted = np.where(valid, blk.hist[np.where(valid, ptr, 0)], -1)
    mbucket = np.minimum(mlen, MATCH_LEN_MAX)
    node = np.ones(n, dtype=np.int64)
    order_ix = np.broadcast_to(np.arange(len(ORDERS)), (n, len(ORDERS)))
    x = np.empty((n, N_INPUTS), dtype=np.int64)
    x[:, -1] = 256
    for j in range(8):
        w = 1 << (8 - j)
        lo = (node << (8 - j)) - 256
        m = cum[rows, lo + w] - cum[rows, lo]
        m1 = cum[rows, lo + w] - cum[rows, lo + w // 2]
        x[:, 0] = st[np.clip((m1 << 16) // m, 1, 65535)]
        idx = (base ^ _NODE_HASH[node][:, None]) + _OFFSETS
        cnt = mix.counts[idx].astype(np.int64)  # (n, orders, 2)
        cm = mix.maps[order_ix, cnt[..., 0], cnt[..., 1]]
        x[:, 1:1 + len(ORDERS)] = st[((2 * cm[..., 0] + 1) << 16) // (2 * cm[..., 1] + 2)]
        has = (predicted >= 0) & ((predicted + 256) >> (8 - j) == node)
        ebit = (predicted >> (7 - j)) & 1
        ms = mix.match_stats[mbucket]
        conf = st[((2 * ms[:, 0] + 1) << 16) // (2 * ms[:, 1] + 2)]
        x[:, -2] = np.where(has, np.where(ebit == 1, conf, -conf), 0)
        wset = 2 * j + has
        dot = (x * mix.weights[wset]).sum(axis=1) >> 16
        p = sq[np.clip(dot, -ST_MAX, ST_MAX) + ST_MAX]
        bit = np.asarray(coder(p), dtype=np.int64)
        # learn: mixer weights (mean gradient over the streams), counts, maps, match stats
        err = (bit << 16) - p
        grad = np.zeros((N_SETS, N_INPUTS), dtype=np.int64)
        np.add.at(grad, wset, x * err[:, None])
        mix.weights += (grad * LR) // (n << 14)
        flat = idx.ravel()
        np.add.at(mix.counts, (flat, np.repeat(bit, len(ORDERS))), 1)
        _halve(mix.counts, (flat,), mix.counts[flat].max(axis=1), COUNT_LIMIT)
        ob, c0, c1 = order_ix.ravel(), cnt[..., 0].ravel(), cnt[..., 1].ravel()
        np.add.at(mix.maps, (ob, c0, c1, 0), np.repeat(bit, len(ORDERS)))
        np.add.at(mix.maps, (ob, c0, c1, 1), 1)
        _halve(mix.maps, (ob, c0, c1), mix.maps[ob, c0, c1, 1], MAP_LIMIT)
        if has.any():
            hb = mbucket[has]
            np.add.at(mix.match_stats, (hb, 0), (bit[has] == ebit[has]).astype(np.int64))
            np.add.at(mix.match_stats, (hb, 1), 1)
            _halve(mix.match_stats, (hb,), mix.match_stats[hb, 1], MAP_LIMIT)
        node = 2 * node + bit
    byte = node - 256
    _after_byte(blk, t, act, byte, valid, predicted)
    return byte


def _after_byte(blk: BlockState, t: int, act: np.ndarray, byte: np.ndarray, valid, predicted) -> None:
    S = max(blk.S, 1)
    pos = act * S + t
    blk.hist[pos] = byte
    blk.last8[act] = (blk.last8[act] << np.uint64(8)) | byte.astype(np.uint64)
    hit = valid & (predicted == byte)
    blk.match_len[act] = np.where(hit, np.minimum(blk.match_len[act] + 1, 1 << 16), 0)
    blk.match_ptr[act] = np.where(hit, blk.match_ptr[act] + 1, 0)
    if t + 1 < MATCH_MIN:
        return
    key = (((blk.last8[act] & np.uint64((1 << (8 * MATCH_MIN)) - 1)) * _P1) >> np.uint64(64 - MATCH_BITS)).astype(np.int64)
    lost = ~hit
    if lost.any():  # look for a new match where there is none
        cand = blk.match_table[key[lost]]
        sel = act[lost]
        blk.match_ptr[sel] = np.where(cand > 0, cand - 1, 0)
        blk.match_len[sel] = (cand > 0).astype(np.int64)
    _set_unique(blk.match_table, key, pos + 2)  # the next byte's position + 1
