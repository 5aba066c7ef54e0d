"""Gated PixelCNN (vertical + horizontal stacks, no blind spot) with a PixelCNN++-style
discretized logistic mixture head, conditioned across R, G, B.

This file holds the float training module (with fake quantization, so that the exported
integer network loses little) and :func:`export`, which turns it into the integer tensors
that :mod:`dulzip.exact.pixelcnn` runs bit-exactly on any device.

Shapes: images are ``(B, 3, H, W)`` integer tensors in 0..255. Gray images are coded as
R = G = B with only the R channel coded.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dulzip.exact.quant import ACT, PRE, QMAX, QMIN, SKIP_WMAX, fake_quant, fake_quant_weights
# the head (grids, loss, tables) is the image head's: PixelCNN and MADE share it
from dulzip.heads.logistic import (LOGIT_MAX, LOGIT_MIN, LOGIT_SCALE, LS_MAX, LS_MIN, LS_SCALE, MU_SCALE,
                                   mixture_bits, mixture_luts)
from dulzip.models.registry import Family

# initial conditioning: G on R's residual, B on R's and G's residuals (pre-tanh values)
COEF_INIT = torch.atanh(torch.tensor([0.8, 0.3, 0.6]))
MU_HEAD = 2.0  # levels per unit of the network's mean correction (the direct path gives 128)


@dataclass
class PixelCNNConfig:
    channels: int = 48  # feature maps per stack
    layers: int = 6  # gated layers (layer 0 included)
    kv: int = 2  # rows of the vertical kernel
    kw: int = 2  # half width of the vertical kernel (width 2*kw+1)
    kh: int = 3  # width of the horizontal kernel
    head: int = 96  # hidden units of the output head
    mixtures: int = 5  # logistic components per channel

    @property
    def n_params_out(self) -> int:
        return 12 * self.mixtures  # logits, means, log-scales, coefficients; 3 channels each


def gate(pre: torch.Tensor) -> torch.Tensor:
    """tanh(a) * sigmoid(b) on the fixed-point grids used by the exact runtime's tables."""
    a, b = pre.chunk(2, dim=1)
    a = fake_quant(a, PRE, QMIN, QMAX)
    b = fake_quant(b, PRE, QMIN, QMAX)
    t = fake_quant(torch.tanh(a), ACT, -ACT, ACT)
    s = fake_quant(torch.sigmoid(b), 256, 0, 256)
    return fake_quant(t * s, ACT, QMIN, QMAX)


