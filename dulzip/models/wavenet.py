"""WaveNet for 8/16-bit PCM audio: causal dilated convolutions, gated residual blocks, skip
connections, and a discretized logistic mixture head over the 65536 levels of a sample.

What the network sees and predicts (for sample t, from the samples before it):

- its input is the mu-law companded previous sample (8 bits: an activation integer, so that
  quiet and loud passages both reach the network with relative precision);
- a stack of gated layers (tanh x sigmoid) with dilations 1, 2, 4, ... (kernel 2) and
  residual connections; every layer's gated output feeds the skip sum, then a small head;
- a *linear path* carries the exact sample values that 8-bit activations would blur:
  ``filters`` linear predictors over the last ``taps`` samples (coefficients in 1/2**12),
  mixed per sample by the head's softmax gate; optionally (``seg_order`` > 0) also a linear
  predictor fitted to the segment itself by the encoder and sent with it, as FLAC does per
  block (tonal music needs a predictor matched to the note being played). The mixture's
  means are this prediction plus
  a correction in units of each component's own scale (so the head's 8-bit outputs keep
  relative precision at any loudness).

The float module trains with the exact runtime's grids (fake quantization); :func:`export`
turns it into the integer tensors of :mod:`dulzip.exact.wavenet`. Shapes: audio is ``(B, L)``
integer levels in [-32768, 32767] (8-bit audio is scaled by 256).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dulzip.exact.quant import ACT, PRE, QMAX, QMIN, fake_quant, fake_quant_weights
from dulzip.heads.audio import (LOGIT_MAX, LOGIT_MIN, LOGIT_SCALE, LS_MAX, LS_MIN, LS_SCALE, MU_SCALE, audio_luts,
                                mixture_bits)
from dulzip.models.registry import Family

COEF_BITS = 12  # linear-path coefficients in 1/2**12
COEF_MAX = 8 << COEF_BITS  # |coefficient| < 8
SEG_BITS = 12  # a segment's own predictor: coefficients in 1/2**12 (as FLAC's 12-15 bits)
SEG_MAX = 1 << 18  # |coefficient| < 64


@dataclass
class WaveNetConfig:
    channels: int = 32  # residual channels
    layers: int = 10  # gated layers, dilations 2**(i % cycle)
    cycle: int = 10
    skip: int = 64  # skip channels
    head: int = 64  # hidden units of the output head
    mixtures: int = 4  # logistic components
    filters: int = 8  # linear predictors
    taps: int = 32  # samples each linear predictor sees
    seg_order: int = 0  # order of each segment's own predictor (0: none), at most taps
    resid: bool = False  # the network also sees the reference predictor's last two residuals

    def dilations(self) -> list[int]:
        return [2 ** (i % self.cycle) for i in range(self.layers)]

    @property
    def n_out(self) -> int:
        # logits, mean corrections, log-scales; gates of the filters (and the segment's own)
        return 3 * self.mixtures + self.filters + (1 if self.seg_order else 0)


def mulaw_table() -> torch.Tensor:
    """(65536,) int64: the mu-law (mu = 255) companded level of every 16-bit value, in [-128, 127].

    Made in float64 at export (and for training) and shipped in the weights, so the runtime
    only looks it up.
    """
    x = torch.arange(-32768, 32768, dtype=torch.float64) / 32768
    y = torch.sign(x) * torch.log1p(255 * x.abs()) / math.log(256)  # exact-ok: export-time table
    return torch.round(128 * y).clamp(QMIN, QMAX).to(torch.int64)


def segment_lpc(x: torch.Tensor, order: int) -> torch.Tensor:
    """The encoder's predictor of each segment: x (B, L) levels -> (B, order) int64
    coefficients in 1/2**SEG_BITS (predicting x[t] from x[t-1], ..., x[t-order]).

    Autocorrelation of the Hann-windowed segment with a Gaussian lag window, Levinson-Durbin
    in float64, then rounding. Only the encoder runs it (the coefficients travel in the
    file), so it needs no exactness; training calls it on each window, as the encoder does
    on each segment."""
    B, L = x.shape
    if order == 0 or L <= order:
        return torch.zeros(B, order, dtype=torch.int64, device=x.device)
    xf = x.to(torch.float64)
    w = xf * torch.hann_window(L, periodic=False, dtype=torch.float64, device=x.device)
    r = torch.stack([(w[:, :L - k] * w[:, k:]).sum(1) for k in range(order + 1)], dim=1)
    lag = torch.exp(-0.5 * (0.004 * torch.arange(order + 1, dtype=torch.float64, device=x.device)) ** 2)
    r = r * lag
    r[:, 0] = r[:, 0] * (1 + 1e-6) + 1e-3
    a = torch.zeros(B, order, dtype=torch.float64, device=x.device)
    err = r[:, 0].clone()
    for i in range(order):
        k = (r[:, i + 1] - (a[:, :i] * r[:, 1:i + 1].flip(1)).sum(1)) / err
        a[:, :i] = a[:, :i] - k[:, None] * a[:, :i].flip(1)
        a[:, i] = k
        err = err * (1 - k * k).clamp_min(1e-9)
    return torch.round(a * (1 << SEG_BITS)).clamp(-SEG_MAX, SEG_MAX).to(torch.int64)


def gate(pre: torch.Tensor) -> torch.Tensor:
    """tanh(a) * sigmoid(b) on the exact runtime's grids; pre (..., 2C) -> (..., C)."""
    a, b = pre.chunk(2, dim=-1)
    a = fake_quant(a, PRE, QMIN, QMAX)
    b = fake_quant(b, PRE, QMIN, QMAX)
    t = fake_quant(torch.tanh(a), ACT, -ACT, ACT)
    s = fake_quant(torch.sigmoid(b), 256, 0, 256)
    return fake_quant(t * s, ACT, QMIN, QMAX)


