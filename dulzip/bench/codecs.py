"""Baseline codecs behind one small interface, for benchmarks."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from dulzip.coding import zstdio


@dataclass(frozen=True)
class Codec:
    name: str
    encode: Callable[[np.ndarray], bytes]  # (H, W, C) uint8 -> compressed bytes


def _pil(img: np.ndarray) -> Image.Image:
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[img.shape[2]]
    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img, mode)


def png(img: np.ndarray) -> bytes:
    """PNG, Pillow level 9 with optimize; a gray image whose levels are all 0 or 255 as 1-bit."""
    buf = io.BytesIO()
    if img.shape[2] == 1 and np.isin(img, (0, 255)).all():
        Image.fromarray(img[:, :, 0] > 127).save(buf, format="PNG", compress_level=9, optimize=True)
    else:
        _pil(img).save(buf, format="PNG", compress_level=9, optimize=True)
    return buf.getvalue()


def zstd19(img: np.ndarray) -> bytes:
    return zstdio.compress(np.ascontiguousarray(img).tobytes())


def image_codecs() -> list[Codec]:
    """PNG and zstd always; WebP, JPEG-XL and JPEG-LS lossless where imagecodecs is installed."""
    out = [Codec("PNG (Pillow -9, optimize)", png), Codec("zstd -19 (raw pixels)", zstd19)]
    try:
        import imagecodecs
    except ImportError:
        return out
    out.append(Codec("WebP lossless (m6, q100)",
                     lambda a: imagecodecs.webp_encode(_rgb(a), lossless=True, level=100, method=6)))
    out.append(Codec("JPEG-XL lossless (e7)",
                     lambda a: imagecodecs.jpegxl_encode(_squeeze(_no_gray_alpha(a)), lossless=True, effort=7)))
    out.append(Codec("JPEG-LS", lambda a: imagecodecs.jpegls_encode(_squeeze(_no_gray_alpha(a)), level=0)))
    return out


def _squeeze(a: np.ndarray) -> np.ndarray:
    return a[:, :, 0] if a.shape[2] == 1 else a


def _no_gray_alpha(a: np.ndarray) -> np.ndarray:
    """Gray + alpha as RGBA (what codecs without a gray-alpha mode are given)."""
    return np.concatenate([a[:, :, :1]] * 3 + [a[:, :, 1:]], axis=2) if a.shape[2] == 2 else a


def _rgb(a: np.ndarray) -> np.ndarray:
    """WebP has no gray mode: gray is given as RGB (alpha kept)."""
    return _no_gray_alpha(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)
