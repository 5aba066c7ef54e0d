"""PNGs as optimizers and other writers make them: the test set of byte-identical PNGs (issue 24).

zlib reproduces a PNG's IDAT stream only when the writer used zlib with settings we can guess;
most PNGs on the web come from optimizers. This script writes the same images through each
optimizer Debian packages, and keeps PNGs exactly as Debian packages ship them:

    python benchmarks/corpora/png_writers.py --out data/corpora/png-writers

- ``shipped/``: PNGs as packaged (screenshots and diagrams in valgrind's and gnupg's
  documentation, Adwaita icons), whatever wrote them;
- ``optipng/`` (``optipng -o7``), ``zopflipng/`` (``zopflipng -m``), ``pngcrush/`` (``pngcrush
  -brute`` on images up to 300k pixels, else its default trials), ``advpng/`` (``advpng -z -4``,
  7-Zip's deflate), ``imagemagick/`` (``convert``, its defaults): each of the sources below
  rewritten by that tool;
- the sources: three held-out photographs (``photos-test``), two graphics and three palette
  screenshots of the image corpora (``benchmarks/corpora/images.py`` makes them), and the
  shipped PNGs.

Each output is checked to hold the source's pixels; a writer that fails on a source (pngcrush
refuses mate-Float-into-MATE's edited sRGB profile) leaves it out. Needs the Debian packages
optipng, zopfli, pngcrush, advancecomp and imagemagick.
oxipng is not packaged for this Debian release, so it is not among them.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debs import deb_corpus_main, fetch_deb  # noqa: E402  (a script folder)

SHIPPED = [  # (package, path inside it)
    ("valgrind", "usr/share/doc/valgrind/html/images/kcachegrind_xtree.png"),
    ("valgrind", "usr/share/doc/valgrind/html/images/dh-tree.png"),
    ("gnupg", "usr/share/info/gnupg-module-overview.png"),
    ("adwaita-icon-theme", "usr/share/icons/Adwaita/512x512/devices/camera-web.png"),
    ("adwaita-icon-theme", "usr/share/icons/Adwaita/512x512/mimetypes/x-office-document.png"),
]
FROM_CORPORA = ["photos-test/skimage-astronaut.png", "photos-test/mate-Dune.png", "photos-test/skimage-coffee.png",
                "graphics-test/mate-Stripes.png", "graphics-test/mate-Float-into-MATE.png",
                "palette-test/kstars-capture_settings.png", "palette-test/python3.11-pathlib-inheritance.png",
                "palette-test/supertuxkart-drift.png"]


def _same_pixels(a: Path, b: Path) -> bool:
    try:
        x, y = Image.open(a), Image.open(b)
        return x.size == y.size and x.convert("RGBA").tobytes() == y.convert("RGBA").tobytes()
    except Exception:
        return False


def tools(src: Path, dst: Path) -> dict[str, list[str]]:
    """The command of each writer that turns src into dst."""
    w, h = Image.open(src).size
    crush = ["-brute"] if w * h <= 300_000 else []
    return {
        "optipng": ["optipng", "-quiet", "-o7", "-out", str(dst), str(src)],
        "zopflipng": ["zopflipng", "-m", "-y", str(src), str(dst)],
        "pngcrush": ["pngcrush", "-q", *crush, str(src), str(dst)],
        "advpng": ["sh", "-c", f"cp '{src}' '{dst}' && advpng -q -z -4 '{dst}'"],
        "imagemagick": ["/usr/bin/convert", str(src), str(dst)],  # Debian's (not a stand-in on the PATH)
    }


def build(out: Path, work: Path) -> None:
    shipped = out / "shipped"
    shipped.mkdir(parents=True, exist_ok=True)
    for pkg, path in SHIPPED:
        root = fetch_deb(pkg, work)
        shutil.copyfile(root / path, shipped / Path(path).name)
    corpora = out.parent
    sources = [corpora / p for p in FROM_CORPORA if (corpora / p).exists()] + sorted(shipped.glob("*.png"))
    for src in sources:
        for tool, _ in tools(src, src).items():
            dst = out / tool / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                continue
            done = subprocess.run(tools(src, dst)[tool], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if done.returncode or not _same_pixels(src, dst):  # pngcrush refuses some sRGB profiles
                dst.unlink(missing_ok=True)
                print(tool, src.name, "failed: left out", flush=True)
                continue
            print(tool, src.name, dst.stat().st_size, flush=True)


if __name__ == "__main__":
    deb_corpus_main(build, "data/corpora/png-writers", __doc__.split("\n")[0])
