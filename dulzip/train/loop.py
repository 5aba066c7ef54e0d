"""Resumable training loop for the models: checkpoints, a metrics log, progress."""
from __future__ import annotations

import json
import math
import os
import pickle
import re
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from dulzip.errors import FormatError
from dulzip.models import registry


def arch_of(mcfg) -> str:
    """The family name of a model config (a checkpoint records it)."""
    return registry.family_of(mcfg).name


@dataclass
class TrainConfig:
    data: str
    out: str
    steps: int = 20000
    batch: int = 32
    crop: int = 32
    seq: int = 256  # text: bytes per training window (state carried across windows)
    segment: int = 16384  # text: mean bytes before a training stream starts afresh
    lr: float = 2e-3
    warmup: int = 200
    gray_fraction: float = 0.15
    seed: int = 0
    checkpoint_every: int = 200
    threads: int = 0
    scales: tuple[int, ...] = (1, 2)  # scale augmentation (see data.load_images)
    init_from: str | None = None  # start from this checkpoint's weights (fine-tuning)
    device: str = "cpu"
    time_limit: float = 0.0  # seconds of training in all (0: none); the schedule follows time too
    ema: float = 0.999  # decay of the exponential moving average of the weights (what is exported)
    compile: bool = False  # torch.compile the loss (falls back to eager if compiling fails)


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


