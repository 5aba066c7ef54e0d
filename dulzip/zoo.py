"""Shipped models: names -> weights files in ``dulzip/models_data/``, checked by sha256.

Each model has a card ``<name>-<sha256 prefix>.json`` beside its weights (architecture, config, training, measured
results, weights file and its sha256) and safetensors weights, loaded without pickle.
The folder is package data inside the package (not a top-level folder mapped in at build time): a checkout,
an editable install and a wheel all find it beside this file.
Models are looked for in the user's models folder (``$XDG_DATA_HOME/dulzip/models``, by default
``~/.local/share/dulzip/models``: where ``dulzip train --export`` puts them), then in the package's
own; a name in the first hides the same name in the second. ``DULZIP_MODELS`` (folders separated by
``:``) replaces both.

A name may have older versions: their cards say ``"retired"`` (and which weights replaced them). New
files are always made with the current version; a file names the sha256 of the weights it was made
with, and is decoded with that version wherever it is still installed, so that shipping better
weights never strands the files made with the previous ones.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from dulzip.errors import ModelMismatchError, UsageError
from dulzip.models.registry import ARCHITECTURES

if TYPE_CHECKING:
    import torch

# torch and safetensors are imported where weights are read or written: the cards (JSON) are
# all that `dulzip models` and the choice of a model need, and they start in milliseconds
SHIPPED = Path(__file__).resolve().parent / "models_data"


def user_models_dir() -> Path:
    """The user's own models folder (XDG base directories): ``train --export`` writes there."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "dulzip" / "models"


def models_dirs() -> list[Path]:
    """Where models are looked for, first first: ``$DULZIP_MODELS`` (``:``-separated) if set,
    else the user's models folder and then the package's own ``models_data``."""
    env = os.environ.get("DULZIP_MODELS")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [user_models_dir(), SHIPPED]


def models_dir() -> Path:
    """Where a model is exported unless told otherwise: the first folder of the search path."""
    return models_dirs()[0]


def all_cards() -> list[dict]:
    """Every model card in the models folders, retired versions included; each card knows its
    folder (``_folder``), where its weights are."""
    out = []
    for d in models_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.json")):
                try:
                    card = json.loads(p.read_text())
                except (OSError, ValueError):
                    continue  # not a card (a stray or half-written file): not a model
                if isinstance(card, dict) and "weights" in card and "name" in card:
                    out.append({**card, "_folder": str(d)})
    return out


def cards() -> dict[str, dict]:
    """The current version of each model, by name (what new files are made with); a name in an
    earlier folder of the search path wins."""
    out: dict[str, dict] = {}
    for c in all_cards():
        if not c.get("retired"):
            out.setdefault(c["name"], c)
    return out


def versions(name: str) -> list[dict]:
    """Every installed version of a model: the current one first, then the retired ones."""
    return sorted((c for c in all_cards() if c["name"] == name), key=lambda c: bool(c.get("retired")))


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


def load_tensors(name: str, folder: str | Path | None = None,
                 c: dict | None = None) -> tuple[dict[str, torch.Tensor], str, dict, str]:
    """(integer tensors, architecture, config, sha256) of a shipped model (its current version, or
    the version of card ``c``), checked against its card."""
    c = c or card(name)
    path = Path(folder or c.get("_folder") or models_dir()) / c["weights"]
    if not path.is_file():
        raise ModelMismatchError(f"weights of model '{name}' not found: {path}")
    digest = sha256_file(path)
    if digest != c["sha256"]:
        raise ModelMismatchError(f"weights file {path.name} does not match its card (sha256 {digest[:12]}…)")
    from safetensors import safe_open
    from safetensors.torch import load_file
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return tensors, meta.get("architecture", c["architecture"]), json.loads(meta["config"]), digest


@lru_cache(maxsize=8)
def _load_cached(folder: str, card_json: str, device: str, mtime: float):
    c = json.loads(card_json)
    tensors, arch, config, digest = load_tensors(c["name"], folder, c)
    return ARCHITECTURES[arch].load_runtime(tensors, config, device), digest


def _load(c: dict, device: str):
    folder = Path(c.get("_folder") or models_dir())
    path = folder / c["weights"]
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _load_cached(str(folder), json.dumps(c, sort_keys=True), device, mtime)


def load(name: str, device: str = "cpu", expect_sha256: str | None = None):
    """(exact runtime, sha256) of a shipped model: its current version, or with ``expect_sha256``
    (what a file recorded) the installed version with those weights; refuses any other weights."""
    vs = versions(name)
    c = vs[0] if vs and not vs[0].get("retired") else None
    # files record the sha256 (format 1) or its first 32 hex digits (format 2)
    if expect_sha256 is not None and len(expect_sha256) >= 32:
        c = next((v for v in vs if v.get("sha256", "").startswith(expect_sha256)), c)
    net, digest = _load(c or card(name), device)
    if expect_sha256 is not None and (len(expect_sha256) < 32 or not digest.startswith(expect_sha256)):
        raise ModelMismatchError(
            f"this file was made with other '{name}' weights (sha256 {expect_sha256[:12]}…) than the "
            f"installed ones ({digest[:12]}…): decode it with the dulzip version that wrote it")
    return net, digest


def save_weights(tensors: dict[str, torch.Tensor], path: Path, architecture: str, config: dict) -> str:
    """Write exported integer tensors as safetensors; returns the file's sha256.

    The same tensors always give the same bytes (so the same sha256): safetensors writes its
    metadata in a hash map's order, which changes from one process to the next, so the header is
    rewritten with the metadata sorted (same tensors, same data offsets)."""
    from safetensors.torch import save
    raw = save({k: v.contiguous() for k, v in tensors.items()},
               metadata={"architecture": architecture, "config": json.dumps(config, sort_keys=True)})
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(len(head).to_bytes(8, "little") + head + raw[8 + n:])
    return sha256_file(path)
