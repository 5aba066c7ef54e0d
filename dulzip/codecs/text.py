"""Text (any bytes) through the char-RNN and the adaptive mixer: blocks, segments, one loop.

The input is cut into blocks of at most ``block`` bytes, coded one after the other (memory
does not grow with the input). A block is cut into up to ``streams`` segments of equal
length (at least ``seg_min`` bytes each, except in a short block) that are coded in
lockstep: step t codes byte t of every segment, so the char-RNN runs one batched step per t
and the decoder does the same. Each segment starts the char-RNN afresh; the adaptive
mixer's statistics are shared by the segments and carried from block to block. A block is
one range-coded stream; a block that the model codes worse than zstd -19 is stored with
zstd instead, and then leaves the adaptive state as it was.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import zstandard
from tqdm import tqdm

from dulzip.codecs.image import Stream
from dulzip.coding.rangecoder import RangeDecoder, RangeEncoder
from dulzip.errors import CorruptDataError
from dulzip.exact.textmix import BlockState, TextMixer, code_step

ZSTD_LEVEL = 19


@dataclass(frozen=True)
class Layout:
    """How a text is cut; recorded in the container so later defaults never change old files."""
    block: int = 1 << 20  # bytes per block
    streams: int = 64  # segments per block at most
    seg_min: int = 4096  # bytes per segment at least (unless the block is shorter)

    def blocks(self, n: int) -> list[tuple[int, int]]:
        """(start, length) of every block of an n-byte input."""
        return [(s, min(self.block, n - s)) for s in range(0, n, self.block)]

    def segments(self, n: int) -> np.ndarray:
        """Lengths of the segments of an n-byte block (n >= 1)."""
        B = max(1, min(self.streams, -(-n // self.seg_min)))
        S = -(-n // B)
        B = -(-n // S)
        lens = np.full(B, S, dtype=np.int64)
        lens[-1] = n - S * (B - 1)
        return lens


class _Encoder:
    """Bit source of the encoder: the known bits, range-coded as they are asked for."""

    def __init__(self, seg_bytes: np.ndarray):
        self.bytes = seg_bytes  # (B, S) the block's segments, padded
        self.enc = RangeEncoder()
        self.t, self.j, self.act = 0, 0, None

    def __call__(self, p: np.ndarray) -> np.ndarray:
        bits = (self.bytes[self.act, self.t] >> (7 - self.j)) & 1
        self.enc.encode(bits, np.stack([65536 - p, p], axis=1))
        self.j += 1
        return bits


class _Decoder:
    def __init__(self, payload: bytes):
        self.dec = RangeDecoder(payload)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return self.dec.decode(np.stack([65536 - p, p], axis=1))


def _run_block(net, mix: TextMixer, lens: np.ndarray, source, bar) -> np.ndarray:
    """Drive the char-RNN and the mixer over one block; returns its bytes as (B, S)."""
    blk = BlockState(lens)
    B = len(lens)
    state = net.start(B)
    prev = net.start_symbols(B)
    for t in range(blk.S):
        act = np.nonzero(lens > t)[0]
        state, weights = net.step(state, prev)
        w = weights.cpu().numpy() if len(act) == B else weights[torch.from_numpy(act).to(weights.device)].cpu().numpy()
        if isinstance(source, _Encoder):
            source.t, source.j, source.act = t, 0, act
        byte = code_step(mix, blk, t, act, w, source)
        prev[torch.from_numpy(act).to(prev.device)] = torch.from_numpy(byte).to(prev.device)
        bar.update(len(act))
    return blk.hist.reshape(B, blk.S)


def _segments_of(block: bytes, lens: np.ndarray) -> np.ndarray:
    S = int(lens.max())
    out = np.zeros((len(lens), S), dtype=np.int64)
    a = np.frombuffer(block, dtype=np.uint8)
    for i, s in enumerate(np.concatenate([[0], np.cumsum(lens)[:-1]])):
        out[i, :lens[i]] = a[s:s + lens[i]]
    return out


def _join(seg: np.ndarray, lens: np.ndarray) -> bytes:
    return b"".join(seg[i, :lens[i]].astype(np.uint8).tobytes() for i in range(len(lens)))


def encode_text(data: bytes, net, layout: Layout, progress: bool = False, allow_zstd: bool = True) -> list[Stream]:
    """One stream per block: 'model' (range-coded) or 'zstd'."""
    mix = TextMixer(net.luts)
    out = []
    with tqdm(total=len(data), disable=not progress, unit="B", unit_scale=True, desc="compress") as bar:
        for start, n in layout.blocks(len(data)):
            block = data[start:start + n]
            lens = layout.segments(n)
            snap = mix.snapshot() if allow_zstd else None
            src = _Encoder(_segments_of(block, lens))
            _run_block(net, mix, lens, src, bar)
            payload = src.enc.finish()
            packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(block)
            if allow_zstd and len(packed) <= len(payload):
                mix.restore(snap)
                out.append(Stream("zstd", packed))
            else:
                out.append(Stream("model", payload))
    return out


def decode_text(streams: list[Stream], length: int, net, layout: Layout, progress: bool = False) -> bytes:
    blocks = layout.blocks(length)
    if len(blocks) != len(streams):
        raise CorruptDataError(f"expected {len(blocks)} text blocks, found {len(streams)}")
    mix = TextMixer(net.luts)
    parts = []
    with tqdm(total=length, disable=not progress, unit="B", unit_scale=True, desc="decompress") as bar:
        for (_, n), s in zip(blocks, streams):
            if s.coder == "zstd":
                try:
                    part = zstandard.ZstdDecompressor().decompress(s.payload, max_output_size=n)
                except zstandard.ZstdError as e:
                    raise CorruptDataError(f"a text block does not decompress: {e}") from None
                bar.update(n)
            elif s.coder == "model":
                lens = layout.segments(n)
                part = _join(_run_block(net, mix, lens, _Decoder(s.payload), bar), lens)
            else:
                raise CorruptDataError(f"unknown coder '{s.coder}' for a text block")
            if len(part) != n:
                raise CorruptDataError("a text block decoded to the wrong length")
            parts.append(part)
    return b"".join(parts)
