"""Binary PGM (P5) and PPM (P6) with 8-bit samples, or 16-bit ones (maxval 256..65535: two bytes a
sample, big-endian, as uint16): header and trailer kept verbatim."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WHITESPACE = b" \t\n\r\x0b\x0c"


@dataclass
class ParsedPNM:
    head: bytes  # everything before the raster, verbatim
    pixels: np.ndarray  # (H, W, C) uint8, or uint16 when maxval > 255
    tail: bytes  # anything after the raster, verbatim


def parse(data: bytes) -> ParsedPNM | None:
    """The PNM, or None when this is not a binary PGM/PPM of 8 or 16 bits (it then goes the bytes way)."""
    if len(data) < 2 or data[:2] not in (b"P5", b"P6"):
        return None
    C = 1 if data[:2] == b"P5" else 3
    pos, fields = 2, []
    while len(fields) < 3:
        if pos >= len(data):
            return None
        ch = data[pos:pos + 1]
        if ch == b"#":
            end = data.find(b"\n", pos)
            if end < 0:
                return None
            pos = end + 1
        elif ch in WHITESPACE and ch:
            pos += 1
        else:
            start = pos
            while pos < len(data) and data[pos:pos + 1] not in WHITESPACE and data[pos:pos + 1] != b"#":
                pos += 1
            tok = data[start:pos]
            if not tok.isdigit() or len(tok) > 9:
                return None
            fields.append(int(tok))
    if pos >= len(data) or data[pos:pos + 1] not in WHITESPACE:
        return None
    pos += 1  # exactly one whitespace byte before the raster
    W, H, maxval = fields
    if not (0 < maxval < 65536) or W == 0 or H == 0:
        return None
    wide = maxval > 255
    n = W * H * C * (2 if wide else 1)
    if len(data) - pos < n:
        return None
    pixels = np.frombuffer(data, dtype=">u2" if wide else np.uint8, count=n // (2 if wide else 1),
                           offset=pos).reshape(H, W, C)
    if maxval not in (255, 65535) and pixels.max() > maxval:
        return None
    return ParsedPNM(data[:pos], pixels.astype(np.uint16 if wide else np.uint8), data[pos + n:])


def build(head: bytes, pixels: np.ndarray, tail: bytes) -> bytes:
    """The file again; uint16 pixels as two bytes a sample, big-endian."""
    return head + np.ascontiguousarray(pixels, dtype=">u2" if pixels.dtype == np.uint16 else np.uint8).tobytes() + tail
