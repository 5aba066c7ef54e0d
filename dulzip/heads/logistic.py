"""The image head: a discretized logistic mixture over the 256 levels of a sub-pixel
(PixelCNN++), the edge bins taking the tails, conditioned across R, G, B; shared by the
PixelCNN and MADE (which fills the R channel of the same layout).

A head output holds 12K numbers per position, channel-major within each of four groups:
logits, means, log-scales, conditioning coefficients (3 channels x K components each).

* the grids: the integer units of each group (the exported networks produce these integers);
* float, for training: :func:`head_params` (fake quantization of raw head outputs onto the
  grids) and :func:`mixture_bits` (the loss: bits of each sub-pixel, floored as the tables);
* export: :func:`mixture_luts`, the lookup tables shipped with the weights;
* integer, for the runtimes and codecs: :func:`split_params` (head integers -> groups),
  :func:`condition_means` and :class:`ChannelModel` (a channel's distribution given the known
  channels), :func:`mixture_cum` and the tables made from it (:func:`coarse_table`,
  :func:`fine_table`, :func:`mixture_pmf`), :func:`mean_levels`.

Every integer path uses integer arithmetic and lookup tables only: the same integers on every
device. This module imports no model, runtime or codec (see :mod:`dulzip.heads`).
"""
from __future__ import annotations

import torch

from dulzip.coding.tables import boundaries, cum_counts
from dulzip.exact.quant import PRE, QMAX, QMIN, fake_quant

# Head parameter grids (integer units)
MU_SCALE = 16  # means in 1/16 pixel level
MU_MIN, MU_MAX = -1024, 5120
LS_SCALE = 32  # log-scales (natural log, pixel levels) in 1/32
LS_MIN, LS_MAX = -128, 192
LOGIT_SCALE = 16
LOGIT_MIN, LOGIT_MAX = -2048, 2047
COEF_SCALE = 128  # channel-conditioning coefficients in 1/128
TABLE_BITS = 20  # integer PMF tables sum to 2**TABLE_BITS, every symbol >= 1

# Lookup tables of the integer side
SIG_STEPS = 256  # sigmoid table resolution: 1/256 in z (no interpolation needed)
SIG_RANGE = 16 * SIG_STEPS  # the table covers z in [-16, 16]
CDF_BITS = 16
EXP_SIZE = 512
W_BITS = 12  # the most probable mixture component weighs 2**W_BITS
BUCKET = 16  # symbols are coded as (level // 16, level % 16): two tables of 16 entries


# -- float, for training ---------------------------------------------------------------------
def head_params(y: torch.Tensor, K: int):
    """Split raw head output (B,12K,H,W) into quantized (logits, mu0, log_s, coef), each (B,3,K,H,W)."""
    B, _, H, W = y.shape
    y = y.view(B, 4, 3, K, H, W)
    logits = fake_quant(y[:, 0], LOGIT_SCALE, LOGIT_MIN, LOGIT_MAX)
    mu = fake_quant(127.5 + 128.0 * y[:, 1], MU_SCALE, MU_MIN, MU_MAX)
    log_s = fake_quant(y[:, 2], LS_SCALE, LS_MIN, LS_MAX)
    coef = fake_quant(torch.tanh(fake_quant(y[:, 3], PRE, QMIN, QMAX)), COEF_SCALE, -128, 128)
    return logits, mu, log_s, coef


