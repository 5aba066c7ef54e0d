"""A training run's settings and schedule (no torch: ``dulzip train --help`` reads the defaults)."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TrainConfig:
    data: str
    out: str
    steps: int = 1300
    batch: int = 32  # the global batch: split over the processes of a distributed run
    crop: int = 32
    seq: int = 256  # text: bytes per training window (state carried across windows)
    segment: int = 16384  # text: mean bytes before a training stream starts afresh
    lr: float = 2e-3
    warmup: int = 200
    gray_fraction: float = 0.15
    seed: int = 0
    checkpoint_every: int = 200
    threads: int = 0
    scales: tuple[int, ...] = (1, 2)  # scale augmentation (see data.CropSource)
    init_from: str | None = None  # start from this checkpoint's weights (fine-tuning)
    device: str = "cpu"
    time_limit: float = 0.0  # seconds of training in all (0: none); the schedule follows time too
    ema: float = 0.999  # decay of the exponential moving average of the weights (what is exported)
    compile: bool = False  # torch.compile the loss (falls back to eager if compiling fails)
    clip: float = 1.0  # gradient norm clipping
    bf16: bool | None = None  # bfloat16 autocast (None: on a GPU); the exported integer model is what codes
    workers: int = 0  # processes reading the data ahead of the training (0: this one)
    crops_per_image: int = 1  # image crops of a batch cut from each image drawn (more: fewer decodes)
    cache_mb: int = 256  # decoded images each data process keeps (MiB)
    heldout: float = 0.02  # the fraction of the folder's files held out (by a hash of their path)
    heldout_data: str | None = None  # or a folder of held-out files
    eval_every: int = 500  # steps between held-out evaluations
    eval_batches: int = 8  # global batches of held-out data, the same at every evaluation
    log_every: int = 20  # steps between lines of metrics.jsonl


def progress_at(step: int, elapsed: float, cfg: TrainConfig) -> float:
    """Fraction of training done: by steps, or by time when a time limit comes first."""
    p = step / max(1, cfg.steps)
    return max(p, elapsed / cfg.time_limit) if cfg.time_limit > 0 else p


def lr_at(step: int, cfg: TrainConfig, progress: float | None = None) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine from ``lr`` to 5% of it."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup) if progress is None else progress
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
