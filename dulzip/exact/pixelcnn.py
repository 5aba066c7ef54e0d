"""Exact integer runtime of the gated PixelCNN (see dulzip.models.pixelcnn for the float side).

One set of integer layers serves both directions:

* :meth:`ExactPixelCNN.full_pass` computes head parameters for every position of a batch of
  tiles at once (encoding);
* :class:`WaveStepper` computes the same numbers in wavefront order (decoding, image mixer
  version 2): several positions of every tile a step, one new column of every vertical layer
  per row in flight;
* :class:`Stepper` computes them one position at a time in raster order (decoding files of
  image mixer version 1 and older): the vertical stack one row at a time when a row starts,
  the horizontal stack and the head one column at a time.

All gather the same integer features (in the same order) and run the same integer layers, so
they agree bit for bit (tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dulzip.exact.layers import QLinear, exact_matmul, gate_table, table_gate
from dulzip.exact.quant import ACT
from dulzip.heads.logistic import MU_MAX, MU_MIN
from dulzip.models.pixelcnn import PixelCNNConfig


def gather(buf: torch.Tensor, row0: int, nr: int, col0: int, nc: int, kr: int, kc: int) -> torch.Tensor:
    """Windows of ``kr`` x ``kc`` from ``buf`` (B, C, H, W) for an nr x nc block of outputs.

    Output (B, nr, nc, C*kr*kc), features ordered (channel, dy, dx) like a conv weight.
    """
    views = [buf[:, :, row0 + dy: row0 + dy + nr, col0 + dx: col0 + dx + nc]
             for dy in range(kr) for dx in range(kc)]
    f = torch.stack(views, dim=2)  # (B, C, kr*kc, nr, nc)
    B, C, T = f.shape[:3]
    return f.reshape(B, C * T, nr, nc).permute(0, 2, 3, 1)


class ExactPixelCNN:
    """Integer PixelCNN loaded from exported tensors (no float in the probability path).
    An :class:`dulzip.exact.runtime.AutoregressiveImageRuntime`."""

    modality = "image"
    codec = "autoregressive"
    fixed_tile: int | None = None  # any tile size
    default_tile = 64  # = kinds.image.DEFAULT_TILE, which sizes the choice of model before loading one (tested)
    gray_only = False

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = PixelCNNConfig(**config)
        self.device = torch.device(device)
        t = {k: v.to(self.device) for k, v in tensors.items()}
        L = self.cfg.layers
        self.v = [QLinear.from_tensors(t, f"v{i}").to(self.device) for i in range(L)]
        self.h = [QLinear.from_tensors(t, f"h{i}").to(self.device) for i in range(L)]
        self.proj = [QLinear.from_tensors(t, f"proj{i}").to(self.device) for i in range(1, L)]
        self.head1 = QLinear.from_tensors(t, "head1").to(self.device)
        self.head2 = QLinear.from_tensors(t, "head2").to(self.device)
        self.skip = QLinear.from_tensors(t, "skip").to(self.device)
        self.luts = {k: v for k, v in t.items() if k.startswith("lut.")}
        self.gate = gate_table(self.luts["lut.tanh"], self.luts["lut.sigmoid"])
        # activations are integers in [-128, 128]: exact in float32; each layer casts as it needs
        self.dtype = torch.float32

    # -- geometry of the padded buffers -------------------------------------------------
    def pads(self) -> tuple[int, int]:
        c = self.cfg
        return c.kv, max(c.kw, c.kh)

    def new_buffers(self, B: int, T: int, rows: int | None = None) -> dict[str, object]:
        """Zero-padded activation buffers for B tiles of T x T.

        ``rows=None``: every row (the batched pass). ``rows=1``: the decode loop's compact
        buffers, holding only the rows still needed (kv rows of each vertical layer, the
        current row of each horizontal one); ``shift`` maps a tile row to a buffer row.
        """
        c, dev, dt = self.cfg, self.device, self.dtype
        kv, P = self.pads()
        z = torch.zeros
        vr = T + c.kv - 1 if rows is None else c.kv
        hr = T if rows is None else 1
        return {
            "inp": z(B, 4, T + kv, T + P + c.kw, dtype=dt, device=dev),
            "v": [z(B, c.channels, vr, T + 2 * c.kw, dtype=dt, device=dev) for _ in range(c.layers)],
            "h": [z(B, c.channels, hr, T + c.kh - 1, dtype=dt, device=dev) for _ in range(c.layers)],
            "mask": z(B, 1, T, T, dtype=dt, device=dev),
            "shift": 0,
        }

    def set_pixels(self, bufs, x: torch.Tensor, present: torch.Tensor, rows=slice(None), cols=slice(None)) -> None:
        """Write pixels (B,3,nr,nc) levels and presence (B,1,nr,nc) into the input buffer
        (the presence mask itself is set once, by :meth:`full_pass` or the :class:`Stepper`)."""
        kv, P = self.pads()
        T = bufs["mask"].shape[-1]
        r = range(T)[rows]
        cc = range(T)[cols]
        rs = slice(kv + r.start, kv + r.stop)
        cs = slice(P + cc.start, P + cc.stop)
        present = present.to(self.dtype)
        bufs["inp"][:, :3, rs, cs] = (x.to(self.dtype) - 128) * present
        bufs["inp"][:, 3:, rs, cs] = ACT * present

    # -- the layers, on any block of positions ------------------------------------------
    def _vertical(self, bufs, i: int, r0: int, nr: int, nc: int | None = None) -> None:
        """Rows r0..r0+nr of vertical layer i, in the first ``nc`` columns (all by default: the
        others must then be absent, their zero outputs already in the buffer)."""
        c = self.cfg
        T = bufs["mask"].shape[-1]
        nc = T if nc is None else nc
        kv, P = self.pads()
        sh = bufs["shift"]
        if i == 0:
            f = gather(bufs["inp"], r0, nr, P - c.kw, nc, c.kv, 2 * c.kw + 1)
        else:
            f = gather(bufs["v"][i - 1], r0 - sh, nr, 0, nc, c.kv, 2 * c.kw + 1)
        B = f.shape[0]
        g = table_gate(self.v[i](f.reshape(-1, f.shape[-1])), self.gate)
        g = g.to(self.dtype).reshape(B, nr, nc, -1).permute(0, 3, 1, 2) * bufs["mask"][:, :, r0:r0 + nr, :nc]
        bufs["v"][i][:, :, c.kv - 1 + r0 - sh: c.kv - 1 + r0 - sh + nr, c.kw: c.kw + nc] = g

    def _horizontal(self, bufs, i: int, r0: int, nr: int, c0: int, nc: int) -> None:
        c = self.cfg
        kv, P = self.pads()
        hr = r0 - bufs["shift"]  # buffer row of tile row r0 (horizontal buffers)
        if i == 0:
            f = gather(bufs["inp"], kv + r0, nr, P - c.kh + c0, nc, 1, c.kh)
        else:
            f = gather(bufs["h"][i - 1], hr, nr, c0, nc, 1, c.kh)
        vv = bufs["v"][i][:, :, c.kv - 1 + hr: c.kv - 1 + hr + nr, c.kw + c0: c.kw + c0 + nc]
        f = torch.cat([f, vv.permute(0, 2, 3, 1)], dim=-1)
        B = f.shape[0]
        g = table_gate(self.h[i](f.reshape(-1, f.shape[-1])), self.gate)
        if i > 0:
            prev = bufs["h"][i - 1][:, :, hr:hr + nr, c.kh - 1 + c0: c.kh - 1 + c0 + nc]
            prev = prev.permute(0, 2, 3, 1).reshape(-1, c.channels).to(torch.int64)
            g = (prev + self.proj[i - 1](g)).clamp(-128, 127)
        g = g.to(self.dtype).reshape(B, nr, nc, -1).permute(0, 3, 1, 2) * bufs["mask"][:, :, r0:r0 + nr, c0:c0 + nc]
        bufs["h"][i][:, :, hr:hr + nr, c.kh - 1 + c0: c.kh - 1 + c0 + nc] = g

    def _head(self, bufs, r0: int, nr: int, c0: int, nc: int) -> torch.Tensor:
        c = self.cfg
        kv, P = self.pads()
        hr = r0 - bufs["shift"]
        h = bufs["h"][-1][:, :, hr:hr + nr, c.kh - 1 + c0: c.kh - 1 + c0 + nc]
        B = h.shape[0]
        y = self.head2(self.head1(h.permute(0, 2, 3, 1).reshape(-1, c.channels)))
        fv = gather(bufs["inp"], r0, nr, P - c.kw + c0, nc, c.kv, 2 * c.kw + 1)
        fh = gather(bufs["inp"], kv + r0, nr, P - c.kh + c0, nc, 1, c.kh)
        skip = self.skip(torch.cat([fv, fh], dim=-1).reshape(B * nr * nc, -1))
        K3 = 3 * c.mixtures
        y[:, K3:2 * K3] = (y[:, K3:2 * K3] + skip).clamp(MU_MIN, MU_MAX)
        return y.reshape(B, nr, nc, -1)

    # -- the two directions --------------------------------------------------------------
    def full_pass(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Tiles (B,3,T,T) levels and presence (B,1,T,T) -> head parameters (B,T,T,12K) int64."""
        with exact_matmul(self.device):
            B, _, T, _ = x.shape
            bufs = self.new_buffers(B, T)
            present = present.to(self.device)
            bufs["mask"][:] = present.to(self.dtype)
            self.set_pixels(bufs, x.to(self.device), present)
            # only the block of rows and columns where some tile has pixels (a partial tile at the image's
            # edge, a thin image): activations at absent positions are masked to zero in any case, and
            # nothing present depends on the rows below it, so the block's outputs are the same
            where = present[:, 0].bool()
            nr, nc = (int(a.nonzero().max()) + 1 if bool(a.any()) else 1 for a in (where.any(dim=(0, 2)), where.any(dim=(0, 1))))
            for i in range(self.cfg.layers):
                self._vertical(bufs, i, 0, nr, nc)
                self._horizontal(bufs, i, 0, nr, 0, nc)
            y = torch.zeros(B, T, T, 12 * self.cfg.mixtures, dtype=torch.int64, device=self.device)
            y[:, :nr, :nc] = self._head(bufs, 0, nr, 0, nc)
            return y

    def stepper(self, B: int, T: int, present: torch.Tensor) -> "Stepper":
        return Stepper(self, B, T, present)

    @property
    def wave_delay(self) -> int:
        """Steps between the rows of the wavefront decode order (see :class:`WaveStepper`)."""
        return wave_delay(self.cfg)

    def wave_stepper(self, B: int, T: int, present: torch.Tensor) -> "WaveStepper":
        return WaveStepper(self, B, T, present)


