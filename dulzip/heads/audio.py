"""The audio head: a discretized logistic mixture over the 65536 levels of a 16-bit sample
(the WaveNet's), the edge levels taking the tails.

* the grids: the integer units of the head parameters (logits, log-scales, means; the
  WaveNet's filter gates share the logit grid and the exp table);
* float, for training: :func:`mixture_bits` (the loss: bits of each sample, floored as the
  tables);
* export: :func:`audio_luts`, the lookup tables shipped with the weights;
* integer, for the runtime and codec: :func:`audio_cum` (head integers -> cumulative counts, on
  any device), :func:`audio_cum_cpu` (the same integers with numba) and the tables coded,
  :func:`audio_coarse_table` (high byte) and :func:`audio_fine_table` (low byte).

How the head's means are made (a linear prediction plus a correction in units of the scale)
belongs to the network: :mod:`dulzip.models.wavenet` and :mod:`dulzip.exact.wavenet`. This
module imports no model, runtime or codec (see :mod:`dulzip.heads`).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit

from dulzip.coding.tables import boundaries, cum_counts

LEVELS = 65536
# head parameter grids (integer units), shared with the exact runtime and its tables
LOGIT_SCALE = 16  # mixture and filter-gate logits in 1/16 nats
LOGIT_MIN, LOGIT_MAX = -2048, 2047
LS_SCALE = 32  # log-scales (natural log, in levels) in 1/32
LS_MIN, LS_MAX = -64, 336  # scales from e**-2 to e**10.5 levels
MU_SCALE = 8  # means in 1/8 level
TABLE_BITS = 31  # the 16-bit PMF sums to 2**31 with every level >= 1
W_BITS = 12  # the most probable component (or filter) weighs 2**W_BITS
EXP_SIZE = 512  # logits more than 32 nats below the best weigh 0


# -- float, for training ---------------------------------------------------------------------
def mixture_bits(logits, mu, log_s, x: torch.Tensor, step: int = 1) -> torch.Tensor:
    """Bits of levels ``x`` (B, L) under discretized logistic mixtures (B, L, K); the edge
    levels take the tails; every level has mass >= 2**-TABLE_BITS as in the integer tables.
    ``step``: the level spacing (256 for 8-bit audio, whose levels are multiples of 256)."""
    xf = x.float().unsqueeze(-1)
    inv = torch.exp(-log_s)
    half = step / 2
    plus = (xf + half - mu) * inv
    minus = (xf - half - mu) * inv
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = (xf - mu) * inv
    log_pdf_mid = mid - log_s - 2 * F.softplus(mid) + math.log(step)  # tails: a gradient everywhere
    inner = torch.where(cdf_delta > 1e-6, torch.log(cdf_delta.clamp_min(1e-12)), log_pdf_mid)
    lo_edge = F.logsigmoid(plus)  # all mass below the top edge of the lowest level
    hi_edge = -F.softplus(minus)  # all mass above the bottom edge of the highest level
    logp = torch.where(xf - half < -32768, lo_edge, torch.where(xf + half > 32767, hi_edge, inner))
    logp = torch.logsumexp(torch.log_softmax(logits, dim=-1) + logp, dim=-1)
    n = LEVELS // step
    floor = math.log(2.0 ** -TABLE_BITS)
    logp = torch.logaddexp(logp + math.log1p(-n * 2.0 ** -TABLE_BITS), torch.full_like(logp, floor))
    return -logp / math.log(2)


# -- export and integer: one integer CDF over 65536 levels, coded as high byte then low byte --
A_SIG_STEPS = 256  # the sigmoid table: z in steps of 1/256 over [-16, 16], linearly interpolated
A_SIG_RANGE = 16 * A_SIG_STEPS
A_SIG_BITS = 24  # sigmoid values in 2**-24
A_INV_BITS = 24  # 1/s in 2**-24 per level
A_FRAC = 11  # interpolation fraction bits
A_CDF_BITS = A_SIG_BITS + A_FRAC - 7  # a component's CDF in 2**-28
A_MU_CLAMP = 1 << 19  # means within +-65536 levels (in 1/8 level)


def audio_luts() -> dict[str, torch.Tensor]:
    """Lookup tables for :func:`audio_cum`, made once at export and shipped with the weights."""
    i = torch.arange(-A_SIG_RANGE, A_SIG_RANGE + 1, dtype=torch.float64) / A_SIG_STEPS
    j = torch.arange(LS_MIN, LS_MAX + 1, dtype=torch.float64) / LS_SCALE
    k = torch.arange(EXP_SIZE, dtype=torch.float64) / LOGIT_SCALE
    # exact-ok: the four tables below are built once at export and shipped in the weights file
    return {"lut.acdf": torch.round(2 ** A_SIG_BITS * torch.sigmoid(i)).to(torch.int64),  # exact-ok
            "lut.ainv": torch.round(2 ** A_INV_BITS * torch.exp(-j)).to(torch.int64),  # exact-ok
            "lut.ascale": torch.round(MU_SCALE * torch.exp(j)).to(torch.int64),  # exact-ok
            "lut.aexp": torch.round(2 ** W_BITS * torch.exp(-k)).to(torch.int64)}  # exact-ok


def audio_cum(logits: torch.Tensor, mu: torch.Tensor, log_s: torch.Tensor, t: torch.Tensor,
              luts: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cumulative integer counts at level boundaries ``t`` (N, E) in 0..65536 (boundary t lies
    between the levels t-1 and t of the offset sample x + 32768).

    logits, mu (1/8 level, of the signed sample), log_s: (N, K) int64, K <= 8. Each component's
    logistic CDF comes from the sigmoid table, linearly interpolated; the mixture M (weights
    from the exp table) is mapped to ``cum(t) = (M' * (2**31 - 65536)) // total' + t`` with
    M' = M >> 12: cum(0) = 0, cum(65536) = 2**31 and every level has count >= 1.

    This is the reference, on any device; :func:`audio_cum_cpu` computes the same integers
    with numba.
    """
    d = (logits.max(dim=1, keepdim=True).values - logits).clamp(max=EXP_SIZE - 1)
    w = luts["lut.aexp"][d]  # (N, K)
    inv = luts["lut.ainv"][log_s - LS_MIN]  # (N, K)
    edge = (t - 32768) * MU_SCALE - MU_SCALE // 2  # (N, E) in 1/8 level
    mu = mu.clamp(-A_MU_CLAMP, A_MU_CLAMP)
    z = (edge.unsqueeze(1) - mu.unsqueeze(-1)) * inv.unsqueeze(-1)  # (N, K, E): z * 2**27
    lim = A_SIG_RANGE << (A_INV_BITS + 3 - 8)
    z = z.clamp_(-lim, lim - 1)
    zs = torch.bitwise_right_shift(z, A_INV_BITS + 3 - 8 - A_FRAC)  # z in 2**-(8 + A_FRAC)
    idx = torch.bitwise_right_shift(zs, A_FRAC) + A_SIG_RANGE
    frac = torch.bitwise_and(zs, (1 << A_FRAC) - 1)
    lut = luts["lut.acdf"]
    lo = lut[idx]
    cdf = torch.bitwise_right_shift((lo << A_FRAC) + (lut[idx + 1] - lo) * frac, 7)  # (N, K, E) in 2**-28
    mixed = torch.bitwise_right_shift((cdf * w.unsqueeze(-1)).sum(dim=1), W_BITS)  # (N, E)
    total = w.sum(dim=1, keepdim=True) << (A_CDF_BITS - W_BITS)
    return cum_counts(mixed, total, t, LEVELS, TABLE_BITS)


