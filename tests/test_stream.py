"""Streaming: inputs of any size are compressed and decompressed with memory that does not
grow with them (text by blocks, other bytes by zstd pieces)."""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner

from dulzip import api, cli
from dulzip.codecs.text import Layout
from dulzip.errors import DulzipError
from dulzip.formats import sniff
from dulzip.kinds import bytes as bytes_kind
from tests.test_text import PROSE


def _stream_round_trip(data: bytes, opts=None) -> bytes:
    out = io.BytesIO()
    api.compress_stream(io.BytesIO(data), out, opts, len(data))
    blob = out.getvalue()
    back = io.BytesIO()
    assert api.decompress_stream(io.BytesIO(blob), back) == len(data)
    assert back.getvalue() == data
    assert api.decompress(blob) == data  # the same container as the in-memory path reads
    return blob


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(Layout, "for_length", classmethod(lambda cls, n: cls(block=1500, streams=4, seg_min=200)))


def test_text_streams_block_by_block(text_models, small_blocks):
    data = PROSE * 3 + bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8)) + PROSE
    blob = _stream_round_trip(data, api.Options(model="charrnn"))
    h = api.describe(blob)
    assert h["kind"] == "text" and len(h["streams"]) == -(-len(data) // 1500)
    assert "zstd" in [s["coder"] for s in h["streams"]]  # the binary block


@pytest.mark.parametrize("data", [b"", b"x", bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))])
def test_bytes_stream_in_pieces(text_models, monkeypatch, data):
    monkeypatch.setattr(bytes_kind, "BYTES_CHUNK", 1000)
    blob = _stream_round_trip(data, api.Options(model="zstd"))
    assert [s["name"] for s in api.describe(blob)["streams"]] == [f"bytes.{i}" for i in range(-(-len(data) // 1000))]


def test_damaged_stream_is_refused(text_models, small_blocks):
    out = io.BytesIO()
    api.compress_stream(io.BytesIO(PROSE * 2), out, api.Options(model="charrnn"))
    blob = bytearray(out.getvalue())
    for bad in (blob[:-9], blob[:-4] + bytes([blob[-4] ^ 1]) + blob[-3:], blob + b"x"):
        with pytest.raises(DulzipError):
            api.decompress_stream(io.BytesIO(bytes(bad)), io.BytesIO())


def _peak(n: int) -> int:
    rng = np.random.default_rng(1)
    pattern = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()  # binary, compressible
    data = io.BytesIO(pattern * (n // 4096))
    out = io.BytesIO()
    tracemalloc.start()
    api.compress_stream(data, out)
    packed = io.BytesIO(out.getvalue())
    tracemalloc.reset_peak()
    api.decompress_stream(packed, _Sink())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


class _Sink:
    def write(self, data: bytes) -> None:
        pass


def test_memory_does_not_grow_with_the_input(text_models, monkeypatch):
    monkeypatch.setattr(bytes_kind, "BYTES_CHUNK", 1 << 20)
    small, large = _peak(4 << 20), _peak(16 << 20)
    assert large < 1.5 * small + (1 << 20) and large < 8 << 20, (small, large)


def test_cli_streams_large_inputs(text_models, small_blocks, monkeypatch, tmp_path):
    monkeypatch.setattr(sniff, "STREAM_MIN", 1000)
    src = tmp_path / "notes.txt"
    src.write_bytes(PROSE * 4)
    r = CliRunner().invoke(cli.main, ["compress", "-m", "charrnn", str(src)], catch_exceptions=False)
    assert r.exit_code == 0
    dlz = tmp_path / "notes.txt.dlz"
    assert api.describe(dlz.read_bytes())["kind"] == "text"
    src.rename(tmp_path / "orig.txt")
    r = CliRunner().invoke(cli.main, ["decompress", str(dlz)], catch_exceptions=False)
    assert r.exit_code == 0 and src.read_bytes() == (tmp_path / "orig.txt").read_bytes()
    bad = tmp_path / "bad.txt.dlz"
    bad.write_bytes(dlz.read_bytes()[:-20])
    r = CliRunner().invoke(cli.main, ["decompress", str(bad)], catch_exceptions=False)
    assert r.exit_code == 1 and not (tmp_path / "bad.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
