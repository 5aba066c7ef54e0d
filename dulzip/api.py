"""Bytes-level compression and decompression: format sniffing, planes, streams, container.

No command-line concerns here (see cli.py); errors are :mod:`dulzip.errors` exceptions.

Start-up: this module imports only what the bytes path needs (the container, its schema, zstd).
numpy, torch, numba, the codecs, Pillow and tqdm are imported inside the functions that use
them, once sniffing (:mod:`dulzip.formats.sniff`, :func:`looks_like_text`, model cards as JSON)
has sent the input to a model: a file that goes to zstd, and ``dulzip list``, never load them
(tests/test_startup.py).
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dulzip import __version__
from dulzip.coding import zstdio
from dulzip.container import (CODERS, Container, add_stream, iter_streams, pack, read_header, read_header_file,
                              unpack, write_container)
from dulzip.errors import CorruptDataError, DulzipWarning, FormatError, UsageError
from dulzip.formats import sniff
from dulzip.schema import DEFAULT_MAX_MEMORY, decode_memory

if TYPE_CHECKING:  # annotations only: imported where used (start-up)
    import numpy as np

    from dulzip.codecs.audio import AudioLayout
    from dulzip.codecs.text import Layout
    from dulzip.formats import wav

DEFAULT_IMAGE_MODEL = "pixelcnn"
FLOW_MODEL = "idf"  # images of more than PIXELCNN_MAX_TILES tiles, where installed
GRAY_FLOW_MODEL = "idf-gray"  # the flow fine-tuned on gray images: large gray images, where installed
# the PixelCNN (with the image mixer) up to this many tiles of DEFAULT_TILE x DEFAULT_TILE: its decoding
# time grows with them (all tiles step together); 126 tiles (854x534) decode in 65 s on 2 CPU cores,
# 100 (640x640) in 56 s, 64 (512x512) in 36 s
PIXELCNN_MAX_TILES = 128
DEFAULT_TEXT_MODEL = "charrnn"
SPEECH_MODEL = "wavenet"  # audio sampled at up to SPEECH_RATE Hz
MUSIC_MODEL = "wavenet-music"  # faster sample rates, where installed
SPEECH_RATE = 16000
STEREO = "auto"  # "lr": channels as they are; "side": left and right - left; "auto": by the input (stereo-test.md)
TEXT_SNIFF = 1 << 16  # bytes looked at to tell text from binary
BYTES_CHUNK = 1 << 24  # the streamed bytes path: one zstd stream per 16 MB
DEFAULT_TILE = 64  # the autoregressive image models' tiles (the flow's: exact.idf.DEFAULT_TILE)
INLINE_MAX = 64  # side data up to this many bytes goes in the header
SHA_PREFIX = 32  # hex digits of the weights' sha256 recorded in a file (128 bits)


@dataclass
class Options:
    model: str = "auto"  # auto | zstd | a model name
    exact: bool = False  # refuse non-byte-identical re-encoding (PNG): store as bytes instead
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch threads for batched passes (0: the free cores, see default_threads)
    tile: int | None = None  # image tile size (None: the model's default)
    progress: bool = False
    fallback: bool = True  # False: keep the model path even where zstd would be smaller (tests)
    max_memory: int = DEFAULT_MAX_MEMORY  # bytes a decode may need; a file that needs more is refused
    level: int | None = None  # 1-3 fast, 4-6 (None) by the input's size, 7-19 maximum ratio (images; LEVELS)


def make_options(options: dict) -> Options:
    """Options from the library's keywords: ``options=Options(...)`` itself, or its fields by
    name (an unknown name is a TypeError that names it, as for any function)."""
    given = dict(options)
    base = given.pop("options", None)
    if base is not None:
        if given:
            raise TypeError(f"give either options= or its fields, not both ({', '.join(given)})")
        return base
    try:
        return Options(**given)
    except TypeError as e:
        raise TypeError(f"{e}".replace("Options.__init__()", "dulzip")) from None


# what a compression level means (images: the only kind with more than one coder today)
LEVELS = {"fast": range(1, 4), "default": range(4, 7), "best": range(7, 20)}


def level_name(level: int | None) -> str:
    return next((k for k, r in LEVELS.items() if level in r), "default")


def default_threads() -> int:
    """CPU threads for a run that was not told: the cores this process may use, less those
    busy (the 1-minute load average), at least one. torch's own default (every core) makes a
    busy machine oversubscribed: its threads spin waiting for each other (35 KB of text took
    20-28 s of CPU with it, 5.7 s with one thread). Output never depends on it."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def _set_threads(opts: Options) -> None:
    import torch
    torch.set_num_threads(opts.threads or default_threads())


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


def checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def resolve_device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device '{device}' (auto, cpu or cuda)")
    return device


# -- the bytes path ------------------------------------------------------------------------
def _bytes_container(data: bytes) -> Container:
    header = {"kind": "bytes", "length": len(data), "blake2b": checksum(data), "tool": __version__}
    payloads: list[bytes] = []
    add_stream(header, payloads, "bytes", *_zstd_stream(data))
    return Container(header, payloads)


_zstd_stream = zstdio.pack


def _unstream(meta: dict, data: bytes, limit: int) -> bytes:
    """A side or bytes stream's content, of at most ``limit`` bytes."""
    if meta["coder"] == "stored":
        if len(data) > limit:
            raise CorruptDataError(f"stream '{meta['name']}' is longer than the file it belongs to")
        return data
    if meta["coder"] == "zstd":
        return zstdio.decompress(data, limit, f"stream '{meta['name']}'", exact=False)
    raise FormatError(f"stream '{meta['name']}' cannot use coder '{meta['coder']}'")


def _piece_limit(meta: dict, left: int) -> int:
    """What a bytes stream may hold: the rest of the file, at most BYTES_CHUNK for a piece of a
    streamed file ('bytes.N'), so that memory stays bounded whatever the header says."""
    return left if meta["name"] == "bytes" else min(left, BYTES_CHUNK)


def memory_needed(h: dict, whole: bool = True) -> int:
    """schema.decode_memory for a validated header, with the image codec its model runs under."""
    flow, configs = False, []
    if h["kind"] in ("png", "pnm"):
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


# -- images ----------------------------------------------------------------------------------
def split_planes(pixels: np.ndarray) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """(H, W, C) -> (color planes (H, W, 1|3), layout, alpha plane to code or None).

    Redundancy found before modelling: gray stored as RGB (R = G = B) is coded as gray, a
    constant alpha plane as its value.
    """
    import numpy as np
    H, W, C = pixels.shape
    layout = {"height": H, "width": W, "channels": C}
    color = pixels[:, :, :3] if C >= 3 else pixels[:, :, :1]
    if C >= 3 and np.array_equal(color[:, :, 0], color[:, :, 1]) and np.array_equal(color[:, :, 0], color[:, :, 2]):
        color = color[:, :, :1]
        layout["replicated"] = True
    alpha = None
    if C in (2, 4):
        a = pixels[:, :, C - 1]
        if (a == a.flat[0]).all():
            layout["alpha"] = int(a.flat[0])
        else:
            layout["alpha"] = "coded"
            alpha = a[:, :, None]
    return np.ascontiguousarray(color), layout, alpha


def join_planes(color: np.ndarray, layout: dict, alpha: np.ndarray | None) -> np.ndarray:
    import numpy as np
    H, W, C = layout["height"], layout["width"], layout["channels"]
    out = np.empty((H, W, C), dtype=np.uint8)
    nc = 3 if C >= 3 else 1
    out[:, :, :nc] = color if color.shape[2] == nc else np.repeat(color, nc, axis=2)
    if C in (2, 4):
        out[:, :, C - 1] = alpha[:, :, 0] if layout["alpha"] == "coded" else layout["alpha"]
    return out


