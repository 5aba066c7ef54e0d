"""The header schema and the resource bounds: every reproducer of the "hostile files" issue.

Each mutant here is a well-formed header with correct CRCs (what an attacker or a buggy writer
makes), so only the schema, the bounds and the coder's own checks stand between it and the
decoder. Each must end as a DulzipError, quickly and in bounded memory.
"""
from __future__ import annotations

import io
import json
import math
import struct
import zlib

import numpy as np
import pytest
import zstandard

from dulzip import api
from dulzip.container import Container, pack, unpack
from dulzip.errors import CorruptDataError, DulzipError, FormatError, UsageError
from dulzip.schema import DEFAULT_MAX_MEMORY, decode_memory, validate
from tests.conftest import DATA, photo

OPTS = api.Options(device="cpu", threads=1)


def _ppm(h: int, w: int) -> bytes:
    return f"P6\n{w} {h}\n255\n".encode() + photo(h, w).tobytes()


@pytest.fixture(scope="module")
def files() -> dict[str, tuple[bytes, bytes]]:
    """(original, .dlz) of small real files through the shipped models."""
    text = (DATA / "README.md").read_bytes()[:600]
    out = {}
    for name, data, model in (("image", _ppm(10, 12), "pixelcnn"), ("text", text, "charrnn"),
                              ("bytes", bytes(range(256)) * 8, "zstd")):
        out[name] = data, api.compress(data, api.Options(model=model, device="cpu", threads=1, fallback=False))
    return out


def remake(blob: bytes, change) -> bytes:
    """The file with its header changed by ``change(header)``, CRCs and lengths made right again."""
    c = unpack(blob)
    change(c.header)
    return pack(c)


def _set(path: str, value):
    def change(h):
        *parents, last = path.split("/")
        node = h
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[int(last) if isinstance(node, list) else last] = value
    return change


def _refused(blob: bytes, kind=DulzipError) -> str:
    with pytest.raises(kind) as e:
        api.decompress(blob, OPTS)
    return str(e.value)


@pytest.mark.parametrize("which,path,value,says", [
    ("image", "layout/tile", 0.5, "layout.tile"),
    ("image", "streams/0/name", 0, "streams.0.name"),
    ("image", "extras/zlib", "png", "extras"),
    ("image", "model/sha256", 0, "model.sha256"),
    ("image", "length", math.inf, "length"),
    ("image", "exact", None, "exact"),
    ("image", "layout/tile", 4096, "layout.tile"),  # was a segmentation fault in _wave_plan
    ("image", "layout/width", 1 << 31, "layout.width"),  # was a hang
    ("image", "layout/height", -1, "layout.height"),
    ("image", "layout/channels", 5, "layout.channels"),
    ("image", "layout/mixer", 99, "mixer version 99"),
    ("image", "model/name", "../../etc/passwd", "model.name"),
    ("text", "length", 1 << 50, "text blocks"),  # was a hang
    ("text", "layout/slot_bits", 40, "layout.slot_bits"),
    ("text", "layout/block", 0, "layout.block"),
    ("text", "streams/0/coder", "brotli", "streams.0.coder"),
    ("text", "streams/0/size", -1, "streams.0.size"),
    ("bytes", "streams/0/name", "color.0", "streams.0.name"),
    ("bytes", "kind", "gif", "unknown content kind"),
    ("bytes", "blake2b", "00", "blake2b"),
])
def test_malformed_field_is_a_format_error_naming_it(files, which, path, value, says):
    blob = remake(files[which][1], _set(path, value))
    assert says in _refused(blob, FormatError)


def test_png_zlib_setting_out_of_range(files):
    data = open(DATA / "dune-47x37.png", "rb").read()
    blob = api.compress(data, api.Options(model="pixelcnn", device="cpu", threads=1, fallback=False))
    if unpack(blob).header["extras"].get("zlib") is None:
        pytest.skip("this PNG's zlib stream is not reproduced")
    assert "extras.zlib.0" in _refused(remake(blob, _set("extras/zlib/0", 2 ** 31)), FormatError)


def test_unknown_field_of_a_newer_version_is_refused_by_name(files):
    blob = remake(files["image"][1], _set("layout/dither", 1))
    assert "layout.dither" in _refused(blob, FormatError) and "newer" in _refused(blob)


def test_width_of_another_file_is_corrupt_data_not_a_crash(files):
    """A plausible but wrong width: the decoder runs off its streams and stops (the tail budget)."""
    for w in (255, 13, 1):
        _refused(remake(files["image"][1], _set("layout/width", w)), DulzipError)


def test_text_length_of_a_whole_block_from_a_tiny_payload_stops_early(files):
    """A 600-byte text claiming a 1 MB block: the range decoder runs dry and stops (no 40 s hang)."""
    import time
    t = time.perf_counter()
    _refused(remake(files["text"][1], _set("length", (1 << 20) - 1)), CorruptDataError)
    assert time.perf_counter() - t < 20


