"""Resumable training loop for the models: checkpoints, a metrics log, progress, several processes."""
from __future__ import annotations

import json
import os
import pickle
import re
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from dulzip.errors import FormatError, UsageError
from dulzip.models import registry
from dulzip.train import dist
from dulzip.train.config import TrainConfig, lr_at, progress_at
from dulzip.train.data import batches, fixed_batches


def arch_of(mcfg) -> str:
    """The family name of a model config (a checkpoint records it)."""
    return registry.family_of(mcfg).name


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


def _heldout_bits(arch, cfg, ema: dict, held: list, dev: torch.device) -> float:
    """Mean bits per dimension of the moving average of the weights (what is exported) on the
    fixed held-out batches, in full precision; a fresh module, so a text model's streams start
    afresh and carry on over the batches as in training."""
    net = arch.module(cfg).to(dev)
    net.load_state_dict(ema)
    net.eval()
    with torch.no_grad():
        bits = [net.loss(x.to(dev), None if f is None else f.to(dev)).item() for x, f in held]
    return sum(bits) / len(bits)


def listing(folder: str, modality: str, cache: Path, d: dist.Dist):
    """The usable files of a folder and how many were skipped: rank 0 lists it (and caches the
    listing in the run folder), then the other ranks read the cache."""
    from dulzip.train.files import list_files
    for turn in (0, 1):
        if (turn == 0) == d.main:
            files, skipped = list_files(folder, modality, cache)
        dist.barrier(d)
    if not len(files):
        raise UsageError(f"no {modality} files under {folder}")
    return files, skipped


def split_data(tcfg: TrainConfig, modality: str, out: Path, d: dist.Dist = dist.Dist()):
    """(training files, held-out folder, held-out files, files skipped) of a run: the held-out
    folder's files, or those of the data folder that the split holds out."""
    from dulzip.train.files import split
    files, skipped = listing(tcfg.data, modality, out / "files.npz", d)
    if tcfg.heldout_data:
        return files, Path(tcfg.heldout_data), listing(tcfg.heldout_data, modality, out / "heldout-files.npz", d)[0], skipped
    train, held = split(files, tcfg.heldout)
    return train, Path(tcfg.data), held, skipped


def _source(arch, tcfg: TrainConfig, cfg, d: dist.Dist, out: Path):
    """The training and held-out data sources of a run, and a line saying what they are."""
    train, held_root, held, skipped = split_data(tcfg, arch.modality, out, d)
    if not len(train):
        raise UsageError(f"every file under {tcfg.data} is held out (--heldout)")
    source = arch.make_sampler(tcfg, cfg, Path(tcfg.data), train)
    held_source = arch.make_sampler(tcfg, cfg, held_root, held) if len(held) else None
    note = (f"{len(train)} training files ({train.size.sum() / 1e6:.1f} MB), {len(held)} held out"
            + (f", {skipped} unreadable skipped" if skipped else ""))
    return source, held_source, note


