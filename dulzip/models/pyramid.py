"""The pyramid image coder's order and network (float side; see /work/issue19-spec.md).

Pixels are coded in groups, coarse to fine, so that the network runs once per group, batched
over every position of the group and over tiles, never once per pixel. The order is defined
here once, as plain functions that the float model (training), the exact runtime
(:mod:`dulzip.exact.pyramid`) and the codec all call, so that the three cannot disagree:

- a T x T tile (T a power of two) has ``L = levels(T) = log2(T) - 3`` levels;
- group 0, the anchors, are the pixels at (2^L i, 2^L j) (network phase 0);
- then for s = L-1 down to 0, d = 2^s, on the grid of cells of step 2d (cell (i, j) holds the
  slots (0, 0), (d, d), (0, d), (d, 0) from (2d i, 2d j), as (row, column) offsets), the
  groups D, H, V code slot 1, 2 and 3 of every cell (phases 1, 2, 3); the slots before the
  phase's are known then.

The network of a group sees, at each cell, the cell's known slots (:func:`group_inputs`:
17 channels) and gives the means, scale classes and channel coefficients of the phase's slot
(9 channels). One small conv net per phase (:class:`PhaseNet`), shared by every level (the level
is an input channel): the same statistics hold at every scale of a photograph, roughly, and the
nets see enough of each level's cells to learn the rest.

A sub-pixel's distribution is the integer discretized logistic of the flow
(:func:`dulzip.models.idf.scale_tables`), with G and B means moved by the R (and G) residuals
of the same pixel (:func:`condition`, integer shifts mirrored exactly in training by
straight-through floors).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from dulzip.exact.quant import ACT, QMAX, SKIP_WMAX, fake_quant
from dulzip.models.idf import CENTER, LS_GRID, LS_OFF, MU_GRID, N_SCALES, WIDE, Net, logistic_bits, \
    scale_tables
from dulzip.models.registry import Family

N_SLOTS = 4
N_IN = 3 * N_SLOTS + N_SLOTS + 1  # slot values (slot-major R, G, B), slot masks, the level
N_OUT = 9  # mu R, G, B; scale class R, G, B; coef a, b, c
N_PHASES = 4  # anchors, D, H, V
TILE = 256  # the codec's default tile side (L = 5), whose levels training follows
MASK = 64  # a known slot's mask channel (1.0 at the activation scale ACT)
IN_MAX = 128  # inputs are within +-IN_MAX (level - 128, masks, 8 s up to T = 2^19): the exact first
# layer's sums then stay below 2^24 and it runs in float32, where idf's +-1023 would need float64
LEVEL_UNIT = 8  # the level channel holds LEVEL_UNIT * s
MU_LO, MU_HI = -256, 2296  # means in 1/MU_GRID level: -32 .. 287 levels
COEF_GRID = 64  # channel coefficients in 1/64
COEF_MAX = 128  # ... within [-2, 2]
COEF_SHIFT = 6  # log2(COEF_GRID)


# -- the order ------------------------------------------------------------------------------

def levels(T: int) -> int:
    """Levels of a T x T tile: log2(T) - 3, so that the anchors form an 8 x 8 lattice."""
    if T < 8 or T & (T - 1):
        raise ValueError(f"pyramid tiles are powers of two >= 8, not {T}")
    return T.bit_length() - 4


def groups(L: int) -> list[tuple[int, int]]:
    """The groups of a tile of ``L`` levels in coding order, as (s, phase): (L, 0) for the
    anchors, then (s, 1), (s, 2), (s, 3) for s = L-1 down to 0. 1 + 3L groups."""
    return [(L, 0)] + [(s, p) for s in range(L - 1, -1, -1) for p in (1, 2, 3)]


def slot_offsets(s: int) -> list[tuple[int, int]]:
    """(row, column) offsets of the four slots of a cell at level s, from its corner."""
    d = 1 << s
    return [(0, 0), (d, d), (0, d), (d, 0)]


def cell_step(s: int, phase: int) -> int:
    """The cell grid's step: 2^L for the anchors (phase 0, s = L), 2d = 2^(s+1) otherwise."""
    return 1 << s if phase == 0 else 2 << s