def audio_cum_cpu(logits: np.ndarray, mu: np.ndarray, log_s: np.ndarray, t: np.ndarray,
                  luts: dict[str, torch.Tensor], diff: bool = False) -> np.ndarray:
    """:func:`audio_cum` on numpy int64 arrays (the same integers), in one numba loop; with
    ``diff`` the differences along each row instead, (N, E - 1): a table's weights."""
    return _audio_cum(logits, mu, log_s, t, luts["lut.aexp"].numpy(), luts["lut.ainv"].numpy(),
                      luts["lut.acdf"].numpy(), diff)


@njit(cache=True)
def _audio_cum(logits, mu, log_s, t, aexp, ainv, acdf, diff):
    """The loops of :func:`audio_cum_cpu`: per row the component weights, then per component
    its interpolated sigmoid at every boundary, then the mapping to counts. A boundary beyond
    a component's table range (most of the high-byte table's) takes the clamped value made
    once."""
    N, K = logits.shape
    E = t.shape[1]
    out = np.empty((N, E - 1 if diff else E), dtype=np.int64)
    acc = np.empty(E, dtype=np.int64)
    edge = np.empty(E, dtype=np.int64)
    lim = np.int64(A_SIG_RANGE) << (A_INV_BITS + 3 - 8)
    shift = A_INV_BITS + 3 - 8 - A_FRAC
    below = _interp(acdf, -lim >> shift)
    above = _interp(acdf, (lim - 1) >> shift)
    scale = (np.int64(1) << TABLE_BITS) - 65536
    for n in range(N):
        top = logits[n, 0]
        for k in range(1, K):
            top = max(top, logits[n, k])
        for e in range(E):
            edge[e] = (t[n, e] - 32768) * MU_SCALE - MU_SCALE // 2
            acc[e] = 0
        total = np.int64(0)
        for k in range(K):
            w = aexp[min(top - logits[n, k], EXP_SIZE - 1)]
            total += w
            inv = ainv[log_s[n, k] - LS_MIN]
            m = min(max(mu[n, k], -A_MU_CLAMP), A_MU_CLAMP)
            for e in range(E):
                z = (edge[e] - m) * inv
                if z <= -lim:
                    acc[e] += below * w
                elif z >= lim - 1:
                    acc[e] += above * w
                else:
                    acc[e] += _interp(acdf, z >> shift) * w
        total <<= A_CDF_BITS - W_BITS
        ftotal = np.float64(total)
        for e in range(E):
            te = t[n, e]
            num = (np.int64(0) if te <= 0 else (total if te >= 65536 else acc[e] >> W_BITS)) * scale
            # num // total: the float64 quotient (below 2**31) is off by far less than 1, the
            # remainder corrects it (an integer division is several times slower)
            q = np.int64(np.float64(num) / ftotal)
            r = num - q * total
            if r < 0:
                q -= 1
            elif r >= total:
                q += 1
            acc[e] = q + te  # the row's cumulative counts
        if diff:
            for e in range(E - 1):
                out[n, e] = acc[e + 1] - acc[e]
        else:
            out[n] = acc
    return out


