"""Adaptive probability rows: (hits, total) counts of what followed a state, read as a
probability that is never 0 or 1. Every table that learns a probability by counting uses
them: the (n0, n1) maps of the context counts, the APMs, the text mixer's match model."""
from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def ratio(hits, total):
    """(2 hits + 1) / (2 total + 2) in 1/65536: a count-based probability, never 0 or 1."""
    return ((2 * hits + 1) << 16) // (2 * total + 2)


@njit(cache=True, inline="always")
def learn_row(table, a, b, limit):
    """Bit b seen by row a of an adaptive map of (hits, total) rows, halved past ``limit``
    (so that it keeps adapting)."""
    table[a, 0] += b
    table[a, 1] += 1
    if table[a, 1] > limit:
        table[a, 0] >>= 1
        table[a, 1] >>= 1
