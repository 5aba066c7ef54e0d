"""WAV reader/writer: byte-exact round trips, and None for every file it does not model."""
from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dulzip.formats.wav import PCM_SUBFORMAT, build_wav, looks_like_wav, parse_wav

DATA = Path(__file__).parent / "data"


def stdlib_wav(samples: np.ndarray, bits: int, rate: int = 8000) -> bytes:
    """A WAV written by the stdlib ``wave`` module; samples as parse_wav returns them."""
    raw = (samples + 128).astype(np.uint8) if bits == 8 else samples.astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        w.writeframes(raw.tobytes())
    return buf.getvalue()


def chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk with its pad byte; ``size`` overrides the size field (to make it lie)."""
    return cid + struct.pack("<I", len(body) if size is None else size) + body + b"\0" * (len(body) & 1)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_body(channels: int = 1, rate: int = 8000, bits: int = 16, tag: int = 1,
             block_align: int | None = None) -> bytes:
    align = channels * bits // 8 if block_align is None else block_align
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def extensible_body(channels: int, bits: int, subformat: bytes = PCM_SUBFORMAT) -> bytes:
    return (fmt_body(channels, 44100, bits, tag=0xFFFE)
            + struct.pack("<HHI", 22, bits, 0x3 if channels == 2 else 0x4) + subformat)


def ramp(frames: int, channels: int, bits: int) -> np.ndarray:
    lo, span = (-128, 256) if bits == 8 else (-32768, 65536)
    return ((np.arange(frames * channels, dtype=np.int64) * 7919) % span + lo).astype(np.int16).reshape(
        frames, channels)


def assert_round_trip(data: bytes) -> None:
    w = parse_wav(data)
    assert w is not None
    assert w.samples.dtype == np.int16 and w.samples.flags.c_contiguous
    assert w.samples.shape[1] == w.channels
    assert build_wav(w) == data


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("frames", [0, 1, 2, 1001])
def test_stdlib_round_trip(bits: int, channels: int, frames: int) -> None:
    samples = ramp(frames, channels, bits)
    data = stdlib_wav(samples, bits)
    w = parse_wav(data)
    assert w is not None
    assert (w.rate, w.bits, w.channels) == (8000, bits, channels)
    assert w.samples.shape == (frames, channels)
    np.testing.assert_array_equal(w.samples, samples)
    assert w.prefix == data[:44] and w.suffix == data[44 + samples.nbytes * bits // 16:]
    assert build_wav(w) == data


def test_8bit_values_are_centred() -> None:
    data = riff(chunk(b"fmt ", fmt_body(bits=8)), chunk(b"data", bytes([0, 128, 255])))
    w = parse_wav(data)
    assert w is not None
    assert w.samples[:, 0].tolist() == [-128, 0, 127]
    assert w.suffix == b"\0"  # the pad byte of the odd-sized data chunk
    assert build_wav(w) == data


@pytest.mark.parametrize("rate", [11025, 7999, 1, 192000])
def test_odd_rates(rate: int) -> None:
    w = parse_wav(stdlib_wav(ramp(50, 2, 16), 16, rate))
    assert w is not None and w.rate == rate


def test_chunks_before_and_after_data() -> None:
    pcm = ramp(100, 2, 16).astype("<i2").tobytes()
    info = chunk(b"LIST", b"INFO" + chunk(b"INAM", b"a title"))  # odd-sized sub-chunk, padded
    data = riff(chunk(b"fmt ", fmt_body(2)), chunk(b"fact", struct.pack("<I", 100)), info,
                chunk(b"data", pcm), chunk(b"LIST", b"INFO" + chunk(b"ICMT", b"after")), b"junk")
    w = parse_wav(data)
    assert w is not None
    np.testing.assert_array_equal(w.samples, ramp(100, 2, 16))
    assert w.suffix.startswith(b"LIST") and w.suffix.endswith(b"junk")
    assert build_wav(w) == data


def test_odd_sized_chunk_before_data_is_padded() -> None:
    data = riff(chunk(b"fmt ", fmt_body(1)), chunk(b"odd ", b"abc"), chunk(b"data", b"\1\2\3\4"))
    w = parse_wav(data)
    assert w is not None and w.samples[:, 0].tolist() == [0x0201, 0x0403]
    assert build_wav(w) == data


def test_odd_sized_fmt_chunk() -> None:
    data = riff(chunk(b"fmt ", fmt_body(1) + b"\0"), chunk(b"data", b"\1\2"))
    assert_round_trip(data)


@pytest.mark.parametrize("extra", [1, 3])
def test_partial_trailing_frame_goes_to_suffix(extra: int) -> None:
    pcm = ramp(10, 2, 16).astype("<i2").tobytes() + b"\x7f" * extra
    data = riff(chunk(b"fmt ", fmt_body(2)), chunk(b"data", pcm))
    w = parse_wav(data)
    assert w is not None and w.samples.shape == (10, 2)
    assert w.suffix == b"\x7f" * extra + b"\0" * (extra & 1)
    assert build_wav(w) == data


def test_riff_size_may_lie() -> None:
    data = bytearray(stdlib_wav(ramp(5, 1, 16), 16))
    data[4:8] = struct.pack("<I", 12345)
    assert_round_trip(bytes(data))


@pytest.mark.parametrize("channels,bits", [(1, 16), (2, 16), (2, 8)])
def test_extensible(channels: int, bits: int) -> None:
    pcm = ramp(20, channels, bits)
    raw = (pcm + 128).astype(np.uint8).tobytes() if bits == 8 else pcm.astype("<i2").tobytes()
    data = riff(chunk(b"fmt ", extensible_body(channels, bits)), chunk(b"data", raw))
    w = parse_wav(data)
    assert w is not None and (w.bits, w.channels, w.rate) == (bits, channels, 44100)
    np.testing.assert_array_equal(w.samples, pcm)
    assert build_wav(w) == data


def test_real_samples() -> None:
    files = sorted(DATA.glob("*.wav"))
    assert len(files) == 2
    for f in files:
        data = f.read_bytes()
        w = parse_wav(data)
        assert w is not None and w.bits == 16 and w.channels == 1 and len(w.samples) > 1000
        assert build_wav(w) == data


FLOAT_SUBFORMAT = struct.pack("<H", 3) + PCM_SUBFORMAT[2:]
PCM16 = ramp(8, 1, 16).astype("<i2").tobytes()


@pytest.mark.parametrize("data", [
    pytest.param(riff(chunk(b"fmt ", fmt_body(1, bits=32)), chunk(b"data", b"\0" * 12)), id="32-bit"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1, bits=32)), chunk(b"data", b"\0" * 8)), id="32-bit"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1, bits=32, tag=3)), chunk(b"data", b"\0" * 8)), id="float"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1, bits=4, tag=0x11)), chunk(b"data", b"\0" * 8)), id="adpcm"),
    pytest.param(riff(chunk(b"fmt ", extensible_body(1, 32, FLOAT_SUBFORMAT)), chunk(b"data", b"\0" * 8)),
                 id="extensible-float"),
    pytest.param(riff(chunk(b"fmt ", extensible_body(1, 16)[:30]), chunk(b"data", PCM16)),
                 id="extensible-truncated"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(9)), chunk(b"data", b"\0" * 36)), id="9-channels"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(0)), chunk(b"data", b"")), id="0-channels"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1, rate=0)), chunk(b"data", PCM16)), id="rate-0"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(2, block_align=2)), chunk(b"data", PCM16)), id="block-align"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1)), chunk(b"data", PCM16, size=len(PCM16) + 2)),
                 id="data-size-lies"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1)), chunk(b"data", PCM16, size=0xFFFFFFFF)), id="data-size-ffff"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1))), id="no-data"),
    pytest.param(riff(chunk(b"data", PCM16), chunk(b"fmt ", fmt_body(1))), id="data-before-fmt"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1)), chunk(b"fmt ", fmt_body(1)), chunk(b"data", PCM16)),
                 id="two-fmt"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1)[:14]), chunk(b"data", PCM16)), id="fmt-truncated"),
    pytest.param(riff(chunk(b"fmt ", fmt_body(1)), chunk(b"LIST", b"INFO", size=100), chunk(b"data", PCM16)),
                 id="chunk-runs-past-end"),
    pytest.param(stdlib_wav(ramp(10, 1, 16), 16)[:30], id="header-truncated"),
    pytest.param(stdlib_wav(ramp(10, 1, 16), 16)[:43], id="data-header-truncated"),
    pytest.param(stdlib_wav(ramp(10, 1, 16), 16)[:50], id="samples-truncated"),
    pytest.param(b"RIFX" + stdlib_wav(ramp(10, 1, 16), 16)[4:], id="big-endian"),
    pytest.param(b"", id="empty"),
    pytest.param(b"RIFF\0\0\0\0WAVE", id="header-only"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 40, id="png"),
])
def test_not_modelled(data: bytes) -> None:
    assert parse_wav(data) is None


def test_random_bytes() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 11, 12, 44, 1000):
        blob = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert parse_wav(blob) is None
        assert parse_wav(b"RIFF\0\0\0\0WAVE" + blob) is None


def test_looks_like_wav() -> None:
    assert looks_like_wav(stdlib_wav(ramp(1, 1, 16), 16)[:12])
    assert not looks_like_wav(b"RIFF\0\0\0\0AVI ")
    assert not looks_like_wav(b"RIFF")


def test_build_refuses_out_of_range_samples() -> None:
    w = parse_wav(stdlib_wav(ramp(3, 1, 8), 8))
    assert w is not None
    w.samples[0, 0] = 200
    with pytest.raises(ValueError):
        build_wav(w)


@settings(max_examples=60, deadline=None)
@given(samples=hnp.arrays(np.int16, st.tuples(st.integers(0, 300), st.integers(1, 2))),
       rate=st.integers(1, 2**30 - 1), tail=st.binary(max_size=5))
def test_random_round_trip(samples: np.ndarray, rate: int, tail: bytes) -> None:
    data = stdlib_wav(samples, 16, rate) + tail
    w = parse_wav(data)
    assert w is not None and w.rate == rate
    np.testing.assert_array_equal(w.samples, samples)
    assert build_wav(w) == data


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200))
def test_never_raises(data: bytes) -> None:
    w = parse_wav(b"RIFF\0\0\0\0WAVE" + data)
    assert w is None or build_wav(w) == b"RIFF\0\0\0\0WAVE" + data