@njit(cache=True)
def _interp(acdf, zs):
    """A component's CDF in 2**-28 at zs (z in 2**-(8 + A_FRAC)): the sigmoid table, interpolated."""
    idx = (zs >> A_FRAC) + A_SIG_RANGE
    lo = acdf[idx]
    return ((lo << A_FRAC) + (acdf[idx + 1] - lo) * (zs & ((1 << A_FRAC) - 1))) >> 7


def _cpu_table(logits, mu, log_s, t: np.ndarray, luts) -> torch.Tensor:
    """(N, E - 1) differences of :func:`audio_cum_cpu` at boundaries t (N, E) of CPU tensors."""
    return torch.from_numpy(audio_cum_cpu(logits.numpy(), mu.numpy(), log_s.numpy(), t, luts, diff=True))


_STEPS = np.arange(257, dtype=np.int64)


def audio_coarse_table(logits, mu, log_s, luts) -> torch.Tensor:
    """(N, 256) integer weights of the high bytes (x + 32768) >> 8."""
    N = logits.shape[0]
    if logits.device.type == "cpu":
        t = np.empty((N, 257), dtype=np.int64)
        t[:] = _STEPS * 256
        return _cpu_table(logits, mu, log_s, t, luts)
    t = boundaries(N, 0, 256, logits.device) * 256
    return torch.diff(audio_cum(logits, mu, log_s, t, luts), dim=1)


def audio_fine_table(logits, mu, log_s, high: torch.Tensor, luts) -> torch.Tensor:
    """(N, 256) integer weights of the low bytes inside the high byte ``high`` (N,)."""
    if logits.device.type == "cpu":
        return _cpu_table(logits, mu, log_s, high.numpy()[:, None] * 256 + _STEPS, luts)
    t = boundaries(logits.shape[0], high * 256, 256, logits.device)
    return torch.diff(audio_cum(logits, mu, log_s, t, luts), dim=1)
