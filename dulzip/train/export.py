"""Training checkpoint -> shipped model: integer safetensors weights and a JSON card.

Drops the optimizer, exports the fake-quantized float module to exact integer tensors,
names the file after its sha256 prefix (as released weights should be), and records the
config next to the weights so the model is rebuilt from the file alone.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from dulzip.errors import DulzipWarning
from dulzip.models.registry import ARCHITECTURES
from dulzip.train.loop import load_checkpoint
from dulzip.zoo import save_weights

# the sample priming an image mixer: with the pyramid coder's, on six crops, 16 photographs -0.34%,
# 48 no better (-0.34%)
PRIME_PHOTOS, PRIME_SIDE, PRIME_GRAY = 16, 256, 8


def sample_text(folder: str | Path, n: int) -> bytes:
    """About n bytes of the text under ``folder``: an equal contiguous piece from the middle
    of every file (the sample that primes a text model's adaptive state)."""
    files = [p for p in sorted(Path(folder).rglob("*")) if p.is_file()]
    each = n // max(1, len(files))
    out = []
    for p in files:
        data = p.read_bytes()
        mid = max(0, len(data) // 2 - each // 2)
        out.append(data[mid:mid + each])
    return b"".join(out)


def sample_photos(folder: str | Path, n: int = PRIME_PHOTOS, side: int = PRIME_SIDE) -> list[np.ndarray]:
    """n centre crops (side x side at most) of the photographs under ``folder``, spread evenly
    over its sorted files, every PRIME_GRAY-th made gray (Pillow's luma): the sample that primes
    an image mixer's adaptive state."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".ppm"))
    picked = [files[(i * len(files)) // n] for i in range(min(n, len(files)))]
    out = []
    for i, p in enumerate(picked):
        img = Image.open(p)
        img = img.convert("L" if i % PRIME_GRAY == PRIME_GRAY - 1 else "RGB")
        a = np.asarray(img)
        y, x = max(0, (a.shape[0] - side) // 2), max(0, (a.shape[1] - side) // 2)
        a = a[y:y + side, x:x + side]
        out.append(np.ascontiguousarray(a if a.ndim == 3 else a[:, :, None]))
    return out


def export_checkpoint(ckpt_path: str | Path, name: str, out_dir: str | Path, card: dict | None = None,
                      prime_text: bytes | None = None) -> Path:
    """``prime_text``: for a text model, training text whose coding sets the adaptive state the
    model ships with (see dulzip.codecs.text.prime). A family with a ``primer`` (the pyramid
    coder's) is primed on photographs of its training folder (:func:`sample_photos`)."""
    ck = load_checkpoint(Path(ckpt_path))
    arch = ck.get("arch", "pixelcnn")
    a = ARCHITECTURES[arch]
    cfg = a.config(**ck["model_config"])
    model = a.module(cfg)
    model.load_state_dict(ck.get("ema", ck["model"]))  # the moving average of the weights
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = a.export(model)
    if prime_text:
        from dulzip.codecs.text import prime
        tensors.update(prime(a.load_runtime(tensors, asdict(cfg), "cpu"), prime_text))
    if a.primer and not Path(ck["train_config"].get("data") or "").is_dir():
        warnings.warn(f"{arch}: the training folder {ck['train_config'].get('data')!r} is not here, so the model "
                      "is exported without the adaptive state it would be primed with (it codes, a little larger)",
                      DulzipWarning, stacklevel=2)
    elif a.primer:
        images = sample_photos(ck["train_config"]["data"])
        tensors.update(a.prime(a.load_runtime(tensors, asdict(cfg), "cpu"), images))
        card = {**(card or {}), "primed_on": {"photographs": len(images), "side": PRIME_SIDE,
                                              "gray_every": PRIME_GRAY, "folder": ck["train_config"]["data"]}}
    return _install(tensors, name, out_dir, arch, asdict(cfg), card, prime_text, {
        "parameters": a.n_params(model), "training_steps": ck["step"], "train_config": ck["train_config"]})


def reprime(name: str, prime_text: bytes, out_dir: str | Path, keep_state: bool = False) -> Path:
    """A shipped text model with its adaptive starting state made afresh on ``prime_text`` by
    this version's mixer (the network's weights unchanged): new weights file, the card kept.
    ``keep_state``: start from the model's current state (an older mixer's tables go where the
    new mixer reads them) instead of from priors."""
    from dulzip.codecs.text import prime
    from dulzip.zoo import load_tensors
    tensors, arch, cfg, _ = load_tensors(name, out_dir)
    if not keep_state:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("prime.")}
    tensors.update(prime(ARCHITECTURES[arch].load_runtime(tensors, cfg, "cpu"), prime_text))
    return _install(tensors, name, Path(out_dir), arch, cfg, None, prime_text, {})


def _install(tensors: dict, name: str, out_dir: Path, arch: str, cfg: dict, card: dict | None,
             prime_text: bytes | None, trained: dict) -> Path:
    """Write the weights as <name>-<sha256 prefix>.safetensors and its card beside them (the current
    card's fields kept unless given anew). The version it replaces stays installed, its card marked
    retired, so that the files made with it still decode (``zoo.load`` picks a file's version)."""
    tmp = out_dir / f"{name}.tmp.safetensors"
    digest = save_weights(tensors, tmp, arch, cfg)
    final = out_dir / f"{name}-{digest[:8]}.safetensors"
    tmp.replace(final)
    final.chmod(0o644)
    # the card sits beside its weights, with the same name: <name>-<sha256 prefix>.json
    cards = [(p, json.loads(p.read_text())) for p in out_dir.glob(f"{name}*.json")]
    current = [(p, c) for p, c in cards if c.get("name") == name and not c.get("retired")]
    old_card = dict(current[0][1]) if current else {}
    for p, c in current:
        if c.get("sha256") == digest or not (out_dir / c.get("weights", "")).is_file():
            p.unlink()  # the same weights again, or a card without weights
        else:
            c.update({"retired": True, "superseded_by": final.name})
            p.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")
    card_path = final.with_suffix(".json")
    info = {**old_card, **(card or {})}
    info.update({"name": name, "architecture": arch, "weights": final.name, "sha256": digest, "config": cfg})
    if trained:
        info.update({"parameters": trained["parameters"], "training": {
            **info.get("training", {}), "steps": trained["training_steps"], "config": trained["train_config"]}})
    if prime_text:
        info["primed_on_bytes"] = len(prime_text)
    card_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return final
