"""Exact integer runtime of the pyramid image coder's networks (float side: dulzip.models.pyramid).

One pass per group: :meth:`ExactPyramid.predict` runs the group's phase net on the inputs that
:func:`dulzip.models.pyramid.group_inputs` builds, for every cell of every tile at once. Each
conv is 9 integer matmuls on shifted views (:meth:`dulzip.exact.layers.QLinear.conv3x3`: exact
in float under the bound QLinear checks, no Winograd or FFT algorithm), integer requantization
and clamps, so encoder and decoder get the same integers on any device, batch size or thread count.
"""
from __future__ import annotations

import torch

from dulzip.exact.layers import QLinear, exact_matmul
from dulzip.models.pyramid import IN_MAX, MU_HI, MU_LO, N_PHASES, TILE, PyramidConfig

# the codec's tile: 512 (L = 6), twice training's TILE. The network sees nothing across a tile's
# edge, so larger tiles give more of its cells their full neighbourhood: photos-test 2.7206 against
# 2.7257 bits/sub-pixel at 256 (every image but astronaut smaller), graphics-test 0.7426 against
# 0.7455; 1024 no smaller (Dune, rocket, chelsea) and slower (the network over more padding)
DEFAULT_TILE = 2 * TILE


class ExactPhaseNet:
    """``layers`` conv3x3 -> ReLU (the requantization's clamp at 0), an output conv3x3, and
    the direct 3x3 path into the means."""

    def __init__(self, t: dict[str, torch.Tensor], name: str, layers: int, device: torch.device):
        self.hidden = [QLinear.from_tensors(t, f"{name}.h{i}", IN_MAX if i == 0 else 128).to(device)
                       for i in range(layers)]
        self.out = QLinear.from_tensors(t, f"{name}.out").to(device)
        self.direct = QLinear.from_tensors(t, f"{name}.direct", IN_MAX).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clamp(-IN_MAX, IN_MAX)
        h = x
        for layer in self.hidden:
            h = layer.conv3x3(h)
        y = self.out.conv3x3(h)
        mu = (y[:, :3] + self.direct.conv3x3(x)).clamp(MU_LO, MU_HI)
        return torch.cat([mu, y[:, 3:]], dim=1)


class ExactPyramid:
    """The pyramid coder's networks, integers only. A :class:`dulzip.exact.runtime.PyramidRuntime`."""

    modality = "image"
    codec = "pyramid"
    gray_only = False
    fixed_tile = None
    default_tile = DEFAULT_TILE
    wave_delay = None

    def __init__(self, tensors: dict[str, torch.Tensor], config: dict, device: str | torch.device = "cpu"):
        self.cfg = PyramidConfig(**config)
        self.device = torch.device(device)
        t = {k: v.to(self.device) for k, v in tensors.items()}
        self.nets = [ExactPhaseNet(t, f"phase{p}", self.cfg.layers, self.device) for p in range(N_PHASES)]
        self.tables = tuple(tensors[f"tab.{k}"].cpu() for k in ("flat", "start", "radius"))  # as the flow's
        # the mixer's starting state learnt on training photographs (codecs.pyramid.prime), if shipped
        self.prime = {k: v.cpu() for k, v in tensors.items() if k.startswith("prime.")}

    def predict(self, x: torch.Tensor, phase: int) -> torch.Tensor:
        """x: int64 (B, 17, h, w) from :func:`dulzip.models.pyramid.group_inputs` -> int64
        (B, 9, h, w): mu R, G, B in 1/8 level within [MU_LO, MU_HI], scale classes R, G, B in
        [0, N_SCALES), channel coefficients a, b, c in 1/64 within [-128, 128], for the
        phase's slot of every cell. Each cell's outputs depend on its 3x3 neighbourhood of
        cells (to ``layers + 1`` cells away) only, never on the batch."""
        with exact_matmul(self.device):
            return self.nets[phase](x.to(self.device, torch.int64))
