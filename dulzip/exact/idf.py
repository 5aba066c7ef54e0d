"""Exact integer runtime of the integer discrete flow (see dulzip.models.idf for the float side).

Every network is evaluated as 3x3 convolutions by 9 integer matmuls on shifted views
(:meth:`dulzip.exact.layers.QLinear.conv3x3`: exact in float under the bound QLinear checks; no
Winograd or FFT algorithm can be picked), integer
requantization and clamps, so the encoder's forward pass and the decoder's inverse see the same
integers on any device, batch size or thread count. The flow is a bijection on integers by
construction: a coupling adds integers computed from the half it leaves unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch

from dulzip.errors import CorruptDataError
from dulzip.exact.layers import QLinear, exact_matmul
from dulzip.models.idf import (CENTER, IN_CLAMP, MU_CLAMP, T_FRAC, TMAX, IDFConfig, checkerboard, plan,
                               second_half_input, unsqueeze, walk)

DEFAULT_TILE = 512  # image tiles: 0.4% smaller than 256 on a held-out photo, 0.5 GB at most on a CPU
T_SHIFT = T_FRAC.bit_length() - 1


class ExactNet:
    """conv3x3 -> ReLU -> conv3x3 -> ReLU -> conv3x3, plus a direct 3x3 linear path."""

    def __init__(self, t: dict[str, torch.Tensor], name: str, device: torch.device):
        self.c1 = QLinear.from_tensors(t, f"{name}.c1", IN_CLAMP).to(device)
        self.c2 = QLinear.from_tensors(t, f"{name}.c2").to(device)
        self.c3 = QLinear.from_tensors(t, f"{name}.c3").to(device)
        self.direct = QLinear.from_tensors(t, f"{name}.direct", IN_CLAMP).to(device)

    @staticmethod
    def _conv(layer: QLinear, x: torch.Tensor) -> torch.Tensor:
        return layer.conv3x3(x)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.clamp(-IN_CLAMP, IN_CLAMP)
        h = self._conv(self.c2, self._conv(self.c1, x))
        return self._conv(self.c3, h), self._conv(self.direct, x)


class ExactIDF:
    """``forward`` (encoder) and ``inverse`` (decoder) of the flow, on (B, 3, H, W) integer
    images whose H and W are multiples of ``multiple``. A :class:`dulzip.exact.runtime.FlowRuntime`."""

    modality = "image"
    codec = "flow"
    gray_only = False
    fixed_tile = None
    default_tile = DEFAULT_TILE

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = IDFConfig(**config)
        self.device = torch.device(device)
        self.steps = plan(self.cfg)
        self.multiple = 2 ** self.cfg.levels
        t = {k: v.to(self.device) for k, v in tensors.items()}
        n_c = sum(s[0] == "couple" for s in self.steps)
        n_p = sum(s[0] == "split" for s in self.steps)
        self.couplings = [ExactNet(t, f"couple{i}", self.device) for i in range(n_c)]
        self.priors = [ExactNet(t, f"prior{i}", self.device) for i in range(n_p)]
        self.priors2 = [ExactNet(t, f"prior2_{i}", self.device) for i in range(n_p)]
        self.top_mu, self.top_ls = t["top.mu"], t["top.ls"]
        self.tables = (tensors["tab.flat"].cpu(), tensors["tab.start"].cpu(), tensors["tab.radius"].cpu())

    def _translation(self, i: int, a: torch.Tensor) -> torch.Tensor:
        y, d = self.couplings[i](a)
        return torch.bitwise_right_shift(y + d + T_FRAC // 2, T_SHIFT).clamp(-TMAX, TMAX)

    def _params(self, net: ExactNet, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, d = net(inp)
        c = d.shape[1]
        return (y[:, :c] + d).clamp(-MU_CLAMP, MU_CLAMP), y[:, c:]

    def _split_parts(self, i: int, keep: torch.Tensor, z: torch.Tensor) -> list[tuple]:
        first = checkerboard(*z.shape[-2:], z.device)
        mu1, k1 = self._params(self.priors[i], keep)
        mu2, k2 = self._params(self.priors2[i], second_half_input(keep, z, first))
        return [(z, mu1, k1, first), (z, mu2, k2, ~first)]

    def _top(self, B: int, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shape = (B, len(self.top_mu), H, W)
        every = torch.ones(H, W, dtype=torch.bool, device=self.device)
        return self.top_mu.view(1, -1, 1, 1).expand(shape), self.top_ls.view(1, -1, 1, 1).expand(shape), every

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """(B, 3, H, W) levels -> the parts [(z, mean in 1/MU_GRID, scale class, positions)] in
        decoding order: the top first, then the splits from the last to the first, each as its
        two checkerboard halves. A part codes z at its (H, W) positions only, every channel."""
        with exact_matmul(self.device):
            splits, h = walk(self.steps, x.to(self.device, torch.int64) - CENTER, self._translation,
                             self._split_parts)
            mu, k, every = self._top(h.shape[0], *h.shape[2:])
            return [(h, mu, k, every)] + [p for parts in reversed(splits) for p in parts]

    def inverse(self, B: int, H: int, W: int,
                decode: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The image from its parts, each obtained as ``decode(mean, scale class, positions)`` -> z
        (0 outside the positions), in the order ``forward`` lists them."""
        with exact_matmul(self.device):
            f = self.multiple
            h = decode(*self._top(B, H // f, W // f)).to(self.device)
            ci, pi = len(self.couplings), len(self.priors)
            for s in reversed(self.steps):
                if s[0] == "split":
                    pi -= 1
                    first = checkerboard(*h.shape[-2:], self.device)
                    z1 = decode(*self._params(self.priors[pi], h), first).to(self.device)
                    mu2, k2 = self._params(self.priors2[pi], second_half_input(h, z1, first))
                    z = torch.where(first, z1, decode(mu2, k2, ~first).to(self.device))
                    h = torch.cat([h, z], dim=1)
                elif s[0] == "couple":
                    ci -= 1
                    h = h.flip(1)
                    a, b = h[:, :s[1]], h[:, s[1]:]
                    h = torch.cat([a, b - self._translation(ci, a)], dim=1)
                else:
                    h = unsqueeze(h)
        x = h + CENTER
        if bool(((x < 0) | (x > 255)).any()):
            raise CorruptDataError("a flow-coded image decodes to levels outside 0..255")
        return x
