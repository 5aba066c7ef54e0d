"""Exact integer runtime of the gated PixelCNN (see dulzip.models.pixelcnn for the float side).

One set of integer layers serves both directions:

* :meth:`ExactPixelCNN.full_pass` computes head parameters for every position of a batch of
  tiles at once (encoding);
* :class:`Stepper` computes the same numbers one position at a time with cached activations
  (decoding): the vertical stack one row at a time when a row starts, the horizontal stack
  and the head one column at a time.

Both gather the same integer features from identically padded buffers and run the same
integer layers, so they agree bit for bit (tested).
"""
from __future__ import annotations

import torch

from dulzip.exact.layers import QLinear, lut_gate
from dulzip.exact.quant import ACT
from dulzip.models.pixelcnn import MU_MAX, MU_MIN, PixelCNNConfig


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
    """Integer PixelCNN loaded from exported tensors (no float in the probability path)."""

    fixed_tile: int | None = None  # any tile size
    gray_only = False

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = PixelCNNConfig(**config)
        self.device = torch.device(device)
        if self.device.type == "cuda":  # exact anyway (11-bit operands), but never rely on TF32
            torch.backends.cuda.matmul.allow_tf32 = False
        t = {k: v.to(self.device) for k, v in tensors.items()}
        L = self.cfg.layers
        self.v = [QLinear.from_tensors(t, f"v{i}").to(self.device) for i in range(L)]
        self.h = [QLinear.from_tensors(t, f"h{i}").to(self.device) for i in range(L)]
        self.proj = [QLinear.from_tensors(t, f"proj{i}").to(self.device) for i in range(1, L)]
        self.head1 = QLinear.from_tensors(t, "head1").to(self.device)
        self.head2 = QLinear.from_tensors(t, "head2").to(self.device)
        self.skip = QLinear.from_tensors(t, "skip").to(self.device)
        self.luts = {k: v for k, v in t.items() if k.startswith("lut.")}
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
        g = lut_gate(self.v[i](f.reshape(-1, f.shape[-1])), self.luts["lut.tanh"], self.luts["lut.sigmoid"])
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
        g = lut_gate(self.h[i](f.reshape(-1, f.shape[-1])), self.luts["lut.tanh"], self.luts["lut.sigmoid"])
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

