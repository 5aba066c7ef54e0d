"""A tiny model of every shipped family trained for a few steps, in one process or as one rank of
a torchrun (tests/test_distributed.py runs it both ways and compares the losses):

    torchrun --standalone --nproc_per_node 2 -m tests.ddp_families DATA RUNS --steps 3
    python -m tests.ddp_families DATA RUNS --steps 3

DATA holds images/, digits/, text/ and audio/ (made by :func:`make_data`); each family trains in
RUNS/<family> with the same seed and global batch whatever the number of processes, logging the
loss of every step. A run folder that holds a checkpoint resumes from it (on any number of
processes)."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).parent / "data"
# family -> (data folder, model config, TrainConfig fields beyond the shared ones)
TINY = {
    "pixelcnn": ("images", dict(channels=8, layers=2, head=16), dict(crop=16)),
    "idf": ("images", dict(levels=2, couplings=1, hidden=8, prior_hidden=8), dict(crop=16)),
    "pyramid": ("images", dict(hidden=8, layers=1), dict(crop=32)),
    "made": ("digits", dict(size=6, hidden=8, mixtures=2), {}),
    "charrnn": ("text", dict(embed=8, hidden=16), dict(seq=32, segment=64)),
    "wavenet": ("audio", dict(channels=4, layers=3, head=8, skip=8, seg_order=4, resid=True), dict(seq=256)),
}


def make_data(root: Path) -> Path:
    """The test data as the families read it: photographs, 6x6 gray digits, text, WAVs."""
    for sub in ("images", "digits", "text", "audio"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for p in ("ladybird-256.png", "dune-47x37.png", "dune-47x37.ppm"):
        shutil.copy(DATA / p, root / "images" / p)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).save(root / "digits" / f"{i}.png")
    readme = (Path(__file__).parents[1] / "README.md").read_bytes()
    (root / "text" / "readme.md").write_bytes(readme[:6000])
    (root / "text" / "design.md").write_bytes(readme[6000:9000] or readme[:3000])
    for p in ("fluidr3-0507-Clarinet_E4_L.wav", "asterisk-confbridge-participants.wav"):
        shutil.copy(DATA / p, root / "audio" / p)
    return root


def train_all(data: Path, runs: Path, steps: int, families: list[str]) -> None:
    from dulzip.models import registry
    from dulzip.train import dist
    from dulzip.train.loop import TrainConfig, train_model
    try:
        for name in families:
            folder, model, extra = TINY[name]
            fam = registry.family(name)
            tcfg = TrainConfig(data=str(data / folder), out=str(runs / name), steps=steps, batch=4, warmup=2, lr=3e-3,
                               log_every=1, heldout=0, checkpoint_every=10 ** 6, threads=1, **extra)
            train_model(tcfg, fam.config(**model), progress=False)
    finally:
        dist.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("runs", type=Path)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--families", nargs="*", default=list(TINY))
    ap.add_argument("--make-data", action="store_true")
    a = ap.parse_args()
    if a.make_data:
        make_data(a.data)
    else:
        train_all(a.data, a.runs, a.steps, a.families)
