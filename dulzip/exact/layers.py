"""Exact integer layers: integer matmul (exact in float under a checked bound), integer
requantization, lookup-table nonlinearities. Identical results on any device, batch size,
thread count or evaluation order, because every intermediate is an exact integer."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from dulzip.exact.quant import ACT, PRE, QMAX, QMIN, SHIFT, WMAX, weight_scale

F32_EXACT = 2 ** 24  # float32 represents every integer below this exactly


@contextmanager
def exact_matmul(device: torch.device):
    """Full float32 precision for CUDA matmuls inside the block, the caller's setting restored
    after (nothing to do on another ``device``).

    A float32 :class:`QLinear` is exact because its load-time bound keeps every partial sum
    within float32's 24 bits; TF32 keeps only 11 significant bits of each operand. Today's
    operands fit in 11 bits (int8 activations, 12-bit skip weights, flow inputs within +-1023),
    but nothing checks that, so the runtimes do not rely on it. PyTorch's default is full
    precision; an application may turn TF32 on. The runtimes' passes run inside this block
    rather than switching TF32 off for the whole process when one is built (which changed the
    matmuls of the rest of the program). Torch >= 2.9 names the setting ``fp32_precision``
    (and refuses reads through the old ``allow_tf32`` once the new one is set), older ones
    ``allow_tf32``.
    """
    if device.type != "cuda":
        yield
        return
    mm = torch.backends.cuda.matmul
    new = hasattr(mm, "fp32_precision")
    before = mm.fp32_precision if new else mm.allow_tf32
    if before in ("ieee", False):
        yield
        return
    if new:
        mm.fp32_precision = "ieee"
    else:
        mm.allow_tf32 = False
    try:
        yield
    finally:
        if new:
            mm.fp32_precision = before
        else:
            mm.allow_tf32 = before


@dataclass
class QLinear:
    """y = clamp(((x @ W.T + b) * M + 2**(SHIFT-1)) >> SHIFT + off, lo, hi), all integer.

    ``weight`` holds integers (int8 range) in the float dtype used for the matmul: float32 when
    every partial sum is provably below 2**24 in magnitude, else float64.
    """

    weight: torch.Tensor  # (out, fan_in), integer-valued float
    bias: torch.Tensor  # (out,) int64, in accumulator units
    mult: torch.Tensor  # (out,) int64
    off: torch.Tensor  # (out,) int64
    lo: torch.Tensor  # (out,) int64
    hi: torch.Tensor  # (out,) int64

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], name: str, max_abs_input: int = 128) -> "QLinear":
        w = t[f"{name}.w"].to(torch.int64)
        bias = t[f"{name}.b"].to(torch.int64)
        bound = int((w.abs().sum(1) * max_abs_input + bias.abs()).max())
        dtype = torch.float32 if bound < F32_EXACT else torch.float64
        if bound >= 2 ** 52:
            raise ValueError(f"layer {name}: accumulator bound {bound} too large for exact float64")
        mult = t[f"{name}.m"].to(torch.int64)
        off = t[f"{name}.off"].to(torch.int64)
        # requantization's acc * M + k (see __post_init__) stays in int64
        if bound * int(mult.abs().max()) + (int(off.abs().max()) + 1) * 2 ** SHIFT >= 2 ** 62:
            raise ValueError(f"layer {name}: requantization could overflow int64")
        return cls(w.to(dtype), bias, mult, off,
                   t[f"{name}.lo"].to(torch.int64), t[f"{name}.hi"].to(torch.int64))

    def to(self, device: torch.device) -> "QLinear":
        return QLinear(*(getattr(self, f).to(device) for f in
                         ("weight", "bias", "mult", "off", "lo", "hi")))

    def rows(self, sl: slice) -> "QLinear":
        """The layer restricted to some outputs (each output row is computed on its own)."""
        return QLinear(*(getattr(self, f)[sl] for f in ("weight", "bias", "mult", "off", "lo", "hi")))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, fan_in) integer tensor -> (N, out) int64."""
        acc = torch.round(x.to(self.weight.dtype) @ self.weight.T).to(torch.int64)
        return self._requantize(acc, (1, -1))

    def conv3x3(self, x: torch.Tensor) -> torch.Tensor:
        """A 3x3 convolution, zero padded, of x (B, C, H, W) integers, the layer's fan_in being
        C * 9 in F.unfold's order (channel, then the 3x3 window row by row) -> (B, out, H, W)
        int64. Without window columns: on the padded image flattened row by row, the window
        position (dy, dx) of every output is one contiguous slice (offset dy * (W + 2) + dx;
        the two padding columns of each row give outputs that are dropped), so the 9 taps are
        9 matmuls on views, no copies of the input. Each tap's sums and their total are exact
        integers under the bound :meth:`from_tensors` checked (it covers every partial sum),
        so the result equals the columns' matmul bit for bit in any order."""
        B, C, H, W = x.shape
        Wp, N = W + 2, H * (W + 2)
        # one more row below: the last tap's slice ends 2 past the padded image
        flat = torch.nn.functional.pad(x.to(self.weight.dtype), (1, 1, 1, 2)).view(B, C, -1)
        taps = self._taps()
        acc = torch.matmul(taps[0], flat[:, :, :N])
        for k in range(1, 9):
            s = (k // 3) * Wp + k % 3
            acc.add_(torch.matmul(taps[k], flat[:, :, s:s + N]))
        acc = torch.round(acc.view(B, -1, H, Wp)[..., :W]).to(torch.int64)
        return self._requantize(acc.reshape(B, -1, H * W), (-1, 1)).view(B, -1, H, W)

    def _taps(self) -> torch.Tensor:
        """The weights per window position: (9, out, C), built once."""
        if self._tap_weights is None:
            out = self.weight.shape[0]
            self._tap_weights = self.weight.view(out, -1, 9).permute(2, 0, 1).contiguous()
        return self._tap_weights

    def __post_init__(self):
        self._tap_weights = None
        # (acc + b) * M + 2**(SHIFT-1) >> SHIFT + off == (acc * M + k) >> SHIFT with
        # k = b * M + 2**(SHIFT-1) + off * 2**SHIFT (integer identities; no overflow: the bound
        # checked at loading covers |acc + b| * M): four in-place ops a layer instead of six
        k = self.bias * self.mult + (1 << (SHIFT - 1)) + (self.off << SHIFT)
        vecs = [self.mult, k, self.lo, self.hi]
        # shaped for __call__ (rows) and columns (columns), once: the decode loop requantizes
        # every layer at every step
        self._shaped = {shape: tuple(v.view(shape) for v in vecs) for shape in ((1, -1), (-1, 1))}

    def _requantize(self, acc: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """In place on ``acc`` (a fresh int64 tensor): no temporaries."""
        m, k, lo, hi = self._shaped[shape]
        return acc.mul_(m).add_(k).bitwise_right_shift_(SHIFT).clamp_(lo, hi)


def export_linear(ws: list[torch.Tensor], bias: torch.Tensor | None, target: torch.Tensor | float,
                  lo, hi, off=0, name: str = "", wmax: int = WMAX) -> dict[str, torch.Tensor]:
    """Quantize float weights feeding one matmul (inputs at scale 1/ACT) to a :class:`QLinear`.

    ``target``: output integers per unit (scalar or per output channel). Same per-row weight
    scale as the fake quantization used in training.
    """
    flat = torch.cat([w.detach().flatten(1) for w in ws], dim=1).double()
    out = flat.shape[0]
    b = torch.zeros(out, dtype=torch.float64) if bias is None else bias.detach().double()
    # a row with (near) zero weights still needs its bias in range and a nonzero multiplier
    s = torch.maximum(weight_scale(flat, wmax), torch.maximum(b.abs() * ACT / 2 ** 22,
                                                              torch.full_like(b, 2.0 ** -14)))
    wq = torch.round(flat / s[:, None]).clamp(-wmax, wmax).to(torch.int8 if wmax <= 127 else torch.int16)
    bq = torch.round(b * ACT / s).to(torch.int64)
    tgt = torch.as_tensor(target, dtype=torch.float64).expand(out)
    mult = torch.round(s * tgt / ACT * 2 ** SHIFT).to(torch.int64)

    def vec(v):
        return torch.as_tensor(v, dtype=torch.int64).expand(out).clone()

    return {f"{name}.w": wq, f"{name}.b": bq, f"{name}.m": mult, f"{name}.off": vec(off),
            f"{name}.lo": vec(lo), f"{name}.hi": vec(hi)}


def lut_gate(pre: torch.Tensor, tanh_lut: torch.Tensor, sig_lut: torch.Tensor) -> torch.Tensor:
    """Gated unit on integers: pre (N, 2C) in [-128,127] -> (N, C) at scale 1/ACT."""
    a, b = pre.chunk(2, dim=-1)
    t = tanh_lut[a - QMIN]
    s = sig_lut[b - QMIN]
    return torch.bitwise_right_shift(t * s + 128, 8).clamp(QMIN, QMAX)


def gate_table(tanh_lut: torch.Tensor, sig_lut: torch.Tensor) -> torch.Tensor:
    """:func:`lut_gate` of every pair of pre-activations: index (a - QMIN) * 256 + (b - QMIN)."""
    a = torch.arange(QMIN, QMAX + 1, device=tanh_lut.device)
    return lut_gate(torch.stack([a.repeat_interleave(256), a.repeat(256)], dim=1), tanh_lut, sig_lut)[:, 0]


def table_gate(pre: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """:func:`lut_gate` through :func:`gate_table`'s table: the same integers, in fewer ops."""
    a, b = pre.chunk(2, dim=-1)
    return table[torch.add(b, a, alpha=256).add_(-QMIN * 257)]


def gate_luts() -> dict[str, torch.Tensor]:
    """Tables for the gated unit, made once at export and shipped with the weights."""
    q = torch.arange(QMIN, QMAX + 1, dtype=torch.float64) / PRE
    return {"lut.tanh": torch.round(ACT * torch.tanh(q)).to(torch.int64),  # exact-ok: export-time table
            "lut.sigmoid": torch.round(256 * torch.sigmoid(q)).to(torch.int64)}  # exact-ok: export-time table