def grid_shape(H: int, W: int, s: int, phase: int) -> tuple[int, int]:
    """Cells of a group over an H x W tile (a partial tile has cells whose slots lie outside)."""
    k = cell_step(s, phase)
    return -(-H // k), -(-W // k)


def slot_plane(planes: torch.Tensor, s: int, phase: int, k: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, h, w): slot ``k``'s pixel of every cell of the group's grid, zero
    where it lies outside the H x W planes."""
    B, C, H, W = planes.shape
    step = cell_step(s, phase)
    h, w = grid_shape(H, W, s, phase)
    oy, ox = slot_offsets(s)[k]
    out = planes.new_zeros(B, C, h, w)
    part = planes[:, :, oy::step, ox::step]
    out[:, :, :part.shape[2], :part.shape[3]] = part
    return out


def put_slot(planes: torch.Tensor, values: torch.Tensor, s: int, phase: int, k: int) -> None:
    """The inverse of :func:`slot_plane`, in place: writes slot ``k`` of every cell that lies
    within ``planes`` (the decoder's step after a group)."""
    step = cell_step(s, phase)
    oy, ox = slot_offsets(s)[k]
    view = planes[:, :, oy::step, ox::step]
    view.copy_(values[:, :, :view.shape[2], :view.shape[3]])


def group_targets(planes: torch.Tensor, present: torch.Tensor | None, s: int, phase: int):
    """The pixels a group codes: (values (B, C, h, w), present (B, 1, h, w) bool), the phase's
    slot of every cell (the anchors: slot 0 of the 2^L grid). ``present``: (B, 1, H, W) bool,
    True where a pixel is part of the image (None: all of the planes)."""
    k = phase
    at = slot_plane(_present(planes, present), s, phase, k).bool()
    return slot_plane(planes, s, phase, k), at


def group_inputs(planes: torch.Tensor, present: torch.Tensor | None, s: int, phase: int) -> torch.Tensor:
    """The network's input of group (s, phase): (B, 17, h, w), in the planes' dtype.

    ``planes``: (B, C, H, W) levels, int64 (the codec) or float (training), not uint8 (the
    values go negative), C = 1 (gray, put in all three colour channels) or 3; only the pixels
    of earlier groups are read. ``present`` as in :func:`group_targets`. Channels:
    slot-major (level - 128) of slots 0..3 (R, G, B each), zero where the slot is not known yet
    (slot >= phase) or absent; the slots' masks (MASK where known and present); the level
    LEVEL_UNIT * s. The anchors (phase 0) see the level only.
    """
    B, C, H, W = planes.shape
    h, w = grid_shape(H, W, s, phase)
    pres = _present(planes, present)
    vals = planes.new_zeros(B, N_SLOTS, 3, h, w)
    masks = planes.new_zeros(B, N_SLOTS, h, w)
    for k in range(phase):  # the slots before the phase's are known (none for the anchors)
        m = slot_plane(pres, s, phase, k)
        vals[:, k] = (slot_plane(planes, s, phase, k) - CENTER).expand(B, 3, h, w) * m
        masks[:, k] = MASK * m[:, 0]
    level = planes.new_full((B, 1, h, w), LEVEL_UNIT * s)
    return torch.cat([vals.view(B, 3 * N_SLOTS, h, w), masks, level], dim=1)


def _present(planes: torch.Tensor, present: torch.Tensor | None) -> torch.Tensor:
    B, _, H, W = planes.shape
    if present is None:
        return planes.new_ones(B, 1, H, W)
    return present.to(planes.dtype).view(B, 1, H, W)


def _shift(v: torch.Tensor) -> torch.Tensor:
    """v >> COEF_SHIFT (floor division by 64): integers exactly; float (training) with a
    straight-through gradient, the very same values since |v| stays far below 2^24."""
    if not v.is_floating_point():
        return torch.bitwise_right_shift(v, COEF_SHIFT)
    q = v / COEF_GRID
    return q + (torch.floor(q) - q).detach()


def condition(mu: torch.Tensor, coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The means of a pixel's channels once the channels before are known (spec's channel
    conditioning): ``mu`` (B, 3, ...) in 1/8 level, ``coef`` (B, 3, ...) a, b, c in 1/64,
    ``x`` (B, 3, ...) the pixel's levels -> mu' (B, 3, ...):

        mu'_R = mu_R
        mu'_G = clamp(mu_G + ((a (8R - mu_R)) >> 6))
        mu'_B = clamp(mu_B + ((b (8R - mu_R) + c (8G - mu'_G)) >> 6))

    clamped to [MU_LO, MU_HI], mu'_G before it enters mu'_B. Integer tensors give the codec's
    integers; float ones (integer-valued) the same values, differentiable for training. mu'_G
    reads only R, and mu'_B only R and G: the decoder calls it as each channel arrives.
    """
    r = LEVEL_UNIT * x[:, 0] - mu[:, 0]
    g = (mu[:, 1] + _shift(coef[:, 0] * r)).clamp(MU_LO, MU_HI)
    b = (mu[:, 2] + _shift(coef[:, 1] * r + coef[:, 2] * (LEVEL_UNIT * x[:, 1] - g))).clamp(MU_LO, MU_HI)
    return torch.stack([mu[:, 0], g, b], dim=1)


# -- the float network --------------------------------------------------------------------------

@dataclass
class PyramidConfig:
    hidden: int = 48  # channels of each phase's conv net
    layers: int = 4  # conv3x3 + ReLU layers per net (then an output conv3x3)


class _ReluQuant(torch.autograd.Function):
    """``fake_quant(relu(x), ACT, 0, QMAX)`` (the hidden activations of idf.Net), the same values
    and gradient in fewer passes over memory: the float model runs its nets on every pixel of
    every crop, and on a CPU these elementwise passes cost more than the convolutions."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward((x > 0) & (x <= QMAX / ACT))
        return torch.round(x * ACT).clamp_(0, QMAX).div_(ACT)

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        return g * inside