class Stepper:
    """Decode-side evaluation, one position at a time, with cached activations."""

    def __init__(self, net: ExactPixelCNN, B: int, T: int, present: torch.Tensor):
        self.net = net
        self.bufs = net.new_buffers(B, T, rows=1)
        self.present = present.to(net.device).to(torch.int64)
        self.bufs["mask"][:] = self.present.to(net.dtype)
        self.row = -1

    def params(self, r: int, c: int) -> torch.Tensor:
        """Head parameters (B, 12K) at (r, c); all positions before it must be set."""
        net = self.net
        with exact_matmul(net.device):
            if r != self.row:
                if r != self.row + 1:
                    raise ValueError("rows must be decoded in order")
                self.bufs["shift"] = r
                for v in self.bufs["v"]:  # drop the oldest row of each vertical layer
                    v[:, :, :-1] = v[:, :, 1:].clone()
                for h in self.bufs["h"]:
                    h.zero_()
                for i in range(net.cfg.layers):
                    net._vertical(self.bufs, i, r, 1)
                self.row = r
            for i in range(net.cfg.layers):
                net._horizontal(self.bufs, i, r, 1, c, 1)
            return net._head(self.bufs, r, 1, c, 1)[:, 0, 0]

    def set(self, r: int, c: int, pixel: torch.Tensor) -> None:
        """Record decoded levels (B, 3) at (r, c)."""
        self.net.set_pixels(self.bufs, pixel.view(-1, 3, 1, 1), self.present[:, :, r:r + 1, c:c + 1],
                            slice(r, r + 1), slice(c, c + 1))



