"""Baseline codecs behind one small interface, for benchmarks."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import zstandard
from PIL import Image


@dataclass(frozen=True)
class Codec:
    name: str
    encode: Callable[[np.ndarray], bytes]  # (H, W, C) uint8 -> compressed bytes


def _pil(img: np.ndarray) -> Image.Image:
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[img.shape[2]]
    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img, mode)


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    _pil(img).save(buf, format="PNG", compress_level=9, optimize=True)
    return buf.getvalue()


def zstd19(img: np.ndarray) -> bytes:
    return zstandard.ZstdCompressor(level=19).compress(np.ascontiguousarray(img).tobytes())


def image_codecs() -> list[Codec]:
    """PNG and zstd always; WebP, JPEG-XL and JPEG-LS lossless where imagecodecs is installed."""
    out = [Codec("PNG (Pillow -9, optimize)", png), Codec("zstd -19 (raw pixels)", zstd19)]
    try:
        import imagecodecs
    except ImportError:
        return out
    sq = (lambda a: a[:, :, 0] if a.shape[2] == 1 else a)
    out.append(Codec("WebP lossless (m6, q100)", lambda a: imagecodecs.webp_encode(a, lossless=True, level=100, method=6)))
    out.append(Codec("JPEG-XL lossless (e7)", lambda a: imagecodecs.jpegxl_encode(sq(a), lossless=True, effort=7)))
    out.append(Codec("JPEG-LS", lambda a: imagecodecs.jpegls_encode(sq(a), level=0)))
    return out
