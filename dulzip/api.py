"""Bytes-level compression and decompression: which pipeline takes an input, the container,
streams, limits.

No command-line concerns here (see cli.py); errors are :mod:`dulzip.errors` exceptions. The
work of each kind of content is in its pipeline (:mod:`dulzip.kinds`): this module sniffs an
input, hands it to the first pipeline that takes it (audio, text, image; else bytes), keeps the
never-worse-than-zstd rule, streams text and bytes in bounded memory, and dispatches a file to
the pipeline its header names.

Start-up: this module imports only what the bytes path needs (the container, its schema, zstd).
numpy, torch, numba, the codecs, Pillow and tqdm are imported inside the functions that use
them, once sniffing (:mod:`dulzip.formats.sniff`, model cards as JSON) has sent the input to a
model: a file that goes to zstd, and ``dulzip list``, never load them (tests/test_startup.py).
"""
from __future__ import annotations

import hashlib
import io
import tempfile
import warnings
import zlib

from dulzip import __version__
from dulzip.coding import zstdio
from dulzip.container import CODERS, iter_streams, pack, read_header, read_header_file, unpack, write_container
from dulzip.errors import CorruptDataError, DulzipWarning, FormatError, UsageError
from dulzip.formats.sniff import TEXT_SNIFF, looks_like_text, looks_like_wav
from dulzip.kinds import audio, image, text
from dulzip.kinds import bytes as bytes_kind
from dulzip.kinds.audio import choose_audio_model
from dulzip.kinds.common import (SHA_PREFIX, cannot_code, checksum, load_for, prepare, resolve_device, unstream,
                                 zstd_stream)
from dulzip.kinds.image import choose_image_model
from dulzip.options import LEVELS, Options, default_threads, level_name, make_options
from dulzip.schema import decode_memory

__all__ = ["Options", "compress", "decompress", "compress_stream", "decompress_stream", "describe", "memory_needed",
           "check_memory", "as_bytes", "read_upto", "checksum", "resolve_device", "default_threads", "make_options",
           "LEVELS", "level_name", "looks_like_text", "choose_image_model", "choose_audio_model"]

# whole-file decoders by the header's kind (text and bytes: as a stream, see decompress_stream)
DECODERS = {**{k: image.decompress for k in image.KINDS}, **{k: audio.decompress for k in audio.KINDS}}


