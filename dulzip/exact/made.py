"""Exact integer runtime of MADE (see dulzip.models.made for the float side).

It offers the image codec the same interface as :class:`dulzip.exact.pixelcnn.ExactPixelCNN`
(``full_pass`` for encoding, ``stepper`` for decoding, head parameters in the PixelCNN's
layout), for tiles of exactly ``size`` x ``size`` gray pixels. The decoder recomputes the
hidden layers at every step (one image is a few hundred thousand multiply-adds) and only
the output rows of the pixel being decoded.
"""
from __future__ import annotations

import torch

from dulzip.exact.layers import QLinear
from dulzip.heads.logistic import MU_MAX, MU_MIN
from dulzip.models.made import MADEConfig


class ExactMADE:
    """An :class:`dulzip.exact.runtime.AutoregressiveImageRuntime` with a fixed tile and no
    wavefront (its decoder steps in raster order)."""

    modality = "image"
    codec = "autoregressive"
    fixed_tile: int  # the model's size: tiles must be this size
    default_tile = 64  # unused (the fixed tile wins); as ExactPixelCNN's
    gray_only = True
    wave_delay = None

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = MADEConfig(**config)
        self.device = torch.device(device)
        self.fixed_tile = self.cfg.size
        t = {k: v.to(self.device) for k, v in tensors.items()}
        self.hidden = [QLinear.from_tensors(t, f"h{i}").to(self.device) for i in range(self.cfg.layers)]
        self.out = QLinear.from_tensors(t, "out").to(self.device)
        self.direct = QLinear.from_tensors(t, "direct").to(self.device)
        self.luts = {k: v for k, v in t.items() if k.startswith("lut.")}

    def _hidden(self, inp: torch.Tensor) -> torch.Tensor:
        h = inp
        for layer in self.hidden:
            h = layer(h)
        return h

    def _head(self, y: torch.Tensor, skip: torch.Tensor, B: int, n: int) -> torch.Tensor:
        """Rows of n pixels, y (B, n*3K) and skip (B, n*K) -> (B, n, 12K) in the PixelCNN layout."""
        K = self.cfg.mixtures
        y = y.view(B, n, 3, K)
        mu = (y[:, :, 1] + skip.view(B, n, K)).clamp(MU_MIN, MU_MAX)
        p = torch.zeros(B, n, 4, 3, K, dtype=torch.int64, device=y.device)
        p[:, :, 0, 0] = y[:, :, 0]
        p[:, :, 1, 0] = mu
        p[:, :, 2, 0] = y[:, :, 2]
        return p.view(B, n, 12 * K)

    def inputs(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) levels (gray in channel 0), presence (B, 1, S, S) -> (B, D) integers."""
        return ((x[:, 0].to(self.device) - 128) * present[:, 0].to(self.device)).flatten(1)

    def full_pass(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Tiles (B,3,S,S) and presence (B,1,S,S) -> head parameters (B,S,S,12K) int64."""
        B, S = x.shape[0], self.cfg.size
        if x.shape[-1] != S or x.shape[-2] != S:
            raise ValueError(f"MADE codes {S}x{S} tiles, got {tuple(x.shape[-2:])}")
        inp = self.inputs(x, present)
        p = self._head(self.out(self._hidden(inp)), self.direct(inp), B, self.cfg.dims)
        return p.view(B, S, S, -1)

    def stepper(self, B: int, T: int, present: torch.Tensor) -> "MADEStepper":
        if T != self.cfg.size:
            raise ValueError(f"MADE codes {self.cfg.size}x{self.cfg.size} tiles, got {T}")
        return MADEStepper(self, B, present)


class MADEStepper:
    """Decode-side evaluation, one pixel at a time; identical integers to ``full_pass``."""

    def __init__(self, net: ExactMADE, B: int, present: torch.Tensor):
        self.net = net
        self.inp = torch.zeros(B, net.cfg.dims, dtype=torch.int64, device=net.device)
        self.present = present.to(net.device).to(torch.int64)[:, 0].flatten(1)

    def params(self, r: int, c: int) -> torch.Tensor:
        net, K = self.net, self.net.cfg.mixtures
        d = r * net.cfg.size + c  # only pixel d's output rows
        h = net._hidden(self.inp)
        y = net.out.rows(slice(3 * K * d, 3 * K * (d + 1)))(h)
        skip = net.direct.rows(slice(K * d, K * (d + 1)))(self.inp)
        return net._head(y, skip, self.inp.shape[0], 1)[:, 0]

    def set(self, r: int, c: int, pixel: torch.Tensor) -> None:
        d = r * self.net.cfg.size + c
        self.inp[:, d] = (pixel[:, 0].to(self.net.device) - 128) * self.present[:, d]
