"""zstd -19 for the streams the models do not code, and its bounded inverse.

A zstd frame says how large its content is and how large a window it needs, and
python-zstandard allocates what the frame says: a 65 KB frame that declares 2 GiB made the
decoder reach 2.4 GB. Here the declared size is checked against what the .dlz header allows
before anything is allocated, frames without a declared size are read in pieces up to that
bound, and the window is capped (dulzip writes windows of at most 8 MB).
"""
from __future__ import annotations

import io

import zstandard

from dulzip.errors import CorruptDataError

LEVEL = 19
MAX_WINDOW = 1 << 27  # zstd -19 uses 2**23; a larger window is refused before it is allocated


SCREEN_LEVEL = 1  # a fast zstd whose size says whether zstd -19 could beat a model's file
SCREEN_MARGIN = 1.5
SCREEN_FROM = 256 << 10  # inputs at least this large are screened (zstd -19 takes about a second per 3 MB)


def screen(data: bytes, far: bool = True) -> int:
    """The size of a fast zstd frame of ``data`` (level 1 with zstd -19's 8 MB window and, where
    ``far``, long-distance matching, so that repeats far apart are found as -19 finds them):
    where a model's output is below this size divided by SCREEN_MARGIN, zstd -19 is not run to
    compare. (An audio block, at most a few MB, needs no long-distance matching.)"""
    params = zstandard.ZstdCompressionParameters.from_level(SCREEN_LEVEL, window_log=23, enable_ldm=far)
    return len(zstandard.ZstdCompressor(compression_params=params).compress(data))


def could_win(data: bytes, coded_size: int, start: int = SCREEN_FROM, far: bool = True) -> bool:
    """Could zstd -19 of ``data`` be smaller than ``coded_size`` bytes? Always yes below
    ``start`` bytes (then it is simply run); above, only where the fast screen comes near."""
    return len(data) < start or screen(data, far) < SCREEN_MARGIN * coded_size


def pack(data: bytes) -> tuple[str, bytes]:
    """('zstd', frame) when zstd -19 makes ``data`` smaller, else ('stored', data)."""
    packed = zstandard.ZstdCompressor(level=LEVEL).compress(data)
    return ("zstd", packed) if len(packed) < len(data) else ("stored", data)


def compress(data: bytes, level: int = LEVEL) -> bytes:
    return zstandard.ZstdCompressor(level=level).compress(data)


def decompress(frame: bytes, size: int, what: str, exact: bool = True) -> bytes:
    """The content of one zstd frame: exactly ``size`` bytes (``exact``) or at most ``size``;
    anything else is a CorruptDataError that names ``what``."""
    try:
        declared = zstandard.frame_content_size(frame)
        if declared > size or (exact and declared not in (-1, size)):
            raise CorruptDataError(f"{what} declares {declared} bytes where {size} are expected")
        reader = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).stream_reader(io.BytesIO(frame))
        out = _read(reader, size + 1)
    except zstandard.ZstdError as e:
        raise CorruptDataError(f"{what} does not decompress: {e}") from None
    if len(out) > size or (exact and len(out) != size):
        raise CorruptDataError(f"{what} decompresses to the wrong length")
    return out


def _read(reader, n: int) -> bytes:
    """Up to ``n`` bytes, in pieces (never one buffer of ``n`` allocated up front)."""
    parts, got = [], 0
    while got < n:
        piece = reader.read(min(n - got, 1 << 22))
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)