def wave_delay(cfg: PixelCNNConfig) -> int:
    """(r, c) needs row r - 1 up to column c + layers * kw: one step after it, at this delay."""
    return cfg.layers * cfg.kw + 1


class WaveStepper:
    """Decode-side evaluation in wavefront order: position (r, c) of every tile at step
    ``t = c + delay * r`` with ``delay = layers * kw + 1``.

    The vertical stack reaches ``kw`` columns further right per layer, so (r, c) depends on row
    r - 1 up to column c + layers * kw: decoded at step t - 1. Each step computes, for every row
    in flight, one new column of each vertical layer (layer i at column c + (layers-1-i) * kw,
    in layer order: layer i reads layer i - 1's column of the same step) and the horizontal
    stack and head at c. A T x T tile takes (delay + 1) * T - delay steps instead of T * T, with
    up to ceil(T / delay) positions a step. The integers are those of
    :meth:`ExactPixelCNN.full_pass` (tested): the same layers, on the same windows.

    Buffers are channel-last, (B, rows, columns, C); the vertical and horizontal ones are rings
    of as many rows as are in use at once (the vertical one has one more, always zero: the rows
    above the tile), so memory does not grow with T. Each step's gathers are precomputed
    (:func:`_wave_plan`): they depend on T and the configuration only.
    """

    def __init__(self, net: ExactPixelCNN, B: int, T: int, present: torch.Tensor):
        self.net, self.B, self.T = net, B, T
        self.plan = _wave_plan(net.cfg, T, net.device)
        c, pl = net.cfg, self.plan
        dev, dt, z = net.device, net.dtype, torch.zeros
        self.inp = z(B, pl.inp_shape[0] * pl.inp_shape[1], 4, dtype=dt, device=dev)
        self.v = [z(B, pl.v_size, c.channels, dtype=dt, device=dev) for _ in range(c.layers)]
        self.h = [z(B, pl.h_size, c.channels, dtype=dt, device=dev) for _ in range(c.layers)]
        self.mask = present.to(dev)[:, 0].to(dt).reshape(B, T * T)
        self.t = -1  # steps done (index into the plan)

    def _window(self, buf: torch.Tensor, idx: torch.Tensor, k: int) -> torch.Tensor:
        """Features (B*n, C*k) at flat positions idx (n*k,), ordered (channel, offset) like a conv weight."""
        B, _, C = buf.shape
        f = buf.index_select(1, idx).view(B, -1, k, C)
        return f.transpose(2, 3).reshape(-1, C * k)

    def _mask(self, idx: torch.Tensor) -> torch.Tensor:
        return self.mask.index_select(1, idx).view(-1, 1)

    def _advance(self) -> None:
        net, c = self.net, self.net.cfg
        self.t += 1
        s = self.plan.steps[self.t]
        B, kv, kw, kh = self.B, c.kv, c.kw, c.kh
        kV = kv * (2 * kw + 1)
        for i in range(c.layers):
            if s.v_in[i] is not None:  # this layer's column of each row in flight
                src = self.inp if i == 0 else self.v[i - 1]
                f = self._window(src, s.v_in[i], kV)
                g = table_gate(net.v[i](f), net.gate).to(net.dtype) * self._mask(s.v_mask[i])
                self.v[i].index_copy_(1, s.v_out[i], g.view(B, -1, c.channels))
            if s.h_out is None:
                continue
            f = self._window(self.inp, s.h_inp, kh) if i == 0 else self._window(self.h[i - 1], s.h_in, kh)
            vv = self.v[i].index_select(1, s.h_v).view(-1, c.channels)
            g = table_gate(net.h[i](torch.cat([f, vv], dim=-1)), net.gate)
            if i > 0:
                prev = self.h[i - 1].index_select(1, s.h_out).view(-1, c.channels).to(torch.int64)
                g = (prev + net.proj[i - 1](g)).clamp(-128, 127)
            g = g.to(net.dtype) * self._mask(s.h_mask)
            self.h[i].index_copy_(1, s.h_out, g.view(B, -1, c.channels))

    def _step_of(self, rows, cols) -> "_WaveStep":
        t = int(cols[0]) + self.plan.delay * int(rows[0]) + self.plan.lead
        if t <= self.t:
            raise ValueError("wavefront steps must be decoded in order")
        while self.t < t:
            self._advance()
        s = self.plan.steps[t]
        if len(rows) != len(s.rows) or any(int(a) != b for a, b in zip(rows, s.rows)):
            raise ValueError("not the positions of a wavefront step")
        return s

    def params(self, rows, cols) -> torch.Tensor:
        """Head parameters (B, n, 12K) at (rows[k], cols[k]): every position of one step, rows
        ascending (all positions of earlier steps must be set)."""
        net, c = self.net, self.net.cfg
        with exact_matmul(net.device):
            s = self._step_of(rows, cols)
            y = net.head2(net.head1(self.h[-1].index_select(1, s.h_out).view(-1, c.channels)))
            fv = self._window(self.inp, s.skip_v, c.kv * (2 * c.kw + 1))
            fh = self._window(self.inp, s.h_inp, c.kh)
            skip = net.skip(torch.cat([fv, fh], dim=-1))
            K3 = 3 * c.mixtures
            y[:, K3:2 * K3] = (y[:, K3:2 * K3] + skip).clamp(MU_MIN, MU_MAX)
            return y.view(self.B, len(s.rows), -1)

    def set(self, rows, cols, pixels: torch.Tensor) -> None:
        """Record decoded levels (B, n, 3) at the step's positions (rows[k], cols[k]), the
        positions of the step just computed."""
        s = self.plan.steps[self.t]
        if len(rows) != len(s.rows) or any(int(a) != b for a, b in zip(rows, s.rows)):
            raise ValueError("not the positions of the current wavefront step")
        m = self.mask.index_select(1, s.h_mask)[..., None]  # (B, n, 1)
        px = (pixels.to(self.net.device).to(self.net.dtype) - 128) * m
        self.inp.index_copy_(1, s.pos, torch.cat([px, ACT * m], dim=-1))


