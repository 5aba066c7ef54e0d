"""Integer parameters -> integer PMF tables, by integer arithmetic and lookup tables only.

A discretized logistic mixture over the 256 levels of a sub-pixel (PixelCNN++), with the
edge bins taking the tails. Every table sums to exactly 2**TABLE_BITS and gives every symbol
at least 1, so every symbol stays codable. The same integers on every device.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

from dulzip.exact.quant import PRE, QMAX, QMIN
from dulzip.models import wavenet as wn
from dulzip.models.pixelcnn import (COEF_SCALE, LOGIT_SCALE, LS_MAX, LS_MIN, LS_SCALE,
                                    MU_SCALE, TABLE_BITS)

SIG_STEPS = 256  # sigmoid table resolution: 1/256 in z (no interpolation needed)
SIG_RANGE = 16 * SIG_STEPS  # the table covers z in [-16, 16]
CDF_BITS = 16
EXP_SIZE = 512
W_BITS = 12  # the most probable mixture component weighs 2**W_BITS


def mixture_luts() -> dict[str, torch.Tensor]:
    """Lookup tables for :func:`mixture_pmf`, made once at export and shipped with the weights."""
    i = torch.arange(-SIG_RANGE, SIG_RANGE + 1, dtype=torch.float64) / SIG_STEPS
    j = torch.arange(LS_MIN, LS_MAX + 1, dtype=torch.float64) / LS_SCALE
    k = torch.arange(EXP_SIZE, dtype=torch.float64) / LOGIT_SCALE
    q = torch.arange(QMIN, QMAX + 1, dtype=torch.float64) / PRE
    # exact-ok: the four tables below are built once at export and shipped in the weights file
    return {"lut.cdf": torch.round(2 ** CDF_BITS * torch.sigmoid(i)).to(torch.int64),  # exact-ok
            "lut.inv_s": torch.round(2 ** 16 * torch.exp(-j)).to(torch.int64),  # exact-ok
            "lut.exp": torch.round(2 ** W_BITS * torch.exp(-k)).to(torch.int64),  # exact-ok
            "lut.coef": torch.round(COEF_SCALE * torch.tanh(q)).to(torch.int64)}  # exact-ok


def condition_means(mu: torch.Tensor, coef: torch.Tensor, channel: int, prev: torch.Tensor) -> torch.Tensor:
    """Means of ``channel`` given the already known channels, per component.

    mu: (N, 3, K) int64 in 1/MU_SCALE levels; coef: (N, 3, K) in 1/COEF_SCALE; prev: (N, 3) levels.
    G's mean moves by coef0 times R's residual (x_R - mean_R), B's by coef1 times R's residual
    plus coef2 times G's (against G's conditioned mean); residuals in 1/MU_SCALE levels.
    """
    if channel == 0:
        return mu[:, 0]
    e_r = MU_SCALE * prev[:, :1] - mu[:, 0]
    m_g = mu[:, 1] + torch.bitwise_right_shift(coef[:, 0] * e_r + COEF_SCALE // 2, 7)
    if channel == 1:
        return m_g
    e_g = MU_SCALE * prev[:, 1:2] - m_g
    return mu[:, 2] + torch.bitwise_right_shift(coef[:, 1] * e_r + coef[:, 2] * e_g + COEF_SCALE // 2, 7)



BUCKET = 16  # symbols are coded as (level // 16, level % 16): two tables of 16 entries


def mixture_cum(logits: torch.Tensor, mu: torch.Tensor, log_s: torch.Tensor, t: torch.Tensor,
                luts: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cumulative integer counts at bin boundaries ``t`` (N, E) in 0..256 of one channel.

    logits, mu, log_s: (N, K) int64. The mixture CDF M at boundary t (between levels t-1 and
    t; M = 0 at t = 0 and M = total at t = 256, so the edge bins take the tails) is mapped to
    ``cum(t) = floor(M * (2**TABLE_BITS - 256) / total) + t``. Hence cum(256) = 2**TABLE_BITS
    and every level has probability cum(x+1) - cum(x) >= 1: the integer PMF of the channel.
    """
    d = (logits.max(dim=1, keepdim=True).values - logits).clamp(max=EXP_SIZE - 1)
    w = luts["lut.exp"][d]  # (N, K)
    inv = luts["lut.inv_s"][log_s - LS_MIN]  # (N, K): 1/s in 2**-16 per level
    edge = t * MU_SCALE - MU_SCALE // 2  # (N, E): boundary t sits at level t - 0.5
    z = (edge.unsqueeze(1) - mu.unsqueeze(-1)) * inv.unsqueeze(-1)  # (N, K, E): z * 2**20
    idx = torch.bitwise_right_shift(z, 20 - 8).clamp_(-SIG_RANGE, SIG_RANGE) + SIG_RANGE
    cdf = luts["lut.cdf"][idx]  # (N, K, E) in [0, 2**16]
    mixed = (cdf * w.unsqueeze(-1)).sum(dim=1)  # (N, E)
    total = w.sum(dim=1, keepdim=True) << CDF_BITS
    mixed = torch.where(t <= 0, 0, torch.where(t >= 256, total, mixed))
    return mixed * ((1 << TABLE_BITS) - 256) // total + t


