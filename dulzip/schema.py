"""What a valid .dlz header is, in one place.

A .dlz file is input from anywhere (a download, a damaged disk, an attacker), and its header
decides what the decoder allocates and loops over. :func:`validate` checks every field of a
parsed header -- its type, its range, and its relations to the other fields and to the payload
that follows -- before anything is allocated or decoded; the code past it (api, codecs,
formats) may trust the header. A malformed header is a :class:`FormatError` that names the
field. :func:`decode_memory` then says, from the validated header alone, how much memory a
decode will need, so that a file can be refused before it is decoded (``--max-memory``).

Fields of a newer format are refused by name ("made by a newer dulzip?"), never ignored: a
decoder that skipped a field it does not know could write a wrong file.
"""
from __future__ import annotations

import math
import re

from dulzip.errors import FormatError

KINDS = ("bytes", "text", "png", "pnm", "wav")
CODERS = ("model", "zstd", "stored", "lpc", "image16", "cascade")  # lpc: audio blocks only (codecs.lpc); image16: 16-bit planes; cascade: audio blocks of the adaptive-filter coder
MAX_LENGTH = 1 << 50  # an original file's length (1 PiB: a bound, not a promise)
MAX_SIDE = 1 << 20  # pixels along one side of an image
MAX_TILE = 1024  # image tile side (the CLI's --tile range; models use 28, 64 or 512)
MAX_FRAMES = 1 << 40
MAX_STREAMS = 1 << 20
MAX_COUNT_BITS = 27  # the adaptive mixers' count tables: at most 2**27 slots
IMAGE_MIXER_VERSIONS = (1, 2)  # image mixer versions this dulzip decodes: 1 raster order, 2 the wavefront
CASCADE_VERSIONS = (1,)  # versions of the adaptive-filter audio coder this dulzip decodes (codecs.cascade)
IMAGE16_VERSIONS = (1,)  # versions of the 16-bit image coder this dulzip decodes (codecs.image16)
PYRAMID_MIXER_VERSIONS = (2,)  # pyramid mixer versions this dulzip decodes (exact.pyramidmix; 1 was never released: its files needed weights the package did not install)
# bytes a decode may need before it is refused (--max-memory raises it): what a hostile file can
# make dulzip take. The shipped models' own files stay below it up to 128 PixelCNN tiles (the
# default's limit) and about 24-megapixel photographs through the flow.
DEFAULT_MAX_MEMORY = 2 << 30

TOP = {"kind", "length", "blake2b", "tool", "model", "layout", "extras", "exact", "output_length",
       "output_blake2b", "inline", "streams", "model_bits", "note"}
LAYOUT = {
    "png": {"height", "width", "channels", "tile", "replicated", "alpha", "mixer", "pyramid", "image16"},
    "text": {"block", "max_streams", "seg_min", "slot_bits", "mixer"},
    "wav": {"frames", "channels", "bits", "rate", "block", "max_streams", "seg_min", "canonical", "stereo", "cascade"},
}
LAYOUT["pnm"] = LAYOUT["png"]
EXTRAS = {"png": {"zlib", "idat_sizes", "depth", "palette", "chunks", "filter"}, "pnm": set()}
SIDE = {"png": ("png.chunks", "png.filters", "png.filters4", "png.ranks", "png.deflate", "png.tokens"), "pnm": ("pnm.head", "pnm.tail"),
        "wav": ("wav.prefix", "wav.suffix"), "text": (), "bytes": ()}
NUMBERED = {"bytes": ("bytes",), "text": ("text",), "png": ("color", "alpha"), "pnm": ("color", "alpha"),
            "wav": ("audio",)}
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
STREAM_NAME = re.compile(r"([a-z]+)\.(0|[1-9][0-9]{0,6})")


def _fail(path: str, what: str) -> FormatError:
    return FormatError(f"the .dlz header's field '{path}' {what}")


def _int(v, path: str, lo: int, hi: int) -> int:
    if type(v) is not int:
        raise _fail(path, f"is not an integer ({type(v).__name__})")
    if not lo <= v <= hi:
        raise _fail(path, f"is out of range ({v}; {lo}..{hi})")
    return v


