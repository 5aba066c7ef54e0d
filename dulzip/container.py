"""The .dlz file format.

    offset  size  field
    0       4     magic b"DULZ"
    4       1     format version (FORMAT_VERSION)
    5       4     header length n (little endian)
    9       n     header: UTF-8 JSON (see below), zlib-compressed
    9+n     4     CRC32 of the header bytes
    13+n    ...   stream payloads, back to back, in header order; nothing after them

Header keys: ``kind`` (png | pnm | bytes), ``length`` and ``blake2b`` (128-bit hex) of the
original file, ``model`` (null or {name, sha256}), ``layout`` (what the codec needs),
``extras`` (format details needed to re-create the file), ``exact`` (true when the output
is byte-identical to the input; false when the format had to be re-encoded, e.g. a PNG whose
zlib stream could not be reproduced: its pixels and chunks are identical, and ``blake2b``
is then that of the re-encoded file), and ``streams``: a list of {name, coder (model | zstd |
stored), size, crc32}. Every stream has its own checksum, so damage is reported by stream.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

from dulzip.errors import CorruptDataError, FormatError

MAGIC = b"DULZ"
FORMAT_VERSION = 1
CODERS = ("model", "zstd", "stored")
MAX_HEADER = 1 << 26


@dataclass
class Container:
    header: dict
    payloads: list[bytes] = field(default_factory=list)

    def stream(self, name: str) -> tuple[dict, bytes]:
        for meta, data in zip(self.header["streams"], self.payloads):
            if meta["name"] == name:
                return meta, data
        raise FormatError(f"missing stream '{name}'")


def add_stream(header: dict, payloads: list[bytes], name: str, coder: str, data: bytes, **extra) -> None:
    """Append a stream and its metadata (size and CRC32 computed here)."""
    if coder not in CODERS:
        raise ValueError(coder)
    header.setdefault("streams", []).append(
        {"name": name, "coder": coder, "size": len(data), "crc32": zlib.crc32(data), **extra})
    payloads.append(data)


def pack(c: Container) -> bytes:
    hdr = zlib.compress(json.dumps(c.header, sort_keys=True, separators=(",", ":")).encode(), 9)
    parts = [MAGIC, struct.pack("<BI", FORMAT_VERSION, len(hdr)), hdr, struct.pack("<I", zlib.crc32(hdr))]
    parts.extend(c.payloads)
    return b"".join(parts)


def read_header(blob: bytes) -> tuple[dict, int]:
    """Parse and check magic, version and header; returns (header, offset of the first stream)."""
    if len(blob) < 4 or blob[:4] != MAGIC:
        raise FormatError("not a .dlz file (bad magic)")
    if len(blob) < 9:
        raise FormatError("truncated .dlz file (header cut off)")
    version, n = struct.unpack_from("<BI", blob, 4)
    if version > FORMAT_VERSION:
        raise FormatError(f"made by a newer dulzip (format version {version}; this one reads up to "
                          f"{FORMAT_VERSION}): upgrade dulzip")
    if version < 1:
        raise FormatError(f"unknown format version {version}")
    if n > MAX_HEADER or len(blob) < 13 + n:
        raise FormatError("truncated .dlz file (header cut off)")
    hdr = blob[9:9 + n]
    (crc,) = struct.unpack_from("<I", blob, 9 + n)
    if zlib.crc32(hdr) != crc:
        raise CorruptDataError("the .dlz header is damaged (checksum mismatch)")
    try:
        header = json.loads(zlib.decompressobj().decompress(hdr, MAX_HEADER))
    except (ValueError, zlib.error) as e:
        raise FormatError(f"the .dlz header is not valid JSON: {e}") from None
    if not isinstance(header, dict) or not isinstance(header.get("streams"), list):
        raise FormatError("the .dlz header lacks its stream table")
    return header, 13 + n


def unpack(blob: bytes) -> Container:
    """Parse a .dlz file and verify every stream's checksum."""
    header, pos = read_header(blob)
    payloads = []
    for i, meta in enumerate(header["streams"]):
        try:
            size, crc, coder = int(meta["size"]), int(meta["crc32"]), meta["coder"]
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"stream {i} has a malformed description") from None
        if coder not in CODERS:
            raise FormatError(f"stream {i} uses an unknown coder '{coder}'")
        if size < 0 or pos + size > len(blob):
            raise FormatError(f"truncated .dlz file (stream {i} '{meta.get('name')}' cut off)")
        data = blob[pos:pos + size]
        if zlib.crc32(data) != crc:
            raise CorruptDataError(f"stream {i} ('{meta.get('name')}') is damaged (checksum mismatch)")
        payloads.append(data)
        pos += size
    if pos != len(blob):
        raise FormatError(f"{len(blob) - pos} unexpected bytes after the last stream")
    return Container(header, payloads)