def save_checkpoint(path: Path, model, opt, ema: dict, step: int, elapsed: float, tcfg: TrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"arch": arch_of(model.cfg), "model": model.state_dict(), "opt": opt.state_dict(), "ema": ema,
                "step": step,
                "elapsed": elapsed, "model_config": asdict(model.cfg), "train_config": asdict(tcfg),
                "rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """One of our training checkpoints (optimizer state included; shipped weights are
    safetensors). A checkpoint is a pickle, and unpickling runs whatever code the file names:
    one passed to --init-from or left in a run folder may come from anyone, so only tensors
    and plain data are accepted (``weights_only``), which is all ``save_checkpoint`` stores.
    Anything else is refused with FormatError, never run."""
    try:
        with warnings.catch_warnings():  # torch warns of pickle protocols on foreign files
            warnings.simplefilter("ignore")
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as e:  # whatever a hostile or damaged file makes the loader raise
        raise FormatError(f"{path} is not a dulzip checkpoint ({_load_failure(e)})") from None
    if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict):
        raise FormatError(f"{path} is not a dulzip checkpoint (no model weights in it)")
    return ck


def _load_failure(e: Exception) -> str:
    """Why torch.load refused a file, in a few words (its own message is a paragraph)."""
    found = re.search(r"GLOBAL ([\w.]+)", str(e))
    if found:
        return f"it would import {found[1]}; only tensors and plain data are loaded"
    if isinstance(e, pickle.UnpicklingError):
        return "not tensors and plain data"
    return f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"


class CheckpointMismatch(FormatError, ValueError):
    """A checkpoint whose tensors do not fit the model asked for (a user's error: one line)."""


def grow_into(model: torch.nn.Module, state: dict) -> None:
    """Load ``state`` into ``model``, which may be wider (more channels or units in some
    layers): the old weights fill the leading slices; a new unit keeps its fresh initialization
    but its outputs into the old units start at zero (the columns of a weight beyond the old
    fan-in), so the wider model computes exactly what the old one did and learns from there.
    That holds for weights laid out (out, in, ...), as convolutions and linear layers are (the
    IDF, the PixelCNN); a layer that packs several blocks along one axis (an LSTM's four gates)
    would not grow this way. A model of the same shape just loads ``state``. Any other mismatch
    is an error."""
    own = model.state_dict()
    if set(own) != set(state):
        differ = sorted(set(own) ^ set(state))[:3]
        raise CheckpointMismatch(f"checkpoint does not fit this model: keys differ ({differ})")
    grown = {}
    for k, new in own.items():
        old = state[k]
        if old.shape == new.shape:
            grown[k] = old
            continue
        if old.dim() != new.dim() or any(o > n for o, n in zip(old.shape, new.shape)):
            raise CheckpointMismatch(f"checkpoint does not fit this model: {k} {tuple(old.shape)} -> "
                                     f"{tuple(new.shape)}")
        t = new.clone()
        if t.dim() >= 2:
            t[: old.shape[0], old.shape[1]:] = 0  # new inputs of the old units
        t[tuple(slice(0, n) for n in old.shape)] = old
        grown[k] = t
    model.load_state_dict(grown)


def train_model(tcfg: TrainConfig, mcfg, progress: bool = True) -> Path:
    """Train (or resume) a model of any registered family (by the type of ``mcfg``); returns
    the checkpoint path. Metrics go to metrics.jsonl: the loss in bits per dimension of the
    family's data (``bits``, with its ``unit``: bits/sub-pixel, bits/byte or bits/sample).

    The checkpoint keeps the raw weights, the optimizer and an exponential moving average of
    the weights (``ema``), which is what gets exported.
    """
    out = Path(tcfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    dev = torch.device(tcfg.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(tcfg.seed)
    step, elapsed = 0, 0.0
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        arch = registry.family(ck.get("arch", "pixelcnn"))
        model = arch.module(arch.config(**ck["model_config"])).to(dev)
        model.load_state_dict(ck["model"])
        opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
        opt.load_state_dict(ck["opt"])
        ema = {k: v.to(dev) for k, v in ck.get("ema", model.state_dict()).items()}
        step, elapsed = ck["step"], ck.get("elapsed", 0.0)
        torch.set_rng_state(ck["rng"])
    else:
        arch = registry.family_of(mcfg)
        model = arch.module(mcfg)
        if tcfg.init_from:
            grow_into(model, load_checkpoint(Path(tcfg.init_from))["model"])
            if hasattr(model, "reset_conditioning"):
                model.reset_conditioning()
            print(f"initialized from {tcfg.init_from}")
        model = model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
        ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    sampler = arch.make_sampler(tcfg, model.cfg, tcfg.seed + step, dev)
    unit = registry.UNITS[arch.modality]
    log = open(out / "metrics.jsonl", "a")
    bar = tqdm(total=tcfg.steps, initial=step, disable=not progress, desc="train", unit="step")
    model.train()
    t0, ema_loss = time.time() - elapsed, None
    last_ckpt = time.time()
    params = dict(model.named_parameters())
    loss_fn = model.loss
    step_fn = torch.compile(loss_fn) if tcfg.compile else loss_fn
    while progress_at(step, time.time() - t0, tcfg) < 1.0:
        lr = lr_at(step, tcfg, progress_at(step, time.time() - t0, tcfg))
        for g in opt.param_groups:
            g["lr"] = lr
        x, gray = sampler.batch(tcfg.batch)
        try:
            loss = step_fn(x, gray)
        except Exception as e:  # a failed compile must not cost the run
            if step_fn is loss_fn:
                raise
            print(f"torch.compile failed ({type(e).__name__}: {e}); training eagerly")
            step_fn = loss_fn
            loss = step_fn(x, gray)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        with torch.no_grad():  # EMA of the weights; a short memory at the start
            d = min(tcfg.ema, (1 + step) / (10 + step))
            for k, p in params.items():
                ema[k].mul_(d).add_(p.detach(), alpha=1 - d)
        loss_v = loss.item()
        ema_loss = loss_v if ema_loss is None else 0.98 * ema_loss + 0.02 * loss_v
        bar.update(1)
        bar.set_postfix(bits=f"{ema_loss:.3f}")
        if step % 20 == 0:
            log.write(json.dumps({"step": step, "bits": round(loss_v, 4), "unit": unit, "ema": round(ema_loss, 4),
                                  "lr": lr, "time": round(time.time() - t0, 1)}) + "\n")
            log.flush()
        if step % tcfg.checkpoint_every == 0 or time.time() - last_ckpt > 120:
            save_checkpoint(ckpt_path, model, opt, ema, step, time.time() - t0, tcfg)
            last_ckpt = time.time()
    save_checkpoint(ckpt_path, model, opt, ema, step, time.time() - t0, tcfg)
    bar.close()
    log.close()
    print(f"trained {arch.n_params(model)} parameters for {step} steps ({time.time() - t0:.0f} s) -> {ckpt_path}")
    return ckpt_path