def _sniff_image(data: bytes, opts: Options):
    """(kind, pixels, extras streams, header extras, exact) for images the model takes, else None."""
    if sniff.looks_like_png(data):
        from dulzip.formats import png
        try:
            p = png.parse(data)
        except png.NotModelable:
            return None
        if p.zlib_params is None and opts.exact:
            return None
        extras = {"zlib": list(p.zlib_params) if p.zlib_params else None}
        if len(p.idat_sizes) > 1:  # else: the whole stream in one IDAT chunk
            extras["idat_sizes"] = p.idat_sizes
        if p.depth != 8:
            extras["depth"] = p.depth
        samples = p.pixels  # what the scanlines hold: the pixels, or a palette image's indices
        side = {}
        if p.indices is not None:
            extras["palette"] = True
            samples = p.indices
            if p.ranks is not None:  # pixels that use a repeated color's later entry
                side["png.ranks"] = p.ranks
        H, W, C = p.pixels.shape
        if p.chunks == png.standard_chunks(W, H, C, p.depth):
            extras["chunks"] = "standard"  # IHDR, IDAT, IEND only: nothing to keep
        else:
            side["png.chunks"] = png.serialize_chunks(p.chunks)
        rule, packed = png.pack_filters(p.filters, samples, p.depth)
        if rule is not None:
            extras["filter"] = rule
        else:
            side["png.filters4"] = packed
        return "png", p.pixels, side, extras, p.zlib_params is not None
    if not sniff.looks_like_pnm(data):
        return None
    from dulzip.formats import pnm
    q = pnm.parse(data)
    if q is not None:
        return "pnm", q.pixels, {"pnm.head": q.head, "pnm.tail": q.tail}, {}, True
    return None


def _rebuild_image(kind: str, pixels: np.ndarray, side: dict[str, bytes], extras: dict) -> bytes:
    from dulzip.formats import png, pnm
    if kind == "png":
        z = tuple(extras["zlib"]) if extras.get("zlib") else None
        H, W, C = pixels.shape
        depth = extras.get("depth", 8)
        chunks = png.standard_chunks(W, H, C, depth) if extras.get("chunks") == "standard" else \
            png.deserialize_chunks(side["png.chunks"])
        if extras.get("palette"):  # the colors back to the indices, by the kept palette
            pixels = png.palette_indices(pixels, png.palette(chunks), side.get("png.ranks"))
        if "png.filters" in side:  # format 1: the filter types as they are
            filters = side["png.filters"]
        else:
            filters = png.unpack_filters(extras.get("filter"), side.get("png.filters4"), pixels, depth)
        return png.build(pixels, chunks, extras.get("idat_sizes"), filters, z, depth)
    return pnm.build(side["pnm.head"], pixels, side["pnm.tail"])


