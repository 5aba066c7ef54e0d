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
from tqdm import tqdm

from dulzip.codecs.stream import Stream, cuts
from dulzip.coding import zstdio
from dulzip.coding.bitdecoder import BitDecoder
from dulzip.coding.rangecoder import RangeEncoder
from dulzip.errors import CorruptDataError
from dulzip.exact.textmix import MIXER_VERSION, PARTS, SLOT_BITS, BlockState, TextMixer, code_step



@dataclass(frozen=True)
class Layout:
    """How a text is cut; recorded in the container so later defaults never change old files."""
    block: int = 1 << 20  # bytes per block
    streams: int = 64  # segments per block at most
    seg_min: int = 2048  # bytes per segment at least (unless the block is shorter)
    slot_bits: int = SLOT_BITS  # 2**slot_bits count slots (shared by the contexts)
    mixer: int = MIXER_VERSION  # what the adaptive mixer computes (a version this dulzip does not compute is refused)

    @classmethod
    def for_length(cls, n: int | None) -> "Layout":
        """The layout for an n-byte text (None: unknown): the count tables sized to it (a
        short text needs a small table, quick to make and to copy)."""
        bits = SLOT_BITS if n is None else max(16, min(SLOT_BITS, (8 * max(n, 1)).bit_length() + 5))
        return cls(slot_bits=bits)

    def blocks(self, n: int) -> list[tuple[int, int]]:
        """(start, length) of every block of an n-byte input."""
        return cuts(n, self.block)

    def segments(self, n: int) -> np.ndarray:
        """Lengths of the segments of an n-byte block (n >= 1)."""
        B = max(1, min(self.streams, n // self.seg_min))
        S = -(-n // B)
        B = -(-n // S)
        lens = np.full(B, S, dtype=np.int64)
        lens[-1] = n - S * (B - 1)
        return lens


class _Encoder:
    """Bit source of the encoder: the known bytes, range-coded a step at a time."""

    def __init__(self, seg_bytes: np.ndarray):
        self.bytes = seg_bytes  # (B, S) the block's segments, padded
        self.enc = RangeEncoder()
        self.t, self.act = 0, None

    def start_step(self, t: int, act: np.ndarray) -> None:
        self.t, self.act = t, act

    def known(self) -> np.ndarray:
        return self.bytes[self.act, self.t]

    def take(self, bits: np.ndarray, p: np.ndarray) -> None:
        """(8, n) bits and their probabilities of being 1, coded bit 0 of every segment first."""
        p = p.ravel()
        self.enc.encode(bits.ravel(), np.stack([65536 - p, p], axis=1))


class _Decoder:
    """Bit source of the decoder: the mixer's step decodes each decision from ``reader``."""

    def __init__(self, payload: bytes):
        self.reader = BitDecoder(payload)

    def start_step(self, t: int, act: np.ndarray) -> None:
        pass

    def take(self, bits: np.ndarray, p: np.ndarray) -> None:
        """A step's decoded bits and their probabilities (nothing to do with them here)."""


def _run_block(net, mix: TextMixer, lens: np.ndarray, source, bar) -> np.ndarray:
    """Drive the char-RNN and the mixer over one block; returns its bytes as (B, S)."""
    blk = BlockState(lens)
    B = len(lens)
    state = net.start(B)
    prev = net.start_symbols(B)
    online = mix.uses_features
    for t in range(blk.S):
        act = np.nonzero(lens > t)[0]
        state, weights = net.step(state, prev)
        source.start_step(t, act)
        feats = None
        if online:
            feats = net.features(state)
            feats = feats if len(act) == B else feats[act]
        prev[act] = code_step(mix, blk, t, act, weights if len(act) == B else weights[act], source, feats)
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


class TextCoder:
    """Codes the blocks of one text in order (the adaptive state is carried between them)."""

    def __init__(self, net, layout: Layout, parts: tuple[str, ...] = PARTS):
        self.net, self.layout = net, layout
        self.mix = TextMixer(net.luts, parts, net.prime, layout.slot_bits, layout.mixer, net.n_features)

    def encode_block(self, block: bytes, bar, allow_zstd: bool = True) -> Stream:
        """'model' (range-coded), or 'zstd' where that is smaller (the state then stays as it was)."""
        lens = self.layout.segments(len(block))
        snap = self.mix.snapshot() if allow_zstd else None
        src = _Encoder(_segments_of(block, lens))
        _run_block(self.net, self.mix, lens, src, bar)
        payload = src.enc.finish()
        packed = zstdio.compress(block)
        if allow_zstd and len(packed) <= len(payload):
            self.mix.restore(snap)
            return Stream("zstd", packed)
        return Stream("model", payload)

    def decode_block(self, s: Stream, n: int, bar) -> bytes:
        if s.coder == "zstd":
            part = zstdio.decompress(s.payload, n, "a text block")
            bar.update(n)
        elif s.coder == "model":
            lens = self.layout.segments(n)
            part = _join(_run_block(self.net, self.mix, lens, _Decoder(s.payload), bar), lens)
        else:
            raise CorruptDataError(f"unknown coder '{s.coder}' for a text block")
        if len(part) != n:
            raise CorruptDataError("a text block decoded to the wrong length")
        return part


def encode_text(data: bytes, net, layout: Layout, progress: bool = False, allow_zstd: bool = True,
                parts: tuple[str, ...] = PARTS) -> list[Stream]:
    """One stream per block. ``parts``: the mixer's inputs (all of them in files; fewer only to
    measure what each brings)."""
    coder = TextCoder(net, layout, parts)
    with tqdm(total=len(data), disable=not progress, unit="B", unit_scale=True, desc="compress") as bar:
        return [coder.encode_block(data[s:s + n], bar, allow_zstd) for s, n in layout.blocks(len(data))]


def decode_text(streams: list[Stream], length: int, net, layout: Layout, progress: bool = False) -> bytes:
    blocks = layout.blocks(length)
    if len(blocks) != len(streams):
        raise CorruptDataError(f"expected {len(blocks)} text blocks, found {len(streams)}")
    coder = TextCoder(net, layout)
    with tqdm(total=length, disable=not progress, unit="B", unit_scale=True, desc="decompress") as bar:
        return b"".join(coder.decode_block(s, n, bar) for (_, n), s in zip(blocks, streams))


def prime(net, text: bytes, progress: bool = False) -> dict[str, torch.Tensor]:
    """The adaptive state after coding ``text`` (training text): the mixer weights, maps and
    final refinement a model then starts every file with (:meth:`TextMixer.primed_state`)."""
    layout = Layout()
    mix = TextMixer(net.luts, prime=net.prime, slot_bits=layout.slot_bits, n_features=net.n_features)
    with tqdm(total=len(text), disable=not progress, unit="B", unit_scale=True, desc="prime") as bar:
        for start, n in layout.blocks(len(text)):
            lens = layout.segments(n)
            _run_block(net, mix, lens, _Encoder(_segments_of(text[start:start + n], lens)), bar)
    return mix.primed_state()