class PixelCNN(nn.Module):
    """Float training module. ``forward(x)`` returns the head parameters per pixel."""

    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        self.cfg = cfg
        C, kv, kw, kh = cfg.channels, cfg.kv, cfg.kw, cfg.kh
        self.v = nn.ModuleList()
        self.h = nn.ModuleList()
        self.v2h = nn.ModuleList()
        self.proj = nn.ModuleList()
        for i in range(cfg.layers):
            cin = 4 if i == 0 else C
            self.v.append(nn.Conv2d(cin, 2 * C, (kv, 2 * kw + 1)))
            self.h.append(nn.Conv2d(cin, 2 * C, (1, kh)))
            self.v2h.append(nn.Conv2d(C, 2 * C, 1, bias=False))
            if i > 0:
                self.proj.append(nn.Conv2d(C, C, 1))
        self.head1 = nn.Conv2d(C, cfg.head, 1)
        self.head2 = nn.Conv2d(cfg.head, cfg.n_params_out, 1)
        # direct linear path from the causal neighbourhood to the means, with 12-bit weights:
        # it carries the exact pixel values that int8 activations would blur
        K3 = 3 * cfg.mixtures
        self.skip_v = nn.Conv2d(4, K3, (kv, 2 * kw + 1), bias=False)
        self.skip_h = nn.Conv2d(4, K3, (1, kh), bias=False)
        with torch.no_grad():
            # start as a classic predictor: each mean = (left + up) / 2, components of varied
            # widths (breaks their symmetry), small corrections from the network
            K = cfg.mixtures
            self.head2.weight.zero_()  # the network starts silent and learns corrections
            self.head2.bias.zero_()
            self.head2.bias[6 * K:9 * K] = torch.linspace(-1.0, 3.0, K).repeat(3)  # log-scales
            self.head2.bias[9 * K:] = COEF_INIT.repeat_interleave(K)
            self.skip_v.weight.zero_()
            self.skip_h.weight.zero_()
            for c in range(3):
                self.skip_h.weight[c * K:(c + 1) * K, c, 0, kh - 1] = 0.25
                self.skip_v.weight[c * K:(c + 1) * K, c, kv - 1, kw] = 0.25

    @staticmethod
    def inputs(x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) levels 0..255 -> (B,4,H,W) activations: centred pixels and a 'here' channel."""
        xc = (x.float() - 128.0) / ACT
        ones = torch.ones_like(xc[:, :1])
        return torch.cat([xc, ones], dim=1)

    @staticmethod
    def _conv(conv: nn.Conv2d, inp: torch.Tensor) -> torch.Tensor:
        (w,) = fake_quant_weights([conv.weight])
        return F.conv2d(inp, w, conv.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        H, W = x.shape[-2:]
        inp = self.inputs(x)
        kv, kw, kh = cfg.kv, cfg.kw, cfg.kh
        # layer 0: vertical sees rows strictly above, horizontal sees pixels strictly left
        v = gate(self._conv(self.v[0], F.pad(inp, (kw, kw, kv, 0)))[:, :, :H])
        hin = F.pad(inp, (kh, 0, 0, 0))
        (wh, wv) = fake_quant_weights([self.h[0].weight, self.v2h[0].weight])
        h = gate(F.conv2d(hin, wh, self.h[0].bias)[..., :W] + F.conv2d(v, wv))
        for i in range(1, cfg.layers):
            v = gate(self._conv(self.v[i], F.pad(v, (kw, kw, kv - 1, 0))))
            (wh, wv) = fake_quant_weights([self.h[i].weight, self.v2h[i].weight])
            g = gate(F.conv2d(F.pad(h, (kh - 1, 0, 0, 0)), wh, self.h[i].bias) + F.conv2d(v, wv))
            (wp,) = fake_quant_weights([self.proj[i - 1].weight])
            r = fake_quant(F.conv2d(g, wp, self.proj[i - 1].bias), ACT, QMIN, QMAX)
            h = fake_quant(h + r, ACT, QMIN, QMAX)
        return h

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """Linear prediction of the means from the pixels above and to the left, (B, 3K, H, W)."""
        H, W = x.shape[-2:]
        c = self.cfg
        inp = self.inputs(x)
        wv, wh = fake_quant_weights([self.skip_v.weight, self.skip_h.weight], SKIP_WMAX)
        sv = F.conv2d(F.pad(inp, (c.kw, c.kw, c.kv, 0)), wv)[:, :, :H]
        sh = F.conv2d(F.pad(inp, (c.kh, 0, 0, 0)), wh)[..., :W]
        return sv + sh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        (w1,) = fake_quant_weights([self.head1.weight])
        z = fake_quant(F.relu(F.conv2d(h, w1, self.head1.bias)), ACT, 0, QMAX)
        (w2,) = fake_quant_weights([self.head2.weight])
        y = F.conv2d(z, w2, self.head2.bias)
        K3 = 3 * self.cfg.mixtures
        mu = y[:, K3:2 * K3] * (MU_HEAD / 128.0) + self.skip(x)
        return torch.cat([y[:, :K3], mu, y[:, 2 * K3:]], dim=1)

    def bits(self, x: torch.Tensor, gray: torch.Tensor | None = None) -> torch.Tensor:
        """Bits per coded sub-pixel, (B,3,H,W); channels G, B of gray images cost 0."""
        bits = mixture_bits(self(x), x, self.cfg.mixtures)
        if gray is not None:
            mask = torch.ones_like(bits)
            mask[gray, 1:] = 0
            bits = bits * mask
        return bits


    def loss(self, x: torch.Tensor, gray: torch.Tensor) -> torch.Tensor:
        """Training loss: mean bits per coded sub-pixel (gray crops code one channel of three)."""
        total, coded = self.loss_parts(x, gray)
        return total / coded

    def loss_parts(self, x: torch.Tensor, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(bits, coded sub-pixels) of a batch: a distributed run divides the bits of each part of
        the global batch by the coded sub-pixels of all of it (the parts' gray crops differ)."""
        bits = self.bits(x, gray)
        return bits.sum(), bits.numel() - 2 * gray.sum() * bits.shape[-1] * bits.shape[-2]

    def reset_conditioning(self) -> None:
        """Channel-conditioning coefficients back to their initial values (fine-tuning)."""
        K = self.cfg.mixtures
        with torch.no_grad():
            self.head2.weight[9 * K:] = 0
            self.head2.bias[9 * K:] = COEF_INIT.repeat_interleave(K)


