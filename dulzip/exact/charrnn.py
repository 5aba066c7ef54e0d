"""Exact integer runtime of the char-RNN (see dulzip.models.charrnn for the float side).

One step of B independent streams: the input part of the gates is a table lookup (the
embedding times the input weights, integer, made at export), the recurrent part one integer
matmul (exact in float32: |h| <= ACT and int8 weights keep every partial sum below 2**24),
the nonlinearities lookup tables, the cell state a fixed-point integer. The result of a
stream never depends on the other streams in the batch, the batch size, the thread count or
the device. On a CPU the matmuls run in torch on int8 (exact int32 sums, about three times
faster than float32 there: :func:`_int8_matmul`) and the integer rest in numba (one call
instead of some twenty small torch operations); on a GPU all in torch; all compute the same
integers.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

from dulzip.exact.layers import F32_EXACT, QLinear
from dulzip.exact.quant import ACT, QMIN, SHIFT, WMAX
from dulzip.models.charrnn import CELL_MAX, EXP_SIZE, START, CharRNNConfig


class ExactCharRNN:
    """A :class:`dulzip.exact.runtime.TextRuntime`."""

    modality = "text"

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = CharRNNConfig(**{k: v for k, v in config.items() if k in CharRNNConfig.__dataclass_fields__})
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
        if self.device.type == "cpu":  # the same tables as numpy arrays for the numba step
            self._cpu = {"xtab": self.xtab.numpy(), "wh_t": _int8(self.wh.T),
                       "mult": self.mult.numpy(), "off": self.off.numpy(), "sig": self.sig.numpy(),
                       "tanh": self.tanh.numpy(), "tanh_cell": self.tanh_cell.numpy(), "exp": self.exp.numpy(),
                       "head_wt": _int8(self.head.weight.T),
                       **{f"head_{k}": getattr(self.head, k).numpy() for k in ("bias", "mult", "off", "lo", "hi")}}

    def start(self, B: int):
        """The state of B fresh segments: h (integers, int8 on a CPU and held in float32 on a
        GPU: the matmuls' types), c."""
        if self.device.type == "cpu":
            return np.zeros((B, self.cfg.hidden), dtype=np.int8), np.zeros((B, self.cfg.hidden), dtype=np.int64)
        z = torch.zeros(B, self.cfg.hidden, dtype=torch.int64, device=self.device)
        return z.to(torch.float32), z

    def step(self, state, prev: np.ndarray):
        """state (h, c), prev (B,) symbols 0..256 -> (new state, (B, 256) int64 byte weights
        as a numpy array).

        The weights are the softmax of the integer logits through the exp table, plus 1 so
        that every byte stays codable.
        """
        if self.device.type == "cpu":
            a = self._cpu
            h, c = state  # the matmuls in torch (its thread pool), the integer rest in numba
            hw = _int8_matmul(h, a["wh_t"])
            h, c = _gates(hw, c, prev, a["xtab"], a["mult"], a["off"], a["sig"], a["tanh"], a["tanh_cell"])
            logits = _int8_matmul(h, a["head_wt"])
            return (h, c), _softmax(logits, a["head_bias"], a["head_mult"], a["head_off"], a["head_lo"], a["head_hi"],
                                    a["exp"])
        (h, c), w = self.step_torch(state, torch.from_numpy(prev).to(self.device))
        return (h, c), w.cpu().numpy()

    def step_torch(self, state, prev: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The same step in torch (any device): prev and the weights are tensors (h of any integer
        dtype: the CPU step's int8 too)."""
        h, c = state
        H = self.cfg.hidden
        acc = self.xtab[prev] + (h.to(torch.float32) @ self.wh.T).to(torch.int64)  # every partial sum is an exact integer
        pre = (torch.bitwise_right_shift(acc * self.mult + (1 << (SHIFT - 1)), SHIFT) + self.off)
        pre = pre.clamp_(QMIN, -QMIN - 1) - QMIN
        i, f, g, o = pre.split(H, dim=1)
        c = torch.bitwise_right_shift(self.sig[f] * c + self.sig[i] * self.tanh[g] + 128, 8).clamp_(-CELL_MAX, CELL_MAX)
        h = torch.bitwise_right_shift(self.sig[o] * self.tanh_cell[c + CELL_MAX] + 512, 10)
        logits = self.head(h)
        h = h.to(torch.float32)
        d = (logits.max(dim=1, keepdim=True).values - logits).clamp_(max=EXP_SIZE - 1)
        return (h, c), self.exp[d] + 1

    def start_symbols(self, B: int) -> np.ndarray:
        return np.full(B, START, dtype=np.int64)

    @property
    def n_features(self) -> int:
        return self.cfg.hidden

    def features(self, state) -> np.ndarray:
        """The hidden state h of each stream as (B, hidden) int32 (integers in [-ACT, ACT]): what
        the text mixer's online layer learns from (in int32, the type it keeps them in)."""
        h = state[0]
        return (h if isinstance(h, np.ndarray) else h.cpu().numpy()).astype(np.int32)


def _int8(w: torch.Tensor) -> torch.Tensor:
    """Integer weights (int8 range, any dtype) as a contiguous int8 matrix."""
    if w.abs().max() > 127:
        raise ValueError("char-RNN weights outside the int8 range")
    return w.contiguous().to(torch.int8)


_INT_MM = getattr(torch, "_int_mm", None)


def _int8_matmul(h: np.ndarray, w: torch.Tensor) -> np.ndarray:
    """h @ w for int8 h (B, K) and w (K, N): the exact int32 sums, from torch's int8 kernel, or
    in float32 where a torch lacks it (exact too: every partial sum stays below 2**24)."""
    x = torch.from_numpy(h)
    if _INT_MM is not None:
        return _INT_MM(x, w).numpy()
    return (x.to(torch.float32) @ w.to(torch.float32)).to(torch.int32).numpy()


@njit(cache=True)
def _gates(hw, c, prev, xtab, mult, off, sig, tanh, tanh_cell):
    """The integer rest of the LSTM step, given hw = h @ W_h^T (exact integers):
    a stream's 4H requantized pre-activations first (a loop the compiler vectorizes), then
    its units through the lookup tables."""
    B, G = hw.shape
    H = G // 4
    h_new = np.empty((B, H), dtype=np.int8)
    c_new = np.empty((B, H), dtype=np.int64)
    half = np.int64(1) << (SHIFT - 1)
    pre = np.empty(G, dtype=np.int64)
    for b in range(B):
        x = xtab[prev[b]]
        hb = hw[b]
        for g in range(G):
            v = (((x[g] + np.int64(hb[g])) * mult[g] + half) >> SHIFT) + off[g]
            pre[g] = min(max(v, QMIN), -QMIN - 1) - QMIN
        for u in range(H):
            cc = (sig[pre[H + u]] * c[b, u] + sig[pre[u]] * tanh[pre[2 * H + u]] + 128) >> 8
            cc = min(max(cc, -CELL_MAX), CELL_MAX)
            c_new[b, u] = cc
            h_new[b, u] = np.int8((sig[pre[3 * H + u]] * tanh_cell[cc + CELL_MAX] + 512) >> 10)
    return h_new, c_new


@njit(cache=True)
def _softmax(acc_f, bias, mult, off, lo, hi, exp):
    """Head requantization (as QLinear) and the integer softmax weights (exp table, + 1)."""
    B, V = acc_f.shape
    out = np.empty((B, V), dtype=np.int64)
    half = np.int64(1) << (SHIFT - 1)
    q = np.empty(V, dtype=np.int64)
    for b in range(B):
        top = np.int64(-(1 << 62))
        for v in range(V):
            acc = np.int64(acc_f[b, v]) + bias[v]
            x = ((acc * mult[v] + half) >> SHIFT) + off[v]
            x = min(max(x, lo[v]), hi[v])
            q[v] = x
            top = max(top, x)
        for v in range(V):
            out[b, v] = exp[min(top - q[v], EXP_SIZE - 1)] + 1
    return out
