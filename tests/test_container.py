"""The container: well-formed files parse; damaged ones raise a clear error."""
from __future__ import annotations

import json
import struct
import zlib

import pytest

from dulzip.container import Container, FORMAT_VERSION, add_stream, pack, unpack
from dulzip.errors import CorruptDataError, FormatError


def _blob():
    header, payloads = {"kind": "bytes", "length": 5}, []
    add_stream(header, payloads, "a", "stored", b"hello")
    add_stream(header, payloads, "b", "zstd", b"\x00\x01\x02")
    return pack(Container(header, payloads))


def test_pack_unpack():
    c = unpack(_blob())
    assert c.payloads == [b"hello", b"\x00\x01\x02"]
    assert c.header["streams"][0]["name"] == "a"


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
    hdr = zlib.compress(json.dumps({"streams": [{"name": "a", "coder": "magic", "size": 0, "crc32": 0}]}).encode())
    blob = b"DULZ" + struct.pack("<BI", 1, len(hdr)) + hdr + struct.pack("<I", zlib.crc32(hdr))
    with pytest.raises(FormatError, match="unknown coder"):
        unpack(blob)
