"""Any other bytes: zstd -19 (or stored, where zstd does not shrink them), whole or, for a
streamed input, in BYTES_CHUNK pieces, each read back within bounds."""
from __future__ import annotations

from dulzip import __version__
from dulzip.container import Container, add_stream
from dulzip.kinds.common import checksum, zstd_stream

BYTES_CHUNK = 1 << 24  # the streamed bytes path: one zstd stream per 16 MB


def container(data: bytes) -> Container:
    header = {"kind": "bytes", "length": len(data), "blake2b": checksum(data), "tool": __version__}
    payloads: list[bytes] = []
    add_stream(header, payloads, "bytes", *zstd_stream(data))
    return Container(header, payloads)


def piece_limit(meta: dict, left: int) -> int:
    """What a bytes stream may hold: the rest of the file, at most BYTES_CHUNK for a piece of a
    streamed file ('bytes.N'), so that memory stays bounded whatever the header says."""
    return left if meta["name"] == "bytes" else min(left, BYTES_CHUNK)
