"""Every available baseline round-trips what its benchmark gives it (images, bytes, WAVs);
missing tools make a codec unavailable; a codec that does not round-trip is caught."""
from __future__ import annotations

import io
import random
import wave

import numpy as np
import pytest

from dulzip.bench.baselines import Baseline, RoundTripError, audio_baselines, check_same, image_baselines, text_baselines
from dulzip.formats.wav import Wav, parse_wav


def tiny_wav(frames: int, channels: int, bits: int, rate: int) -> Wav:
    """A tone plus noise, written by the stdlib ``wave`` module and parsed back."""
    t = np.arange(frames)[:, None]
    amp = 100 if bits == 8 else 20000
    tone = amp * np.sin(2 * np.pi * 440 * t / rate + np.arange(channels))
    noise = np.random.default_rng(0).integers(-3, 4, (frames, channels))
    samples = np.clip(tone + noise, -amp, amp).astype(np.int16)
    raw = (samples + 128).astype(np.uint8) if bits == 8 else samples.astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        w.writeframes(raw.tobytes())
    parsed = parse_wav(buf.getvalue())
    assert parsed is not None
    return parsed


@pytest.mark.parametrize("codec", audio_baselines(), ids=lambda c: c.name)
@pytest.mark.parametrize("layout", [(2000, 1, 16, 8000), (700, 2, 16, 44100), (500, 1, 8, 11025), (1, 2, 16, 7999)],
                         ids=lambda x: "-".join(map(str, x)))
def test_round_trip(codec, layout: tuple[int, int, int, int]) -> None:
    if not codec.available:
        pytest.skip(codec.missing)
    w = tiny_wav(*layout)
    assert codec.compressed_size(w) > 0  # decoded and compared inside


def test_names_and_order() -> None:
    names = [c.name for c in audio_baselines()]
    assert names == ["flac -8 --no-padding", "wavpack -hhx6", "zstd -19 (raw PCM)", "xz -9e (raw PCM)"]


def test_missing_tools_make_codecs_unavailable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DULZIP_TOOLS", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    codecs = {c.name: c for c in audio_baselines()}
    assert not codecs["flac -8 --no-padding"].available and "flac" in codecs["flac -8 --no-padding"].missing
    assert not codecs["wavpack -hhx6"].available
    with pytest.raises(RuntimeError, match="unavailable"):
        codecs["wavpack -hhx6"].compressed_size(tiny_wav(10, 1, 16, 8000))
    assert codecs["zstd -19 (raw PCM)"].available and codecs["xz -9e (raw PCM)"].available


def test_check_same() -> None:
    check_same("x", b"ab", b"ab")
    with pytest.raises(RoundTripError):
        check_same("x", b"ab", b"ac")


TEXT = b"It was the best of times, it was the worst of times.\n" * 40 + "caf\u00e9 \u2014 na\u00efve\n".encode()
INPUTS = [b"", b"x", TEXT, random.Random(0).randbytes(5000)]


@pytest.mark.parametrize("codec", text_baselines(), ids=lambda c: c.name)
def test_text_round_trip(codec):
    for data in INPUTS:
        coded, enc, dec = codec.code(data)
        assert codec.decode(coded) == data and enc >= 0 and dec >= 0


def test_ppmd_past_its_first_output_block():
    """pyppmd's encoder loses a byte where a symbol that writes two ends its first 32 KiB output
    block: this input did so when it was coded in one call."""
    codecs = {c.name: c for c in text_baselines()}
    if "PPMd (7z -m0=PPMd -mx=9)" not in codecs:
        pytest.skip("pyppmd is not installed")
    data = random.Random(2).randbytes(34000)
    coded, _, _ = codecs["PPMd (7z -m0=PPMd -mx=9)"].code(data)  # the decode compared inside
    assert len(coded) > 32 << 10


def test_zpaq_round_trip(monkeypatch, tmp_path) -> None:
    """zpaq -m5 (where the tool is found) round-trips text and empty input, timed both ways;
    it is left out, not an error, where zpaq is absent."""
    codecs = {c.name: c for c in text_baselines()}
    if "zpaq -m5" not in codecs:
        pytest.skip("zpaq not found")
    zpaq = codecs["zpaq -m5"]
    for data in (TEXT, b""):
        coded, enc, dec = zpaq.code(data)  # the decode compared inside
        assert coded.startswith(b"7kSt") and dec is not None  # a zpaq journaling archive
    monkeypatch.setenv("DULZIP_TOOLS", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "zpaq -m5" not in [c.name for c in text_baselines()]


def test_text_names():
    names = [c.name for c in text_baselines()]
    assert names[:2] == ["xz -9e", "zstd --ultra -22 --long"] and names[-1] == "zstd -19"
    assert "bzip2 -9" in names


@pytest.mark.parametrize("codec", image_baselines(), ids=lambda c: c.name)
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_image_round_trip(codec, channels):
    if not codec.available:
        pytest.skip(codec.missing)
    img = np.random.default_rng(channels).integers(0, 256, (9, 13, channels), dtype=np.uint8)
    img[:4] //= 16  # some structure
    coded, enc, dec = codec.code(img)  # the decode compared inside
    assert len(coded) > 0 and dec is not None
    bilevel = (img[:, :, :1] > 127).astype(np.uint8) * 255
    assert codec.compressed_size(bilevel) > 0


def test_a_lossy_baseline_is_caught():
    lossy = Baseline("lossy", lambda x: x[:-1], lambda b: b)
    with pytest.raises(RoundTripError):
        lossy.code(b"abc")