def choose_image_model(color: np.ndarray, level: int | None = None) -> str:
    """The default model for these color planes, from the input alone (never the hardware):
    for 28x28 gray images (digits) MADE, its binarized variant when every level is 0 or 255,
    where installed; the PixelCNN up to PIXELCNN_MAX_TILES tiles of 64x64 (e.g. 854x534; its
    decoding stays within about a minute on 2 CPU cores); the integer discrete flow for larger images (a few passes
    each way), for gray ones (and RGB with R = G = B) its gray fine-tuning, where installed.
    ``level``: fast levels (1-3) take the flow for every image size, the best ones (7-19) the
    PixelCNN for every size (its decoding time grows with the image: minutes for photographs)."""
    import numpy as np

    from dulzip import zoo
    H, W, C = color.shape
    installed = zoo.cards()
    if C == 1 and (H, W) == (28, 28):
        if "made-binary" in installed and np.isin(color, (0, 255)).all():
            return "made-binary"
        if "made" in installed:
            return "made"
    big = -(-H // DEFAULT_TILE) * -(-W // DEFAULT_TILE) > PIXELCNN_MAX_TILES
    if level_name(level) == "fast" or (big and level_name(level) == "default"):
        if C == 1 and GRAY_FLOW_MODEL in installed:
            return GRAY_FLOW_MODEL
        if FLOW_MODEL in installed:
            return FLOW_MODEL
    return DEFAULT_IMAGE_MODEL


def _image_mixer(layout: dict) -> dict:
    """The image mixer's settings for both sides: its version from the layout, its table size
    from the size of the color planes (one coded channel when gray or replicated, else three)."""
    from dulzip.exact.imagemix import slot_bits_for
    n = layout["height"] * layout["width"] * (1 if layout.get("replicated") or layout["channels"] < 3 else 3)
    return {"version": layout["mixer"], "slot_bits": slot_bits_for(n)}


def _image_codec(net):
    """(encode, decode) functions of the codec this image model runs under."""
    if getattr(net, "codec", "autoregressive") == "flow":
        from dulzip.codecs.flow import decode_flow, encode_flow
        return encode_flow, decode_flow
    from dulzip.codecs.image import decode_planes, encode_planes
    return encode_planes, decode_planes


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"  # not whitespace
_NOT_ASCII = bytes(range(128, 256))


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


def _add_side(header: dict, payloads: list[bytes], side: dict[str, bytes]) -> None:
    """Format side data (PNG chunks, WAV headers): small pieces in the header, others as zstd streams."""
    for sname, blob in side.items():
        if len(blob) <= INLINE_MAX:  # small side data sits in the header (no stream entry)
            header.setdefault("inline", {})[sname] = blob.hex()
        else:
            add_stream(header, payloads, sname, *_zstd_stream(blob))


def _read_side(c: Container, formats: tuple[str, ...]) -> dict[str, bytes]:
    h = c.header
    try:
        side = {k: bytes.fromhex(v) for k, v in h.get("inline", {}).items()}
    except (AttributeError, TypeError, ValueError):
        raise FormatError("the .dlz header has malformed inline data") from None
    for meta, data in zip(h["streams"], c.payloads):
        if "." in meta["name"] and meta["name"].split(".")[0] in formats:
            side[meta["name"]] = _unstream(meta, data, int(h["length"]) + (1 << 20))
    return side


def _modality(name: str) -> str:
    from dulzip import zoo
    from dulzip.models.registry import ARCHITECTURES
    return ARCHITECTURES[zoo.card(name)["architecture"]].modality


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
        return pack(_bytes_container(data))
    sound = _sniff_audio(data, opts)
    if sound is not None:
        blob = _compress_audio(data, sound, opts)
    elif _text_model_for(data[:TEXT_SNIFF], opts):  # the same container as a streamed compression
        out = io.BytesIO()
        compress_stream(io.BytesIO(data), out, opts, len(data))
        blob = out.getvalue()
    else:
        sniffed = _sniff_image(data, opts)
        if sniffed is None:
            if model != "auto":
                raise UsageError(_cannot_code(model, data))
            return pack(_bytes_container(data))
        blob = _compress_image(data, sniffed, model, opts)
        if blob is None:
            return pack(_bytes_container(data))
    if not opts.fallback:
        return blob
    fallback = pack(_bytes_container(data))  # where the model did worse than zstd: exactly the zstd file
    if len(blob) < len(fallback):
        return blob
    if model != "auto":
        warnings.warn(f"model '{model}' made {len(blob):,} bytes, zstd {len(fallback):,}: the zstd file is kept "
                      "(never worse than zstd)", DulzipWarning, stacklevel=2)
    return fallback


def _cannot_code(model: str, data: bytes) -> str:
    """Why the model named cannot code this input, in words."""
    modality = _modality(model)
    what = ("a WAV" if sniff.looks_like_wav(data[:12]) else "a PNG" if sniff.looks_like_png(data)
            else "a PNM image" if sniff.looks_like_pnm(data) else "text" if looks_like_text(data[:TEXT_SNIFF])
            else "not an image, WAV or text")
    takes = {"image": "8-bit PNG and PNM images it can model", "audio": "8/16-bit PCM WAV files"}.get(modality, modality)
    return (f"model '{model}' codes {takes}; this input is {what} that it cannot code "
            "(use -m auto, or -m zstd)")


def _missing(kind: str, name: str) -> None:
    warnings.warn(f"the {kind} model '{name}' is not installed: stored with zstd (dulzip models lists "
                  "what is installed)", DulzipWarning, stacklevel=3)


def _model_header(kind: str, data: bytes, name: str, digest: str) -> dict:
    return {"kind": kind, "length": len(data), "blake2b": checksum(data),
            "model": {"name": name, "sha256": digest[:SHA_PREFIX]}, "tool": __version__}


def _prepare(name: str, opts: Options):
    from dulzip import zoo
    device = resolve_device(opts.device)
    _set_threads(opts)
    return zoo.load(name, device)


def _compress_image(data: bytes, sniffed, model: str, opts: Options) -> bytes | None:
    from dulzip.codecs.image import encode_planes
    from dulzip.exact.imagemix import IMAGE_MIXER_VERSION
    kind, pixels, side, extras, exact = sniffed
    color, layout, alpha = split_planes(pixels)
    name = choose_image_model(color, opts.level) if model == "auto" else model
    from dulzip import zoo
    if model == "auto" and name not in zoo.cards():
        _missing("image", name)
        return None
    net, digest = _prepare(name, opts)
    if getattr(net, "modality", "image") != "image":
        raise UsageError(f"model '{name}' is not an image model")
    if net.gray_only and color.shape[2] != 1:
        raise UsageError(f"model '{name}' codes gray images only")
    encode, _ = _image_codec(net)
    layout["tile"] = net.fixed_tile or opts.tile or getattr(net, "default_tile", DEFAULT_TILE)
    output = data if exact else _rebuild_image(kind, pixels, side, extras)
    header = _model_header(kind, data, name, digest)
    header.update({"exact": exact, "layout": layout, "extras": extras})
    if not exact:
        header["output_length"] = len(output)
        header["output_blake2b"] = checksum(output)
    kw = {}
    if encode is encode_planes:  # autoregressive models code through the adaptive image mixer
        layout["mixer"] = IMAGE_MIXER_VERSION
        kw["mixer"] = _image_mixer(layout)
    payloads: list[bytes] = []
    _add_side(header, payloads, side)
    est = 0.0
    for plane_name, plane in (("color", color), ("alpha", alpha)):
        if plane is None:
            continue
        for i, s in enumerate(encode(plane, net, layout["tile"], opts.progress, allow_zstd=opts.fallback, **kw)):
            add_stream(header, payloads, f"{plane_name}.{i}", s.coder, s.payload)
            est += s.est_bits if s.coder == "model" else 8 * len(s.payload)
    header["model_bits"] = round(est)
    return pack(Container(header, payloads))


def decompress(blob: bytes, opts: Options | None = None) -> bytes:
    """Restore the original bytes from a .dlz container; raises on any mismatch."""
    opts = opts or Options()
    c = unpack(as_bytes(blob, "blob"))
    h = c.header
    kind, length = h["kind"], h["length"]
    check_memory(h, opts, whole=True)
    if kind == "bytes":
        parts, left = [], length
        for m, d in zip(h["streams"], c.payloads):
            parts.append(_unstream(m, d, _piece_limit(m, left)))
            left -= len(parts[-1])
        out = b"".join(parts)
        expect_len, expect_sum = length, h.get("blake2b")
    elif kind == "text":  # decoded as a stream (its checksum checked there too)
        buf = io.BytesIO()
        decompress_stream(io.BytesIO(blob), buf, opts)
        out = buf.getvalue()
        expect_len, expect_sum = length, h.get("blake2b")
    elif kind == "wav":
        out = _decompress_audio(c, opts)
        expect_len, expect_sum = length, h.get("blake2b")
    elif kind in ("png", "pnm"):
        out = _decompress_image(c, opts)
        if h.get("exact", True):
            expect_len, expect_sum = length, h.get("blake2b")
        else:
            expect_len, expect_sum = int(h["output_length"]), h.get("output_blake2b")
    else:
        raise FormatError(f"unknown content kind '{kind}' (made by a newer dulzip?)")
    if len(out) != expect_len or checksum(out) != expect_sum:
        raise CorruptDataError("decoded data does not match the original's checksum")
    return out


def _load_for(h: dict, opts: Options):
    """The model a file names, checked against its recorded sha256."""
    from dulzip import zoo
    try:
        name, sha = h["model"]["name"], h["model"]["sha256"]
    except (KeyError, TypeError):
        raise FormatError("the .dlz header lacks its model") from None
    device = resolve_device(opts.device)
    _set_threads(opts)
    return name, zoo.load(name, device, expect_sha256=sha)[0]


def _layout_header(layout: Layout) -> dict:
    return {"block": layout.block, "max_streams": layout.streams, "seg_min": layout.seg_min,
            "slot_bits": layout.slot_bits, "mixer": layout.mixer}


def _text_layout(h: dict) -> Layout:
    from dulzip.codecs.text import Layout
    from dulzip.exact.textmix import MIXER_VERSION, SLOT_BITS
    try:
        lay = h["layout"]
        layout = Layout(block=int(lay["block"]), streams=int(lay["max_streams"]), seg_min=int(lay["seg_min"]),
                        slot_bits=int(lay["slot_bits"]), mixer=int(lay.get("mixer", 1)))
    except (KeyError, TypeError, ValueError):
        raise FormatError("the .dlz header lacks the text layout") from None
    if layout.mixer != MIXER_VERSION:
        raise FormatError(f"this file's text was coded by version {layout.mixer} of the text mixer; this dulzip "
                          f"decodes version {MIXER_VERSION}: decode it with the dulzip version that wrote it")
    if min(layout.block, layout.streams, layout.seg_min) < 1 or not 12 <= layout.slot_bits <= SLOT_BITS:
        raise FormatError("the .dlz header has an invalid text layout")
    return layout


def _decompress_image(c: Container, opts: Options) -> bytes:
    from dulzip.codecs.image import Stream, decode_planes
    h = c.header
    try:
        layout, extras = h["layout"], h["extras"]
        H, W, C, T = layout["height"], layout["width"], layout["channels"], layout["tile"]
    except (KeyError, TypeError):
        raise FormatError("the .dlz header lacks the image layout") from None
    if not (isinstance(H, int) and isinstance(W, int) and H > 0 and W > 0 and C in (1, 2, 3, 4) and T > 0):
        raise FormatError("the .dlz header has an invalid image layout")
    name, net = _load_for(h, opts)
    if getattr(net, "modality", "image") != "image":
        raise FormatError(f"model '{name}' is not an image model")
    if net.fixed_tile not in (None, T):
        raise FormatError(f"the .dlz header's tile size {T} does not fit model '{name}'")
    side = _read_side(c, ("png", "pnm"))
    planes = {}
    for plane_name in ("color", "alpha"):
        streams = [Stream(m["coder"], d) for m, d in zip(h["streams"], c.payloads)
                   if m["name"].startswith(plane_name + ".")]
        if not streams:
            continue
        nc = 1 if plane_name == "alpha" or layout.get("replicated") or C < 3 else 3
        decode = _image_codec(net)[1]
        kw = {}
        if "mixer" in layout and decode is decode_planes:
            if type(layout["mixer"]) is not int:
                raise FormatError("the .dlz header has an invalid image mixer")
            kw["mixer"] = _image_mixer(layout)
        planes[plane_name] = decode(streams, H, W, nc, net, T, opts.progress, **kw)
    if "color" not in planes or (layout.get("alpha") == "coded") != ("alpha" in planes):
        raise FormatError("the .dlz file lacks image streams")
    pixels = join_planes(planes["color"], layout, planes.get("alpha"))
    try:
        return _rebuild_image(h["kind"], pixels, side, extras)
    except (KeyError, ValueError, IndexError) as e:
        raise CorruptDataError(f"cannot rebuild the {h['kind']} file: {e}") from None


# -- streaming (memory that does not grow with the input) ---------------------------------------
# -- audio -----------------------------------------------------------------------------------
def choose_audio_model(rate: int) -> str:
    """The default audio model, from the input alone: the speech model for sample rates up to
    SPEECH_RATE, the music model above (where installed, else the speech model)."""
    from dulzip import zoo
    if rate > SPEECH_RATE and MUSIC_MODEL in zoo.cards():
        return MUSIC_MODEL
    return SPEECH_MODEL


def _sniff_audio(data: bytes, opts: Options) -> wav.Wav | None:
    """The parsed WAV when the audio path takes this input (a WAV it models, and an audio
    model asked for or 'auto' with one installed), else None."""
    from dulzip import zoo
    if not sniff.looks_like_wav(data[:12]):
        return None
    explicit = opts.model != "auto"
    if explicit and _modality(opts.model) != "audio":
        return None
    from dulzip.formats import wav
    w = wav.parse_wav(data)
    if w is None:
        if explicit:
            raise UsageError(f"model '{opts.model}' codes 8/16-bit PCM WAV files; this WAV is of another "
                             "kind (use -m auto, or -m zstd)")
        return None
    if not explicit and SPEECH_MODEL not in zoo.cards():
        _missing("audio", SPEECH_MODEL)
        return None
    return w


def stereo_mode(samples: np.ndarray, bits: int) -> str:
    """How to code a stereo input (STEREO; under "auto", from the input alone): as left and side
    when the side (right - left) carries less energy than the right channel (correlated
    channels), else left and right as they are."""
    import numpy as np
    if STEREO != "auto":
        return STEREO
    side = stereo_side(samples, bits)[:, 1].astype(np.float64)
    return "side" if side @ side < samples[:, 1].astype(np.float64) @ samples[:, 1] else "lr"


def stereo_side(samples: np.ndarray, bits: int, inverse: bool = False) -> np.ndarray:
    """(frames, 2) samples -> left and side = right - left, wrapped into the sample range (so it
    stays a 16-bit or 8-bit signal and the mapping is exactly invertible); ``inverse``: back."""
    import numpy as np
    half = 128 if bits == 8 else 32768
    x = samples.astype(np.int64)
    out = x.copy()
    sign = 1 if inverse else -1
    out[:, 1] = (x[:, 1] + sign * x[:, 0] + half) % (2 * half) - half
    return out.astype(samples.dtype)


def _audio_layout_header(lay: AudioLayout, w: wav.Wav) -> dict:
    return {"frames": len(w.samples), "channels": w.channels, "bits": w.bits, "rate": w.rate,
            "block": lay.block, "max_streams": lay.streams, "seg_min": lay.seg_min}


def _compress_audio(data: bytes, w: wav.Wav, opts: Options) -> bytes:
    from dulzip.codecs.audio import AudioLayout, encode_audio
    from dulzip.formats import wav
    from dulzip.train.data import to_levels
    name = choose_audio_model(w.rate) if opts.model == "auto" else opts.model
    net, digest = _prepare(name, opts)
    if getattr(net, "modality", "image") != "audio":
        raise UsageError(f"model '{name}' is not an audio model")
    layout = AudioLayout.for_model(net)
    header = _model_header("wav", data, name, digest)
    header.update(layout=_audio_layout_header(layout, w), streams=[])
    payloads: list[bytes] = []
    if not w.suffix and w.prefix == wav.canonical_prefix(w.rate, w.bits, w.channels, len(w.samples)):
        header["layout"]["canonical"] = True  # the usual 44-byte header: re-created, not stored
    else:
        _add_side(header, payloads, {"wav.prefix": w.prefix, "wav.suffix": w.suffix})
    samples = w.samples
    if w.channels == 2 and stereo_mode(w.samples, w.bits) == "side":
        header["layout"]["stereo"] = "side"
        samples = stereo_side(samples, w.bits)
    est = 0.0
    streams = encode_audio(to_levels(samples, w.bits), w.bits, net, layout, opts.progress, opts.fallback)
    for i, s in enumerate(streams):
        add_stream(header, payloads, f"audio.{i}", s.coder, s.payload)
        est += s.est_bits if s.coder == "model" else 8 * len(s.payload)
    header["model_bits"] = round(est)
    return pack(Container(header, payloads))


def _decompress_audio(c: Container, opts: Options) -> bytes:
    import numpy as np

    from dulzip.codecs.audio import AudioLayout, decode_audio
    from dulzip.codecs.image import Stream
    from dulzip.formats import wav
    h = c.header
    try:
        lay = h["layout"]
        frames, channels, bits, rate = (int(lay[k]) for k in ("frames", "channels", "bits", "rate"))
        layout = AudioLayout(block=int(lay["block"]), streams=int(lay["max_streams"]), seg_min=int(lay["seg_min"]))
    except (KeyError, TypeError, ValueError):
        raise FormatError("the .dlz header lacks the audio layout") from None
    if frames < 0 or channels not in (1, 2) or bits not in (8, 16) or min(layout.block, layout.streams,
                                                                         layout.seg_min) < 1:
        raise FormatError("the .dlz header has an invalid audio layout")
    name, net = _load_for(h, opts)
    if getattr(net, "modality", "image") != "audio":
        raise FormatError(f"model '{name}' is not an audio model")
    side = _read_side(c, ("wav",))
    if lay.get("canonical"):
        side = {"wav.prefix": wav.canonical_prefix(rate, bits, channels, frames), "wav.suffix": b""}
    streams = [Stream(m["coder"], d) for m, d in zip(h["streams"], c.payloads) if m["name"].startswith("audio.")]
    levels = decode_audio(streams, frames, channels, bits, net, layout, opts.progress)
    samples = ((levels - 128) // 256 if bits == 8 else levels).astype(np.int16)
    if lay.get("stereo") == "side" and channels == 2:
        samples = stereo_side(samples, bits, inverse=True)
    elif lay.get("stereo", "lr") != "lr":
        raise FormatError(f"unknown stereo coding '{lay.get('stereo')}'")
    try:
        return wav.build_wav(wav.Wav(side["wav.prefix"], samples, side["wav.suffix"], rate, bits, channels))
    except KeyError:
        raise FormatError("the .dlz file lacks the WAV header") from None


def _text_model_for(head: bytes, opts: Options) -> str | None:
    """The text model for an input starting with ``head``: the one named if it is a text model
    (unknown names are refused), the default one for text-like input under 'auto', else None."""
    from dulzip import zoo
    if opts.model == "zstd":
        return None
    if opts.model != "auto":
        return opts.model if _modality(opts.model) == "text" else None
    if sniff.looks_like_png(head) or not looks_like_text(head):
        return None
    if DEFAULT_TEXT_MODEL not in zoo.cards():
        _missing("text", DEFAULT_TEXT_MODEL)
        return None
    return DEFAULT_TEXT_MODEL


def compress_stream(src, out, opts: Options | None = None, size: int | None = None) -> dict:
    """Compress a binary file ``src`` of any size into ``out`` with bounded memory: text by
    blocks through the text model, anything else by zstd in 16 MB pieces. Stream payloads are
    spooled to a temporary file while the input is read once; then the header, then them.
    ``size``: the input's length if known (for the progress bar). Returns the header written."""
    opts = opts or Options()
    head = src.read(TEXT_SNIFF)
    name = _text_model_for(head, opts)
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

    header: dict = {"kind": "bytes", "tool": __version__}
    metas: list[dict] = []
    with tempfile.TemporaryFile() as spool:
        def put(sname: str, coder: str, data: bytes) -> None:
            metas.append({"name": sname, "coder": coder, "size": len(data), "crc32": zlib.crc32(data)})
            spool.write(data)
        if name is None:
            for i, piece in enumerate(pieces(BYTES_CHUNK)):
                put(f"bytes.{i}", *_zstd_stream(piece))
        else:
            from tqdm import tqdm

            from dulzip.codecs.text import Layout, TextCoder
            net, digest = _prepare(name, opts)
            if size is None:  # standard input: a text within one block gets tables sized to it
                head += read_upto(src, Layout().block - len(head))
                size = len(head) if len(head) < Layout().block else None
            layout = Layout.for_length(size)
            coder = TextCoder(net, layout)
            header.update(kind="text", model={"name": name, "sha256": digest[:SHA_PREFIX]},
                          layout=_layout_header(layout))
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
    """Decompress a .dlz file ``src`` into ``out``; text and bytes files stream (bounded
    memory), images are decoded whole. Returns the length written; raises (after writing
    part of it) when the checksum does not match: the caller discards ``out`` then."""
    opts = opts or Options()
    if not src.seekable():  # a pipe or FIFO: the header is checked against the file's size first
        src = io.BytesIO(src.read())
    start = src.tell()
    h = read_header_file(src)
    kind = h["kind"]
    if kind not in ("text", "bytes"):
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

    if kind == "bytes":
        for meta, data in iter_streams(src, h):
            emit(_unstream(meta, data, _piece_limit(meta, length - written)))
    else:
        from tqdm import tqdm

        from dulzip.codecs.image import Stream
        from dulzip.codecs.text import TextCoder
        layout = _text_layout(h)
        name, net = _load_for(h, opts)
        if getattr(net, "modality", "image") != "text":
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