def as_bytes(data, what: str = "data") -> bytes:
    """Any bytes-like object (bytes, bytearray, memoryview, array, a numpy buffer) as bytes;
    a clear TypeError for str (which has no one byte encoding) and anything else."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        raise TypeError(f"dulzip compresses bytes, not str: encode the text first (e.g. {what}.encode('utf-8'))")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(data).__name__}") from None


def memory_needed(h: dict, whole: bool = True) -> int:
    """schema.decode_memory for a validated header, with the image codec its model runs under."""
    flow, configs = False, []
    if h["kind"] in ("png", "pnm") and "image16" not in h["layout"]:
        from dulzip import zoo
        cards = [c for c in zoo.all_cards() if c["name"] == h["model"]["name"]]
        flow = any(c["architecture"] == "idf" for c in cards)
        configs = [c.get("config") or {} for c in cards]
    return decode_memory(h, whole, flow, configs)


def check_memory(h: dict, opts: Options, whole: bool) -> None:
    """Refuse, before decoding, a file whose decode would need more than ``opts.max_memory``."""
    need = memory_needed(h, whole)
    if need > opts.max_memory:
        raise UsageError(f"decoding this file needs about {need / 2**30:.1f} GiB of memory, above the limit of "
                         f"{opts.max_memory / 2**30:.1f} GiB (raise it with --max-memory)")


def compress(data: bytes, opts: Options | None = None) -> bytes:
    """Compress a whole file's bytes (any bytes-like object) to a .dlz container.

    A model named in ``opts.model`` that cannot code this input (an image model on text, an
    audio model on a JPEG) is a UsageError, never a silent zstd file; under 'auto', an input
    whose model is not installed goes to zstd with a :class:`DulzipWarning`. A model that did
    worse than zstd gives way to zstd (never worse than zstd), with a warning when it was asked
    for by name."""
    opts = opts or Options()
    data = as_bytes(data)
    model = opts.model
    if model == "zstd":
        return pack(bytes_kind.container(data))
    sound = audio.sniff_wav(data, opts)
    if sound is not None:
        blob = audio.compress(data, sound, opts)
    elif text.model_for(data[:TEXT_SNIFF], opts):  # the same container as a streamed compression
        out = io.BytesIO()
        compress_stream(io.BytesIO(data), out, opts, len(data))
        blob = out.getvalue()
    else:
        sniffed = image.sniff(data, opts)
        if sniffed is None:
            if model != "auto":
                raise UsageError(cannot_code(model, data))
            return pack(bytes_kind.container(data))
        blob = image.compress(data, sniffed, model, opts)
        if blob is None:
            return pack(bytes_kind.container(data))
    if not opts.fallback or not zstdio.could_win(data, len(blob)):
        return blob
    fallback = pack(bytes_kind.container(data))  # where the model did worse than zstd: exactly the zstd file
    if len(blob) < len(fallback):
        return blob
    if model != "auto":
        warnings.warn(f"model '{model}' made {len(blob):,} bytes, zstd {len(fallback):,}: the zstd file is kept "
                      "(never worse than zstd)", DulzipWarning, stacklevel=2)
    return fallback


def decompress(blob: bytes, opts: Options | None = None) -> bytes:
    """Restore the original bytes from a .dlz container; raises on any mismatch."""
    opts = opts or Options()
    blob = as_bytes(blob, "blob")
    c = unpack(blob)
    h = c.header
    kind, length = h["kind"], h["length"]
    check_memory(h, opts, whole=True)
    expect_len, expect_sum = length, h.get("blake2b")
    if kind in ("text", "bytes"):  # decoded as a stream (its checksum checked there too)
        buf = io.BytesIO()
        decompress_stream(io.BytesIO(blob), buf, opts)
        out = buf.getvalue()
    elif kind in DECODERS:
        out = DECODERS[kind](c, opts)
        if not h.get("exact", True):  # a re-encoded PNG: its own length and checksum
            expect_len, expect_sum = int(h["output_length"]), h.get("output_blake2b")
    else:
        raise FormatError(f"unknown content kind '{kind}' (made by a newer dulzip?)")
    if len(out) != expect_len or checksum(out) != expect_sum:
        raise CorruptDataError("decoded data does not match the original's checksum")
    return out


def compress_stream(src, out, opts: Options | None = None, size: int | None = None) -> dict:
    """Compress a binary file ``src`` of any size into ``out`` with bounded memory: text by
    blocks through the text model, a WAV (``size`` known, ``-m auto``) by blocks through the
    adaptive-filter coder, anything else by zstd in 16 MB pieces. Stream payloads are
    spooled to a temporary file while the input is read once; then the header, then them.
    ``size``: the input's length if known (for the progress bar). Returns the header written."""
    opts = opts or Options()
    head = src.read(TEXT_SNIFF)
    name = text.model_for(head, opts)
    if name is None and opts.model not in ("auto", "zstd"):
        raise UsageError(f"model '{opts.model}' cannot code a stream (only text models and zstd can)")
    h = hashlib.blake2b(digest_size=16)
    total = 0

    def pieces(n: int):
        nonlocal total
        buf = head
        while True:
            while len(buf) < n:
                more = src.read(n - len(buf))
                if not more:
                    break
                buf += more
            if not buf:
                return
            h.update(buf[:n])
            total += len(buf[:n])
            yield buf[:n]
            buf = buf[n:]

    if name is None and opts.model == "auto" and size is not None and looks_like_wav(head):
        header = audio.compress_stream(src, out, opts, head, size)
        if header is not None:
            return header
    header: dict = {"kind": "bytes", "tool": __version__}
    metas: list[dict] = []
    with tempfile.TemporaryFile() as spool:
        def put(sname: str, coder: str, data: bytes) -> None:
            metas.append({"name": sname, "coder": coder, "size": len(data), "crc32": zlib.crc32(data)})
            spool.write(data)
        if name is None:
            for i, piece in enumerate(pieces(bytes_kind.BYTES_CHUNK)):
                put(f"bytes.{i}", *zstd_stream(piece))
        else:
            from tqdm import tqdm

            from dulzip.codecs.text import Layout, TextCoder
            net, digest = prepare(name, opts)
            if size is None:  # standard input: a text within one block gets tables sized to it
                head += read_upto(src, Layout().block - len(head))
                size = len(head) if len(head) < Layout().block else None
            layout = Layout.for_length(size)
            coder = TextCoder(net, layout)
            header.update(kind="text", model={"name": name, "sha256": digest[:SHA_PREFIX]},
                          layout=text.layout_header(layout))
            with tqdm(total=size, disable=not opts.progress, unit="B", unit_scale=True, desc="compress") as bar:
                for i, block in enumerate(pieces(layout.block)):
                    s = coder.encode_block(block, bar, allow_zstd=opts.fallback)
                    put(f"text.{i}", s.coder, s.payload)
        header.update(length=total, blake2b=h.hexdigest(), streams=metas)
        spool.seek(0)
        write_container(out, header, spool)
    return header


