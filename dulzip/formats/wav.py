"""RIFF/WAVE with 8-, 16- or 24-bit integer PCM, 1 to 8 channels: samples out, every other byte kept.

A file is split into the bytes before its samples (``prefix``: RIFF header, ``fmt ``, any
``LIST``/``fact``/... chunks, the ``data`` chunk header), the samples, and the bytes after them
(``suffix``: a partial trailing frame, the pad byte, chunks after ``data``, trailing junk), so
``build_wav(parse_wav(f)) == f`` byte for byte. Anything else (32-bit, float, compressed, more
than eight channels, a ``data`` chunk that claims more bytes than the file holds, a malformed
header) gives None: the caller then stores the file as bytes. (The WaveNet models take 8/16-bit
mono or stereo only: :data:`NETWORK_BITS`, :data:`NETWORK_CHANNELS`.)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from dulzip.formats.sniff import looks_like_wav

PCM = 1
EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM: the format tag 1 in the first two bytes, then a fixed GUID tail.
PCM_SUBFORMAT = struct.pack("<H", PCM) + bytes.fromhex("000000001000800000aa00389b71")
BITS = (8, 16, 24)
MAX_CHANNELS = 8
NETWORK_BITS = (8, 16)  # what the WaveNet models (and their training data) take
NETWORK_CHANNELS = 2


@dataclass
class Wav:
    prefix: bytes  # every byte before the sample bytes, verbatim
    samples: np.ndarray  # (frames, channels): int16 for 8/16-bit files (8-bit: u8 - 128, -128..127), int32 for 24-bit
    suffix: bytes  # every byte after the sample bytes, verbatim
    rate: int
    bits: int  # 8, 16 or 24
    channels: int  # 1 to MAX_CHANNELS


@dataclass(frozen=True)
class _Format:
    rate: int
    bits: int
    channels: int

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.bits // 8


def _parse_fmt(body: bytes) -> _Format | None:
    """The PCM layout a ``fmt `` chunk describes, or None when it is not one we model."""
    if len(body) < 16:
        return None
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == EXTENSIBLE:
        if len(body) < 40 or struct.unpack_from("<H", body, 16)[0] < 22 or body[24:40] != PCM_SUBFORMAT:
            return None
    elif tag != PCM:
        return None
    fmt = _Format(rate, bits, channels)
    if bits not in BITS or not 1 <= channels <= MAX_CHANNELS or rate == 0 or block_align != fmt.frame_bytes:
        return None
    return fmt


def _find_data(data: bytes) -> tuple[_Format, int, int] | None:
    """(format, offset of the sample bytes, size of the ``data`` chunk) after walking the chunks
    up to ``data``; None when a chunk before it runs past the end of the file, ``fmt `` is
    missing, repeated or not modelled, or ``data`` claims more bytes than there are."""
    fmt: _Format | None = None
    seen_fmt = False
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if body + size > len(data):
            return None
        if cid == b"data":
            return (fmt, body, size) if fmt is not None else None
        if cid == b"fmt ":
            if seen_fmt:
                return None
            seen_fmt = True
            fmt = _parse_fmt(data[body:body + size])
            if fmt is None:
                return None
        pos = body + size + (size & 1)
    return None


@dataclass(frozen=True)
class Layout:
    """Where a WAV file's samples lie, read from its chunk headers alone (training reads windows
    of a recording from disk without loading it): ``offset`` of the first sample byte, ``frames``
    whole frames."""
    rate: int
    bits: int
    channels: int
    offset: int
    frames: int


def _walk(read, size: int) -> Layout | None:
    """The sample layout from the chunk headers of a WAV of ``size`` bytes (``read(pos, n)``:
    its bytes at pos, fewer where it cannot tell them); None when it is not a WAV
    :func:`parse_wav` models (its ``fmt `` rules) or a chunk runs past the end."""
    fmt, pos = None, 12
    while pos + 8 <= size:
        head = read(pos, 8)
        if len(head) < 8:
            return None
        cid, n = head[:4], struct.unpack("<I", head[4:])[0]
        body = pos + 8
        if body + n > size:
            return None
        if cid == b"data":
            return None if fmt is None else Layout(fmt.rate, fmt.bits, fmt.channels, body, n // fmt.frame_bytes)
        if cid == b"fmt ":
            if fmt is not None:
                return None
            fmt = _parse_fmt(read(body, min(n, 64)))
            if fmt is None:
                return None
        pos = body + n + (n & 1)
    return None


def locate_samples(f) -> Layout | None:
    """The sample layout of the WAV open (binary, seekable) as ``f``, walking the chunk headers
    with seeks; None when it is not a WAV :func:`parse_wav` models (its ``fmt `` rules) or a
    chunk runs past the end of the file."""
    size = f.seek(0, 2)
    f.seek(0)
    if not looks_like_wav(f.read(12)):
        return None

    def read(pos: int, n: int) -> bytes:
        f.seek(pos)
        return f.read(n)
    return _walk(read, size)


def find_samples(head: bytes, size: int) -> Layout | None:
    """The sample layout of a WAV of ``size`` bytes from its first bytes ``head`` (a streamed
    input: its samples are read later): None when it is not a WAV :func:`parse_wav` models, or
    its chunks before ``data`` do not lie within ``head``."""
    if not looks_like_wav(head) or len(head) > size:
        return None
    return _walk(lambda pos, n: head[pos:pos + n], size)


def frames_of(raw: bytes, layout: Layout) -> np.ndarray:
    """Sample bytes of a WAV of ``layout`` (whole frames) as :attr:`Wav.samples` holds them."""
    return _decode_samples(raw, _Format(layout.rate, layout.bits, layout.channels))


def _decode_samples(raw: bytes, fmt: _Format) -> np.ndarray:
    if fmt.bits == 16:
        pcm = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    elif fmt.bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        pcm = v - ((v & 0x800000) << 1)  # two's complement of 24 bits
    else:
        pcm = np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128
    return np.ascontiguousarray(pcm.reshape(-1, fmt.channels))


def sample_bytes(samples: np.ndarray, bits: int) -> bytes:
    """The PCM bytes of ``samples`` (int, (frames, channels)) as a WAV stores them."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if samples.size and (int(samples.min()) < lo or int(samples.max()) > hi):
        raise ValueError(f"samples outside {lo}..{hi} for {bits}-bit PCM")
    if bits == 8:
        return (samples.astype(np.int16) + 128).astype(np.uint8).tobytes()
    if bits == 24:
        v = samples.astype("<i4").reshape(-1, 1).view(np.uint8)
        return np.ascontiguousarray(v[:, :3]).tobytes()
    return samples.astype("<i2").tobytes()


