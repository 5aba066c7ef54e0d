"""Which format an input is, from its first bytes, in plain Python.

Deciding whether an input goes to a model must not pay for the model's stack: this module
imports nothing (no numpy, Pillow or numba), so a file that ends on the zstd path starts in
milliseconds. The parsers (:mod:`dulzip.formats.png`, ``pnm``, ``wav``) are imported only
for inputs these checks let through.
"""
from __future__ import annotations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNM_MAGICS = (b"P5", b"P6")  # binary PGM and PPM, the ones dulzip.formats.pnm parses


def looks_like_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def looks_like_pnm(data: bytes) -> bool:
    """Binary PGM or PPM by its magic (pnm.parse returns None for anything else)."""
    return data[:2] in PNM_MAGICS


def looks_like_wav(head: bytes) -> bool:
    """Cheap sniff on the first 12 bytes: ``RIFF`` size ``WAVE``."""
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def modelled_whole(head: bytes) -> bool:
    """Whether an input starting with ``head`` is one the models take whole (an image or a WAV):
    such inputs are read into memory; any other large input is compressed as a stream."""
    return looks_like_png(head) or looks_like_pnm(head) or looks_like_wav(head[:12])
