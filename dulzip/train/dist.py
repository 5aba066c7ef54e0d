"""Training on several processes: torchrun starts them, DistributedDataParallel keeps them in step.

``dulzip train`` runs unchanged under ``torchrun --nproc_per_node N`` (one process per GPU, or
several on a CPU) and across nodes with torchrun's rendezvous options. torchrun sets each
process's RANK, LOCAL_RANK and WORLD_SIZE; :func:`start` reads them and joins the process group
(NCCL between GPUs, gloo on CPUs). Without them (plain ``dulzip train``) it is one process and
nothing here is used.

What every rank must agree on goes through here: the elapsed time that drives the learning-rate
schedule and the time limit (rank 0's clock, so that no rank stops a step before the others),
and the losses that are logged (the mean over ranks).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as td

from dulzip.errors import UsageError

TIMEOUT = timedelta(minutes=30)  # a rank waiting longer for the others gives up (rank 0 may be exporting)


@dataclass(frozen=True)
class Dist:
    """This process's place: ``rank`` of ``world`` processes, ``local_rank`` on its node."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs, shows progress, checkpoints and exports."""
        return self.rank == 0


def from_env() -> Dist:
    """The place torchrun gave this process (one process of one when not under torchrun)."""
    env = os.environ
    try:
        return Dist(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
    except ValueError:
        raise UsageError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)") from None


def start(device: str) -> tuple[Dist, torch.device]:
    """Join the process group (once per process) and pick this rank's device: GPU LOCAL_RANK
    with ``device="cuda"``."""
    d = from_env()
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda, but torch sees no GPU here")
        if d.local_rank >= torch.cuda.device_count():
            raise UsageError(f"local rank {d.local_rank}, but this node has {torch.cuda.device_count()} GPU(s)")
        torch.cuda.set_device(d.local_rank)
        dev = torch.device("cuda", d.local_rank)
    else:
        dev = torch.device(device)
    if d.world > 1 and not td.is_initialized():
        td.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=TIMEOUT)
    return d, dev


def stop() -> None:
    """Leave the process group (at the end of ``dulzip train``)."""
    if td.is_initialized():
        td.destroy_process_group()


def on(d: Dist) -> bool:
    return d.world > 1 and td.is_initialized()


def barrier(d: Dist) -> None:
    if on(d):
        td.barrier()


def agree(d: Dist, value: float, dev: torch.device) -> float:
    """Rank 0's ``value`` on every rank."""
    if not on(d):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=dev)
    td.broadcast(t, 0)
    return float(t.item())


def mean(d: Dist, value: torch.Tensor) -> float:
    """The mean over ranks of a scalar tensor (every rank calls it at the same step)."""
    if not on(d):
        return float(value.item())
    t = value.detach().float().reshape(1).clone()
    td.all_reduce(t)
    return float(t.item()) / d.world


def wrap(model: torch.nn.Module, d: Dist, dev: torch.device) -> torch.nn.Module:
    """The model's loss as a module whose forward DDP synchronizes (DDP averages the gradients of
    forward calls; ``model.loss`` is not one), DistributedDataParallel where there are several
    ranks. Every rank's batch part has the same size, so the average is the global batch's.
    The graph is static (the same parameters used at every step), which DDP then learns once:
    a layer whose output nothing reads (the WaveNet's last residual convolution) gets no
    gradient, and DDP must know that without searching the graph at every step."""
    if not on(d):
        return _Loss(model)
    net = _Loss(model, d.world)
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None,
                                   static_graph=True)


class _Loss(torch.nn.Module):
    """``model.loss`` as a forward. A loss that is a ratio whose denominator differs between
    the parts of a batch (bits per *coded* sub-pixel, where gray crops code one channel) is the
    global batch's only if each part's bits are divided by the whole batch's count: such a model
    gives ``loss_parts(x, flags) -> (bits, count)``, and the count is summed over the ranks."""

    def __init__(self, model: torch.nn.Module, world: int = 1):
        super().__init__()
        self.model, self.world = model, world

    def forward(self, x, flags):
        if self.world == 1 or not hasattr(self.model, "loss_parts"):
            return self.model.loss(x, flags)
        total, count = self.model.loss_parts(x, flags)
        count = torch.as_tensor(count, dtype=torch.float64, device=x.device).detach().reshape(1).clone()
        td.all_reduce(count)
        return total * self.world / count[0].to(total.dtype)  # DDP averages the ranks' gradients