@dataclass
class _WaveStep:
    """Flat gather and scatter indices of one wavefront step (see :func:`_wave_plan`); the
    per-layer lists hold None where no row in flight has that layer's column in the tile, the
    horizontal ones are None where no row has its head position in it."""
    rows: list[int]  # the rows whose head position (column t - delay * r) lies in the tile
    v_in: list  # per vertical layer: its input windows (inp for layer 0, else layer i - 1)
    v_out: list  # per vertical layer: where its outputs go
    v_mask: list  # per vertical layer: the presence of those positions (flat over T x T)
    h_inp: torch.Tensor | None  # horizontal layer 0's input windows (in inp; the head's skip too)
    h_in: torch.Tensor | None  # horizontal layer i's windows in layer i - 1
    h_v: torch.Tensor | None  # the vertical stack at the head positions
    h_out: torch.Tensor | None  # the horizontal stack at the head positions
    h_mask: torch.Tensor | None  # their presence
    skip_v: torch.Tensor | None  # the head's skip path: the input windows above
    pos: torch.Tensor | None  # the head positions in inp (where decoded pixels go)


@dataclass
class _WavePlan:
    delay: int
    lead: int
    inp_shape: tuple[int, int]
    v_size: int
    h_size: int
    steps: list[_WaveStep]


