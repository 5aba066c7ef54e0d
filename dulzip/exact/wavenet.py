"""Exact integer runtime of the WaveNet (see dulzip.models.wavenet for the float side).

Two ways to the same integers: :meth:`ExactWaveNet.params_full` runs the network over whole
segments at once (the encoder: one batched pass, a dilated layer is one matmul of each
position's features with those ``d`` positions earlier), and :meth:`ExactWaveNet.step`
advances B segments by one sample (the decoder: Fast-WaveNet queues, one per layer, hold the
features ``d`` steps back, so a step costs one column of work). Every matmul is an exact
integer computation in float (bounds checked when the weights are loaded), every nonlinearity a
lookup table; a segment's numbers never depend on the others, the batch size, the thread
count or the device.
"""
from __future__ import annotations

import torch

from dulzip.exact.layers import QLinear, lut_gate
from dulzip.exact.quant import QMAX, QMIN
from dulzip.models.wavenet import COEF_BITS, EXP_SIZE, LS_MIN, WaveNetConfig

F64_EXACT = 2 ** 53


def _shift(h: torch.Tensor, d: int) -> torch.Tensor:
    """(B, L, C) -> h[t - d] at t (zeros before the start)."""
    return torch.nn.functional.pad(h, (0, 0, d, 0))[:, :h.shape[1]]


class ExactWaveNet:
    modality = "audio"

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = WaveNetConfig(**{k: v for k, v in config.items() if k in WaveNetConfig.__dataclass_fields__})
        self.device = torch.device(device)
        t = {k: v.to(self.device) for k, v in tensors.items()}
        L = self.cfg.layers
        self.inp = QLinear.from_tensors(t, "inp")
        self.dil = [QLinear.from_tensors(t, f"dil{i}") for i in range(L)]
        self.res = [QLinear.from_tensors(t, f"res{i}") for i in range(L)]
        self.skip = QLinear.from_tensors(t, "skip")
        self.head1 = QLinear.from_tensors(t, "head1")
        self.head2 = QLinear.from_tensors(t, "head2")
        coef = t["coef"].to(torch.int64)  # (M, P) in 2**-COEF_BITS
        if int(coef.abs().sum(1).max()) * 32768 >= F64_EXACT:
            raise ValueError("linear-path coefficients too large for the exact float64 matmul")
        self.coef_t = coef.T.to(torch.float64).contiguous()  # (P, M)
        self.luts = {k: v.to(torch.int64) for k, v in t.items() if k.startswith("lut.")}
        self.mulaw = self.luts["lut.mulaw"]

    # -- the head, shared by both paths ----------------------------------------------------
    def _head(self, gs: list[torch.Tensor], past: torch.Tensor):
        """Gated outputs of every layer (N, C) each, past samples (N, P) -> (logits, mu, log_s) (N, K)."""
        K, M = self.cfg.mixtures, self.cfg.filters
        y = self.head2(self.head1(self.skip(torch.cat(gs, dim=1))))
        logits, delta, log_s, glog = y[:, :K], y[:, K:2 * K], y[:, 2 * K:3 * K], y[:, 3 * K:3 * K + M]
        pred = torch.round(past.to(torch.float64) @ self.coef_t).to(torch.int64)  # (N, M) in 2**-12 level
        w = self.luts["lut.aexp"][(glog.max(dim=1, keepdim=True).values - glog).clamp(max=EXP_SIZE - 1)]
        lin = torch.div((w * pred).sum(1, keepdim=True), w.sum(1, keepdim=True), rounding_mode="floor")
        lin = torch.bitwise_right_shift(lin, COEF_BITS - 3)  # 1/8 level (MU_SCALE)
        corr = torch.bitwise_right_shift(delta * self.luts["lut.ascale"][log_s - LS_MIN], 4)
        return logits, lin + corr, log_s

    def _layer(self, i: int, back: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features d steps back, features now) (N, C) -> (gated output, next features)."""
        g = lut_gate(self.dil[i](torch.cat([back, h], dim=1)), self.luts["lut.tanh"], self.luts["lut.sigmoid"])
        return g, (h + self.res[i](g)).clamp_(QMIN, QMAX)

    # -- encoder: whole segments -----------------------------------------------------------
    def params_full(self, x: torch.Tensor):
        """x (B, L) int64 levels -> (logits, mu, log_s), each (B, L, K): the parameters of every
        sample given the samples before it in its segment."""
        B, L = x.shape
        x = x.to(self.device)
        c = self.mulaw[x + 32768].unsqueeze(-1)  # (B, L, 1)
        h = self.inp(torch.cat([_shift(c, 2), _shift(c, 1)], dim=-1).view(B * L, 2)).view(B, L, -1)
        gs = []
        for i, d in enumerate(self.cfg.dilations()):
            g, h2 = self._layer(i, _shift(h, d).reshape(B * L, -1), h.reshape(B * L, -1))
            gs.append(g)
            h = h2.view(B, L, -1)
        P = self.cfg.taps
        past = torch.nn.functional.pad(x, (P, 0))[:, :-1].unfold(1, P, 1).flip(-1).reshape(B * L, P)
        return tuple(v.view(B, L, -1) for v in self._head(gs, past))

    # -- decoder: one sample of every segment per step ------------------------------------
    def start(self, B: int) -> dict:
        """The state of B fresh segments: every history zero (as the full pass's padding)."""
        C, P = self.cfg.channels, self.cfg.taps
        z = lambda *s: torch.zeros(*s, dtype=torch.int64, device=self.device)  # noqa: E731
        return {"t": 0, "c": z(B, 2), "past": z(B, P),
                "queues": [z(B, d, C) for d in self.cfg.dilations()]}

    def step(self, state: dict, prev: torch.Tensor):
        """Feed each segment's previous sample (B,) (0 at the first step, like the zeros before a
        segment in the full pass) -> the parameters of the
        next sample, (logits, mu, log_s) each (B, K). The state is updated in place."""
        prev = prev.to(self.device)
        t = state["t"]
        state["c"] = torch.stack([state["c"][:, 1], self.mulaw[prev + 32768]], dim=1)
        state["past"] = torch.cat([prev.view(-1, 1), state["past"][:, :-1]], dim=1)
        h = self.inp(state["c"])
        gs = []
        for i, (d, q) in enumerate(zip(self.cfg.dilations(), state["queues"])):
            slot = t % d
            g, h2 = self._layer(i, q[:, slot], h)
            q[:, slot] = h  # these features are read again d steps later
            gs.append(g)
            h = h2
        state["t"] = t + 1
        return self._head(gs, state["past"])
