"""The audio benchmark runner writes its three reports from real, verified measurements, and
``dulzip bench`` sends folders of WAV files to it."""
from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dulzip import api
from dulzip.bench.audio import is_wav_folder, run_audio_bench
from dulzip.bench.common import DLZ
from dulzip.cli import main


def write_wav(path: Path, frames: int, channels: int, rate: int, bits: int, seed: int) -> None:
    """A tone with noise, 8- or 16-bit."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / rate
    x = np.sin(2 * np.pi * 440 * t * np.arange(1, channels + 1)) + rng.normal(0, 0.05, (frames, channels))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        w.writeframes((60 * x + 128).astype(np.uint8).tobytes() if bits == 8 else (8000 * x).astype("<i2").tobytes())


def wav_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "wavs"
    folder.mkdir()
    write_wav(folder / "b.wav", 600, 1, 8000, 8, 0)
    write_wav(folder / "a.wav", 400, 2, 16000, 16, 1)
    (folder / "notes.txt").write_text("not audio")
    return folder


def test_audio_bench_writes_reports(audio_models, tmp_path):
    paths = run_audio_bench(wav_folder(tmp_path), tmp_path / "out", "t", "wavenet")
    assert sorted(p.suffix for p in paths) == [".json", ".md", ".png"]
    data = json.loads((tmp_path / "out" / "t.json").read_text())
    rows, total = data["files"], data["total"]
    assert [r["file"] for r in rows] == ["a.wav", "b.wav"]
    assert [r["samples"] for r in rows] == [800, 600] and total["samples"] == 1400
    for r in rows:
        assert r["bps"][DLZ] > 0 and r["bps"]["zstd -19 (raw PCM)"] > 0
        assert r["coded_by"] in ("wavenet", "zstd") and r["encode_s"] > 0 and r["decode_s"] > 0
        assert r["bps"][DLZ] == 8 * r["bytes"][DLZ] / r["samples"]
    for c, bps in total["bps"].items():
        assert bps == 8 * sum(r["bytes"][c] for r in rows) / 1400
    assert set(total["bps"]) == {DLZ, "zstd -19 (raw PCM)", "xz -9e (raw PCM)"} | set(rows[0]["bytes"])
    assert len(total["bps"]) + len(data["meta"]["unavailable"]) == 5
    md = (tmp_path / "out" / "t.md").read_text()
    assert "Command: `" in md and "| **TOTAL** | 1400 |" in md and "dulzip in total: " in md
    assert "a.wav" in md and "b.wav" in md and "notes.txt" not in md


def test_audio_bench_lists_unavailable_baselines(audio_models, tmp_path, monkeypatch):
    monkeypatch.setenv("DULZIP_TOOLS", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    run_audio_bench(wav_folder(tmp_path), tmp_path / "out", "t", "wavenet", limit=1)
    data = json.loads((tmp_path / "out" / "t.json").read_text())
    assert list(data["meta"]["unavailable"]) == ["flac -8 --no-padding", "wavpack -hhx6"]
    assert list(data["total"]["bps"]) == ["zstd -19 (raw PCM)", "xz -9e (raw PCM)", DLZ]
    assert "Unavailable baselines: flac -8 --no-padding (flac not found" in (tmp_path / "out" / "t.md").read_text()


def test_audio_bench_limit(audio_models, tmp_path):
    run_audio_bench(wav_folder(tmp_path), tmp_path / "out", "t", "wavenet", limit=1)
    assert [r["file"] for r in json.loads((tmp_path / "out" / "t.json").read_text())["files"]] == ["a.wav"]


def test_bench_command_sends_wav_folders_to_the_audio_runner(audio_models, tmp_path):
    folder = wav_folder(tmp_path)
    assert is_wav_folder(folder)
    result = CliRunner().invoke(main, ["bench", str(folder), "--out", str(tmp_path / "out"), "--name", "cli",
                                       "-m", "wavenet", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "bits per sample" in (tmp_path / "out" / "cli.md").read_text().lower()
    for name in ("x.txt", "y.txt", "z.txt"):
        (folder / name).write_text("text")
    assert not is_wav_folder(folder)


def test_audio_bench_fails_loudly_on_a_bad_round_trip(audio_models, tmp_path, monkeypatch):
    monkeypatch.setattr(api, "decompress", lambda blob, opts=None: b"not the file")
    with pytest.raises(RuntimeError, match="a.wav: round trip failed"):
        run_audio_bench(wav_folder(tmp_path), tmp_path / "out", "t", "wavenet")
