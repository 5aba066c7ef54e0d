"""Bit counts per (context, node) in one shared hash table, and the adaptive maps that turn a
slot's counts (n0, n1) into a probability.

A mixer hashes each of its contexts once per symbol to a *base* (a bucket of 16 slots) and a
*check byte*; the node of the symbol's binary tree picks a slot near the base
(:func:`node_offsets`), so the 15 nodes of a nibble share a cache line. A slot is 3 bytes
(n0, n1, check) of the flat uint8 array ``counts``. The map of context kind c has a row per
(n0, n1) state: what followed that state in any slot of kind c, so the file being coded
teaches the coder what its counts mean.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dulzip.exact.cm.maps import learn_row, ratio

COUNT_LIMIT = 30  # counts are halved past this (they then stay adaptive)
MAP_LIMIT = 4095  # the (n0, n1) -> probability maps halve their counts past this total
MAP_ROWS = 1 << 10  # rows per context kind: (n0 << 5) + n1
P1 = np.uint64(0x9E3779B97F4A7C15)


def node_offsets(slot_bits: int) -> np.ndarray:
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
            out[nd] = ((((hi + 1) * int(P1)) % (1 << 64)) >> (64 - slot_bits + 4)) << 4 | sub
    return out


def new_counts(slot_bits: int) -> np.ndarray:
    """An empty table of 2**slot_bits slots (n0, n1, check), flattened."""
    return np.zeros((1 << slot_bits) * 3, dtype=np.uint8)


def map_prior(n_ctx: int) -> np.ndarray:
    """The maps of n_ctx context kinds before anything is learnt: state (n0, n1) reads as
    (2 n1 + 1) / (2 (n0 + n1) + 2), with the confidence of 4 bits. (n_ctx * MAP_ROWS, 2) int64,
    rows (c << 10) + (n0 << 5) + n1."""
    n = np.arange(COUNT_LIMIT + 2)
    n0, n1 = np.meshgrid(n, n, indexing="ij")
    prior = np.stack([(4 * (2 * n1 + 1)) // (2 * (n0 + n1) + 2), np.full_like(n0, 4)], axis=-1)
    return np.broadcast_to(prior, (n_ctx, *prior.shape)).reshape(-1, 2).astype(np.int64).copy()


@njit(cache=True, inline="always")
def find(counts, sl, ck):
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


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def context_inputs(S, sc, k, nd, x0, n_ctx):
    """Inputs x0 .. x0 + n_ctx - 1 of element k at node nd (n_ctx: the number of contexts): each context's slot (found or taken
    over, kept in ``sc.slots`` for the update) read through its kind's map, stretched, times
    the context's switch ``S.ctx_on``. Returns a mask whose bit c is set where context c's slot
    held counts (had been seen), for mixers that choose weight sets by it."""
    counts, maps, stretch, ctx_on, base, chk, slots, x = S.counts, S.maps, S.stretch, S.ctx_on, sc.base, sc.chk, sc.slots, sc.x
    nh = S.node_hash[nd]
    seen = 0
    for c in range(n_ctx):
        sl = find(counts, base[k, c] ^ nh, (chk[k, c] ^ nd) & 255)
        slots[k, c] = sl
        n0 = np.int64(counts[3 * sl])
        n1 = np.int64(counts[3 * sl + 1])
        if n0 + n1 > 0:
            seen |= 1 << c
        r = (c << 10) + (n0 << 5) + n1
        x[k, x0 + c] = stretch[ratio(maps[r, 0], maps[r, 1])] * ctx_on[c]
    return seen
