"""A 16-bit test set from the held-out photographs' sources, before their 8-bit reduction.

``images.py`` reduces each photograph by an integer box filter (PIL ``Image.reduce``: the mean of
each k x k block) and stores 8 bits. Here the same held-out photographs of ``photos-test``
(mate-backgrounds' Dune, LadyBird, Storm) are reduced by the same factor but the block's sum is
kept: scaled to 0..65535 (round(sum * 65535 / (255 k^2))), so a sample holds all the information
the k^2 8-bit source values give (about 8 + 2 log2 k bits) and nothing invented. scikit-image's
photographs (the rest of ``photos-test``) are at most 1000 px already (factor 1): 8 bits of
information only, so they are left out.

    python benchmarks/corpora/images16.py --out data/corpora

writes ``photos16-test/``: each photograph as 16-bit RGB PNG, its gray version (the 8-bit luma of
each source pixel, PIL's ITU-R 601, summed the same way) as 16-bit gray PNG, and one of each as
16-bit PPM and PGM. The PNGs are written by dulzip's PNG builder (Pillow writes 16-bit gray
only) with Pillow's filter choice and zlib level 9.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debs import cached_corpus_main, fetch_deb  # noqa: E402  (a script folder)
from images import HELD_OUT_MATE, MAX_SIDE  # noqa: E402

PNM_ONE = "Storm"  # the photograph also stored as PPM and PGM


def box_factor(size: tuple[int, int]) -> int:
    """images.reduce_photo's factor: the least that brings the long side to <= MAX_SIDE."""
    factor = 1
    while max(size) / factor > MAX_SIDE:
        factor += 1
    return factor


def reduce16(a: np.ndarray, k: int) -> np.ndarray:
    """(H, W, C) uint8 -> (H // k, W // k, C) uint16: each k x k block's sum scaled to 0..65535,
    rounded (the right and bottom remainders dropped, as Image.reduce does with whole blocks)."""
    H, W = a.shape[0] // k, a.shape[1] // k
    s = a[:H * k, :W * k].astype(np.int64).reshape(H, k, W, k, -1).sum((1, 3))
    full = 255 * k * k
    return ((2 * s * 65535 + full) // (2 * full)).astype(np.uint16)


def png16(a: np.ndarray) -> bytes:
    from dulzip.formats import png
    H, W, C = a.shape
    filters = png.pillow_filters(png.scanlines(a, 16), png.bytes_per_pixel(C, 16), True)
    return png.build(a, png.standard_chunks(W, H, C, 16), None, filters, (9, 8, 0), 16)


def pnm16(a: np.ndarray) -> bytes:
    H, W, C = a.shape
    return (b"P5" if C == 1 else b"P6") + b"\n%d %d\n65535\n" % (W, H) + a.astype(">u2").tobytes()


def build(out: Path, cache: Path) -> None:
    dst = out / "photos16-test"
    dst.mkdir(parents=True, exist_ok=True)
    mate = fetch_deb("mate-backgrounds", cache) / "usr/share/backgrounds/mate/nature"
    for name in sorted(HELD_OUT_MATE):
        img = Image.open(mate / f"{name}.jpg")
        k = box_factor(img.size)
        rgb = reduce16(np.asarray(img.convert("RGB")), k)
        gray = reduce16(np.asarray(img.convert("L"))[:, :, None], k)
        (dst / f"mate-{name}-rgb16.png").write_bytes(png16(rgb))
        (dst / f"mate-{name}-gray16.png").write_bytes(png16(gray))
        if name == PNM_ONE:
            (dst / f"mate-{name}-rgb16.ppm").write_bytes(pnm16(rgb))
            (dst / f"mate-{name}-gray16.pgm").write_bytes(pnm16(gray))
        print(f"{name}: factor {k}, {rgb.shape[1]}x{rgb.shape[0]}, {len(np.unique(rgb))} levels used")


if __name__ == "__main__":
    cached_corpus_main(build, __doc__.splitlines()[0])