def shift(h: torch.Tensor, d: int) -> torch.Tensor:
    """(B, L, C) -> the same sequence d steps later (zeros before the start): h[t - d] at t."""
    return F.pad(h, (0, 0, d, 0))[:, :h.shape[1]]


class WaveNet(nn.Module):
    """Float training module; ``forward(x)`` gives the raw head outputs per sample."""

    def __init__(self, cfg: WaveNetConfig):
        super().__init__()
        self.cfg = cfg
        C, K, M = cfg.channels, cfg.mixtures, cfg.filters
        self.register_buffer("mulaw", mulaw_table().float(), persistent=False)
        self.inp = nn.Linear(4 if cfg.resid else 2, C)  # companded samples t-2, t-1 (and residuals)
        self.dil = nn.ModuleList(nn.Linear(2 * C, 2 * C) for _ in cfg.dilations())
        self.res = nn.ModuleList(nn.Linear(C, C) for _ in cfg.dilations())
        self.skip = nn.Linear(C * cfg.layers, cfg.skip)
        self.head1 = nn.Linear(cfg.skip, cfg.head)
        self.head2 = nn.Linear(cfg.head, cfg.n_out)
        self.coef = nn.Parameter(torch.zeros(M, cfg.taps))
        with torch.no_grad():
            self.head2.weight.mul_(0.1)
            self.head2.bias.zero_()
            self.head2.bias[2 * K:3 * K] = torch.linspace(3.0, 6.0, K)  # log-scales
            # start the predictors near classic fixed ones: x[t-1], 2x[t-1] - x[t-2], ...
            base = torch.zeros(cfg.taps)
            base[0], base[1] = 1.6, -0.7
            self.coef.copy_(base + 0.05 * torch.randn(M, cfg.taps))

    def companded(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) levels -> (B, L) companded activations (integers / ACT)."""
        return self.mulaw[(x.long() + 32768)] / ACT

    @staticmethod
    def _lin(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        (w,) = fake_quant_weights([layer.weight])
        return F.linear(x, w, layer.bias)

    def reference(self, x: torch.Tensor, seg: torch.Tensor | None) -> torch.Tensor:
        """(B, L) int64: the reference prediction of each x[t] in whole levels (floor), as the
        exact runtime computes it: the segment's own predictor where the model has one, else
        shared filter 0 (its exported integer coefficients). No gradient flows through it."""
        P = self.cfg.taps
        past = F.pad(x.long(), (P, 0))[:, :-1].unfold(1, P, 1).flip(-1)  # (B, L, P)
        if self.cfg.seg_order:
            R = self.cfg.seg_order
            return torch.bitwise_right_shift((past[..., :R] * seg.long()[:, None, :]).sum(-1), SEG_BITS)
        c0 = torch.round(self.coef.detach()[0].double() * (1 << COEF_BITS)).clamp(-COEF_MAX, COEF_MAX - 1).long()
        return torch.bitwise_right_shift((past * c0).sum(-1), COEF_BITS)

    def features(self, x: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) levels -> (B, L, head outputs) for predicting each x[t] from x[< t]."""
        c = self.companded(x).unsqueeze(-1)  # (B, L, 1)
        prev = torch.cat([shift(c, 2), shift(c, 1)], dim=-1)
        if self.cfg.resid:  # how wrong the reference predictor just was (companded)
            r = self.companded((x.long() - self.reference(x, seg)).clamp(-32768, 32767)).unsqueeze(-1)
            prev = torch.cat([prev, shift(r, 2), shift(r, 1)], dim=-1)
        h = fake_quant(self._lin(self.inp, prev), ACT, QMIN, QMAX)
        gs = []
        for d, dil, res in zip(self.cfg.dilations(), self.dil, self.res):
            g = gate(self._lin(dil, torch.cat([shift(h, d), h], dim=-1)))
            gs.append(g)
            h = fake_quant(h + fake_quant(self._lin(res, g), ACT, QMIN, QMAX), ACT, QMIN, QMAX)
        s = fake_quant(F.relu(self._lin(self.skip, torch.cat(gs, dim=-1))), ACT, 0, QMAX)
        z = fake_quant(F.relu(self._lin(self.head1, s)), ACT, 0, QMAX)
        return self._lin(self.head2, z)

    def coefficients(self) -> torch.Tensor:
        return fake_quant(self.coef, 1 << COEF_BITS, -COEF_MAX, COEF_MAX - 1)

    def linear(self, x: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) levels -> (B, L, filters (+1)): each predictor's prediction (levels) of x[t];
        ``seg`` (B, seg_order): the segments' own predictors (from :func:`segment_lpc`)."""
        P = self.cfg.taps
        past = F.pad(x.float(), (P, 0))[:, :-1].unfold(1, P, 1).flip(-1)  # (B, L, P): x[t-1], ..., x[t-P]
        pred = past @ self.coefficients().T
        if self.cfg.seg_order:
            R = self.cfg.seg_order
            own = (past[..., :R] * (seg.float()[:, None, :] / (1 << SEG_BITS))).sum(-1, keepdim=True)
            pred = torch.cat([pred, own], dim=-1)
        return pred

    def params(self, x: torch.Tensor, seg: torch.Tensor | None = None):
        """(logits, means, log-scales) of the mixture per sample, each (B, L, K), on their grids."""
        K, M = self.cfg.mixtures, self.cfg.filters + (1 if self.cfg.seg_order else 0)
        y = self.features(x, seg)
        logits = fake_quant(y[..., :K], LOGIT_SCALE, LOGIT_MIN, LOGIT_MAX)
        delta = fake_quant(y[..., K:2 * K], PRE, QMIN, QMAX)
        log_s = fake_quant(y[..., 2 * K:3 * K], LS_SCALE, LS_MIN, LS_MAX)
        glog = fake_quant(y[..., 3 * K:3 * K + M], LOGIT_SCALE, LOGIT_MIN, LOGIT_MAX)
        lin = (torch.softmax(glog, dim=-1) * self.linear(x, seg)).sum(-1, keepdim=True)
        mu = fake_quant(lin + delta * torch.exp(log_s), MU_SCALE, -1e9, 1e9)
        return logits, mu, log_s

    def bits(self, x: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        """-log2 p of every sample (B, L) under the model (float, for training and estimates)."""
        if self.cfg.seg_order and seg is None:
            seg = segment_lpc(x, self.cfg.seg_order)
        logits, mu, log_s = self.params(x, seg)
        return mixture_bits(logits, mu, log_s, x)

    def loss(self, x: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss: mean bits per sample of the windows x (B, L) (each a fresh segment,
        with its own predictor when the model uses one)."""
        return self.bits(x, seg).mean()


def export(model: WaveNet) -> dict[str, torch.Tensor]:
    """Float (fake-quantized) module -> integer tensors for :class:`dulzip.exact.wavenet.ExactWaveNet`."""
    from dulzip.exact.layers import export_linear, gate_luts

    cfg = model.cfg
    K, M = cfg.mixtures, cfg.filters + (1 if cfg.seg_order else 0)
    t: dict[str, torch.Tensor] = {}
    t.update(export_linear([model.inp.weight], model.inp.bias, ACT, QMIN, QMAX, name="inp"))
    for i, (dil, res) in enumerate(zip(model.dil, model.res)):
        t.update(export_linear([dil.weight], dil.bias, PRE, QMIN, QMAX, name=f"dil{i}"))
        t.update(export_linear([res.weight], res.bias, ACT, QMIN, QMAX, name=f"res{i}"))
    t.update(export_linear([model.skip.weight], model.skip.bias, ACT, 0, QMAX, name="skip"))
    t.update(export_linear([model.head1.weight], model.head1.bias, ACT, 0, QMAX, name="head1"))
    # head2 rows: [mixture logits K | mean corrections K | log-scales K | filter gates M (+1)]
    one_k, one_m = torch.ones(K, dtype=torch.float64), torch.ones(M, dtype=torch.float64)
    target = torch.cat([LOGIT_SCALE * one_k, PRE * one_k, LS_SCALE * one_k, LOGIT_SCALE * one_m])
    lo = torch.cat([LOGIT_MIN * one_k, QMIN * one_k, LS_MIN * one_k, LOGIT_MIN * one_m]).long()
    hi = torch.cat([LOGIT_MAX * one_k, QMAX * one_k, LS_MAX * one_k, LOGIT_MAX * one_m]).long()
    t.update(export_linear([model.head2.weight], model.head2.bias, target, lo, hi, name="head2"))
    t["coef"] = torch.round(model.coef.detach().double() * (1 << COEF_BITS)).clamp(-COEF_MAX, COEF_MAX - 1).to(torch.int32)
    t["lut.mulaw"] = mulaw_table().to(torch.int8)
    t.update(gate_luts())
    t.update(audio_luts())
    return t


FAMILY = Family(
    name="wavenet", modality="audio", runtime="dulzip.exact.wavenet:ExactWaveNet",
    config=WaveNetConfig, module=WaveNet, export=export, sampler="dulzip.train.data:audio_windows",
    options=lambda o: WaveNetConfig(channels=o["channels"], layers=o["layers"], head=o["head"],
                                    skip=2 * o["channels"], seg_order=o["seg_order"], resid=o["resid"]),
    train_defaults={"batch": 64, "seq": 2048, "lr": 2e-3, "warmup": 200, "channels": 32, "layers": 10, "head": 64},
    summary="WAV audio (windows of samples)")
