"""Integer discrete flow (Hoogeboom et al. 2019): images coded in a few parallel passes.

An 8-bit image x (B, 3, H, W), H and W multiples of 2**levels, is mapped to integers z by a
bijection made of integer steps only:

- squeeze: 2x2 space-to-depth, (C, H, W) -> (4C, H/2, W/2);
- additive coupling: the second half of the channels gets ``round(t(first half))`` added,
  where t is an exact integer network (so the inverse subtracts the very same integers);
  the channel order is reversed after every coupling so that both halves get transformed;
- factor-out: after a level's couplings, half of the channels (z) leave the flow, coded with a
  discretized logistic prior in two checkerboard halves: the positions with i + j even get
  their mean and scale from the remaining half (an exact network), the others from the
  remaining half and the first half's values around them (a second network). At the last
  level the remaining channels are halved again and again until ``top`` channels remain,
  coded with a learned per-channel logistic.

Decoding runs the same networks on the same integers, in reverse: every half-part's prior is
known once what was coded before it is decoded, so a whole half-part is decoded at once.

Each network is a small convolutional net (3x3 conv -> ReLU -> 3x3 conv -> ReLU -> 3x3 conv)
plus a direct linear 3x3 path with 12-bit weights (as a lifting wavelet's predict step), so
the float module here trains with fake quantization and :func:`export` turns it into the
integer tensors that :mod:`dulzip.exact.idf` runs bit-exactly on any device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dulzip.exact.quant import ACT, QMAX, SKIP_WMAX, WMAX, fake_quant, fake_quant_weights
from dulzip.models.registry import Family

CENTER = 128  # pixels enter the flow as level - 128
TMAX = 511  # translations are clamped to [-TMAX, TMAX]
IN_CLAMP = 1023  # network inputs are clamped to [-IN_CLAMP, IN_CLAMP]
T_FRAC = 16  # translations are summed in 1/16 before rounding
MU_GRID = 8  # prior means in 1/8 level
MU_CLAMP = 16384 * MU_GRID
LS_GRID = 8  # prior log-scales (natural log, levels) in 1/8
LS_OFF = 18  # scale class k stands for ln s = (k - LS_OFF) / LS_GRID
N_SCALES = 56  # classes 0..55: s from 0.105 to 97
TAIL = 16  # a class's table covers the mean +- TAIL scales; beyond is an escape symbol
TABLE_BITS = 20
Z_LIMIT = 32767  # |z| <= this, checked from the configuration (escapes code z + 32768 in 16 bits)
WIDE = 1 << 40


@dataclass
class IDFConfig:
    levels: int = 3
    couplings: int = 4  # per level
    hidden: int = 48  # channels of the coupling networks
    prior_hidden: int = 48  # channels of the prior networks
    top: int = 3  # channels left to the unconditional prior at the end

    def __post_init__(self):
        if CENTER + self.levels * self.couplings * TMAX > Z_LIMIT:
            raise ValueError("too many couplings: flow values could leave the 16-bit range")


def plan(cfg: IDFConfig) -> list[tuple]:
    """The flow as a list of steps: ('squeeze',), ('couple', c_in, c_out), ('split', keep, out)."""
    steps, c = [], 3
    for lvl in range(cfg.levels):
        c *= 4
        steps.append(("squeeze",))
        for _ in range(cfg.couplings):
            steps.append(("couple", c // 2, c - c // 2))
        # one split per level; at the last, halve until ``top`` channels remain
        while True:
            steps.append(("split", c // 2, c - c // 2))
            c //= 2
            if lvl < cfg.levels - 1 or c <= cfg.top:
                break
    return steps


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2): channel c*4 + 2*dy + dx holds pixel (2i+dy, 2j+dx)."""
    B, C, H, W = x.shape
    return x.view(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, 4 * C, H // 2, W // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    B, C4, H, W = x.shape
    return x.view(B, C4 // 4, 2, 2, H, W).permute(0, 1, 4, 2, 5, 3).reshape(B, C4 // 4, 2 * H, 2 * W)


def walk(steps: list[tuple], h: torch.Tensor, translation, prior) -> tuple[list, torch.Tensor]:
    """The forward flow from the centred image ``h``: ``translation(i, a)`` of coupling i,
    ``prior(i, keep, z)`` of split i. Returns what the priors gave, per split, and what is left."""
    parts = []
    ci = pi = 0
    for s in steps:
        if s[0] == "squeeze":
            h = squeeze(h)
        elif s[0] == "couple":
            a, b = h[:, :s[1]], h[:, s[1]:]
            h = torch.cat([a, b + translation(ci, a)], dim=1).flip(1)
            ci += 1
        else:
            keep, z = h[:, :s[1]], h[:, s[1]:]
            parts.append(prior(pi, keep, z))
            h = keep
            pi += 1
    return parts, h


def checkerboard(H: int, W: int, device=None) -> torch.Tensor:
    """(H, W) bool: True where i + j is even (the half of a part coded first)."""
    i = torch.arange(H, device=device).view(-1, 1)
    j = torch.arange(W, device=device).view(1, -1)
    return (i + j) % 2 == 0


def second_half_input(keep: torch.Tensor, z: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """What the second half's prior sees: the kept channels, z where already coded (0 elsewhere),
    and the checkerboard itself (ACT, i.e. 1.0, where coded)."""
    m = first.to(z.dtype).expand(z.shape[0], 1, *first.shape)
    return torch.cat([keep, z * m, m * ACT], dim=1)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2) (as the integer runtime rounds), with a straight-through gradient."""
    return x + (torch.floor(x + 0.5) - x).detach()


class Net(nn.Module):
    """3x3 conv -> ReLU -> 3x3 conv -> ReLU -> 3x3 conv (outputs ``n_out``), plus a direct 3x3
    linear path (12-bit weights) to the first ``n_direct`` outputs. Inputs are integers
    (clamped to +-IN_CLAMP) standing for value / ACT, as every exact activation."""

    def __init__(self, c_in: int, hidden: int, n_out: int, n_direct: int):
        super().__init__()
        self.c1 = nn.Conv2d(c_in, hidden, 3, padding=1)
        self.c2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.c3 = nn.Conv2d(hidden, n_out, 3, padding=1)
        self.direct = nn.Conv2d(c_in, n_direct, 3, padding=1, bias=False)
        with torch.no_grad():
            self.c3.weight.zero_()
            self.c3.bias.zero_()
            self.direct.weight.zero_()

    @staticmethod
    def _conv(conv: nn.Conv2d, x: torch.Tensor, wmax: int = WMAX) -> torch.Tensor:
        (w,) = fake_quant_weights([conv.weight], wmax)
        return F.conv2d(x, w, conv.bias, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: integer-valued (B, c_in, H, W) -> (network outputs, direct outputs), before their
        final rounding (the caller puts them on its grid)."""
        inp = x.clamp(-IN_CLAMP, IN_CLAMP) / ACT
        h = fake_quant(F.relu(self._conv(self.c1, inp)), ACT, 0, QMAX)
        h = fake_quant(F.relu(self._conv(self.c2, h)), ACT, 0, QMAX)
        y = self._conv(self.c3, h)
        d = self._conv(self.direct, inp, SKIP_WMAX)
        return y, d


class Coupling(nn.Module):
    def __init__(self, c_in: int, c_out: int, hidden: int):
        super().__init__()
        self.net = Net(c_in, hidden, c_out, c_out)

    def forward(self, xa: torch.Tensor) -> torch.Tensor:
        """The translation (integer-valued, +-TMAX) of the other half."""
        y, d = self.net(xa)
        t = fake_quant(y, T_FRAC, -WIDE, WIDE) + fake_quant(d, T_FRAC, -WIDE, WIDE)
        return round_ste(t).clamp(-TMAX, TMAX)


class Prior(nn.Module):
    """Mean (1/MU_GRID levels) and log-scale class of ``c_out`` channels from ``c_in`` others."""

    def __init__(self, c_in: int, c_out: int, hidden: int):
        super().__init__()
        self.c_out = c_out
        self.net = Net(c_in, hidden, 2 * c_out, c_out)
        with torch.no_grad():
            self.net.c3.bias[c_out:] = math.log(8.0)

    def forward(self, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, d = self.net(keep)
        c = self.c_out
        mu = fake_quant(y[:, :c], MU_GRID, -WIDE, WIDE) + fake_quant(d, MU_GRID, -WIDE, WIDE)
        mu = mu.clamp(-MU_CLAMP / MU_GRID, MU_CLAMP / MU_GRID)
        ls = fake_quant(y[:, c:], LS_GRID, -LS_OFF, N_SCALES - 1 - LS_OFF)
        return mu, ls


class IDF(nn.Module):
    """Float training module: ``parts(x)`` gives the coded integers and their priors."""

    def __init__(self, cfg: IDFConfig):
        super().__init__()
        self.cfg = cfg
        self.steps = plan(cfg)
        self.couplings = nn.ModuleList()
        self.priors = nn.ModuleList()
        self.priors2 = nn.ModuleList()
        for s in self.steps:
            if s[0] == "couple":
                self.couplings.append(Coupling(s[1], s[2], cfg.hidden))
            elif s[0] == "split":
                self.priors.append(Prior(s[1], s[2], cfg.prior_hidden))
                self.priors2.append(Prior(s[1] + s[2] + 1, s[2], cfg.prior_hidden))
        c_top = [s for s in self.steps if s[0] == "split"][-1][1]
        self.top_mu = nn.Parameter(torch.zeros(c_top))
        self.top_ls = nn.Parameter(torch.full((c_top,), math.log(32.0)))

    def _prior(self, i: int, keep: torch.Tensor, z: torch.Tensor):
        first = checkerboard(*z.shape[-2:], z.device)
        mu1, ls1 = self.priors[i](keep)
        mu2, ls2 = self.priors2[i](second_half_input(keep, z, first))
        return z, torch.where(first, mu1, mu2), torch.where(first, ls1, ls2)

    def parts(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(B, 3, H, W) levels -> [(z, mean, log-scale)] in encoding order (the decoder's reverse)."""
        out, h = walk(self.steps, x.float() - CENTER, lambda i, a: self.couplings[i](a), self._prior)
        mu = fake_quant(self.top_mu, MU_GRID, -MU_CLAMP, MU_CLAMP).view(1, -1, 1, 1).expand_as(h)
        ls = fake_quant(self.top_ls, LS_GRID, -LS_OFF, N_SCALES - 1 - LS_OFF).view(1, -1, 1, 1).expand_as(h)
        out.append((h, mu, ls))
        return out

    def loss(self, x: torch.Tensor, gray: torch.Tensor | None = None) -> torch.Tensor:
        """Mean bits per sub-pixel."""
        bits = sum(logistic_bits(z, mu, ls).sum() for z, mu, ls in self.parts(x))
        return bits / x.numel()


def logistic_bits(z: torch.Tensor, mu: torch.Tensor, ls: torch.Tensor) -> torch.Tensor:
    """-log2 P(z) under a discretized logistic (mean mu, scale exp(ls)), as the integer tables
    give it: floored, and 16 bits more for a z beyond the table (an escape)."""
    inv = torch.exp(-ls)
    a = (z + 0.5 - mu) * inv
    b = (z - 0.5 - mu) * inv
    # the difference of sigmoids on the side where it is accurate
    p = torch.where(z > mu, torch.sigmoid(-b) - torch.sigmoid(-a), torch.sigmoid(a) - torch.sigmoid(b))
    bits = -torch.log2(p.clamp_min(0) + 2.0 ** -TABLE_BITS)
    with torch.no_grad():
        escape = (z - torch.floor(mu)).abs() > torch.ceil(TAIL * torch.exp(ls)) + 1
    return bits + 16.0 * escape



def scale_tables() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer tables of every prior class (phase p of the mean in 1/MU_GRID, scale class k).

    Class p * N_SCALES + k codes d = z - floor(mean) in [-R_k, R_k] as symbol d + R_k, and an
    escape (any other z, then coded in 16 bits) as symbol 2 R_k + 1. Weights >= 1, summing to
    about 2**TABLE_BITS. Returns (flat weights int32, start of each class int64, R per scale class).
    """
    s = torch.exp((torch.arange(N_SCALES, dtype=torch.float64) - LS_OFF) / LS_GRID)
    R = torch.ceil(TAIL * s).to(torch.int64) + 1
    rows, starts = [], [0]
    for p in range(MU_GRID):
        m = p / MU_GRID
        for k in range(N_SCALES):
            d = torch.arange(-R[k], R[k] + 1, dtype=torch.float64)
            # exact-ok: the tables are built once at export and shipped in the weights file
            cdf = torch.sigmoid((torch.cat([d - 0.5, d[-1:] + 0.5]) - m) / s[k])
            pm = torch.diff(cdf)
            tail = 1.0 - float(pm.sum())
            w = torch.cat([pm, torch.tensor([tail])]) * 2 ** TABLE_BITS
            w = torch.round(w).clamp_min(1).to(torch.int32)
            rows.append(w)
            starts.append(starts[-1] + len(w))
    return torch.cat(rows), torch.tensor(starts, dtype=torch.int64), R


def export(model: IDF) -> dict[str, torch.Tensor]:
    """Float (fake-quantized) module -> integer tensors for :class:`dulzip.exact.idf.ExactIDF`."""
    from dulzip.exact.layers import export_linear

    t: dict[str, torch.Tensor] = {}

    def net(n: Net, name: str, target, lo, hi, off, direct_target) -> None:
        t.update(export_linear([n.c1.weight], n.c1.bias, ACT, 0, QMAX, name=f"{name}.c1"))
        t.update(export_linear([n.c2.weight], n.c2.bias, ACT, 0, QMAX, name=f"{name}.c2"))
        t.update(export_linear([n.c3.weight], n.c3.bias, target, lo, hi, off, name=f"{name}.c3"))
        t.update(export_linear([n.direct.weight], None, direct_target, -WIDE, WIDE, name=f"{name}.direct",
                               wmax=SKIP_WMAX))

    for i, c in enumerate(model.couplings):
        net(c.net, f"couple{i}", T_FRAC, -WIDE, WIDE, 0, T_FRAC)
    for prefix, priors in (("prior", model.priors), ("prior2_", model.priors2)):
        for i, p in enumerate(priors):
            c = p.c_out
            one = torch.ones(c, dtype=torch.float64)
            target = torch.cat([MU_GRID * one, LS_GRID * one])
            lo = torch.cat([-WIDE * one, 0 * one]).long()
            hi = torch.cat([WIDE * one, (N_SCALES - 1) * one]).long()
            off = torch.cat([0 * one, LS_OFF * one]).long()
            net(p.net, f"{prefix}{i}", target, lo, hi, off, MU_GRID)
    with torch.no_grad():
        t["top.mu"] = torch.round(model.top_mu.double() * MU_GRID).clamp(-MU_CLAMP, MU_CLAMP).long()
        t["top.ls"] = (torch.round(model.top_ls.double() * LS_GRID) + LS_OFF).clamp(0, N_SCALES - 1).long()
    flat, starts, R = scale_tables()
    t["tab.flat"], t["tab.start"], t["tab.radius"] = flat, starts, R
    return t


FAMILY = Family(
    name="idf", modality="image", codec="flow", runtime="dulzip.exact.idf:ExactIDF",
    config=IDFConfig, module=IDF, export=export, sampler="dulzip.train.data:photo_crops_packed_gray",
    options=lambda o: IDFConfig(levels=o["levels"], couplings=o["layers"], hidden=o["hidden"],
                                prior_hidden=o["hidden"]),
    train_defaults={"batch": 16, "crop": 64, "lr": 4e-4, "warmup": 100, "levels": 3, "layers": 4, "hidden": 48},
    summary="photographs (random crops, --crop a multiple of 2**levels; gray as codecs.flow codes it)")
