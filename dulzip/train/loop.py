"""Resumable training loop for the image models: checkpoints, a metrics log, progress."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from dulzip.models.pixelcnn import COEF_INIT, PixelCNN, PixelCNNConfig, n_params
from dulzip.train.data import CropSampler, load_images


@dataclass
class TrainConfig:
    data: str
    out: str
    steps: int = 20000
    batch: int = 32
    crop: int = 32
    lr: float = 2e-3
    warmup: int = 200
    gray_fraction: float = 0.15
    seed: int = 0
    checkpoint_every: int = 200
    threads: int = 0
    scales: tuple[int, ...] = (1, 2)  # scale augmentation (see data.load_images)
    init_from: str | None = None  # start from this checkpoint's weights (fine-tuning)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def save_checkpoint(path: Path, model, opt, step: int, tcfg: TrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "model_config": asdict(model.cfg), "train_config": asdict(tcfg),
                "rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    # Our own training checkpoints (optimizer state included); shipped weights are safetensors.
    return torch.load(path, map_location="cpu", weights_only=False)


def train_pixelcnn(tcfg: TrainConfig, mcfg: PixelCNNConfig, progress: bool = True) -> Path:
    """Train (or resume) a PixelCNN; returns the checkpoint path. Metrics go to metrics.jsonl."""
    out = Path(tcfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(tcfg.seed)
    model = PixelCNN(mcfg)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    step = 0
    if tcfg.init_from and not ckpt_path.exists():
        init = load_checkpoint(Path(tcfg.init_from))["model"]
        model.load_state_dict(init)
        with torch.no_grad():  # conditioning coefficients restart from their initial values
            K = mcfg.mixtures
            model.head2.weight[9 * K:] = 0
            model.head2.bias[9 * K:] = COEF_INIT.repeat_interleave(K)
        print(f"initialized from {tcfg.init_from}")
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        model = PixelCNN(PixelCNNConfig(**ck["model_config"]))
        opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        torch.set_rng_state(ck["rng"])
    sampler = CropSampler(load_images(tcfg.data, tuple(tcfg.scales)), tcfg.crop, tcfg.gray_fraction, tcfg.seed + step)
    log = open(out / "metrics.jsonl", "a")
    bar = tqdm(total=tcfg.steps, initial=step, disable=not progress, desc="train", unit="step")
    model.train()
    t0, ema = time.time(), None
    while step < tcfg.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tcfg)
        x, gray = sampler.batch(tcfg.batch)
        bits = model.bits(x, gray)
        n_coded = bits.numel() - 2 * int(gray.sum()) * bits.shape[-1] * bits.shape[-2]
        loss = bits.sum() / n_coded
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(bpsp=f"{ema:.3f}")
        if step % 20 == 0:
            log.write(json.dumps({"step": step, "bpsp": round(loss.item(), 4), "ema": round(ema, 4),
                                  "lr": lr_at(step, tcfg), "time": round(time.time() - t0, 1)}) + "\n")
            log.flush()
        if step % tcfg.checkpoint_every == 0 or step == tcfg.steps:
            save_checkpoint(ckpt_path, model, opt, step, tcfg)
    bar.close()
    log.close()
    print(f"trained {n_params(model)} parameters for {step} steps -> {ckpt_path}")
    return ckpt_path