_PLANS: dict = {}


def _wave_plan(cfg: PixelCNNConfig, T: int, device: torch.device) -> _WavePlan:
    """Every step's indices for tiles of T x T (cached: one per configuration, tile size, device).

    Layouts (flat over rows x columns): inp (T + kv) x (T + P + kw), tile (r, c) at
    (r + kv, c + P); v[i] (Rv + 1) x (T + 2 kw), (r, x) at (slot(r), x + kw); h[i]
    Rh x (T + kh - 1), (r, x) at (r % Rh, x + kh - 1). A row in flight whose column for
    a layer lies outside the tile skips that layer at that step.
    """
    import numpy as np
    key = (cfg.layers, cfg.kv, cfg.kw, cfg.kh, T, str(device))
    if key in _PLANS:
        return _PLANS[key]
    L, kv, kw, kh = cfg.layers, cfg.kv, cfg.kw, cfg.kh
    delay, lead = wave_delay(cfg), (L - 1) * kw
    # rows in flight at once (column of the head in [-lead, T - 1]): at most F; the vertical
    # stack also reads the kv - 1 rows above the oldest, the horizontal one only its own row
    F = (T - 1 + lead) // delay + 1
    Rv, Rh = F + kv - 1, -(-T // delay)
    P = max(kw, kh)
    Wi, Wv, Wh = T + P + kw, T + 2 * kw, T + kh - 1

    def slot(r):  # of the vertical ring (slot Rv: the zero rows above the tile)
        return np.where(r >= 0, r % Rv, Rv)

    def idx(a):
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.int64).reshape(-1), device=device)
    dv = np.arange(2 * kw + 1)
    dy = np.arange(kv)
    dh = np.arange(kh)
    steps = []
    for t in range(-lead, delay * (T - 1) + T):
        rows = np.arange(max(0, -(-(t - T + 1) // delay)), min(T - 1, (t + lead) // delay) + 1)
        ch = t - delay * rows
        v_in, v_out, v_mask = [], [], []
        for i in range(L):
            x = ch + (L - 1 - i) * kw
            ok = (x >= 0) & (x < T)
            if not ok.any():
                v_in.append(None), v_out.append(None), v_mask.append(None)
                continue
            r, x = rows[ok], x[ok]
            if i == 0:  # input rows r - kv .. r - 1, columns x - kw .. x + kw
                a = (r[:, None, None] + dy[None, :, None]) * Wi + (x[:, None, None] - kw + P + dv[None, None, :])
            else:  # layer i - 1, rows r - kv + 1 .. r
                a = slot(r[:, None, None] - (kv - 1) + dy[None, :, None]) * Wv + (x[:, None, None] + dv[None, None, :])
            v_in.append(idx(a))
            v_out.append(idx(slot(r) * Wv + x + kw))
            v_mask.append(idx(r * T + x))
        h = (ch >= 0) & (ch < T)
        hr, hc = rows[h], ch[h]
        if len(hr):
            hs = hr % Rh  # slot of the horizontal ring
            h_inp = idx((hr[:, None] + kv) * Wi + hc[:, None] - kh + P + dh[None])
            h_in = idx(hs[:, None] * Wh + hc[:, None] + dh[None])
            h_v = idx(slot(hr) * Wv + hc + kw)
            h_out = idx(hs * Wh + hc + kh - 1)
            h_mask = idx(hr * T + hc)
            skip_v = idx((hr[:, None, None] + dy[None, :, None]) * Wi
                         + (hc[:, None, None] - kw + P + dv[None, None, :]))
            pos = idx((hr + kv) * Wi + hc + P)
        else:
            h_inp = h_in = h_v = h_out = h_mask = skip_v = pos = None
        steps.append(_WaveStep([int(r) for r in hr], v_in, v_out, v_mask, h_inp, h_in, h_v, h_out, h_mask, skip_v, pos))
    plan = _WavePlan(delay, lead, ((T + kv), Wi), (Rv + 1) * Wv, Rh * Wh, steps)
    _PLANS[key] = plan
    return plan