def read_upto(src, n: int) -> bytes:
    """Up to ``n`` bytes of ``src`` (fewer only at its end; a pipe returns short reads)."""
    parts, got = [], 0
    while got < n:
        piece = src.read(n - got)
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


def decompress_stream(src, out, opts: Options | None = None) -> int:
    """Decompress a .dlz file ``src`` into ``out``; text, bytes and the adaptive-filter coder's
    WAV files stream (bounded memory), images and WaveNet files are decoded whole. Returns the length written; raises (after writing
    part of it) when the checksum does not match: the caller discards ``out`` then."""
    opts = opts or Options()
    if not src.seekable():  # a pipe or FIFO: the header is checked against the file's size first
        src = io.BytesIO(src.read())
    start = src.tell()
    h = read_header_file(src)
    kind = h["kind"]
    streamed_wav = kind == "wav" and "cascade" in h["layout"]  # the adaptive-filter coder's: block by block
    if kind not in ("text", "bytes") and not streamed_wav:
        src.seek(start)
        data = decompress(src.read(), opts)
        out.write(data)
        return len(data)
    length = h["length"]
    check_memory(h, opts, whole=False)
    digest = hashlib.blake2b(digest_size=16)
    written = 0

    def emit(data: bytes) -> None:
        nonlocal written
        digest.update(data)
        out.write(data)
        written += len(data)

    if streamed_wav:
        audio.decompress_stream(src, emit, h, opts)
    elif kind == "bytes":
        for meta, data in iter_streams(src, h):
            emit(unstream(meta, data, bytes_kind.piece_limit(meta, length - written)))
    else:
        from tqdm import tqdm

        from dulzip.codecs.stream import Stream
        from dulzip.codecs.text import TextCoder
        layout = text.layout_of(h)
        name, net = load_for(h, opts)
        if net.modality != "text":
            raise FormatError(f"model '{name}' is not a text model")
        coder = TextCoder(net, layout)
        blocks = iter(layout.blocks(length))
        with tqdm(total=length, disable=not opts.progress, unit="B", unit_scale=True, desc="decompress") as bar:
            for meta, data in iter_streams(src, h):
                _, n = next(blocks, (0, -1))
                if n < 0 or meta["coder"] not in CODERS:
                    raise CorruptDataError("the .dlz file has more text blocks than its length needs")
                emit(coder.decode_block(Stream(meta["coder"], data), n, bar))
    if written != length or digest.hexdigest() != h.get("blake2b"):
        raise CorruptDataError("decoded data does not match the original's checksum")
    return written


def describe(blob: bytes) -> dict:
    """Header of a .dlz file plus sizes, without decoding (for ``dulzip list``)."""
    header, _ = read_header(as_bytes(blob, "blob"))
    return header
