"""Exact integer runtime of the char-RNN (see dulzip.models.charrnn for the float side).

One step of B independent streams: the input part of the gates is a table lookup (the
embedding times the input weights, integer, made at export), the recurrent part one integer
matmul (exact in float32: |h| <= ACT and int8 weights keep every partial sum below 2**24),
the nonlinearities lookup tables, the cell state a fixed-point integer. The result of a
stream never depends on the other streams in the batch, the batch size, the thread count or
the device.
"""
from __future__ import annotations

import torch

from dulzip.exact.layers import F32_EXACT, QLinear
from dulzip.exact.quant import ACT, QMIN, SHIFT, WMAX
from dulzip.models.charrnn import CELL_MAX, EXP_SIZE, START, CharRNNConfig


class ExactCharRNN:
    modality = "text"

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = CharRNNConfig(**{k: v for k, v in config.items() if k in CharRNNConfig.__dataclass_fields__})
        self.config = config
        self.device = torch.device(device)
        t = {k: v.to(self.device) for k, v in tensors.items()}
        H = self.cfg.hidden
        if H * WMAX * ACT >= F32_EXACT:
            raise ValueError("hidden size too large for the exact float32 recurrent matmul")
        self.xtab = t["gates.xtab"].to(torch.int64) + t["gates.b"].to(torch.int64)  # (257, 4H)
        self.wh = t["gates.wh"].to(torch.float32)  # (4H, H)
        self.mult, self.off = t["gates.m"].to(torch.int64), t["gates.off"].to(torch.int64)
        self.head = QLinear.from_tensors(t, "head", max_abs_input=ACT).to(self.device)
        lut = {k: v.to(torch.int64) for k, v in t.items() if k.startswith("lut.")}
        self.sig, self.tanh, self.tanh_cell, self.exp = (lut[f"lut.{k}"] for k in ("sigmoid", "tanh", "tanh_cell", "exp"))
        self.luts = {k: v.cpu() for k, v in lut.items()}
        self.prime = {k: v.cpu() for k, v in tensors.items() if k.startswith("prime.")}

    def start(self, B: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The state of B fresh segments."""
        z = torch.zeros(B, self.cfg.hidden, dtype=torch.int64, device=self.device)
        return z.to(torch.float32), z  # h (integers held in float32, the matmul's type), c

    def step(self, state, prev: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """state (h, c), prev (B,) symbols 0..256 -> (new state, (B, 256) int64 byte weights).

        The weights are the softmax of the integer logits through the exp table, plus 1 so
        that every byte stays codable.
        """
        h, c = state
        H = self.cfg.hidden
        acc = self.xtab[prev] + (h @ self.wh.T).to(torch.int64)  # every partial sum is an exact integer
        pre = (torch.bitwise_right_shift(acc * self.mult + (1 << (SHIFT - 1)), SHIFT) + self.off)
        pre = pre.clamp_(QMIN, -QMIN - 1) - QMIN
        i, f, g, o = pre.split(H, dim=1)
        c = torch.bitwise_right_shift(self.sig[f] * c + self.sig[i] * self.tanh[g] + 128, 8).clamp_(-CELL_MAX, CELL_MAX)
        h = torch.bitwise_right_shift(self.sig[o] * self.tanh_cell[c + CELL_MAX] + 512, 10)
        logits = self.head(h)
        h = h.to(torch.float32)
        d = (logits.max(dim=1, keepdim=True).values - logits).clamp_(max=EXP_SIZE - 1)
        return (h, c), self.exp[d] + 1

    def start_symbols(self, B: int) -> torch.Tensor:
        return torch.full((B,), START, dtype=torch.int64, device=self.device)
