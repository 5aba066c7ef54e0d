"""Shared fixtures: a tiny exported PixelCNN in a temporary models folder (fast tests of the
model path), and helpers."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from dulzip.models import n_params
from dulzip.models.pixelcnn import PixelCNN, PixelCNNConfig, export
from dulzip.zoo import save_weights

DATA = Path(__file__).parent / "data"
TINY = PixelCNNConfig(channels=8, layers=2, head=16, mixtures=2)


def tiny_model(seed: int = 0, cfg: PixelCNNConfig = TINY) -> PixelCNN:
    torch.manual_seed(seed)
    m = PixelCNN(cfg)
    with torch.no_grad():  # a sharper head than at init, so tables are far from uniform
        m.head2.weight.mul_(10)
        m.skip_v.weight.normal_(0, 0.05)
        m.skip_h.weight.normal_(0, 0.05)
    return m.eval()


def write_model(folder: Path, name: str = "pixelcnn", seed: int = 0, cfg: PixelCNNConfig = TINY) -> str:
    m = tiny_model(seed, cfg)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    digest = save_weights(export(m), path, "pixelcnn", asdict(cfg))
    card = {"name": name, "architecture": "pixelcnn", "weights": path.name, "sha256": digest,
            "config": asdict(cfg), "parameters": n_params(m)}
    (folder / f"{name}.json").write_text(json.dumps(card))
    return digest


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture
def tiny_models(tmp_path, monkeypatch) -> Path:
    """DULZIP_MODELS -> a folder with a tiny random 'pixelcnn'."""
    folder = tmp_path / "models"
    write_model(folder)
    monkeypatch.setenv("DULZIP_MODELS", str(folder))
    return folder


def photo(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    """A crop of the real test photo (tiled if larger), as (h, w, c) uint8."""
    from PIL import Image
    base = np.asarray(Image.open(DATA / "ladybird-256.png").convert("RGB"))
    rng = np.random.default_rng(seed)
    y, x = rng.integers(0, 256 - min(h, 256) + 1), rng.integers(0, 256 - min(w, 256) + 1)
    img = np.tile(base, (h // 256 + 1, w // 256 + 1, 1))[y:y + h, x:x + w]
    if c == 1:
        return img[:, :, :1].copy()
    if c == 2:
        return np.dstack([img[:, :, 0], rng.integers(0, 256, (h, w), dtype=np.uint8)])
    if c == 4:
        return np.dstack([img, rng.integers(0, 256, (h, w), dtype=np.uint8)])
    return img.copy()


TINY_TEXT = {"embed": 8, "hidden": 16}


def write_text_model(folder: Path, name: str = "charrnn", seed: int = 0, prime: bytes = b"") -> str:
    """A tiny random char-RNN (optionally primed on ``prime``) exported into ``folder``."""
    from dulzip.codecs.text import prime as prime_state
    from dulzip.exact.charrnn import ExactCharRNN
    from dulzip.models.charrnn import CharRNN, CharRNNConfig
    from dulzip.models.charrnn import export as export_text
    from dulzip.models import n_params as text_params
    torch.manual_seed(seed)
    m = CharRNN(CharRNNConfig(**TINY_TEXT)).eval()
    with torch.no_grad():
        m.head.weight.mul_(4)
    tensors = export_text(m)
    if prime:
        tensors.update(prime_state(ExactCharRNN(tensors, TINY_TEXT), prime))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    digest = save_weights(tensors, path, "charrnn", TINY_TEXT)
    card = {"name": name, "architecture": "charrnn", "weights": path.name, "sha256": digest,
            "config": TINY_TEXT, "parameters": text_params(m)}
    (folder / f"{name}.json").write_text(json.dumps(card))
    return digest


@pytest.fixture
def text_models(tmp_path, monkeypatch) -> Path:
    """DULZIP_MODELS -> a folder with a tiny 'pixelcnn' and a tiny primed 'charrnn'."""
    folder = tmp_path / "models"
    write_model(folder)
    write_text_model(folder, prime=(DATA.parent.parent / "README.md").read_bytes()[:3000])
    monkeypatch.setenv("DULZIP_MODELS", str(folder))
    return folder


TINY_AUDIO = {"channels": 8, "layers": 4, "cycle": 4, "skip": 16, "head": 16, "mixtures": 3, "filters": 3,
              "taps": 8}


TINY_AUDIO_SEG = {**TINY_AUDIO, "seg_order": 4, "resid": True}  # each segment's own predictor (music)
TINY_AUDIO_RES = {**TINY_AUDIO, "resid": True}  # the network sees shared filter 0's residuals


def tiny_wavenet(seed: int = 0, cfg: dict = TINY_AUDIO):
    """A tiny random WaveNet whose head is sharp enough that tables are far from uniform."""
    from dulzip.models.wavenet import WaveNet, WaveNetConfig
    torch.manual_seed(seed)
    m = WaveNet(WaveNetConfig(**cfg)).eval()
    with torch.no_grad():
        m.head2.weight.normal_(0, 0.3)
    return m


def write_audio_model(folder: Path, name: str = "wavenet", seed: int = 0, cfg: dict = TINY_AUDIO) -> str:
    from dulzip.models.wavenet import export as export_audio
    from dulzip.models import n_params as audio_params
    m = tiny_wavenet(seed, cfg)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    digest = save_weights(export_audio(m), path, "wavenet", cfg)
    card = {"name": name, "architecture": "wavenet", "weights": path.name, "sha256": digest,
            "config": cfg, "parameters": audio_params(m)}
    (folder / f"{name}.json").write_text(json.dumps(card))
    return digest


@pytest.fixture
def audio_models(tmp_path, monkeypatch) -> Path:
    """DULZIP_MODELS -> a folder with a tiny 'pixelcnn', a tiny 'wavenet' and a tiny
    'wavenet-music' (which sends each segment's own predictor)."""
    folder = tmp_path / "models"
    write_model(folder)
    write_audio_model(folder)
    write_audio_model(folder, "wavenet-music", 2, TINY_AUDIO_SEG)
    monkeypatch.setenv("DULZIP_MODELS", str(folder))
    return folder