def _range(N: int, start: torch.Tensor | int, n: int, device) -> torch.Tensor:
    return torch.as_tensor(start, device=device).view(-1, 1) + torch.arange(n + 1, device=device).expand(N, -1)


def coarse_table(logits, mu, log_s, luts) -> torch.Tensor:
    """(N, 16) integer weights of the buckets level // 16."""
    t = _range(logits.shape[0], 0, 256 // BUCKET, logits.device) * BUCKET
    return torch.diff(mixture_cum(logits, mu, log_s, t, luts), dim=1)


def fine_table(logits, mu, log_s, bucket: torch.Tensor, luts) -> torch.Tensor:
    """(N, 16) integer weights of the levels inside ``bucket`` (N,)."""
    t = _range(logits.shape[0], bucket * BUCKET, BUCKET, logits.device)
    return torch.diff(mixture_cum(logits, mu, log_s, t, luts), dim=1)


def mixture_pmf(logits, mu, log_s, luts) -> torch.Tensor:
    """(N, 256) integer PMF (summing to 2**TABLE_BITS) that the two-table coding realizes."""
    t = _range(logits.shape[0], 0, 256, logits.device)
    return torch.diff(mixture_cum(logits, mu, log_s, t, luts), dim=1)


# -- 16-bit audio: one integer CDF over 65536 levels, coded as high byte then low byte ---------
A_SIG_STEPS = 256  # the sigmoid table: z in steps of 1/256 over [-16, 16], linearly interpolated
A_SIG_RANGE = 16 * A_SIG_STEPS
A_SIG_BITS = 24  # sigmoid values in 2**-24
A_INV_BITS = 24  # 1/s in 2**-24 per level
A_FRAC = 11  # interpolation fraction bits
A_CDF_BITS = A_SIG_BITS + A_FRAC - 7  # a component's CDF in 2**-28
A_MU_CLAMP = 1 << 19  # means within +-65536 levels (in 1/8 level)


def audio_luts() -> dict[str, torch.Tensor]:
    """Lookup tables for :func:`audio_cum`, made once at export and shipped with the weights."""
    from dulzip.models.wavenet import EXP_SIZE, LOGIT_SCALE, LS_MAX, LS_MIN, LS_SCALE, MU_SCALE, W_BITS
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
    d = (logits.max(dim=1, keepdim=True).values - logits).clamp(max=wn.EXP_SIZE - 1)
    w = luts["lut.aexp"][d]  # (N, K)
    inv = luts["lut.ainv"][log_s - wn.LS_MIN]  # (N, K)
    edge = (t - 32768) * wn.MU_SCALE - wn.MU_SCALE // 2  # (N, E) in 1/8 level
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
    mixed = torch.bitwise_right_shift((cdf * w.unsqueeze(-1)).sum(dim=1), wn.W_BITS)  # (N, E)
    total = w.sum(dim=1, keepdim=True) << (A_CDF_BITS - wn.W_BITS)
    mixed = torch.where(t <= 0, 0, torch.where(t >= 65536, total, mixed))
    return mixed * ((1 << wn.TABLE_BITS) - 65536) // total + t


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
    scale = (np.int64(1) << wn.TABLE_BITS) - 65536
    for n in range(N):
        top = logits[n, 0]
        for k in range(1, K):
            top = max(top, logits[n, k])
        for e in range(E):
            edge[e] = (t[n, e] - 32768) * wn.MU_SCALE - wn.MU_SCALE // 2
            acc[e] = 0
        total = np.int64(0)
        for k in range(K):
            w = aexp[min(top - logits[n, k], wn.EXP_SIZE - 1)]
            total += w
            inv = ainv[log_s[n, k] - wn.LS_MIN]
            m = min(max(mu[n, k], -A_MU_CLAMP), A_MU_CLAMP)
            for e in range(E):
                z = (edge[e] - m) * inv
                if z <= -lim:
                    acc[e] += below * w
                elif z >= lim - 1:
                    acc[e] += above * w
                else:
                    acc[e] += _interp(acdf, z >> shift) * w
        total <<= A_CDF_BITS - wn.W_BITS
        ftotal = np.float64(total)
        for e in range(E):
            te = t[n, e]
            num = (np.int64(0) if te <= 0 else (total if te >= 65536 else acc[e] >> wn.W_BITS)) * scale
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
    t = _range(N, 0, 256, logits.device) * 256
    return torch.diff(audio_cum(logits, mu, log_s, t, luts), dim=1)


def audio_fine_table(logits, mu, log_s, high: torch.Tensor, luts) -> torch.Tensor:
    """(N, 256) integer weights of the low bytes inside the high byte ``high`` (N,)."""
    if logits.device.type == "cpu":
        return _cpu_table(logits, mu, log_s, high.numpy()[:, None] * 256 + _STEPS, luts)
    t = _range(logits.shape[0], high * 256, 256, logits.device)
    return torch.diff(audio_cum(logits, mu, log_s, t, luts), dim=1)
