"""The .dlz file format.

Version 2 (written):

    offset  size  field
    0       4     magic b"DULZ"
    4       1     format version (2)
    5       v     header length n (LEB128 varint)
    5+v     n     header: compact binary encoding of the header dict (see below)
    5+v+n   4     CRC32 of the header bytes
    9+v+n   ...   stream payloads, back to back, in header order; nothing after them

Version 1 (still read): magic, version 1, header length (4 bytes, little endian), the header
as zlib-compressed UTF-8 JSON, its CRC32, the payloads.

The compact encoding (``encode_value``) writes the same dict as the JSON would hold, in a
few dozen bytes: a tag byte per value, LEB128 integers, lowercase hex strings (checksums,
digests) as raw bytes, and key names and common values as indices into ``KEYS`` and
``STRINGS`` (append-only tables: an index, once written, means its string forever). Small
files are where this matters: a 28x28 digit is a few hundred bytes in all.

Header keys: ``kind`` (png | pnm | text | bytes), ``length`` and ``blake2b`` (128-bit hex) of the
original file, ``model`` (null or {name, sha256}), ``layout`` (what the codec needs),
``extras`` (format details needed to re-create the file), ``exact`` (true when the output
is byte-identical to the input; false when the format had to be re-encoded, e.g. a PNG whose
zlib stream could not be reproduced: its pixels and chunks are identical, and ``blake2b``
is then that of the re-encoded file), and ``streams``: a list of {name, coder (model | zstd |
stored), size, crc32}. Every stream has its own checksum, so damage is reported by stream.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass, field

from dulzip.errors import CorruptDataError, FormatError
from dulzip.schema import CODERS, validate

MAGIC = b"DULZ"
FORMAT_VERSION = 2
MAX_HEADER = 1 << 26
MAX_DEPTH = 16

# Append-only: never reorder or remove (old files refer to these by index).
KEYS = ("kind", "length", "blake2b", "exact", "model", "name", "sha256", "layout", "height", "width",
        "channels", "tile", "replicated", "alpha", "extras", "idat_sizes", "zlib", "depth", "streams",
        "coder", "size", "crc32", "model_bits", "tool", "output_length", "output_blake2b", "note", "inline",
        "chunks", "filter", "png.chunks", "png.filters", "png.filters4", "pnm.head", "pnm.tail",
        "block", "max_streams", "seg_min", "slot_bits", "mixer", "version")
STRINGS = ("png", "pnm", "bytes", "model", "zstd", "stored", "pixelcnn", "made", "made-binary", "png.chunks",
           "png.filters", "pnm.head", "pnm.tail", "color.0", "alpha.0", "coded", "standard",
           "pillow", "pillow-optimize", "text", "charrnn")
T_NONE, T_FALSE, T_TRUE, T_UINT, T_NEG, T_FLOAT, T_STR, T_HEX, T_LIST, T_DICT, T_KNOWN = range(11)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _is_hex(s: str) -> bool:
    return len(s) >= 16 and len(s) % 2 == 0 and all(c in "0123456789abcdef" for c in s)


def encode_value(v) -> bytes:
    """The compact binary form of a JSON-like value (dict keys are strings)."""
    if v is None:
        return bytes([T_NONE])
    if isinstance(v, bool):
        return bytes([T_TRUE if v else T_FALSE])
    if isinstance(v, int):
        return bytes([T_UINT]) + _varint(v) if v >= 0 else bytes([T_NEG]) + _varint(-1 - v)
    if isinstance(v, float):
        return bytes([T_FLOAT]) + struct.pack("<d", v)
    if isinstance(v, str):
        if v in STRINGS:
            return bytes([T_KNOWN]) + _varint(STRINGS.index(v))
        if _is_hex(v):
            raw = bytes.fromhex(v)
            return bytes([T_HEX]) + _varint(len(raw)) + raw
        raw = v.encode()
        return bytes([T_STR]) + _varint(len(raw)) + raw
    if isinstance(v, (list, tuple)):
        return bytes([T_LIST]) + _varint(len(v)) + b"".join(encode_value(x) for x in v)
    if isinstance(v, dict):
        parts = [bytes([T_DICT]), _varint(len(v))]
        for k, x in v.items():  # a key: 1 + its index in KEYS, or 0 and the string
            if k in KEYS:
                parts.append(_varint(KEYS.index(k) + 1))
            else:
                raw = str(k).encode()
                parts.append(b"\0" + _varint(len(raw)) + raw)
            parts.append(encode_value(x))
        return b"".join(parts)
    raise TypeError(f"cannot encode {type(v).__name__} in a .dlz header")


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise FormatError("the .dlz header is cut off")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        n, shift = 0, 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise FormatError("the .dlz header has an overlong integer")

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise FormatError("the .dlz header is cut off")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def string(self) -> str:
        try:
            return self.take(self.varint()).decode()
        except UnicodeDecodeError:
            raise FormatError("the .dlz header has a malformed string") from None

    def known(self) -> str:
        i = self.varint()
        if i >= len(STRINGS):
            raise FormatError("the .dlz header refers to an unknown string (made by a newer dulzip?)")
        return STRINGS[i]

    def value(self, depth: int = 0):
        if depth > MAX_DEPTH:
            raise FormatError("the .dlz header is nested too deep")
        t = self.byte()
        if t in (T_NONE, T_FALSE, T_TRUE):
            return (None, False, True)[t]
        if t == T_UINT:
            return self.varint()
        if t == T_NEG:
            return -1 - self.varint()
        if t == T_FLOAT:
            return struct.unpack("<d", self.take(8))[0]
        if t == T_STR:
            return self.string()
        if t == T_HEX:
            return self.take(self.varint()).hex()
        if t == T_KNOWN:
            return self.known()
        if t == T_LIST:
            return [self.value(depth + 1) for _ in range(self.varint())]
        if t == T_DICT:
            out = {}
            for _ in range(self.varint()):
                k = self.varint()
                if k > len(KEYS):
                    raise FormatError("the .dlz header uses an unknown key (made by a newer dulzip?)")
                key = KEYS[k - 1] if k else self.string()
                out[key] = self.value(depth + 1)
            return out
        raise FormatError(f"the .dlz header has an unknown value tag {t}")


def decode_value(data: bytes):
    r = _Reader(data)
    v = r.value()
    if r.pos != len(data):
        raise FormatError("the .dlz header has trailing bytes")
    return v


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
    hdr = encode_value(c.header)
    parts = [MAGIC, bytes([FORMAT_VERSION]), _varint(len(hdr)), hdr, struct.pack("<I", zlib.crc32(hdr))]
    parts.extend(c.payloads)
    return b"".join(parts)


def write_container(out, header: dict, payloads) -> None:
    """Write a container to a binary file: the header (whose stream table describes the
    payloads), then the payloads copied from ``payloads`` (a readable binary file, read to its
    end in pieces: memory stays bounded)."""
    hdr = encode_value(header)
    out.write(MAGIC + bytes([FORMAT_VERSION]) + _varint(len(hdr)) + hdr + struct.pack("<I", zlib.crc32(hdr)))
    for piece in iter(lambda: payloads.read(1 << 20), b""):
        out.write(piece)


def read_header_file(f) -> dict:
    """Read and check the header at the start of a seekable binary file (against the file's
    size too); leaves ``f`` at the first stream."""
    start = f.tell()
    size = f.seek(0, io.SEEK_END) - start
    f.seek(start)
    prefix = f.read(15)
    if prefix[:4] != MAGIC or len(prefix) < 6 or prefix[4] == 1:
        header, pos = read_header(prefix + (f.read() if prefix[:4] == MAGIC and len(prefix) >= 6 else b""))
        f.seek(start + pos)
        return header
    try:
        r = _Reader(prefix[5:15])
        n = r.varint()
    except FormatError:
        raise FormatError("truncated .dlz file (header cut off)") from None
    need = 5 + r.pos + min(n, MAX_HEADER + 1) + 4
    header, pos = read_header(prefix + f.read(max(0, need - len(prefix))), total=size)
    f.seek(start + pos)
    return header


def iter_streams(f, header: dict):
    """(meta, payload) of every stream, read one at a time from ``f`` (just past the header),
    each checked against its CRC32; then checks that nothing follows the last one."""
    for i, meta in enumerate(header["streams"]):
        size, crc = meta["size"], meta["crc32"]  # validated with the header (dulzip.schema)
        data = f.read(size)
        if len(data) != size:
            raise FormatError(f"truncated .dlz file (stream {i} '{meta.get('name')}' cut off)")
        if zlib.crc32(data) != crc:
            raise CorruptDataError(f"stream {i} ('{meta.get('name')}') is damaged (checksum mismatch)")
        yield meta, data
    if f.read(1):
        raise FormatError("unexpected bytes after the last stream")


def read_header(blob: bytes, total: int | None = None) -> tuple[dict, int]:
    """Parse and check magic, version and header (:func:`dulzip.schema.validate`, against the
    payload that follows: ``total`` bytes in the whole file, default ``len(blob)``); returns
    (header, offset of the first stream)."""
    if len(blob) < 4 or blob[:4] != MAGIC:
        raise FormatError("not a .dlz file (bad magic)")
    if len(blob) < 6:
        raise FormatError("truncated .dlz file (header cut off)")
    version = blob[4]
    if version > FORMAT_VERSION:
        raise FormatError(f"made by a newer dulzip (format version {version}; this one reads up to "
                          f"{FORMAT_VERSION}): upgrade dulzip")
    if version < 1:
        raise FormatError(f"unknown format version {version}")
    if version == 1:
        if len(blob) < 9:
            raise FormatError("truncated .dlz file (header cut off)")
        (n,) = struct.unpack_from("<I", blob, 5)
        start = 9
    else:
        r = _Reader(blob[5:15])
        try:
            n = r.varint()
        except FormatError:
            raise FormatError("truncated .dlz file (header cut off)") from None
        start = 5 + r.pos
    if n > MAX_HEADER or len(blob) < start + n + 4:
        raise FormatError("truncated .dlz file (header cut off)")
    hdr = blob[start:start + n]
    (crc,) = struct.unpack_from("<I", blob, start + n)
    if zlib.crc32(hdr) != crc:
        raise CorruptDataError("the .dlz header is damaged (checksum mismatch)")
    if version == 1:
        try:
            header = json.loads(zlib.decompressobj().decompress(hdr, MAX_HEADER))
        except (ValueError, zlib.error) as e:
            raise FormatError(f"the .dlz header is not valid JSON: {e}") from None
        except RecursionError:
            raise FormatError("the .dlz header is nested too deep") from None
    else:
        header = decode_value(hdr)
    end = start + n + 4
    return validate(header, (len(blob) if total is None else total) - end), end


def unpack(blob: bytes) -> Container:
    """Parse a .dlz file and verify every stream's checksum."""
    header, pos = read_header(blob)
    f = io.BytesIO(blob)
    f.seek(pos)
    return Container(header, [data for _, data in iter_streams(f, header)])