class PhaseNet(nn.Module):
    """``layers`` conv3x3 + ReLU of ``hidden`` channels, fake-quantized as
    :class:`dulzip.models.idf.Net` (whose conv it reuses), an output conv3x3, and a direct 3x3
    linear path with 12-bit weights into the three means (a linear interpolation of the known
    neighbours is most of a good prediction; the direct path keeps it precise)."""

    def __init__(self, hidden: int, layers: int, phase: int):
        super().__init__()
        self.hidden = nn.ModuleList(nn.Conv2d(N_IN if i == 0 else hidden, hidden, 3, padding=1)
                                    for i in range(layers))
        self.out = nn.Conv2d(hidden, N_OUT, 3, padding=1)
        self.direct = nn.Conv2d(N_IN, 3, 3, padding=1, bias=False)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()
            # initial scales: anchors are far from anything known, finer slots close to it
            self.out.bias[3:6] = math.log(32.0 if phase == 0 else 4.0)
            self.direct.weight.copy_(_interpolation(phase))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 17, h, w) integer-valued -> (B, 9, h, w) integer-valued float: the exact
        runtime's integers (mu in 1/8 level, scale classes, coefficients in 1/64)."""
        h = x.clamp(-IN_MAX, IN_MAX) / ACT
        inp = h
        for conv in self.hidden:
            h = _ReluQuant.apply(Net._conv(conv, h))
        y = Net._conv(self.out, h)
        d = Net._conv(self.direct, inp, SKIP_WMAX)
        mu = (fake_quant(y[:, :3], MU_GRID, -WIDE, WIDE) + fake_quant(d, MU_GRID, -WIDE, WIDE)) * MU_GRID
        mu = (mu + CENTER * MU_GRID).clamp(MU_LO, MU_HI)
        ls = fake_quant(y[:, 3:6], LS_GRID, -LS_OFF, N_SCALES - 1 - LS_OFF) * LS_GRID + LS_OFF
        coef = fake_quant(y[:, 6:9], COEF_GRID, -COEF_MAX, COEF_MAX) * COEF_GRID
        return torch.cat([mu, ls, coef], dim=1)


def _interpolation(phase: int) -> torch.Tensor:
    """Direct-path weights (3, 17, 3, 3) that start each phase's means at the mean of the four
    nearest known pixels (the anchors: at 128): D the cell's diagonal corners, H and V their
    axis neighbours at distance d. A weight of ACT / 4 on each of four inputs (level - 128)
    gives their mean (minus 128) in levels."""
    w = torch.zeros(3, N_IN, 3, 3)
    # (slot, kernel row, kernel column): the kernel's centre [1, 1] is the cell itself
    taps = {0: [],
            1: [(0, 1, 1), (0, 1, 2), (0, 2, 1), (0, 2, 2)],
            2: [(0, 1, 1), (0, 1, 2), (1, 0, 1), (1, 1, 1)],
            3: [(0, 1, 1), (0, 2, 1), (1, 1, 0), (1, 1, 1)]}[phase]
    for k, r, c in taps:
        for ch in range(3):
            w[ch, 3 * k + ch, r, c] = ACT / 4
    return w


