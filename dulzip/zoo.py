"""Shipped models: names -> weights files in ``models/``, checked by sha256.

Each model has a card ``models/<name>-<sha256 prefix>.json`` beside its weights (architecture, config, training, measured
results, weights file and its sha256) and safetensors weights, loaded without pickle.
``DULZIP_MODELS`` points to another models folder.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dulzip.errors import ModelMismatchError, UsageError
from dulzip.models.registry import ARCHITECTURES


def models_dir() -> Path:
    env = os.environ.get("DULZIP_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def cards() -> dict[str, dict]:
    """All model cards in the models folder, by name."""
    out = {}
    d = models_dir()
    if d.is_dir():
        for p in sorted(d.glob("*.json")):
            card = json.loads(p.read_text())
            if isinstance(card, dict) and "weights" in card and "name" in card:
                out[card["name"]] = card
    return out


def card(name: str) -> dict:
    c = cards()
    if name not in c:
        known = ", ".join(sorted(c)) or "none installed"
        raise UsageError(f"unknown model '{name}' (models: {known})")
    return c[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_tensors(name: str, folder: str | Path | None = None) -> tuple[dict[str, torch.Tensor], str, dict, str]:
    """(integer tensors, architecture, config, sha256) of a shipped model, checked against its card."""
    c = card(name)
    path = Path(folder or models_dir()) / c["weights"]
    if not path.is_file():
        raise ModelMismatchError(f"weights of model '{name}' not found: {path}")
    digest = sha256_file(path)
    if digest != c["sha256"]:
        raise ModelMismatchError(f"weights file {path.name} does not match its card (sha256 {digest[:12]}…)")
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return tensors, meta.get("architecture", c["architecture"]), json.loads(meta["config"]), digest


@lru_cache(maxsize=8)
def _load_cached(folder: str, name: str, device: str, mtime: float):
    tensors, arch, config, digest = load_tensors(name, folder)
    return ARCHITECTURES[arch].runtime(tensors, config, device), digest


def _load(name: str, device: str):
    folder = models_dir()
    c = card(name)
    path = folder / c["weights"]
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _load_cached(str(folder), name, device, mtime)


def load(name: str, device: str = "cpu", expect_sha256: str | None = None):
    """(exact runtime, sha256) of a shipped model; refuses weights other than ``expect_sha256``."""
    net, digest = _load(name, device)
    # files record the sha256 (format 1) or its first 32 hex digits (format 2)
    if expect_sha256 is not None and (len(expect_sha256) < 32 or not digest.startswith(expect_sha256)):
        raise ModelMismatchError(
            f"this file was made with other '{name}' weights (sha256 {expect_sha256[:12]}…) than the "
            f"installed ones ({digest[:12]}…): decode it with the dulzip version that wrote it")
    return net, digest


def save_weights(tensors: dict[str, torch.Tensor], path: Path, architecture: str, config: dict) -> str:
    """Write exported integer tensors as safetensors; returns the file's sha256."""
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={"architecture": architecture, "config": json.dumps(config, sort_keys=True)})
    return sha256_file(path)