def train_model(tcfg: TrainConfig, mcfg, progress: bool = True) -> Path:
    """Train (or resume) a model of any registered family (by the type of ``mcfg``); returns
    the checkpoint path. Under torchrun every rank runs this (see :mod:`dulzip.train.dist`):
    each trains on its part of every global batch, and rank 0 alone logs, shows progress,
    evaluates and checkpoints. Metrics go to metrics.jsonl: the loss in bits per dimension of
    the family's data (``bits``, with its ``unit``: bits/sub-pixel, bits/byte or bits/sample,
    the mean over ranks), and every ``eval_every`` steps ``heldout``, the bits of the held-out
    files under the moving average of the weights.

    The checkpoint keeps the raw weights, the optimizer and an exponential moving average of
    the weights (``ema``), which is what gets exported. It holds nothing of the number of
    processes: a run resumes on any number of them.
    """
    d, dev = dist.start(tcfg.device)
    out = Path(tcfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
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
            if d.main:
                print(f"initialized from {tcfg.init_from}")
        model = model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
        ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    source, held_source, note = _source(arch, tcfg, model.cfg, d, out)
    if d.main:
        print(f"{arch.name}: {note}; global batch {tcfg.batch} on {d.world} process(es)"
              + (f", from step {step}" if step else ""))
    data = batches(source, tcfg.seed, step, tcfg.batch, d.rank, d.world, tcfg.workers, pin=dev.type == "cuda")
    held = fixed_batches(held_source, tcfg.seed + 1, tcfg.eval_batches, tcfg.batch) if held_source and d.main else []
    del held_source  # and the images it decoded: the held-out batches are all that is kept
    unit = registry.UNITS[arch.modality]
    log = open(out / "metrics.jsonl", "a") if d.main else None
    bar = tqdm(total=tcfg.steps, initial=step, disable=not (progress and d.main), desc="train", unit="step")
    model.train()
    t0, ema_loss = time.time() - elapsed, None
    last_ckpt = time.time()
    params = dict(model.named_parameters())
    net = dist.wrap(model, d, dev)
    step_fn = torch.compile(net) if tcfg.compile else net
    bf16 = dev.type == "cuda" if tcfg.bf16 is None else tcfg.bf16

    def write(row: dict) -> None:
        log.write(json.dumps(row) + "\n")
        log.flush()

    while True:
        now = dist.agree(d, time.time() - t0, dev)  # rank 0's clock: every rank stops at the same step
        if progress_at(step, now, tcfg) >= 1.0:
            break
        lr = lr_at(step, tcfg, progress_at(step, now, tcfg))
        for g in opt.param_groups:
            g["lr"] = lr
        x, flags = next(data)
        x = x.to(dev, non_blocking=True)
        flags = None if flags is None else flags.to(dev, non_blocking=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            try:
                loss = step_fn(x, flags)
            except Exception as e:  # a failed compile must not cost the run
                if step_fn is net:
                    raise
                print(f"torch.compile failed ({type(e).__name__}: {e}); training eagerly")
                step_fn = net
                loss = step_fn(x, flags)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip)
        opt.step()
        step += 1
        if d.main:
            with torch.no_grad():  # EMA of the weights; a short memory at the start
                decay = min(tcfg.ema, (1 + step) / (10 + step))
                for k, p in params.items():
                    ema[k].mul_(decay).add_(p.detach(), alpha=1 - decay)
        logged = step % tcfg.log_every == 0
        loss_v = dist.mean(d, loss) if logged else float(loss.item()) if d.main else 0.0
        ema_loss = loss_v if ema_loss is None else 0.98 * ema_loss + 0.02 * loss_v
        if not d.main:
            continue
        bar.update(1)
        bar.set_postfix(bits=f"{ema_loss:.3f}")
        if logged:
            write({"step": step, "bits": round(loss_v, 6), "unit": unit, "ema": round(ema_loss, 4),
                   "lr": lr, "time": round(time.time() - t0, 1)})
        if held and step % tcfg.eval_every == 0:
            write({"step": step, "heldout": round(_heldout_bits(arch, model.cfg, ema, held, dev), 5), "unit": unit,
                   "time": round(time.time() - t0, 1)})
        if step % tcfg.checkpoint_every == 0 or time.time() - last_ckpt > 120:
            save_checkpoint(ckpt_path, model, opt, ema, step, time.time() - t0, tcfg)
            last_ckpt = time.time()
    if d.main:
        if held and step % tcfg.eval_every:
            write({"step": step, "heldout": round(_heldout_bits(arch, model.cfg, ema, held, dev), 5), "unit": unit,
                   "time": round(time.time() - t0, 1)})
        save_checkpoint(ckpt_path, model, opt, ema, step, time.time() - t0, tcfg)
        bar.close()
        log.close()
        print(f"trained {arch.n_params(model)} parameters for {step} steps ({time.time() - t0:.0f} s) -> {ckpt_path}")
    dist.barrier(d)
    return ckpt_path