def mixture_bits(y: torch.Tensor, x: torch.Tensor, K: int) -> torch.Tensor:
    """−log2 p of each sub-pixel under the discretized logistic mixtures (float, for training)."""
    logits, mu, log_s, coef = head_params(y, K)
    xf = x.float().unsqueeze(2)  # (B,3,1,H,W)
    # channel conditioning on the previous channels' residuals (x - mean), per component
    m_r = mu[:, 0]
    m_g = fake_quant(mu[:, 1] + coef[:, 0] * (xf[:, 0] - m_r), MU_SCALE, -1e9, 1e9)
    m_b = mu[:, 2] + coef[:, 1] * (xf[:, 0] - m_r) + coef[:, 2] * (xf[:, 1] - m_g)
    means = torch.stack([m_r, m_g, m_b], dim=1)
    means = fake_quant(means, MU_SCALE, -1e9, 1e9)
    inv_s = torch.exp(-log_s)
    up = torch.where(xf >= 255, torch.ones_like(means), torch.sigmoid((xf + 0.5 - means) * inv_s))
    lo = torch.where(xf <= 0, torch.zeros_like(means), torch.sigmoid((xf - 0.5 - means) * inv_s))
    pk = (up - lo).clamp_min(0)
    pi = torch.softmax(logits, dim=2)
    p = (pi * pk).sum(dim=2)
    floor = 2.0 ** -TABLE_BITS
    p = p * (1 - 256 * floor) + floor  # as the integer tables: every symbol has mass >= 1
    return -torch.log2(p)


# -- export: lookup tables -------------------------------------------------------------------
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


# -- integer: head integers -> a channel's distribution -----------------------------------------
def split_params(p: torch.Tensor, K: int, luts) -> tuple[torch.Tensor, ...]:
    """(N, 12K) head integers -> logits, means, log-scales, coefficients, each (N, 3, K)."""
    p = p.view(-1, 4, 3, K)
    return p[:, 0], p[:, 1], p[:, 2], luts["lut.coef"][p[:, 3] + 128]


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


class ChannelModel:
    """The integer distribution of one channel at N positions, given the known channels.

    ``split``: the output of :func:`split_params` for ``params`` when the caller already has it
    (the decode loop splits once per position, not once per channel).
    """

    def __init__(self, params: torch.Tensor | None, ch: int, prev: torch.Tensor, K: int, luts, split=None):
        logits, mu, log_s, coef = split if split is not None else split_params(params, K, luts)
        self.args = (logits[:, ch], condition_means(mu, coef, ch, prev), log_s[:, ch])
        self.luts = luts

    def coarse(self) -> torch.Tensor:
        return coarse_table(*self.args, self.luts)

    def fine(self, bucket: torch.Tensor) -> torch.Tensor:
        return fine_table(*self.args, bucket, self.luts)


def mean_levels(cm: ChannelModel, luts) -> torch.Tensor:
    """The mixture's mean (1/16 level) of a channel model: its component means weighted as in
    its tables (integers)."""
    logits, mu, _ = cm.args
    w = luts["lut.exp"][(logits.max(dim=1, keepdim=True).values - logits).clamp(max=EXP_SIZE - 1)]
    return torch.div((w * mu).sum(dim=1), w.sum(dim=1), rounding_mode="floor")


# -- integer: a channel's distribution -> PMF tables ---------------------------------------------
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
    return cum_counts(mixed, total, t, 256, TABLE_BITS)


def coarse_table(logits, mu, log_s, luts) -> torch.Tensor:
    """(N, 16) integer weights of the buckets level // 16."""
    t = boundaries(logits.shape[0], 0, 256 // BUCKET, logits.device) * BUCKET
    return torch.diff(mixture_cum(logits, mu, log_s, t, luts), dim=1)


def fine_table(logits, mu, log_s, bucket: torch.Tensor, luts) -> torch.Tensor:
    """(N, 16) integer weights of the levels inside ``bucket`` (N,)."""
    t = boundaries(logits.shape[0], bucket * BUCKET, BUCKET, logits.device)
    return torch.diff(mixture_cum(logits, mu, log_s, t, luts), dim=1)


def mixture_pmf(logits, mu, log_s, luts) -> torch.Tensor:
    """(N, 256) integer PMF (summing to 2**TABLE_BITS) that the two-table coding realizes."""
    t = boundaries(logits.shape[0], 0, 256, logits.device)
    return torch.diff(mixture_cum(logits, mu, log_s, t, luts), dim=1)