def parse_wav(data: bytes) -> Wav | None:
    """The WAV split into prefix, samples and suffix; None when it is not a WAV we model."""
    if not looks_like_wav(data):
        return None
    found = _find_data(data)
    if found is None:
        return None
    fmt, start, size = found
    end = start + size - size % fmt.frame_bytes
    wav = Wav(data[:start], _decode_samples(data[start:end], fmt), data[end:],
              fmt.rate, fmt.bits, fmt.channels)
    return wav if build_wav(wav) == data else None


def build_wav(w: Wav) -> bytes:
    """The file again: prefix + sample bytes + suffix."""
    if w.samples.ndim != 2 or w.samples.shape[1] != w.channels:
        raise ValueError(f"samples of shape {w.samples.shape} for {w.channels} channel(s)")
    return w.prefix + sample_bytes(w.samples, w.bits) + w.suffix


def canonical_prefix(rate: int, bits: int, channels: int, frames: int) -> bytes:
    """The 44-byte header most WAV writers produce (RIFF, a 16-byte PCM 'fmt ' chunk, 'data'):
    when a file's header is exactly this, it is re-created from the layout instead of stored."""
    align = channels * bits // 8
    size = frames * align
    return (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, channels, rate,
                                                                                rate * align, align, bits)
            + b"data" + struct.pack("<I", size))