class Pyramid(nn.Module):
    """Float training module: four :class:`PhaseNet`, ``loss`` over every group of the crops."""

    def __init__(self, cfg: PyramidConfig):
        super().__init__()
        self.cfg = cfg
        self.nets = nn.ModuleList(PhaseNet(cfg.hidden, cfg.layers, p) for p in range(N_PHASES))

    def predict(self, x: torch.Tensor, phase: int) -> torch.Tensor:
        """The float (fake-quantized) twin of :meth:`dulzip.exact.pyramid.ExactPyramid.predict`."""
        return self.nets[phase](x.float())

    def loss(self, x: torch.Tensor, gray: torch.Tensor | None = None) -> torch.Tensor:
        """Mean bits per coded sub-pixel (see :meth:`loss_parts`)."""
        total, coded = self.loss_parts(x, gray)
        return total / coded

    def loss_parts(self, x: torch.Tensor, gray: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(bits, coded sub-pixels) of crops ``x`` (B, 3, H, W) levels (``gray``: (B,) bool,
        crops with R = G = B, coded as one channel: their G and B cost nothing and count for
        nothing).

        Each crop is coded as the top-left part of a TILE x TILE tile (crops larger than TILE,
        multiples of it, are cut into tiles), so that every group of the codec's default tile
        is trained: a 128 crop coded as a tile of its own would have one level less, and the
        nets would meet the coarsest level's D, H, V groups and the anchors' level channel
        only when coding. A crop side that is a multiple of 2^L (32) has every group's pixels.
        """
        if max(x.shape[-2:]) > TILE:
            x = _tiles(x, TILE)
            gray = None if gray is None else gray.repeat_interleave(x.shape[0] // len(gray))
        B, _, H, W = x.shape
        T = TILE
        planes = x.float()
        keep = torch.ones(B, 3, device=x.device)
        if gray is not None:
            keep[gray.to(x.device), 1:] = 0
        total = planes.new_zeros(())
        for s, phase in groups(levels(T)):
            out = self.predict(group_inputs(planes, None, s, phase), phase)
            tgt, at = group_targets(planes, None, s, phase)
            mu = condition(out[:, :3], out[:, 6:9], tgt) / MU_GRID
            bits = logistic_bits(tgt, mu, (out[:, 3:6] - LS_OFF) / LS_GRID)
            total = total + (bits * at * keep[:, :, None, None]).sum()
        return total, keep.sum() * H * W


def _tiles(x: torch.Tensor, T: int) -> torch.Tensor:
    """(B, C, H, W) -> (B * H/T * W/T, C, T, T), each crop's tiles consecutive."""
    B, C, H, W = x.shape
    if H % T or W % T:
        raise ValueError(f"crops larger than a tile ({T}) must be multiples of it, not {H}x{W}")
    return x.view(B, C, H // T, T, W // T, T).permute(0, 2, 4, 1, 3, 5).reshape(-1, C, T, T)


def export(model: Pyramid) -> dict[str, torch.Tensor]:
    """Float (fake-quantized) module -> integer tensors for :class:`dulzip.exact.pyramid.ExactPyramid`:
    phase{p}.h{i}, phase{p}.out, phase{p}.direct (:func:`dulzip.exact.layers.export_linear`)
    and the flow's scale tables (tab.flat, tab.start, tab.radius)."""
    from dulzip.exact.layers import export_linear

    one = torch.ones(3, dtype=torch.float64)
    target = torch.cat([MU_GRID * one, LS_GRID * one, COEF_GRID * one])
    lo = torch.cat([-WIDE * one, 0 * one, -COEF_MAX * one]).long()
    hi = torch.cat([WIDE * one, (N_SCALES - 1) * one, COEF_MAX * one]).long()
    off = torch.cat([CENTER * MU_GRID * one, LS_OFF * one, 0 * one]).long()
    t: dict[str, torch.Tensor] = {}
    for p, n in enumerate(model.nets):
        for i, conv in enumerate(n.hidden):
            t.update(export_linear([conv.weight], conv.bias, ACT, 0, QMAX, name=f"phase{p}.h{i}"))
        t.update(export_linear([n.out.weight], n.out.bias, target, lo, hi, off, name=f"phase{p}.out"))
        t.update(export_linear([n.direct.weight], None, MU_GRID, -WIDE, WIDE, name=f"phase{p}.direct",
                               wmax=SKIP_WMAX))
    t["tab.flat"], t["tab.start"], t["tab.radius"] = scale_tables()
    return t


FAMILY = Family(
    name="pyramid", modality="image", codec="pyramid", runtime="dulzip.exact.pyramid:ExactPyramid",
    config=PyramidConfig, module=Pyramid, export=export, sampler="dulzip.train.data:photo_crops",
    options=lambda o: PyramidConfig(hidden=o["hidden"], layers=o["layers"]),
    train_defaults={"batch": 8, "crop": 128, "lr": 1e-3, "warmup": 50, "hidden": 48, "layers": 4},
    summary="photographs coded coarse to fine in groups (random crops, --crop a power of 2: one tile)",
    primer="dulzip.codecs.pyramid:prime")
