"""Audio through an exact WaveNet: blocks, segments, and the batched decode loop.

Each channel of a WAV is a sequence of 16-bit levels (8-bit samples sit at 256 v + 128). A
channel is cut into blocks of at most ``block`` samples, coded one after the other; a block
into up to ``streams`` segments of equal length (at least ``seg_min`` samples, except in a short
block). Segments start with an empty history and are coded in lockstep: step t codes sample t
of every segment, so the decoder advances all of them with one batched network step. A block
is one range-coded stream (after the segments' own linear predictors, for a model that uses
them: fitted by the encoder, as zigzag LEB128 varints). Every block is also coded by a plain
linear predictor (:mod:`dulzip.codecs.lpc`, coder ``lpc``) and by zstd -19 (both
:mod:`dulzip.codecs.plainaudio`); the smallest of the three is kept, so a WAV is never much larger than FLAC's file of its samples (synthetic speech:
the models lost to FLAC by 5-11%).

A 16-bit sample is coded as its high byte, then its low byte, both tables taken from the same
integer CDF over the 65536 levels (:func:`dulzip.heads.audio.audio_cum`); an 8-bit sample is
its high byte alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from dulzip.codecs.plainaudio import decode_plain, encode_plain
from dulzip.codecs.stream import Stream
from dulzip.codecs.text import Layout
from dulzip.coding.rangecoder import RangeDecoder, RangeEncoder
from dulzip.errors import CorruptDataError
from dulzip.heads.audio import TABLE_BITS, audio_coarse_table, audio_fine_table
from dulzip.models.wavenet import SEG_MAX, segment_lpc

STEP_CHUNK = 128  # time steps whose tables are made at once when encoding (bounds memory)
PASS_SAMPLES = 1 << 13  # samples per batched network pass when encoding (bounds memory)


@dataclass(frozen=True)
class AudioLayout:
    """How a channel is cut; recorded in the container so later defaults never change old files."""
    block: int = 1 << 18  # samples per block
    streams: int = 64  # segments per block at most
    seg_min: int = 1024  # samples per segment at least (unless the block is shorter)

    blocks = Layout.blocks
    segments = Layout.segments

    @classmethod
    def for_model(cls, net) -> "AudioLayout":
        """Longer segments for a model that sends each segment's own predictor (its cost is
        then spread over more samples)."""
        return cls(seg_min=8192) if net.cfg.seg_order else cls()


def _bits_of(coarse: torch.Tensor, fine: torch.Tensor | None, hi: torch.Tensor, lo: torch.Tensor) -> float:
    """The model's own -log2 p of the coded symbols (for the report; not used to decode)."""
    p_hi = coarse.gather(1, hi[:, None]).double()
    bits = (TABLE_BITS - torch.log2(p_hi)).sum()
    if fine is not None:
        bits += (torch.log2(p_hi) - torch.log2(fine.gather(1, lo[:, None]).double())).sum()
    return float(bits)


