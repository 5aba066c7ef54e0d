"""MADE (Germain et al. 2015): a masked MLP that is autoregressive over the pixels of a small
gray image in raster order, with the same discretized logistic mixture head as the PixelCNN.

Every output of pixel d depends only on pixels before d: hidden unit k of layer l has a degree
m_l(k) in [1, D-1] and sees the units below of degree <= m_l(k) (the input pixel d has degree
d, counted from 1); the outputs of pixel d see hidden units of degree < d. A direct masked
linear path from the pixels to the means (12-bit weights, as in the PixelCNN) carries exact
levels that int8 activations would blur.

This file holds the float training module (fake-quantized) and :func:`export`; the exact
runtime is :mod:`dulzip.exact.made`. Images are ``(B, 1, S, S)`` levels 0..255.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dulzip.exact.quant import ACT, QMAX, SKIP_WMAX, fake_quant, fake_quant_weights
from dulzip.heads.logistic import (LOGIT_MAX, LOGIT_MIN, LOGIT_SCALE, LS_MAX, LS_MIN, LS_SCALE, MU_SCALE,
                                   mixture_bits, mixture_luts)
from dulzip.models.registry import Family

# Levels per unit of the network's mean output. Unlike the PixelCNN (whose direct path carries
# the means and the network adds small corrections), MADE's network moves means across the
# whole range, and past its ends: a component sure of level 0 (or 255) needs its mean well
# below 0 (above 255), else the discretized logistic leaks mass to levels that never occur.
MADE_MU = 16.0


@dataclass
class MADEConfig:
    size: int = 28  # images are size x size, gray
    hidden: int = 500  # units per hidden layer
    layers: int = 2  # hidden layers
    mixtures: int = 3  # logistic components per pixel

    @property
    def dims(self) -> int:
        return self.size * self.size


def degrees(cfg: MADEConfig) -> list[torch.Tensor]:
    """Degrees of the input pixels (1..D) and of each hidden layer's units (spread evenly over
    1..D-1, so that every pixel's outputs see some hidden units)."""
    D = cfg.dims
    out = [torch.arange(1, D + 1)]
    for _ in range(cfg.layers):
        out.append(1 + (torch.arange(cfg.hidden) * (D - 1)) // cfg.hidden)
    return out


def masks(cfg: MADEConfig) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """(hidden layer masks (out, in), output mask (D, hidden), direct-path mask (D, D)), 0/1 floats."""
    deg = degrees(cfg)
    hidden = [(deg[i + 1][:, None] >= deg[i][None, :]).float() for i in range(cfg.layers)]
    d = deg[0]
    out = (d[:, None] > deg[-1][None, :]).float()
    direct = (d[:, None] > d[None, :]).float()
    return hidden, out, direct


class MADE(nn.Module):
    """Float training module. ``forward(x)`` returns (B, 3K, D): logits, means (in units of 128
    levels around 127.5, the direct path included), log-scales; channel-major, then k."""

    def __init__(self, cfg: MADEConfig):
        super().__init__()
        self.cfg = cfg
        D, Hd, K = cfg.dims, cfg.hidden, cfg.mixtures
        sizes = [D] + [Hd] * cfg.layers
        self.hidden = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(cfg.layers))
        self.out = nn.Linear(Hd, D * 3 * K)  # rows: pixel-major, then (logit, mean, log-scale), then k
        self.direct = nn.Linear(D, D * K, bias=False)  # pixel -> means of later pixels
        hid, out, direct = masks(cfg)
        for i, m in enumerate(hid):
            self.register_buffer(f"mask{i}", m)
        self.register_buffer("mask_out", out.repeat_interleave(3 * K, dim=0))
        self.register_buffer("mask_direct", direct.repeat_interleave(K, dim=0))
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            b = self.out.bias.view(D, 3, K)
            b.zero_()
            # components start beyond black, beyond white and in the middle (sharp, sharp, wide)
            start = torch.tensor([-16.0, 271.0, 127.5, 64.0, 192.0, 32.0, 224.0])[:K]
            b[:, 1] = (start - 127.5) / MADE_MU
            b[:, 2] = torch.tensor([0.0, 0.0, 3.0, 2.0, 2.0, 1.0, 1.0])[:K]
            self.direct.weight.zero_()

    @staticmethod
    def inputs(x: torch.Tensor) -> torch.Tensor:
        return (x.float().flatten(1) - 128.0) / ACT  # (B, D), exact integers / ACT

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        inp = self.inputs(x)
        h = inp
        for i, lin in enumerate(self.hidden):
            (w,) = fake_quant_weights([lin.weight * getattr(self, f"mask{i}")])
            h = fake_quant(F.relu(F.linear(h, w, lin.bias)), ACT, 0, QMAX)
        (w,) = fake_quant_weights([self.out.weight * self.mask_out])
        y = F.linear(h, w, self.out.bias).view(-1, cfg.dims, 3, cfg.mixtures)
        (wd,) = fake_quant_weights([self.direct.weight * self.mask_direct], SKIP_WMAX)
        skip = F.linear(inp, wd).view(-1, cfg.dims, cfg.mixtures)
        mu = y[:, :, 1] * (MADE_MU / 128.0) + skip
        y = torch.stack([y[:, :, 0], mu, y[:, :, 2]], dim=2)  # (B, D, 3, K)
        return y.permute(0, 2, 3, 1).reshape(-1, 3 * cfg.mixtures, cfg.dims)

    def bits(self, x: torch.Tensor) -> torch.Tensor:
        """Bits of each pixel, (B, D)."""
        B, K, S = x.shape[0], self.cfg.mixtures, self.cfg.size
        y = self(x).view(B, 3, K, S, S)
        # the PixelCNN's head layout (B, 12K, H, W): R carries the parameters, G and B unused
        full = torch.zeros(B, 4, 3, K, S, S, dtype=y.dtype, device=y.device)
        full[:, :3, 0] = y
        x3 = x.expand(-1, 3, -1, -1)
        return mixture_bits(full.view(B, 12 * K, S, S), x3, K)[:, 0].flatten(1)


    def loss(self, x: torch.Tensor, gray: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss: mean bits per pixel."""
        return self.bits(x).mean()


def n_params(model: nn.Module) -> int:
    """Parameters that can be nonzero (masked-out weights do not count)."""
    m = model
    n = sum(int(getattr(m, f"mask{i}").sum()) + lin.bias.numel() for i, lin in enumerate(m.hidden))
    return n + int(m.mask_out.sum()) + m.out.bias.numel() + int(m.mask_direct.sum())


def export(model: MADE) -> dict[str, torch.Tensor]:
    """Float (fake-quantized) module -> integer tensors for :class:`dulzip.exact.made.ExactMADE`."""
    from dulzip.exact.layers import export_linear

    cfg = model.cfg
    K, D = cfg.mixtures, cfg.dims
    t: dict[str, torch.Tensor] = {}
    for i, lin in enumerate(model.hidden):
        t.update(export_linear([lin.weight * getattr(model, f"mask{i}")], lin.bias, ACT, 0, QMAX, name=f"h{i}"))
    one = torch.ones(D, 1, K, dtype=torch.float64)
    wide = 1 << 40  # means are clamped after the direct path is added (ExactMADE)

    def per_row(a, b, c):  # (D, 3, K) rows like model.out
        return torch.cat([a * one, b * one, c * one], dim=1).flatten()
    target = per_row(LOGIT_SCALE, MADE_MU * MU_SCALE, LS_SCALE)
    lo = per_row(LOGIT_MIN, -wide, LS_MIN).long()
    hi = per_row(LOGIT_MAX, wide, LS_MAX).long()
    off = per_row(0, 127.5 * MU_SCALE, 0).long()
    t.update(export_linear([model.out.weight * model.mask_out], model.out.bias, target, lo, hi, off, name="out"))
    t.update(export_linear([model.direct.weight * model.mask_direct], None, 128.0 * MU_SCALE, -wide, wide,
                           name="direct", wmax=SKIP_WMAX))
    t.update(mixture_luts())
    return t


FAMILY = Family(
    name="made", modality="image", runtime="dulzip.exact.made:ExactMADE",
    config=MADEConfig, module=MADE, export=export, n_params=n_params, sampler="dulzip.train.data:whole_images",
    options=lambda o: MADEConfig(hidden=o["hidden"], layers=o["layers"]),
    train_defaults={"batch": 128, "lr": 2e-3, "warmup": 100, "hidden": 500, "layers": 2},
    summary="small gray images (whole, e.g. 28x28 digits)")
