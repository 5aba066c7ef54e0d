"""Every available baseline audio codec round-trips a tiny WAV; missing tools make a codec unavailable."""
from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from dulzip.bench.audiocodecs import RoundTripError, audio_codecs, check_same
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


@pytest.mark.parametrize("codec", audio_codecs(), ids=lambda c: c.name)
@pytest.mark.parametrize("layout", [(2000, 1, 16, 8000), (700, 2, 16, 44100), (500, 1, 8, 11025), (1, 2, 16, 7999)],
                         ids=lambda x: "-".join(map(str, x)))
def test_round_trip(codec, layout: tuple[int, int, int, int]) -> None:
    if not codec.available:
        pytest.skip(codec.missing)
    w = tiny_wav(*layout)
    assert codec.compressed_size(w) > 0  # decoded and compared inside


def test_names_and_order() -> None:
    names = [c.name for c in audio_codecs()]
    assert names == ["flac -8 --no-padding", "wavpack -hhx", "zstd -19 (raw PCM)", "xz -9e (raw PCM)"]


def test_missing_tools_make_codecs_unavailable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DULZIP_TOOLS", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    codecs = {c.name: c for c in audio_codecs()}
    assert not codecs["flac -8 --no-padding"].available and "flac" in codecs["flac -8 --no-padding"].missing
    assert not codecs["wavpack -hhx"].available
    with pytest.raises(RuntimeError, match="unavailable"):
        codecs["wavpack -hhx"].compressed_size(tiny_wav(10, 1, 16, 8000))
    assert codecs["zstd -19 (raw PCM)"].available and codecs["xz -9e (raw PCM)"].available


def test_check_same() -> None:
    check_same("x", b"ab", b"ab")
    with pytest.raises(RoundTripError):
        check_same("x", b"ab", b"ac")
