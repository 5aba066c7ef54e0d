"""Fixed-point conventions shared by training (fake quantization) and exact inference.

Every activation tensor of every exact network is an integer in [-128, 127] that stands for
``value / ACT``; every pre-activation (input of a lookup-table nonlinearity) an integer in
[-128, 127] that stands for ``value / PRE``. Because all activations share one scale, any of
them can be concatenated into one integer matmul. Weights are int8 with one float scale per
output channel, folded at export into an integer multiplier and shift.
"""
from __future__ import annotations

import torch

ACT = 64  # activation integers per unit: range [-2, 2)
PRE = 16  # pre-activation integers per unit: range [-8, 8)
QMIN, QMAX = -128, 127
WMAX = 127  # symmetric int8 weights
SHIFT = 24  # requantization: (acc * M + 2**(SHIFT-1)) >> SHIFT


def fake_quant(x: torch.Tensor, scale: float, lo: float, hi: float) -> torch.Tensor:
    """Round ``x`` to the grid 1/scale within [lo, hi] (in integer units); straight-through gradient."""
    q = torch.clamp(x * scale, lo, hi)
    q = q + (torch.round(q) - q).detach()
    return q / scale


SKIP_WMAX = 2047  # 12-bit weights for the direct pixel -> mean path (precise means)


def weight_scale(w2d: torch.Tensor, wmax: int = WMAX) -> torch.Tensor:
    """Per-output-channel scale for a (out, fan_in) weight matrix: max |w| maps to ``wmax``."""
    return w2d.detach().abs().amax(dim=1).clamp_min(1e-8) / wmax


def fake_quant_weights(ws: list[torch.Tensor], wmax: int = WMAX) -> list[torch.Tensor]:
    """Fake-quantize weights that feed one integer matmul together (shared per-row scale)."""
    flat = torch.cat([w.flatten(1) for w in ws], dim=1)
    s = weight_scale(flat, wmax).view(-1, *([1] * (ws[0].dim() - 1)))
    out = []
    for w in ws:
        q = w / s
        q = q + (torch.round(q) - q).detach()
        out.append(q * s)
    return out
