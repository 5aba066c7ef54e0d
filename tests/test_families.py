"""One registration per model family: a new family is its model file (float module, config,
export, training defaults, ``FAMILY = Family(...)``) and its runtime file, nothing else. The toy
family below is written into the dulzip.models and dulzip.exact packages' search paths (as if
its two files had been added to the checkout) and then trains, exports and loads through the
registry, ``dulzip train`` and the zoo, none of which names it."""
from __future__ import annotations

import json
import sys
import textwrap

import pytest
from click.testing import CliRunner

import dulzip.exact
import dulzip.models
from dulzip.cli import main
from dulzip.models import registry

MODEL = '''
"""A toy family: one learned distribution over bytes (the float side)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from dulzip.models.registry import Family
from dulzip.train.data import Source


@dataclass
class ToyConfig:
    scale: int = 16


class Toy(nn.Module):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg = cfg
        self.logits = nn.Parameter(torch.zeros(256))

    def loss(self, x, gray):
        return F.cross_entropy(self.logits.expand(x.numel(), 256), x.flatten()) / math.log(2)


def export(model: Toy) -> dict:
    return {"logits": torch.round(model.logits.detach() * model.cfg.scale).to(torch.int32)}


class Bytes(Source):
    """Random bytes: a plan (which samples) is drawn from the generator dulzip gives for each
    global batch; load makes them a tensor (a real family reads its files here)."""

    def plan(self, rng, n):
        return rng.integers(0, 256, (n, 8))

    def load(self, plan):
        return torch.from_numpy(plan), None


def sampler(t, cfg, folder, files):
    return Bytes()


FAMILY = Family(
    name="toy", modality="text", runtime="dulzip.exact.toy:ExactToy", summary="a worked example",
    config=ToyConfig, module=Toy, export=export, sampler=sampler,
    options=lambda o: ToyConfig(scale=o["head"] or 16))
'''

RUNTIME = '''
"""The toy family's exact runtime (a dulzip.exact.runtime.TextRuntime, in part)."""
import torch


class ExactToy:
    modality = "text"

    def __init__(self, tensors, config, device="cpu"):
        self.logits = tensors["logits"].to(torch.int64)
        self.scale = config["scale"]
        self.device = torch.device(device)
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy family's two files, where the packages look for modules."""
    (tmp_path / "models").mkdir()
    (tmp_path / "exact").mkdir()
    (tmp_path / "models" / "toy.py").write_text(textwrap.dedent(MODEL))
    (tmp_path / "exact" / "toy.py").write_text(textwrap.dedent(RUNTIME))
    monkeypatch.setattr(dulzip.models, "__path__", [*dulzip.models.__path__, str(tmp_path / "models")])
    monkeypatch.setattr(dulzip.exact, "__path__", [*dulzip.exact.__path__, str(tmp_path / "exact")])
    registry.rescan()
    yield
    for m in ("dulzip.models.toy", "dulzip.exact.toy"):
        sys.modules.pop(m, None)
    monkeypatch.undo()
    registry.rescan()


def test_a_new_family_is_found_without_importing_it(toy):
    assert registry.modality("toy") == "text"
    assert "toy" in registry.names() and "dulzip.models.toy" not in sys.modules
    fam = registry.ARCHITECTURES["toy"]
    assert fam.name == "toy" and registry.family_of(fam.config()) is fam
    assert {"pixelcnn", "idf", "made", "charrnn", "wavenet"} <= set(registry.names())


def test_a_new_family_trains_exports_and_loads(toy, tmp_path, monkeypatch):
    help_text = " ".join(CliRunner().invoke(main, ["train", "--help"]).output.split())
    assert "|toy|" in help_text and "toy: a worked example" in help_text
    models = tmp_path / "zoo"
    r = CliRunner().invoke(main, ["train", "--arch", "toy", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                                  "--steps", "2", "--batch", "2", "--head", "8", "--prime-bytes", "0", "--heldout", "0",
                                  "--no-progress", "--export", "mini", "--models-dir", str(models)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (card_path,) = models.glob("mini-*.json")
    card = json.loads(card_path.read_text())
    assert card["architecture"] == "toy" and card["config"] == {"scale": 8}
    monkeypatch.setenv("DULZIP_MODELS", str(models))
    from dulzip import zoo
    net, _ = zoo.load("mini")
    assert type(net).__name__ == "ExactToy" and net.scale == 8 and net.logits.shape == (256,)


def test_declarations_must_be_literal(tmp_path, monkeypatch):
    """The scan reads name, modality, codec and summary without running the file."""
    (tmp_path / "bad.py").write_text('KIND = "text"\n\nFAMILY = Family(name="bad", modality=KIND)\n')
    monkeypatch.setattr(dulzip.models, "__path__", [*dulzip.models.__path__, str(tmp_path)])
    registry.rescan()
    try:
        with pytest.raises(ValueError, match="literal"):
            registry.names()
    finally:
        monkeypatch.undo()
        registry.rescan()


def test_every_shipped_family_declares_what_the_codecs_read():
    """The runtime attributes of dulzip.exact.runtime's Protocols, as class attributes."""
    from dulzip.kinds.image import DEFAULT_TILE
    for name in registry.names():
        fam = registry.family(name)
        cls = registry._resolve(fam.runtime)
        assert cls.modality == fam.modality, name
        if fam.modality == "image":
            assert cls.codec == fam.codec and isinstance(cls.gray_only, bool), name
            assert "fixed_tile" in vars(cls) or "fixed_tile" in cls.__annotations__, name
            if fam.codec == "autoregressive":
                assert cls.default_tile == DEFAULT_TILE and hasattr(cls, "wave_delay"), name


def test_a_family_with_a_primer_ships_its_primed_state(tmp_path, monkeypatch):
    """The pyramid family declares a primer: its export codes a sample of the training folder
    and the weights file carries the mixer's starting state, named on the card."""
    from PIL import Image
    from tests.conftest import photo
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(3):
        Image.fromarray(photo(40, 48, 3, seed=i)).save(data / f"p{i}.png")
    models = tmp_path / "zoo"
    r = CliRunner().invoke(main, ["train", "--arch", "pyramid", "--data", str(data), "--out", str(tmp_path / "run"),
                                  "--steps", "1", "--batch", "1", "--crop", "32", "--hidden", "8", "--layers", "1",
                                  "--no-progress", "--export", "prim", "--models-dir", str(models)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (card_path,) = models.glob("prim-*.json")
    card = json.loads(card_path.read_text())
    assert card["primed_on"]["photographs"] == 3
    monkeypatch.setenv("DULZIP_MODELS", str(models))
    from dulzip import zoo
    net, _ = zoo.load("prim")
    assert set(net.prime) == {"prime.weights", "prime.weights_f", "prime.maps", "prime.lms"}
