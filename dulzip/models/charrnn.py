"""char-RNN: a byte-level LSTM that gives every byte of a text a probability.

One LSTM layer over byte embeddings and a softmax head over the 256 byte values. Symbol 256
is the start of a segment (the input before the first byte). The float module here trains
with the exact runtime's grids (fake quantization), so that the integer network
(:mod:`dulzip.exact.charrnn`) computes nearly the same function:

- embeddings and the hidden state ``h`` are activations (1/ACT units, int8 range);
- gate pre-activations are rounded to 1/PRE in [-8, 8); the sigmoid and tanh of a gate are
  rounded to 1/256 (lookup tables);
- the cell state is kept to 1/256 and clamped to [-CELL_MAX, CELL_MAX];
- logits are rounded to 1/LOGIT_SCALE nats.

Training streams carry their state across consecutive windows (truncated backpropagation
through time), so the model sees states as long as the segments it codes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dulzip.exact.quant import ACT, PRE, QMAX, QMIN, fake_quant, fake_quant_weights
from dulzip.models.registry import Family

START = 256  # the input symbol before a segment's first byte
GATE_ONE = 256  # sigmoid / tanh outputs in 1/256
CELL_ONE = 256  # cell state in 1/256
CELL_MAX = 8 * CELL_ONE  # |c| <= 8
LOGIT_SCALE = 16  # logits in 1/16 nats
LOGIT_MAX = 2047


@dataclass
class CharRNNConfig:
    embed: int = 32
    hidden: int = 256


def _round(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Round to the grid 1/scale with a straight-through gradient."""
    q = x * scale
    return (q + (torch.round(q) - q).detach()) / scale


class CharRNN(nn.Module):
    def __init__(self, cfg: CharRNNConfig):
        super().__init__()
        self.cfg = cfg
        E, H = cfg.embed, cfg.hidden
        self.embed = nn.Embedding(START + 1, E)
        nn.init.uniform_(self.embed.weight, -1.0, 1.0)
        self.gates = nn.Linear(E + H, 4 * H)  # i, f, g, o
        with torch.no_grad():
            self.gates.bias.zero_()
            self.gates.bias[H:2 * H].fill_(1.0)  # remember by default
        self.head = nn.Linear(H, 256)
        self._carry: tuple[torch.Tensor, torch.Tensor] | None = None

    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input weights, recurrent weights, head weights) as the integer network sees them."""
        E = self.cfg.embed
        w = fake_quant_weights([self.gates.weight])[0]
        return w[:, :E], w[:, E:], fake_quant_weights([self.head.weight])[0]

    def logits(self, inp: torch.Tensor, state=None):
        """inp (B, L) symbols 0..256 -> (logits (B, L, 256) of each next byte, final (h, c))."""
        B, L = inp.shape
        H = self.cfg.hidden
        wx, wh, wo = self.weights()
        e = fake_quant(self.embed(inp), ACT, QMIN, QMAX)
        xp = e @ wx.T + self.gates.bias  # the input part of every step at once
        if state is None:
            h = inp.new_zeros(B, H, dtype=xp.dtype)
            c = inp.new_zeros(B, H, dtype=xp.dtype)
        else:
            h, c = state
        hs = []
        for t in range(L):
            z = fake_quant(xp[:, t] + h @ wh.T, PRE, QMIN, QMAX)
            i, f, g, o = z.split(H, dim=1)
            i, f, o = (_round(torch.sigmoid(v), GATE_ONE) for v in (i, f, o))
            g = _round(torch.tanh(g), GATE_ONE)
            c = _round(f * c + i * g, CELL_ONE).clamp(-CELL_MAX / CELL_ONE, CELL_MAX / CELL_ONE)
            h = fake_quant(o * _round(torch.tanh(c), GATE_ONE), ACT, QMIN, QMAX)
            hs.append(h)
        out = torch.stack(hs, dim=1) @ wo.T + self.head.bias
        return fake_quant(out, LOGIT_SCALE, -LOGIT_MAX, LOGIT_MAX), (h, c)

    def bits(self, inp: torch.Tensor, state=None):
        """inp (B, L+1): inputs inp[:, :-1] predict inp[:, 1:] -> (bits (B, L), final state)."""
        logits, state = self.logits(inp[:, :-1], state)
        nll = F.cross_entropy(logits.reshape(-1, 256), inp[:, 1:].reshape(-1), reduction="none")
        return nll.view(inp.shape[0], -1) / math.log(2), state

    def loss(self, x: torch.Tensor, reset: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss in bits per byte. Rows continue the previous call's streams (their
        state carried, detached) except where ``reset`` is set (a fresh segment)."""
        state = None
        if self._carry is not None and reset is not None and self._carry[0].shape[0] == x.shape[0]:
            keep = (~reset).to(self._carry[0].dtype)[:, None]
            state = (self._carry[0] * keep, self._carry[1] * keep)
        bits, (h, c) = self.bits(x, state)
        self._carry = (h.detach(), c.detach())
        return bits.mean()



