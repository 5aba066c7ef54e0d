"""APMs (adaptive probability maps): a probability refined by a context, learnt from the file.

An APM context owns APM_BUCKETS consecutive rows of (hits, total) counts, one per step of the
input's logit: bucket b sits at st = 256 b - 4096 (the logit range -16..16 in 32 steps). A mixer
uses them two ways:

- as an input (:func:`input_bucket`, :func:`read`): the nearest bucket to a logit (the
  network's), read and stretched: "what followed this prediction in this context";
- as a final refinement (:func:`interp_bucket`, :func:`interp`): the two buckets around the
  mixed logit, interpolated; the nearer one learns.

All APMs of a mixer live in one int32 table (rows, 2) (:func:`new_table`); a mixer gives each of
its APM contexts its own range of rows, and records in ``Scratch.rows`` the rows that learn
the coded bit (:func:`dulzip.exact.cm.mixer.learn`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dulzip.exact.cm.luts import ST_MAX
from dulzip.exact.cm.maps import ratio

APM_BUCKETS = 33
APM_LIMIT = 1023  # an APM row's counts are halved past this total
APM_PRIOR = 32  # a fresh row's total: as confident as 32 bits seen


def prior_row(squash: np.ndarray) -> np.ndarray:
    """The 33 rows of one APM context before anything is learnt: bucket b says squash(256 b -
    4096), with APM_PRIOR bits' confidence. (APM_BUCKETS, 2) int32."""
    b = np.arange(APM_BUCKETS, dtype=np.int64)
    centre = squash[np.clip(b * 256 - 4096, -ST_MAX, ST_MAX) + ST_MAX]
    return np.stack([(centre * APM_PRIOR + 32768) >> 16, np.full_like(centre, APM_PRIOR)], axis=-1).astype(np.int32)


def new_table(squash: np.ndarray, n_contexts: int) -> np.ndarray:
    """APM rows for n_contexts contexts, all at the prior: (n_contexts * APM_BUCKETS, 2) int32."""
    return np.tile(prior_row(squash), (n_contexts, 1))


@njit(cache=True, inline="always")
def input_bucket(st):
    """The bucket nearest to logit st (1/256 units)."""
    return (min(max(st, -4096), 4096) + 4096 + 128) >> 8


@njit(cache=True, inline="always")
def read(apm, row, stretch):
    """Row ``row``'s probability, stretched (a mixer input)."""
    return stretch[ratio(np.int64(apm[row, 0]), np.int64(apm[row, 1]))]


@njit(cache=True, inline="always")
def interp_bucket(st):
    """(lo, fr): logit st (|st| <= ST_MAX) lies between buckets lo and lo + 1, fr/256 of the way."""
    lo = (st + 4096) >> 8
    fr = (st + 4096) & 255
    if lo == APM_BUCKETS - 1:
        lo, fr = lo - 1, 256
    return lo, fr


@njit(cache=True, inline="always")
def interp(apm, row, fr):
    """The probability (1/65536) between rows ``row`` and ``row + 1``, fr/256 of the way."""
    return (ratio(np.int64(apm[row, 0]), np.int64(apm[row, 1])) * (256 - fr)
            + ratio(np.int64(apm[row + 1, 0]), np.int64(apm[row + 1, 1])) * fr) >> 8
