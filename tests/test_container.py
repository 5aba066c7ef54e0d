"""The container: well-formed files parse; damaged ones raise a clear error."""
from __future__ import annotations

import json
import struct
import zlib

import pytest

from dulzip.container import Container, FORMAT_VERSION, add_stream, pack, unpack
from dulzip.errors import CorruptDataError, FormatError


def _blob():
    header, payloads = {"kind": "bytes", "length": 5, "blake2b": "0" * 32}, []
    add_stream(header, payloads, "bytes.0", "stored", b"hello")
    add_stream(header, payloads, "bytes.1", "zstd", b"\x00\x01\x02")
    return pack(Container(header, payloads))


def test_pack_unpack():
    c = unpack(_blob())
    assert c.payloads == [b"hello", b"\x00\x01\x02"]
    assert c.header["streams"][0]["name"] == "bytes.0"


@pytest.mark.parametrize("cut", [0, 3, 8, 12, 20, -1, -4])
def test_truncated(cut):
    blob = _blob()
    with pytest.raises((FormatError, CorruptDataError)):
        unpack(blob[:cut] if cut > 0 else blob[:len(blob) + cut] if cut < 0 else b"")


def test_bad_magic():
    with pytest.raises(FormatError, match="magic"):
        unpack(b"XXXX" + _blob()[4:])


def test_future_version():
    blob = bytearray(_blob())
    blob[4] = FORMAT_VERSION + 1
    with pytest.raises(FormatError, match="newer dulzip"):
        unpack(bytes(blob))


def test_every_bit_flip_is_detected():
    blob = _blob()
    for i in range(len(blob)):
        for bit in (0, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises((FormatError, CorruptDataError)):
                unpack(bytes(bad))


def test_trailing_garbage():
    with pytest.raises(FormatError, match="unexpected bytes"):
        unpack(_blob() + b"x")


def test_unknown_coder():
    hdr = zlib.compress(json.dumps({"kind": "bytes", "length": 0, "streams": [
        {"name": "bytes", "coder": "magic", "size": 0, "crc32": 0}]}).encode())
    blob = b"DULZ" + struct.pack("<BI", 1, len(hdr)) + hdr + struct.pack("<I", zlib.crc32(hdr))
    with pytest.raises(FormatError, match="not a known coder"):
        unpack(blob)


def test_version_1_files_still_decode():
    """Files of format version 1 (zlib-compressed JSON header) are read as they always were."""
    from dulzip import api
    data = b"version one" * 10
    import zstandard
    payload = zstandard.ZstdCompressor(level=19).compress(data)
    header = {"kind": "bytes", "length": len(data), "blake2b": api.checksum(data), "tool": "dulzip 0.1.0",
              "streams": [{"name": "bytes", "coder": "zstd", "size": len(payload), "crc32": zlib.crc32(payload)}]}
    hdr = zlib.compress(json.dumps(header).encode(), 9)
    blob = b"DULZ" + struct.pack("<BI", 1, len(hdr)) + hdr + struct.pack("<I", zlib.crc32(hdr)) + payload
    assert api.decompress(blob) == data


def test_compact_header_round_trips_json_values():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from dulzip.container import KEYS, decode_value, encode_value
    scalars = st.none() | st.booleans() | st.integers(-2 ** 62, 2 ** 62) | st.floats(allow_nan=False) | \
        st.text(max_size=20) | st.sampled_from(["png", "model", "0123456789abcdef" * 2, "ABCDEF0123456789"])
    values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=8), c, max_size=4), max_leaves=20)

    @settings(max_examples=300, deadline=None)
    @given(values)
    def check(v):
        assert decode_value(encode_value(v)) == v
    check()


def test_compact_header_garbage_is_a_format_error():
    import random

    from dulzip.container import decode_value
    rng = random.Random(0)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        try:
            decode_value(data)
        except FormatError:
            pass


def test_small_image_overhead_is_small(tiny_models):
    """A 28x28 digit: the container (header and framing) costs under 160 bytes."""
    import io

    from PIL import Image

    from dulzip import api
    from dulzip.container import read_header
    from tests.conftest import photo
    buf = io.BytesIO()
    Image.fromarray(photo(28, 28, 1)[:, :, 0]).save(buf, format="PNG")
    blob = api.compress(buf.getvalue(), api.Options(fallback=False))
    header, start = read_header(blob)
    assert header["kind"] == "png" and start < 160