class AudioCoder:
    """Codes the blocks of one WAV's channels with one network and layout."""

    def __init__(self, net, layout: AudioLayout, bits: int):
        self.net, self.layout, self.bits = net, layout, bits

    def _segments(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lens = self.layout.segments(len(x))
        seg = np.zeros((len(lens), int(lens.max())), dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        for i, (s, n) in enumerate(zip(starts, lens)):
            seg[i, :n] = x[s:s + n]
        return seg, lens

    def _own_predictors(self, seg: np.ndarray, lens: np.ndarray) -> torch.Tensor | None:
        """Each segment's own linear predictor (B, seg_order), fitted by the encoder (models that use one)."""
        R = self.net.cfg.seg_order
        if R == 0:
            return None
        return torch.cat([segment_lpc(torch.from_numpy(seg[i:i + 1, :n]), R) for i, n in enumerate(lens)])

    def _read_predictors(self, payload: bytes, B: int) -> tuple[np.ndarray | None, bytes]:
        R = self.net.cfg.seg_order
        if R == 0:
            return None, payload
        n = int.from_bytes(payload[:4], "little")
        if len(payload) < 4 + n:
            raise CorruptDataError("an audio block's predictors are cut short")
        own = unpack_ints(payload[4:4 + n], B * R)
        if np.abs(own).max(initial=0) > SEG_MAX:
            raise CorruptDataError("an audio block's predictors are damaged")
        return own.reshape(B, R), payload[4 + n:]

    def _params(self, seg: np.ndarray, own: torch.Tensor | None) -> list[torch.Tensor]:
        """The network's parameters for every sample of the segments (B, S, K) each, computed a
        few segments at a time (the pass's activations stay within a few hundred MB)."""
        rows = max(1, PASS_SAMPLES // max(1, seg.shape[1]))
        parts = [self.net.params_full(torch.from_numpy(seg[i:i + rows]), None if own is None else own[i:i + rows])
                 for i in range(0, len(seg), rows)]
        return [torch.cat([p[k] for p in parts]) for k in range(3)]

    def encode_block(self, x: np.ndarray, allow_zstd: bool = True) -> Stream:
        """x: one block of one channel, int64 levels -> its stream: 'model', or where smaller
        (``allow_zstd``) 'lpc' or 'zstd'."""
        seg, lens = self._segments(x)
        dev = self.net.device  # the tables are made where the network runs (a GPU, or numba on a CPU)
        own = self._own_predictors(seg, lens)
        params = self._params(seg, own)
        enc, est = RangeEncoder(), 0.0
        u = torch.from_numpy(seg + 32768).to(dev)
        for t0 in range(0, seg.shape[1], STEP_CHUNK):
            t1 = min(seg.shape[1], t0 + STEP_CHUNK)
            # the symbols of steps t0..t1 in decode order: per step, the high bytes of the
            # active segments, then their low bytes
            for a, b, act in _runs(lens, t0, t1):
                act = act.to(dev)
                p = [v[act, a:b].transpose(0, 1).reshape((b - a) * len(act), -1) for v in params]
                sym = u[act, a:b].T.reshape(-1)
                hi, lo = sym >> 8, sym & 255
                coarse = audio_coarse_table(*p, self.net.luts)
                fine = audio_fine_table(*p, hi, self.net.luts) if self.bits == 16 else None
                est += _bits_of(coarse, fine, hi, lo)
                n = len(act)
                if fine is None:
                    enc.encode(hi.cpu().numpy(), coarse.cpu().numpy())
                else:
                    syms = torch.stack([hi.view(-1, n), lo.view(-1, n)], dim=1).reshape(-1)
                    tabs = torch.stack([coarse.view(-1, n, 256), fine.view(-1, n, 256)], dim=1).reshape(-1, 256)
                    enc.encode(syms.cpu().numpy(), tabs.cpu().numpy())
        payload = enc.finish()
        if own is not None:  # the predictors travel first: their size, then them (zigzag LEB128)
            packed = pack_ints(own.numpy().ravel())
            payload = len(packed).to_bytes(4, "little") + packed + payload
            est += 8 * (4 + len(packed))
        if allow_zstd:
            best = encode_plain(x, self.bits)
            if len(best.payload) <= len(payload):
                return best
        return Stream("model", payload, est)

    def decode_block(self, s: Stream, n: int) -> np.ndarray:
        if s.coder != "model":
            return decode_plain(s, n, self.bits)
        lens = self.layout.segments(n)
        B, S = len(lens), int(lens.max())
        own, coded = self._read_predictors(s.payload, B)
        dec = RangeDecoder(coded)
        luts = self.net.luts
        out = np.zeros((B, S), dtype=np.int64)
        state = self.net.start(B, own)
        prev = np.zeros(B, dtype=np.int64)
        for t in range(S):
            params = self.net.step(state, prev)
            act = np.nonzero(lens > t)[0]
            if len(act) < B:
                params = tuple(v[torch.from_numpy(act).to(v.device)] for v in params)
            hi = dec.decode(audio_coarse_table(*params, luts).cpu().numpy())
            if self.bits == 16:
                high = torch.from_numpy(hi).to(params[0].device)
                x = hi * 256 + dec.decode(audio_fine_table(*params, high, luts).cpu().numpy()) - 32768
            else:
                x = hi * 256 - 32768 + 128
            out[act, t] = x
            prev[act] = x
        return np.concatenate([out[i, :lens[i]] for i in range(B)])


def _runs(lens: np.ndarray, t0: int, t1: int):
    """(a, b, active segments) for the steps t0..t1, split where the active set changes."""
    cuts = sorted({t0, t1, *[int(n) for n in lens if t0 < n < t1]})
    for a, b in zip(cuts[:-1], cuts[1:]):
        yield a, b, torch.from_numpy(np.nonzero(lens > a)[0])


def pack_ints(v: np.ndarray) -> bytes:
    """Signed integers as zigzag LEB128 varints (small ones in one byte)."""
    out = bytearray()
    for x in v.tolist():
        z = (x << 1) ^ (x >> 63)
        while z >= 128:
            out.append(z & 127 | 128)
            z >>= 7
        out.append(z)
    return bytes(out)


def unpack_ints(data: bytes, n: int) -> np.ndarray:
    """Exactly ``n`` integers written by :func:`pack_ints` filling ``data``; else CorruptDataError."""
    out, z, shift = [], 0, 0
    for b in data:
        z |= (b & 127) << shift
        shift += 7
        if shift > 63:
            raise CorruptDataError("an audio block's predictors are damaged")
        if b < 128:
            out.append((z >> 1) ^ -(z & 1))
            z, shift = 0, 0
    if len(out) != n or shift:
        raise CorruptDataError("an audio block's predictors are damaged")
    return np.array(out, dtype=np.int64)


def encode_audio(levels: np.ndarray, bits: int, net, layout: AudioLayout, progress: bool = False,
                 allow_zstd: bool = True) -> list[Stream]:
    """levels (frames, channels) int64 -> one stream per block, channel by channel."""
    coder = AudioCoder(net, layout, bits)
    frames, channels = levels.shape
    out = []
    with tqdm(total=frames * channels, disable=not progress, unit="sample", unit_scale=True, desc="compress") as bar:
        for c in range(channels):
            for s, n in layout.blocks(frames):
                out.append(coder.encode_block(levels[s:s + n, c], allow_zstd))
                bar.update(n)
    return out


def decode_audio(streams: list[Stream], frames: int, channels: int, bits: int, net, layout: AudioLayout,
                 progress: bool = False) -> np.ndarray:
    blocks = layout.blocks(frames)
    if len(streams) != len(blocks) * channels:
        raise CorruptDataError(f"expected {len(blocks) * channels} audio blocks, found {len(streams)}")
    coder = AudioCoder(net, layout, bits)
    out = np.zeros((frames, channels), dtype=np.int64)
    it = iter(streams)
    with tqdm(total=frames * channels, disable=not progress, unit="sample", unit_scale=True,
              desc="decompress") as bar:
        for c in range(channels):
            for s, n in blocks:
                out[s:s + n, c] = coder.decode_block(next(it), n)
                bar.update(n)
    return out
