"""Baseline general-purpose byte codecs behind one small interface, for the text benchmarks."""
from __future__ import annotations

import bz2
import lzma
import struct
from dataclasses import dataclass
from typing import Callable

import zstandard

from dulzip.coding import zstdio

try:
    import brotli
except ImportError:
    brotli = None
try:
    import pyppmd
except ImportError:
    pyppmd = None


@dataclass(frozen=True)
class ByteCodec:
    name: str
    encode: Callable[[bytes], bytes]
    decode: Callable[[bytes], bytes]


ZSTD_WINDOW_LOG = 27
# 7-Zip's PPMd settings at -mx=9 (CEncProps::Normalize): model order 32, 192 MB of model memory
# (7-Zip 23 raised it to 256 MB, which only matters for inputs that fill 192 MB).
PPMD_ORDER, PPMD_MEM = 32, 192 << 20


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)


def _zstd_ultra(data: bytes) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(22, enable_ldm=True, window_log=ZSTD_WINDOW_LOG)
    return zstandard.ZstdCompressor(compression_params=params).compress(data)


def _unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor(max_window_size=1 << ZSTD_WINDOW_LOG).decompress(data)


def _ppmd(data: bytes) -> bytes:
    """PPMd var. H (7z's PPMd) after the input's length (8 bytes, little-endian), which the
    decoder needs (7z keeps it in its archive headers)."""
    enc = pyppmd.Ppmd7Encoder(PPMD_ORDER, PPMD_MEM)
    return struct.pack("<Q", len(data)) + enc.encode(data) + enc.flush()


def _unppmd(data: bytes) -> bytes:
    (n,) = struct.unpack_from("<Q", data)
    out = pyppmd.Ppmd7Decoder(PPMD_ORDER, PPMD_MEM).decode(data[8:], n)
    if len(out) != n:
        raise ValueError(f"PPMd stream decoded to {len(out)} bytes, expected {n}")
    return out


def text_codecs() -> list[ByteCodec]:
    """xz, zstd (ultra and -19) and bzip2 always; brotli and PPMd where their packages are installed."""
    out = [ByteCodec("xz -9e", _xz, lzma.decompress),
           ByteCodec("zstd --ultra -22 --long", _zstd_ultra, _unzstd)]
    if brotli is not None:
        out.append(ByteCodec("brotli -q 11", lambda d: brotli.compress(d, quality=11, lgwin=24),
                             brotli.decompress))
    out.append(ByteCodec("bzip2 -9", lambda d: bz2.compress(d, 9), bz2.decompress))
    if pyppmd is not None:
        out.append(ByteCodec("PPMd (7z -m0=PPMd -mx=9)", _ppmd, _unppmd))
    out.append(ByteCodec("zstd -19", zstdio.compress,
                         zstandard.ZstdDecompressor().decompress))
    return out