def test_zstd_bomb_is_refused_before_allocation(files):
    """A 65 KB frame that declares 2 GiB (python-zstandard allocates what a frame declares)."""
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(1 << 24))
    header = {"kind": "bytes", "length": 100, "blake2b": "0" * 32,
              "streams": [{"name": "bytes", "coder": "zstd", "size": len(bomb), "crc32": zlib.crc32(bomb)}]}
    blob = pack(Container(header, [bomb]))
    assert "declares" in _refused(blob, CorruptDataError)
    out = io.BytesIO()
    with pytest.raises(CorruptDataError):
        api.decompress_stream(io.BytesIO(blob), out, OPTS)


def test_zstd_frame_without_a_size_is_read_only_up_to_the_bound():
    cobj = zstandard.ZstdCompressor(level=3, write_content_size=False).compressobj()
    frame = cobj.compress(bytes(1 << 24)) + cobj.flush()
    header = {"kind": "bytes", "length": 1000, "blake2b": "0" * 32,
              "streams": [{"name": "bytes", "coder": "zstd", "size": len(frame), "crc32": zlib.crc32(frame)}]}
    assert "wrong length" in _refused(pack(Container(header, [frame])), CorruptDataError)


def test_large_image_is_refused_by_the_memory_bound_before_decoding(files):
    blob = remake(files["image"][1], lambda h: h["layout"].update(height=1 << 20, width=1 << 20))
    assert "memory" in _refused(blob, UsageError)


def test_memory_limit_option(files):
    h = unpack(files["image"][1]).header
    need = decode_memory(h)
    assert 0 < need < DEFAULT_MAX_MEMORY
    with pytest.raises(UsageError, match="max-memory"):
        api.decompress(files["image"][1], api.Options(device="cpu", threads=1, max_memory=need - 1))
    assert api.decompress(files["image"][1], api.Options(device="cpu", threads=1, max_memory=need)) == files["image"][0]


def test_deeply_nested_version_1_header():
    hdr = zlib.compress(("[" * 100000 + "]" * 100000).encode())
    blob = b"DULZ" + struct.pack("<BI", 1, len(hdr)) + hdr + struct.pack("<I", zlib.crc32(hdr))
    with pytest.raises(FormatError):
        unpack(blob)


def test_deeply_nested_version_2_header():
    from dulzip.container import T_LIST
    hdr = bytes([T_LIST, 1]) * 5000 + bytes([0])
    blob = b"DULZ\x02" + bytes([0x80 | (len(hdr) & 0x7F), len(hdr) >> 7]) + hdr + struct.pack("<I", zlib.crc32(hdr))
    with pytest.raises(FormatError, match="nested"):
        unpack(blob)


def test_stream_table_must_match_the_payload(files):
    blob = files["bytes"][1]
    with pytest.raises(FormatError, match="truncated"):
        unpack(blob[:-1])
    with pytest.raises(FormatError, match="unexpected bytes"):
        unpack(blob + b"\0")


def test_every_real_file_header_validates(files):
    for data, blob in files.values():
        assert api.decompress(blob, OPTS) == data
        validate(json.loads(json.dumps(unpack(blob).header)))


def test_range_decoder_stops_on_garbage():
    """Decoding far more symbols than a payload holds ends as CorruptDataError, not garbage forever."""
    from dulzip.coding.rangecoder import RangeDecoder, RangeEncoder
    rng = np.random.default_rng(0)
    p = rng.integers(1, 1000, size=(5000, 16))
    sym = np.array([rng.choice(16, p=r / r.sum()) for r in p])
    enc = RangeEncoder()
    enc.encode(sym, p)
    data = enc.finish()
    dec = RangeDecoder(data)
    assert (dec.decode(p) == sym).all()  # a valid stream decodes whole
    dec = RangeDecoder(data[:16])
    with pytest.raises(CorruptDataError, match="ends before"):
        for _ in range(100):
            dec.decode(p[:50])


def test_cli_max_memory_refuses_with_one_line(files, tmp_path):
    from click.testing import CliRunner
    from dulzip.cli import main
    p = tmp_path / "x.ppm.dlz"
    p.write_bytes(files["image"][1])
    r = CliRunner().invoke(main, ["decompress", "--max-memory", "100M", str(p)])
    assert r.exit_code == 1 and "max-memory" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.ppm").exists() and sorted(x.name for x in tmp_path.iterdir()) == ["x.ppm.dlz"]
    r = CliRunner().invoke(main, ["test", "--max-memory", "8G", str(p)])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("text,value", [("4G", 4 << 30), ("512M", 512 << 20), ("1.5GiB", 3 << 29), ("300000", 300000)])
def test_byte_sizes(text, value):
    from dulzip.cli import ByteSize
    assert ByteSize().convert(text, None, None) == value


def test_short_text_from_a_pipe_gets_small_tables():
    """A 159-byte text from standard input (size unknown) made a file whose decode took 860 MB:
    its count tables were sized for any length. A text that ends within its first block is now
    sized to its length, as a file of known size is."""
    text = b"The quick brown fox jumps over the lazy dog; " * 3 + b"and then some more words.\n"
    out = io.BytesIO()
    api.compress_stream(io.BytesIO(text), out, api.Options(device="cpu", threads=1, model="charrnn"))
    h = unpack(out.getvalue()).header
    assert h["kind"] == "text" and h["layout"]["slot_bits"] < 20
    assert decode_memory(h) < 1 << 30
    assert api.decompress(out.getvalue(), OPTS) == text