def export(model: PixelCNN) -> dict[str, torch.Tensor]:
    """Float (fake-quantized) module -> integer tensors for :class:`dulzip.exact.pixelcnn.ExactPixelCNN`."""
    from dulzip.exact.layers import export_linear, gate_luts

    cfg = model.cfg
    K = cfg.mixtures
    t: dict[str, torch.Tensor] = {}
    for i in range(cfg.layers):
        t.update(export_linear([model.v[i].weight], model.v[i].bias, PRE, QMIN, QMAX, name=f"v{i}"))
        t.update(export_linear([model.h[i].weight, model.v2h[i].weight], model.h[i].bias, PRE, QMIN, QMAX,
                               name=f"h{i}"))
        if i > 0:
            p = model.proj[i - 1]
            t.update(export_linear([p.weight], p.bias, ACT, QMIN, QMAX, name=f"proj{i}"))
    t.update(export_linear([model.head1.weight], model.head1.bias, ACT, 0, QMAX, name="head1"))
    # head2 rows: [logits | means | log-scales | coefficients], each 3K (channel-major, then k)
    one = torch.ones(3 * K, dtype=torch.float64)
    target = torch.cat([LOGIT_SCALE * one, MU_HEAD * MU_SCALE * one, LS_SCALE * one, PRE * one])
    wide = 1 << 40  # means are clamped after the direct path is added (ExactPixelCNN._head)
    lo = torch.cat([LOGIT_MIN * one, -wide * one, LS_MIN * one, QMIN * one]).long()
    hi = torch.cat([LOGIT_MAX * one, wide * one, LS_MAX * one, QMAX * one]).long()
    off = torch.cat([0 * one, 127.5 * MU_SCALE * one, 0 * one, 0 * one]).long()
    t.update(export_linear([model.head2.weight], model.head2.bias, target, lo, hi, off, name="head2"))
    t.update(export_linear([model.skip_v.weight, model.skip_h.weight], None, 128.0 * MU_SCALE, -wide, wide,
                           name="skip", wmax=SKIP_WMAX))
    t.update(gate_luts())
    t.update(mixture_luts())
    return t


FAMILY = Family(
    name="pixelcnn", modality="image", runtime="dulzip.exact.pixelcnn:ExactPixelCNN",
    config=PixelCNNConfig, module=PixelCNN, export=export, sampler="dulzip.train.data:photo_crops",
    options=lambda o: PixelCNNConfig(channels=o["channels"], layers=o["layers"], head=o["head"]),
    train_defaults={"batch": 48, "crop": 64, "lr": 1e-3, "warmup": 150, "channels": 48, "layers": 6, "head": 96},
    summary="photographs (random crops)")