def export(model: CharRNN) -> dict[str, torch.Tensor]:
    """Float (fake-quantized) module -> integer tensors for :class:`dulzip.exact.charrnn.ExactCharRNN`.

    The input part of the gates depends on the input symbol only, so it is exported as a
    table (257, 4H) of accumulator integers: the input projection of every position is one
    lookup.
    """
    from dulzip.exact.layers import export_linear
    from dulzip.exact.textmix import mixer_luts

    E = model.cfg.embed
    t = export_linear([model.gates.weight], model.gates.bias, PRE, QMIN, QMAX, name="gates")
    w = t.pop("gates.w").to(torch.int64)
    emb = torch.round(model.embed.weight.detach().double() * ACT).clamp(QMIN, QMAX).to(torch.int64)
    t["gates.xtab"] = (emb @ w[:, :E].T).to(torch.int32)  # (257, 4H)
    t["gates.wh"] = w[:, E:].to(torch.int8).contiguous()
    t.update(export_linear([model.head.weight], model.head.bias, LOGIT_SCALE, -LOGIT_MAX, LOGIT_MAX, name="head"))
    t.update({k: v.to(torch.int32) for k, v in {**lstm_luts(), **mixer_luts()}.items()})
    return t


def lstm_luts() -> dict[str, torch.Tensor]:
    """Lookup tables of the exact LSTM and its softmax, made at export and shipped with the weights."""
    q = torch.arange(QMIN, QMAX + 1, dtype=torch.float64) / PRE
    c = torch.arange(-CELL_MAX, CELL_MAX + 1, dtype=torch.float64) / CELL_ONE
    d = torch.arange(EXP_SIZE, dtype=torch.float64) / LOGIT_SCALE
    # exact-ok: export-time tables
    return {"lut.sigmoid": torch.round(GATE_ONE * torch.sigmoid(q)).to(torch.int64),  # exact-ok
            "lut.tanh": torch.round(GATE_ONE * torch.tanh(q)).to(torch.int64),  # exact-ok
            "lut.tanh_cell": torch.round(GATE_ONE * torch.tanh(c)).to(torch.int64),  # exact-ok
            "lut.exp": torch.round(2 ** EXP_BITS * torch.exp(-d)).to(torch.int64)}  # exact-ok


EXP_BITS = 20  # the most probable byte weighs 2**EXP_BITS before the floor of 1 per byte
EXP_SIZE = 24 * LOGIT_SCALE  # logits more than 24 nats below the best weigh 0 (then the floor)


FAMILY = Family(
    name="charrnn", modality="text", runtime="dulzip.exact.charrnn:ExactCharRNN",
    config=CharRNNConfig, module=CharRNN, export=export, sampler="dulzip.train.data:text_windows",
    options=lambda o: CharRNNConfig(embed=o["embed"], hidden=o["hidden"]),
    train_defaults={"batch": 512, "seq": 128, "lr": 2e-3, "warmup": 200, "embed": 32, "hidden": 256},
    summary="text (byte streams)")
