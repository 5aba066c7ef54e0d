"""Which format an input is, from its first bytes, in plain Python.

Deciding whether an input goes to a model must not pay for the model's stack: this module
imports nothing (no numpy, Pillow or numba), so a file that ends on the zstd path starts in
milliseconds. The parsers (:mod:`dulzip.formats.png`, ``pnm``, ``wav``) are imported only
for inputs these checks let through.
"""
from __future__ import annotations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNM_MAGICS = (b"P5", b"P6")  # binary PGM and PPM, the ones dulzip.formats.pnm parses
TEXT_SNIFF = 1 << 16  # bytes looked at to tell text from binary
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"  # not whitespace
_NOT_ASCII = bytes(range(128, 256))


def looks_like_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def looks_like_pnm(data: bytes) -> bool:
    """Binary PGM or PPM by its magic (pnm.parse returns None for anything else)."""
    return data[:2] in PNM_MAGICS


def looks_like_wav(head: bytes) -> bool:
    """Cheap sniff on the first 12 bytes: ``RIFF`` size ``WAVE``."""
    return len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def modelled_whole(head: bytes, model: str = "auto") -> bool:
    """Whether an input starting with ``head`` is one the models take whole (an image, or a WAV
    for a WaveNet named by ``model``): such inputs are read into memory; any other large input
    is compressed as a stream (a WAV under 'auto': by the adaptive-filter coder, block by block)."""
    return looks_like_png(head) or looks_like_pnm(head) or (looks_like_wav(head[:12]) and model != "auto")


STREAM_MIN = 32 << 20  # inputs of at least this size that are not images (or WAVs for a WaveNet) are streamed


def streamed(head: bytes, size: int, model: str = "auto") -> bool:
    """Whether to compress an input of ``size`` bytes that starts with ``head`` (its first 12
    bytes at least) as a stream, in bounded memory, rather than whole. The one rule for the CLI
    and the library alike."""
    return size >= STREAM_MIN and not modelled_whole(head, model)


def looks_like_text(data: bytes) -> bool:
    """Text-like input, from its first TEXT_SNIFF bytes: (almost) no control bytes other than
    whitespace, and either valid UTF-8 or mostly printable ASCII (other 8-bit encodings).
    Counts by ``bytes.translate`` (no numpy: this decides whether a model is loaded at all)."""
    head = data[:TEXT_SNIFF]
    if not head:
        return False
    control = len(head) - len(head.translate(None, _CONTROL))
    if control > len(head) // 100:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 3 and e.reason == "unexpected end of data":
            return True  # a character cut by the sniffing window
    return len(head.translate(None, _NOT_ASCII)) >= 0.9 * len(head)