def _bool(v, path: str) -> bool:
    if type(v) is not bool:
        raise _fail(path, f"is not true or false ({type(v).__name__})")
    return v


def _str(v, path: str, max_len: int = 4096) -> str:
    if type(v) is not str or len(v) > max_len:
        raise _fail(path, "is not a string" if type(v) is not str else "is too long")
    return v


def _hex(v, path: str, lengths: tuple[int, ...]) -> str:
    if type(v) is not str or len(v) not in lengths or any(c not in "0123456789abcdef" for c in v):
        raise _fail(path, f"is not a hex digest of {' or '.join(str(n // 2) for n in lengths)} bytes")
    return v


def _dict(v, path: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if type(v) is not dict:
        raise _fail(path, "is not a table")
    for k in v:
        if k not in allowed:
            raise FormatError(f"the .dlz header has an unknown field '{path + '.' if path else ''}{k}' "
                              "(made by a newer dulzip?)")
    for k in required:
        if k not in v:
            raise _fail(f"{path}.{k}", "is missing")
    return v


def _list(v, path: str, max_len: int) -> list:
    if type(v) is not list:
        raise _fail(path, "is not a list")
    if len(v) > max_len:
        raise _fail(path, f"has too many entries ({len(v)}; at most {max_len})")
    return v


def validate(h, payload_size: int | None = None) -> dict:
    """Check a parsed header; ``payload_size``: the bytes that follow it in the file (None when
    not known: the stream table is then checked as the streams are read). Returns ``h``."""
    if type(h) is not dict:
        raise FormatError("the .dlz header is not a table")
    _dict(h, "", TOP, {"kind", "length", "streams"})
    kind = h["kind"]
    if kind not in KINDS:
        raise FormatError(f"unknown content kind '{kind}' (made by a newer dulzip?)"
                          if type(kind) is str else "the .dlz header's field 'kind' is not a string")
    _int(h["length"], "length", 0, MAX_LENGTH)
    if kind != "bytes" or "blake2b" in h:
        _hex(h.get("blake2b"), "blake2b", (32,))
    for key, check in (("tool", lambda v: _str(v, "tool", 256)), ("note", lambda v: _str(v, "note")),
                       ("model_bits", _model_bits)):
        if key in h:
            check(h[key])
    _model(h, kind)
    if kind in LAYOUT:
        _dict(h.get("layout"), "layout", LAYOUT[kind])
    elif h.get("layout") is not None:
        raise _fail("layout", f"is not expected in a '{kind}' file")
    {"png": _image, "pnm": _image, "text": _text, "wav": _audio, "bytes": lambda h: None}[kind](h)
    _exactness(h, kind)
    _inline(h, kind)
    _streams(h, kind, payload_size)
    if kind == "png":
        _described(h)
    return h


def _stream_names(h: dict) -> set[str]:
    """The names of a header's streams, inline and stored."""
    return set(h.get("inline", {})) | {s["name"] for s in h["streams"]}


def _described(h: dict) -> None:
    """A PNG whose zlib stream is re-created from its description (formats.deflate_tokens): both
    its side streams, a byte-identical file, no zlib settings."""
    has = {"png.deflate", "png.tokens"} & _stream_names(h)
    if not has:
        return
    if len(has) != 2:
        raise _fail("streams", "hold one of a deflate stream's two side streams (png.deflate, png.tokens)")
    if not h.get("exact", True) or h["extras"].get("zlib") is not None:
        raise _fail("extras.zlib", "is set on a file whose zlib stream is re-created from its description")


def _model_bits(v) -> None:
    if type(v) not in (int, float) or not (math.isfinite(v) and v >= 0):
        raise _fail("model_bits", "is not a finite number >= 0")


def _coded16(h: dict) -> bool:
    """An image coded by the 16-bit coder (no model)?"""
    return h["kind"] in ("png", "pnm") and type(h.get("layout")) is dict and "image16" in h["layout"]


def _cascade(h: dict) -> bool:
    """Audio coded by the adaptive-filter coder (no model)?"""
    return h["kind"] == "wav" and type(h.get("layout")) is dict and "cascade" in h["layout"]


def _model(h: dict, kind: str) -> None:
    m = h.get("model")
    if kind == "bytes" or _coded16(h) or _cascade(h):
        if m is not None:
            what = "" if kind == "bytes" else " of the 16-bit coder" if _coded16(h) else " of the adaptive-filter audio coder"
            raise _fail("model", f"is not expected in a '{kind}' file{what}")
        return
    _dict(m, "model", {"name", "sha256"}, {"name", "sha256"})
    if type(m["name"]) is not str or not MODEL_NAME.fullmatch(m["name"]):
        raise _fail("model.name", "is not a model name")
    _hex(m["sha256"], "model.sha256", tuple(range(16, 65, 2)))


def _image(h: dict) -> None:
    deep = _coded16(h)
    lay = _dict(h["layout"], "layout", LAYOUT["png"], {"height", "width", "channels"} | (set() if deep else {"tile"}))
    _int(lay["height"], "layout.height", 1, MAX_SIDE)
    _int(lay["width"], "layout.width", 1, MAX_SIDE)
    C = _int(lay["channels"], "layout.channels", 1, 4)
    if deep:
        _image16(lay)
    else:
        _int(lay["tile"], "layout.tile", 1, MAX_TILE)
    if "replicated" in lay and (_bool(lay["replicated"], "layout.replicated") and C < 3):
        raise _fail("layout.replicated", "is set on an image without three color channels")
    if C in (2, 4):
        if "alpha" not in lay:
            raise _fail("layout.alpha", "is missing")
        if lay["alpha"] != "coded":
            _int(lay["alpha"], "layout.alpha", 0, 65535 if deep else 255)
    elif "alpha" in lay:
        raise _fail("layout.alpha", "is set on an image without alpha")
    if "mixer" in lay and lay["mixer"] not in IMAGE_MIXER_VERSIONS:
        raise FormatError(f"the .dlz header names image mixer version {lay['mixer']!r}; this dulzip decodes "
                          f"versions {', '.join(map(str, IMAGE_MIXER_VERSIONS))} (made by a newer dulzip?)")
    if "pyramid" in lay:
        _pyramid(lay)
    ex = _dict(h.get("extras"), "extras", EXTRAS[h["kind"]])
    if h["kind"] == "png":
        _png_extras(ex, C)
        if (ex.get("depth") == 16) != deep:
            raise _fail("extras.depth", "does not match the image's coder (16-bit samples: the 16-bit coder)")


def _image16(lay: dict) -> None:
    """An image of 16-bit samples, coded by the 16-bit coder: its version; no tiles, no mixers."""
    v = lay["image16"]
    if type(v) is not int or v not in IMAGE16_VERSIONS:
        raise FormatError(f"the .dlz header names 16-bit image coder version {v!r}; this dulzip decodes "
                          f"versions {', '.join(map(str, IMAGE16_VERSIONS))} (made by a newer dulzip?)")
    for k in ("tile", "mixer", "pyramid"):
        if k in lay:
            raise _fail(f"layout.{k}", "is set on an image of the 16-bit coder")


def _pyramid(lay: dict) -> None:
    """An image coded by the pyramid coder: its mixer version, and tiles it can cut (powers of
    two, at least 8: an 8 x 8 anchor lattice); never with the autoregressive image mixer."""
    if lay["pyramid"] not in PYRAMID_MIXER_VERSIONS or type(lay["pyramid"]) is not int:
        v = lay["pyramid"]
        why = ("a pre-release version, never shipped" if type(v) is int and v < min(PYRAMID_MIXER_VERSIONS)
               else "made by a newer dulzip?")
        raise FormatError(f"the .dlz header names pyramid mixer version {v!r}; this dulzip decodes "
                          f"versions {', '.join(map(str, PYRAMID_MIXER_VERSIONS))} ({why})")
    T = lay["tile"]
    if T < 8 or T & (T - 1):
        raise _fail("layout.tile", f"is not a tile the pyramid coder cuts ({T}; a power of two >= 8)")
    if "mixer" in lay:
        raise _fail("layout.mixer", "is set on a pyramid-coded image")


def _png_extras(ex: dict, C: int) -> None:
    z = ex.get("zlib")
    if z is not None:
        _list(z, "extras.zlib", 4)
        if len(z) not in (3, 4):
            raise _fail("extras.zlib", "does not hold three or four settings")
        _int(z[0], "extras.zlib.0", 0, 9)
        _int(z[1], "extras.zlib.1", 1, 9)
        _int(z[2], "extras.zlib.2", 0, 4)
        if len(z) == 4:  # the window's bits (15 when absent)
            _int(z[3], "extras.zlib.3", 9, 14)
    if "idat_sizes" in ex:
        for i, n in enumerate(_list(ex["idat_sizes"], "extras.idat_sizes", MAX_STREAMS)):
            _int(n, f"extras.idat_sizes.{i}", 0, (1 << 31) - 1)
    depth = _int(ex.get("depth", 8), "extras.depth", 1, 16)
    if depth not in (1, 2, 4, 8, 16) or (depth < 8 and C != 1 and not ex.get("palette")) or \
            (depth == 16 and ex.get("palette")):
        raise _fail("extras.depth", f"is not a depth this image can have ({depth})")
    if "palette" in ex:
        _bool(ex["palette"], "extras.palette")
    if "chunks" in ex and ex["chunks"] != "standard":
        raise _fail("extras.chunks", "is not 'standard'")
    if "filter" in ex and ex["filter"] not in ("pillow", "pillow-optimize"):
        _int(ex["filter"], "extras.filter", 0, 4)


def _text(h: dict) -> None:
    lay = _dict(h["layout"], "layout", LAYOUT["text"], {"block", "max_streams", "seg_min", "slot_bits"})
    _int(lay["block"], "layout.block", 1, 1 << 26)
    _int(lay["max_streams"], "layout.max_streams", 1, 4096)
    _int(lay["seg_min"], "layout.seg_min", 1, 1 << 26)
    _int(lay["slot_bits"], "layout.slot_bits", 12, MAX_COUNT_BITS)
    if "mixer" in lay:
        _int(lay["mixer"], "layout.mixer", 1, 1 << 16)


def _audio(h: dict) -> None:
    cascade = _cascade(h)
    need = {"frames", "channels", "bits", "rate", "block"} | (set() if cascade else {"max_streams", "seg_min"})
    lay = _dict(h["layout"], "layout", LAYOUT["wav"], need)
    _int(lay["frames"], "layout.frames", 0, MAX_FRAMES)
    _int(lay["channels"], "layout.channels", 1, 8 if cascade else 2)
    bits = (8, 16, 24) if cascade else (8, 16)
    if lay["bits"] not in bits or type(lay["bits"]) is not int:
        raise _fail("layout.bits", f"is not one of {bits} ({lay['bits']!r})")
    _int(lay["rate"], "layout.rate", 1, (1 << 32) - 1)
    _int(lay["block"], "layout.block", 1, 1 << 26)
    if cascade:
        if lay["cascade"] not in CASCADE_VERSIONS or type(lay["cascade"]) is not int:
            raise _fail("layout.cascade", f"is a version of the audio coder this dulzip does not know "
                        f"({lay['cascade']!r}; it decodes {CASCADE_VERSIONS})")
        for k in ("max_streams", "seg_min", "stereo"):
            if k in lay:
                raise _fail(f"layout.{k}", "is set on a file of the adaptive-filter audio coder")
    else:
        _int(lay["max_streams"], "layout.max_streams", 1, 4096)
        _int(lay["seg_min"], "layout.seg_min", 1, 1 << 26)
    if "canonical" in lay and _bool(lay["canonical"], "layout.canonical"):
        align = lay["channels"] * lay["bits"] // 8
        if lay["rate"] * align >= 1 << 32 or 36 + lay["frames"] * align >= 1 << 32:
            raise _fail("layout.canonical", "is set on audio that a 44-byte WAV header cannot describe")
    if lay.get("stereo", "lr") not in ("lr", "side") or (lay.get("stereo") == "side" and lay["channels"] != 2):
        raise _fail("layout.stereo", f"is not a stereo coding of this file ({lay.get('stereo')!r})")


def _exactness(h: dict, kind: str) -> None:
    if kind not in ("png", "pnm"):
        for k in ("exact", "output_length", "output_blake2b"):
            if k in h:
                raise _fail(k, f"is not expected in a '{kind}' file")
        return
    if not _bool(h.get("exact", True), "exact"):
        _int(h.get("output_length"), "output_length", 0, MAX_LENGTH)
        _hex(h.get("output_blake2b"), "output_blake2b", (32,))
    elif "output_length" in h or "output_blake2b" in h:
        raise _fail("output_length", "is set on a byte-identical file")


def _inline(h: dict, kind: str) -> None:
    if "inline" not in h:
        return
    inline = _dict(h["inline"], "inline", set(SIDE[kind]))
    for k, v in inline.items():
        if type(v) is not str or len(v) % 2 or any(c not in "0123456789abcdef" for c in v):
            raise _fail(f"inline.{k}", "is not hex data")


def _streams(h: dict, kind: str, payload_size: int | None) -> None:
    streams = _list(h["streams"], "streams", MAX_STREAMS)
    names = set()
    counts = {p: 0 for p in NUMBERED[kind]}
    total = 0
    for i, s in enumerate(streams):
        path = f"streams.{i}"
        _dict(s, path, {"name", "coder", "size", "crc32"}, {"name", "coder", "size", "crc32"})
        name = _str(s["name"], f"{path}.name", 64)
        if s["coder"] not in CODERS:
            raise _fail(f"{path}.coder", f"is not a known coder ({s['coder']!r}; made by a newer dulzip?)")
        total += _int(s["size"], f"{path}.size", 0, MAX_LENGTH)
        _int(s["crc32"], f"{path}.crc32", 0, (1 << 32) - 1)
        if name in names:
            raise _fail(f"{path}.name", f"repeats the stream name '{name}'")
        names.add(name)
        m = STREAM_NAME.fullmatch(name)
        if name in SIDE[kind]:
            if s["coder"] == "model":
                raise _fail(f"{path}.coder", f"cannot be 'model' for side data '{name}'")
        elif kind == "bytes" and name == "bytes" and len(streams) == 1:
            pass
        elif m and m.group(1) in counts:
            if int(m.group(2)) != counts[m.group(1)]:
                raise _fail(f"{path}.name", f"is out of order ('{name}')")
            counts[m.group(1)] += 1
        else:
            raise _fail(f"{path}.name", f"is not a stream of a '{kind}' file ('{name}')")
        if kind == "bytes" and s["coder"] == "model":
            raise _fail(f"{path}.coder", "cannot be 'model' in a 'bytes' file")
        if s["coder"] == "lpc" and (kind != "wav" or name in SIDE[kind]):
            raise _fail(f"{path}.coder", f"cannot be 'lpc' for '{name}' (audio blocks only)")
        cascade = _cascade(h)
        if name not in SIDE[kind] and kind == "wav" and s["coder"] in ("model", "lpc", "cascade") and (
                (s["coder"] == "cascade") != cascade):
            raise _fail(f"{path}.coder", f"cannot be '{s['coder']}' for '{name}' in this WAV "
                        "(the blocks of the adaptive-filter coder are cascade or zstd streams, those of others are not)")
        if name not in SIDE[kind] and kind in ("png", "pnm") and (s["coder"] == "image16") != _coded16(h):
            raise _fail(f"{path}.coder", f"cannot be '{s['coder']}' for '{name}' in this image "
                        "(the planes of a 16-bit image are image16 streams, those of others are not)")
        if s["coder"] == "image16" and (kind not in ("png", "pnm") or name in SIDE[kind]):
            raise _fail(f"{path}.coder", f"cannot be 'image16' for '{name}' (16-bit image planes only)")
    if payload_size is not None and total > payload_size:
        raise FormatError(f"truncated .dlz file (its streams need {total} bytes; {payload_size} follow the header)")
    if payload_size is not None and total < payload_size:
        raise FormatError(f"unexpected bytes after the last stream ({payload_size - total})")
    _stream_counts(h, kind, counts)


def _stream_counts(h: dict, kind: str, counts: dict[str, int]) -> None:
    """Streams that the layout implies, so that the work a decode does is bounded by the file."""
    lay = h.get("layout") or {}
    if kind == "text":
        want = -(-h["length"] // lay["block"])
        if counts["text"] != want:
            raise _fail("streams", f"has {counts['text']} text blocks where the length needs {want}")
    elif kind == "wav":
        groups = (lay["channels"] + 1) // 2 if "cascade" in lay else lay["channels"]  # cascade: channel pairs
        want = -(-lay["frames"] // lay["block"]) * groups
        if counts["audio"] != want:
            raise _fail("streams", f"has {counts['audio']} audio blocks where the layout needs {want}")
    elif kind in ("png", "pnm"):
        if counts["color"] == 0:
            raise _fail("streams", "has no color stream")
        if _coded16(h) and max(counts.values()) > 1:
            raise _fail("streams", "has more than one stream for a plane of a 16-bit image")
        if (lay.get("alpha") == "coded") != (counts["alpha"] > 0):
            raise _fail("streams", "does not match layout.alpha")


def _description_memory(h: dict) -> int:
    """Bytes the re-creation of a PNG's described zlib stream needs (formats/deflate_tokens.py:
    match lists and trees, the parse's tables, the match pairs), per byte of its scanlines at
    most (a 16-bit image's samples are two bytes); 0 for any other file."""
    if "png.tokens" not in _stream_names(h):
        return 0
    lay = h["layout"]
    return DESCRIBED * lay["height"] * (lay["width"] * lay["channels"] * (2 if "image16" in lay else 1) + 1)


def image_sizes(h: dict) -> tuple[int, int]:
    """(sub-pixels of the image, sub-pixels of its padded tiles) of a validated image header
    coded in tiles (not by the 16-bit coder)."""
    lay = h["layout"]
    H, W, C, T = lay["height"], lay["width"], lay["channels"], lay["tile"]
    return H * W * C, -(-H // T) * -(-W // T) * T * T * C


# What a decode costs, measured on the shipped models (benchmarks/measure/decode_memory.py, whose report
# shows each estimate beside the real peak): the process itself (interpreter, torch, numba, a
# model), then per unit of what the header says.
BASE = 700 << 20
FLOW = (10, 450 << 20)  # a flow-coded image: bytes per sub-pixel, and the work on one batch of tiles
AR_PLAN = 2200  # an autoregressive image: bytes per position of one tile for the decode plan (once)
AR_POSITION = 200  # bytes per position of every tile (levels, means, masks)
# a PNG whose zlib stream is re-created from its description: bytes per byte of its scanlines. Measured:
# decoding advpng's dh-tree (4.8 MB of scanlines) peaks 204 MiB above its --reencode file's, 44 a byte;
# the match pairs a block keeps are bounded (deflate_tokens.PAIRS_PER_BYTE), so a freak file needs
# at most about three times that
DESCRIBED = 64
# the adaptive-filter audio coder: the process (numpy, numba's compiled loop), then per sample of a
# block being decoded (its int64 samples, histories, PCM bytes), for up to this many blocks at once
CASCADE_BASE = 200 << 20
CASCADE_SAMPLE = 48
CASCADE_JOBS = 16
PIXELCNN = {"channels": 128, "layers": 8, "kv": 2, "kw": 2, "kh": 3}  # the shipped shape: the default


def decode_memory(h: dict, whole: bool = True, flow: bool = False, configs: list[dict] = ()) -> int:
    """Bytes a decode of this validated header needs at most (an upper estimate); ``whole``: the
    output is held in memory too (api.decompress), not streamed out (api.decompress_stream);
    ``flow``: an image coded by a flow (passes over tiles, no per-position decoding state);
    ``configs``: the configurations of the installed versions of the file's model (the largest
    counts; none: the shipped PixelCNN's)."""
    kind, length = h["kind"], h["length"]
    out = length if whole else 0
    if kind == "bytes":
        one = [s for s in h["streams"] if s["name"] == "bytes"]
        piece = length if one else min(length, 1 << 24)
        return out + BASE + 2 * piece
    if kind == "text":
        lay = h["layout"]
        return out + BASE + 7 * (1 << lay["slot_bits"]) + 64 * min(length, lay["block"])
    if kind == "wav" and "cascade" in h["layout"]:  # no torch, no model; blocks decoded a few at a time
        lay = h["layout"]
        block = min(lay["block"], lay["frames"]) * lay["channels"]
        whole_samples = 4 * lay["frames"] * lay["channels"] if whole else 0
        return out + CASCADE_BASE + whole_samples + CASCADE_JOBS * CASCADE_SAMPLE * block
    if kind == "wav":
        lay = h["layout"]
        return out + BASE + 2 * length + 32 * lay["frames"] * lay["channels"] + 256 * min(lay["block"], lay["frames"])
    out += _description_memory(h)
    if "image16" in h["layout"]:
        lay = h["layout"]
        return out + IMAGE16_BASE + 2 * length + IMAGE16_SUBPIXEL * lay["height"] * lay["width"] * lay["channels"]
    n, _ = image_sizes(h)
    if "pyramid" in h["layout"]:
        return out + _pyramid_memory(h, configs)
    if flow:
        return out + BASE + 2 * length + FLOW[0] * n + FLOW[1]
    lay = h["layout"]
    T = lay["tile"]
    tiles = -(-lay["height"] // T) * -(-lay["width"] // T)
    state = max(_tile_state(T, c) for c in (list(configs) or [{}]))
    count_table = 3 << min(26, max(16, (64 * n).bit_length()))
    return out + BASE + 2 * length + AR_PLAN * T * T + tiles * (state + AR_POSITION * T * T) + count_table


# an image of the 16-bit coder (codecs/image16.py): the process without torch, and bytes per
# sub-pixel (its levels as int64, the coder's rows, the planes joined, the PNG's scanlines and
# their filtering in int16 arrays: about 60 at most; an upper bound)
IMAGE16_BASE = 300 << 20
IMAGE16_SUBPIXEL = 96
# a pyramid-coded image (codecs/pyramid.py): bytes per sub-pixel of its padded tiles (the planes,
# the network's predictions, one group's outputs: at most a quarter of the pixels, 9 integers
# and their place each, built once), and bytes per cell of one network pass per hidden channel
# (its padded input, one tap's products and the accumulator, float64 at most: an upper bound);
# cells per pass: codecs.pyramid.CELLS_PER_PASS
PYRAMID_SUBPIXEL = 64
PYRAMID_CELL = 100
PYRAMID_CELLS = 1 << 15
PYRAMID_HIDDEN = 48  # the shipped shape (when no config is known)


def _pyramid_memory(h: dict, configs: list[dict]) -> int:
    _, padded = image_sizes(h)
    hidden = max([PYRAMID_HIDDEN] + [c["hidden"] for c in configs if type(c.get("hidden")) is int
                                     and 0 < c["hidden"] < 4096])
    slots = 1 << min(24, max(16, (16 * h["layout"]["height"] * h["layout"]["width"] * 3).bit_length()))
    return BASE + 2 * h["length"] + PYRAMID_SUBPIXEL * padded + PYRAMID_CELL * hidden * PYRAMID_CELLS + 3 * slots


def _tile_state(T: int, config: dict) -> int:
    """Bytes of one tile's decoding state in the wavefront stepper (exact.pixelcnn.WaveStepper):
    the rings of its vertical and horizontal stacks, in float64 at most."""
    c = {**PIXELCNN, **{k: v for k, v in config.items() if k in PIXELCNN and type(v) is int and 0 < v < 4096}}
    L, kv, kw, kh = c["layers"], c["kv"], c["kw"], c["kh"]
    delay, lead = L * kw + 1, (L - 1) * kw
    rows_v, rows_h = (T - 1 + lead) // delay + kv + 1, -(-T // delay)
    rings = (rows_v * (T + 2 * kw) + rows_h * (T + kh - 1)) * L * c["channels"]
    return 8 * rings + 16 * (T + kv) * (T + max(kw, kh) + kw)
