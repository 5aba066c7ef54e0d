"""Exact integer runtime of the WaveNet (see dulzip.models.wavenet for the float side).

Two ways to the same integers: :meth:`ExactWaveNet.params_full` runs the network over whole
segments at once (the encoder: one batched pass, a dilated layer is one matmul of each
position's features with those ``d`` positions earlier), and :meth:`ExactWaveNet.step`
advances B segments by one sample (the decoder: Fast-WaveNet queues, one per layer, hold the
features ``d`` steps back, so a step costs one column of work). Every matmul is an exact
integer computation in float (bounds checked when the weights are loaded), every nonlinearity a
lookup table; a segment's numbers never depend on the others, the batch size, the thread
count or the device.

On a CPU the step is one numba call (:func:`_step`, the matmuls in int32, instead of some 250
small torch operations); elsewhere it runs in torch (:meth:`ExactWaveNet.step_torch`). Both
compute the same integers.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

from dulzip.exact.layers import QLinear, lut_gate
from dulzip.exact.quant import QMAX, QMIN, SHIFT
from dulzip.heads.audio import EXP_SIZE, LS_MIN
from dulzip.models.wavenet import COEF_BITS, SEG_BITS, SEG_MAX, WaveNetConfig

F64_EXACT = 2 ** 53


def _shift(h: torch.Tensor, d: int) -> torch.Tensor:
    """(B, L, C) -> h[t - d] at t (zeros before the start)."""
    return torch.nn.functional.pad(h, (0, 0, d, 0))[:, :h.shape[1]]


class ExactWaveNet:
    """An :class:`dulzip.exact.runtime.AudioRuntime`."""

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
        self.coef0 = coef[0]
        if self.cfg.seg_order > self.cfg.taps:
            raise ValueError("a segment's predictor cannot see more samples than the taps")
        self.luts = {k: v.to(torch.int64) for k, v in t.items() if k.startswith("lut.")}
        self.mulaw = self.luts["lut.mulaw"]
        if self.device.type == "cpu":
            self._cpu = self._cpu_arrays(coef)

    def _cpu_arrays(self, coef: torch.Tensor) -> dict[str, np.ndarray]:
        """The weights and tables as numpy arrays for :func:`_step`: each layer's weights as
        int16 (out, fan_in), its requantization as rows (bias, mult, off, lo, hi)."""
        layers = {"inp": self.inp, "dil": self.dil, "res": self.res, "skip": self.skip,
                  "head1": self.head1, "head2": self.head2}
        a = {}
        for name, q in layers.items():
            qs = q if isinstance(q, list) else [q]
            for v in qs:  # inputs are in [-128, 127]: the int32 sums are exact below this bound
                if v.weight.abs().max() >= 2 ** 15 or int(v.weight.abs().sum(1).max()) * 128 >= 2 ** 31:
                    raise ValueError(f"layer {name}: weights too large for the exact int16/int32 CPU step")
            w = [v.weight.to(torch.int16).numpy() for v in qs]
            rq = [torch.stack([v.bias, v.mult, v.off, v.lo, v.hi]).numpy() for v in qs]
            a[f"{name}_w"], a[f"{name}_q"] = (np.stack(w), np.stack(rq)) if isinstance(q, list) else (w[0], rq[0])
        dil = np.array(self.cfg.dilations(), dtype=np.int64)
        a.update({"dil": dil, "qoff": np.concatenate([[0], np.cumsum(dil)[:-1]]).astype(np.int64),
                  "coef": coef.contiguous().numpy()})
        a.update({k: self.luts[f"lut.{k}"].numpy() for k in ("mulaw", "tanh", "sigmoid", "aexp", "ascale")})
        return a

    # -- the head, shared by both paths ----------------------------------------------------
    def seg_coef(self, seg: torch.Tensor | np.ndarray | None, B: int) -> torch.Tensor:
        """The segments' own predictors (B, seg_order) int64 (checked), or (B, 0) for a model without."""
        R = self.cfg.seg_order
        if R == 0:
            return torch.zeros(B, 0, dtype=torch.int64, device=self.device)
        seg = torch.as_tensor(seg, dtype=torch.int64).to(self.device)
        if seg.shape != (B, R) or (B and int(seg.abs().max()) > SEG_MAX):
            raise ValueError("invalid segment predictors")
        return seg

    def _head(self, gs: list[torch.Tensor], past: torch.Tensor, seg: torch.Tensor):
        """Gated outputs of every layer (N, C) each, past samples (N, P), the segments' own
        predictors (N, seg_order) -> (logits, mu, log_s) (N, K)."""
        K, M = self.cfg.mixtures, self.cfg.filters + (1 if self.cfg.seg_order else 0)
        y = self.head2(self.head1(self.skip(torch.cat(gs, dim=1))))
        logits, delta, log_s, glog = y[:, :K], y[:, K:2 * K], y[:, 2 * K:3 * K], y[:, 3 * K:3 * K + M]
        pred = torch.round(past.to(torch.float64) @ self.coef_t).to(torch.int64)  # (N, M) in 2**-12 level
        if seg.shape[1]:  # the segment's own predictor, in 2**-SEG_BITS level, to 2**-COEF_BITS
            own = (past[:, :seg.shape[1]] * seg).sum(1, keepdim=True)
            own = own << (COEF_BITS - SEG_BITS) if SEG_BITS <= COEF_BITS else own >> (SEG_BITS - COEF_BITS)
            pred = torch.cat([pred, own], dim=1)
        w = self.luts["lut.aexp"][(glog.max(dim=1, keepdim=True).values - glog).clamp(max=EXP_SIZE - 1)]
        lin = torch.div((w * pred).sum(1, keepdim=True), w.sum(1, keepdim=True), rounding_mode="floor")
        lin = torch.bitwise_right_shift(lin, COEF_BITS - 3)  # 1/8 level (MU_SCALE)
        corr = torch.bitwise_right_shift(delta * self.luts["lut.ascale"][log_s - LS_MIN], 4)
        return logits, lin + corr, log_s

    def _reference(self, past: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """(N,) the reference prediction (whole levels, floor) from past samples (N, P): the
        segment's own predictor (N, seg_order), else shared filter 0."""
        if own.shape[1]:
            return torch.bitwise_right_shift((past[:, :own.shape[1]] * own).sum(1), SEG_BITS)
        return torch.bitwise_right_shift((past * self.coef0).sum(1), COEF_BITS)

    def _layer(self, i: int, back: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features d steps back, features now) (N, C) -> (gated output, next features)."""
        g = lut_gate(self.dil[i](torch.cat([back, h], dim=1)), self.luts["lut.tanh"], self.luts["lut.sigmoid"])
        return g, (h + self.res[i](g)).clamp_(QMIN, QMAX)

    # -- encoder: whole segments -----------------------------------------------------------
    def params_full(self, x: torch.Tensor, seg: torch.Tensor | None = None):
        """x (B, L) int64 levels, the segments' own predictors (B, seg_order) where the model
        has them -> (logits, mu, log_s), each (B, L, K): the parameters of every sample given
        the samples before it in its segment."""
        B, L = x.shape
        x = x.to(self.device)
        seg = self.seg_coef(seg, B)
        P = self.cfg.taps
        past = torch.nn.functional.pad(x, (P, 0))[:, :-1].unfold(1, P, 1).flip(-1).reshape(B * L, P)
        own = seg[:, None, :].expand(B, L, seg.shape[1]).reshape(B * L, -1)
        c = self.mulaw[x + 32768].unsqueeze(-1)  # (B, L, 1)
        feats = [_shift(c, 2), _shift(c, 1)]
        if self.cfg.resid:
            r = (x - self._reference(past, own).view(B, L)).clamp_(-32768, 32767)
            rc = self.mulaw[r + 32768].unsqueeze(-1)
            feats += [_shift(rc, 2), _shift(rc, 1)]
        h = self.inp(torch.cat(feats, dim=-1).view(B * L, -1)).view(B, L, -1)
        gs = []
        for i, d in enumerate(self.cfg.dilations()):
            g, h2 = self._layer(i, _shift(h, d).reshape(B * L, -1), h.reshape(B * L, -1))
            gs.append(g)
            h = h2.view(B, L, -1)
        return tuple(v.view(B, L, -1) for v in self._head(gs, past, own))

    # -- decoder: one sample of every segment per step ------------------------------------
    def start(self, B: int, seg: torch.Tensor | np.ndarray | None = None) -> dict:
        """The state of B fresh segments for :meth:`step` (with their own predictors where the
        model has them): every history zero (as the full pass's padding). numpy arrays on a
        CPU (the queues of all layers in one int16 array), else as :meth:`start_torch`."""
        if self.device.type != "cpu":
            return self.start_torch(B, seg)
        C, P = self.cfg.channels, self.cfg.taps
        return {"t": 0, "c": np.zeros((B, 4 if self.cfg.resid else 2), dtype=np.int64),
                "past": np.zeros((B, P), dtype=np.int64),
                "queue": np.zeros((B, int(self._cpu["dil"].sum()), C), dtype=np.int16),
                "seg": self.seg_coef(seg, B).numpy()}

    def step(self, state: dict, prev: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, ...]:
        """Feed each segment's previous sample (B,) (0 at the first step, like the zeros before a
        segment in the full pass; a tensor or a numpy array) -> the parameters of the next
        sample, (logits, mu, log_s) each (B, K) int64 on the network's device. The state (from
        :meth:`start`) is updated in place."""
        if self.device.type != "cpu":
            return self.step_torch(state, torch.as_tensor(prev))
        a = self._cpu
        prev = prev.numpy() if isinstance(prev, torch.Tensor) else np.asarray(prev)
        out = _step(state["t"], prev.astype(np.int64, copy=False), state["c"], state["past"], state["queue"],
                    state["seg"], SEG_BITS, a["dil"], a["qoff"], a["mulaw"], a["tanh"], a["sigmoid"], a["aexp"], a["ascale"], a["coef"],
                    a["inp_w"], a["inp_q"], a["dil_w"], a["dil_q"], a["res_w"], a["res_q"],
                    a["skip_w"], a["skip_q"], a["head1_w"], a["head1_q"], a["head2_w"], a["head2_q"])
        state["t"] += 1
        return tuple(torch.from_numpy(v) for v in out)

    def start_torch(self, B: int, seg: torch.Tensor | np.ndarray | None = None) -> dict:
        """The state of B fresh segments for :meth:`step_torch`."""
        C, P = self.cfg.channels, self.cfg.taps
        z = lambda *s: torch.zeros(*s, dtype=torch.int64, device=self.device)  # noqa: E731
        return {"t": 0, "c": z(B, 4 if self.cfg.resid else 2), "past": z(B, P),
                "queues": [z(B, d, C) for d in self.cfg.dilations()], "seg": self.seg_coef(seg, B)}

    def step_torch(self, state: dict, prev: torch.Tensor):
        """:meth:`step` in torch (any device), on a state from :meth:`start_torch`."""
        prev = prev.to(self.device)
        t = state["t"]
        c = [state["c"][:, 1], self.mulaw[prev + 32768]]
        if self.cfg.resid:  # the reference's residual on the previous sample (predicted from the old past)
            r = (prev - self._reference(state["past"], state["seg"])).clamp_(-32768, 32767)
            c += [state["c"][:, 3], self.mulaw[r + 32768]]
        state["c"] = torch.stack(c, dim=1)
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
        return self._head(gs, state["past"], state["seg"])


HALF = 1 << (SHIFT - 1)


@njit(cache=True)
def _linear(x, w, q, acc, out):
    """out[:n] = QLinear(x) for int16 weights w (n, fan_in) and requantization rows q (5, n);
    x holds integers in [-128, 127], acc (>= n) is int32 scratch. The sums are exact in int32
    (bound checked at load), in any order."""
    n = w.shape[0]
    for o in range(n):
        s = np.int32(0)
        for i in range(w.shape[1]):
            s += np.int32(x[i]) * np.int32(w[o, i])
        acc[o] = s
    for o in range(n):
        v = (((acc[o] + q[0, o]) * q[1, o] + HALF) >> SHIFT) + q[2, o]
        out[o] = min(max(v, q[3, o]), q[4, o])


@njit(cache=True)
def _step(t, prev, c, past, queue, seg, seg_bits, dil, qoff, mulaw, tanh, sig, aexp, ascale, coef,
          inp_w, inp_q, dil_w, dil_q, res_w, res_q, skip_w, skip_q, head1_w, head1_q, head2_w, head2_q):
    """One decode step of B segments on numpy state (updated in place): the integers of
    :meth:`ExactWaveNet.step_torch`, layer by layer over the segments (a layer's weights stay
    in cache). Returns (logits, mu, log_s) (B, K) int64."""
    B, P = past.shape
    L, C = dil_w.shape[0], inp_w.shape[0]
    R = seg.shape[1]
    M = coef.shape[0] + (1 if R > 0 else 0)  # gates: the shared filters (and the segment's own)
    K = (head2_w.shape[0] - M) // 3
    S, H = skip_w.shape[0], head1_w.shape[0]
    acc = np.zeros(max(2 * C, S, H, head2_w.shape[0]), dtype=np.int32)
    pre = np.zeros(2 * C, dtype=np.int64)
    x = np.zeros((B, 2 * C), dtype=np.int16)  # a dilated layer's input: (features d back, now)
    gs = np.zeros((B, L * C), dtype=np.int16)  # every layer's gated output, for the skip layer
    for b in range(B):
        c[b, 0] = c[b, 1]
        c[b, 1] = mulaw[prev[b] + 32768]
        if c.shape[1] == 4:  # the reference's residual on the previous sample, from the old past
            ref = np.int64(0)
            if R > 0:
                for j in range(R):
                    ref += past[b, j] * seg[b, j]
                ref >>= seg_bits
            else:
                for j in range(P):
                    ref += past[b, j] * coef[0, j]
                ref >>= COEF_BITS
            r = min(max(prev[b] - ref, -32768), 32767)
            c[b, 2] = c[b, 3]
            c[b, 3] = mulaw[r + 32768]
        for j in range(P - 1, 0, -1):
            past[b, j] = past[b, j - 1]
        past[b, 0] = prev[b]
        _linear(c[b], inp_w, inp_q, acc, x[b, C:])
    for i in range(L):
        slot = qoff[i] + t % dil[i]
        for b in range(B):
            xb = x[b]
            xb[:C] = queue[b, slot]
            queue[b, slot] = xb[C:]  # these features are read again d steps later
            _linear(xb, dil_w[i], dil_q[i], acc, pre)
            g = gs[b, i * C:(i + 1) * C]
            for u in range(C):
                v = (tanh[pre[u] - QMIN] * sig[pre[C + u] - QMIN] + 128) >> 8
                g[u] = min(max(v, QMIN), QMAX)
            _linear(g, res_w[i], res_q[i], acc, pre)
            for u in range(C):
                xb[C + u] = min(max(xb[C + u] + pre[u], QMIN), QMAX)
    s = np.zeros((B, S), dtype=np.int16)
    z = np.zeros((B, H), dtype=np.int16)
    y = np.zeros((B, head2_w.shape[0]), dtype=np.int64)
    for b in range(B):
        _linear(gs[b], skip_w, skip_q, acc, s[b])
    for b in range(B):
        _linear(s[b], head1_w, head1_q, acc, z[b])
    for b in range(B):
        _linear(z[b], head2_w, head2_q, acc, y[b])
    logits = np.empty((B, K), dtype=np.int64)
    mu = np.empty((B, K), dtype=np.int64)
    log_s = np.empty((B, K), dtype=np.int64)
    for b in range(B):
        top = y[b, 3 * K]
        for m in range(1, M):
            top = max(top, y[b, 3 * K + m])
        num = np.int64(0)
        den = np.int64(0)
        for m in range(M):
            pred = np.int64(0)  # the linear predictor m, in 2**-COEF_BITS level
            if m < coef.shape[0]:
                for j in range(P):
                    pred += past[b, j] * coef[m, j]
            else:  # the segment's own, in 2**-seg_bits level (an argument: numba's cache would keep a constant)
                for j in range(R):
                    pred += past[b, j] * seg[b, j]
                pred = pred << (COEF_BITS - seg_bits) if seg_bits <= COEF_BITS else pred >> (seg_bits - COEF_BITS)
            w = aexp[min(top - y[b, 3 * K + m], EXP_SIZE - 1)]
            num += w * pred
            den += w
        lin = (num // den) >> (COEF_BITS - 3)  # 1/8 level
        for k in range(K):
            logits[b, k] = y[b, k]
            log_s[b, k] = y[b, 2 * K + k]
            mu[b, k] = lin + ((y[b, K + k] * ascale[y[b, 2 * K + k] - LS_MIN]) >> 4)
    return logits, mu, log_s
