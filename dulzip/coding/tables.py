"""Generic integer table arithmetic shared by the probability heads (:mod:`dulzip.heads`).

A head computes, by integer arithmetic and lookup tables only, the cumulative mass M of its
distribution at symbol boundaries; the two functions here turn such CDFs into the integer
counts the range coder takes: every table sums to exactly 2**bits and gives every symbol at
least 1, so every symbol stays codable. The same integers on every device. Nothing here knows
a head's grids (those live in the head's own module), so any head can use it.
"""
from __future__ import annotations

import torch


def boundaries(N: int, start: torch.Tensor | int, n: int, device) -> torch.Tensor:
    """(N, n + 1) consecutive boundaries from ``start`` (scalar or (N,)): those of a table of n symbols."""
    return torch.as_tensor(start, device=device).view(-1, 1) + torch.arange(n + 1, device=device).expand(N, -1)


def cum_counts(mixed: torch.Tensor, total: torch.Tensor, t: torch.Tensor, n: int, bits: int) -> torch.Tensor:
    """Cumulative integer counts at boundaries ``t`` (N, E) in 0..n of a CDF over n symbols.

    ``mixed`` (N, E): the CDF at t in units where the whole mass is ``total`` (N, 1). The edge
    bins take the tails (M = 0 at t <= 0, M = total at t >= n), then
    ``cum(t) = floor(M * (2**bits - n) / total) + t``: cum(n) = 2**bits and every symbol has
    count cum(x+1) - cum(x) >= 1.
    """
    mixed = torch.where(t <= 0, 0, torch.where(t >= n, total, mixed))
    return mixed * ((1 << bits) - n) // total + t
