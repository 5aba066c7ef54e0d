"""The six crops the pyramid mixer's changes were measured on (exact.pyramidmix's docstring):
bits per sub-pixel of each (encode only, every band model-coded) and their mean.

    DULZIP_MODELS=models/wip python benchmarks/experiments/pyramid_crops.py [--model pyramid] [--no-prime] [--tile 256]

Crops: ladybird-256 (tests/data, whole); the 384 x 384 centre crops of Storm and coffee
(photos-test) and Dragonfly (photos-test2); camera in gray (photos-test-gray, 384 x 384); the
256 x 256 centre of Stripes (graphics-test, as RGB). The corpora come from
``python benchmarks/corpora/images.py --out data/corpora``. Quick (about 20 s once the mixer is
compiled) and deterministic: a change to the mixer shows as a change of these numbers. One
thread, so that it can run beside a training run. The mixer's docstring figures were measured
with 256 x 256 tiles (``--tile 256``: pyramid-9a5f2d48 unprimed, mean 2.5283); the codec's
default is now 512 (mean 2.5229).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dulzip import zoo
from dulzip.codecs import pyramid as cp

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "data" / "corpora"
CROPS = [(ROOT / "tests/data/ladybird-256.png", 0, "RGB"), (CORPORA / "photos-test/mate-Storm.png", 384, "RGB"),
         (CORPORA / "photos-test/skimage-coffee.png", 384, "RGB"),
         (CORPORA / "photos-test2/lomiri-Dragonfly_by_Bolly.png", 384, "RGB"),
         (CORPORA / "photos-test-gray/skimage-camera.png", 384, "L"), (CORPORA / "graphics-test/mate-Stripes.png", 256, "RGB")]


def crop(path: Path, side: int, mode: str) -> np.ndarray:
    img = np.asarray(Image.open(path).convert(mode))
    img = img if img.ndim == 3 else img[:, :, None]
    if side:
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        img = img[y:y + side, x:x + side]
    return np.ascontiguousarray(img)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="pyramid")
    ap.add_argument("--no-prime", action="store_true", help="the mixer from its priors, not the model's primed state")
    ap.add_argument("--tile", type=int, default=None, help="tile side (default: the model's)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    net = zoo.load(a.model)[0]
    if a.no_prime:
        net.prime = {}
    total = 0.0
    for path, side, mode in CROPS:
        img = crop(path, side, mode)
        t = time.perf_counter()
        bits = 8 * sum(len(s.payload) for s in cp.encode_pyramid(img, net, a.tile, allow_zstd=False))
        total += bits / img.size
        print(f"{path.name:40s} {bits / img.size:.4f} bits/sub-pixel ({time.perf_counter() - t:.1f} s)", flush=True)
    print(f"mean {total / len(CROPS):.4f}")


if __name__ == "__main__":
    main()
