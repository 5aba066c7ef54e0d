"""The audio blocks that need no network: raw PCM through zstd, and the linear-prediction coder
(:mod:`dulzip.codecs.lpc`). Torch-free, so that a WAV whose every block is one of these (most
music and synthetic speech, since the lpc coder) decodes without loading a model: about 0.3 s
of imports instead of two seconds and more (torch, the network's weights)."""
from __future__ import annotations

import numpy as np

from dulzip.codecs.lpc import decode_lpc, encode_lpc
from dulzip.codecs.stream import Stream, cuts
from dulzip.coding import zstdio
from dulzip.errors import CorruptDataError

def pcm_bytes(x: np.ndarray, bits: int) -> bytes:
    """Levels -> the PCM bytes of a WAV (16-bit little-endian signed, or 8-bit unsigned)."""
    if bits == 8:
        return ((x - 128) // 256 + 128).astype(np.uint8).tobytes()
    return x.astype("<i2").tobytes()


def from_pcm_bytes(raw: bytes, bits: int) -> np.ndarray:
    if bits == 8:
        return np.frombuffer(raw, dtype=np.uint8).astype(np.int64) * 256 - 32768 + 128
    return np.frombuffer(raw, dtype="<i2").astype(np.int64)


def encode_plain(x: np.ndarray, bits: int) -> Stream:
    """One block of one channel (int64 levels) -> the smaller of its 'lpc' and 'zstd' streams
    (lpc on a tie). 8-bit samples, levels 256 v + 128 - 32768, are lpc-coded as v."""
    lpc = Stream("lpc", encode_lpc((x + 32768 - 128) >> 8 if bits == 8 else x))
    packed = Stream("zstd", zstdio.compress(pcm_bytes(x, bits)))
    return lpc if len(lpc.payload) <= len(packed.payload) else packed


def decode_plain(s: Stream, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`encode_plain` for a block of n samples."""
    if s.coder == "zstd":
        return from_pcm_bytes(zstdio.decompress(s.payload, n * bits // 8, "an audio block"), bits)
    if s.coder == "lpc":
        v = decode_lpc(s.payload, n)
        return v * 256 - 32768 + 128 if bits == 8 else v
    raise CorruptDataError(f"unknown coder '{s.coder}' for an audio block")


def decode_all_plain(streams: list[Stream], frames: int, channels: int, bits: int, block: int) -> np.ndarray:
    """(frames, channels) levels of a WAV whose every block is plain (lpc or zstd), cut as the
    encoder's layout cuts them (:meth:`dulzip.codecs.text.Layout.blocks`)."""
    blocks = cuts(frames, block)
    if len(streams) != len(blocks) * channels:
        raise CorruptDataError(f"expected {len(blocks) * channels} audio blocks, found {len(streams)}")
    out = np.zeros((frames, channels), dtype=np.int64)
    it = iter(streams)
    for c in range(channels):
        for s, n in blocks:
            out[s:s + n, c] = decode_plain(next(it), n, bits)
    return out
