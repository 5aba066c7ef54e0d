"""PNG: pixels through the image model, every other byte kept.

A PNG is parsed into its chunks. For 8- and 16-bit gray, gray+alpha, RGB and RGBA images (16-bit
samples as uint16; they go to :mod:`dulzip.codecs.image16`), 1-bit gray
(as levels 0 and 255) and palette images of 1, 2, 4 or 8 bits (as the palette's colors: RGB, or
RGBA with a tRNS chunk) without interlacing, the pixels are taken out; all chunks other than
IDAT are kept verbatim, with the per-row filter types and the IDAT chunk sizes. A palette image
is modelled as its colors; the decoder maps them back to indices by the kept palette, each color
to its first entry, except where the palette repeats a color and a pixel uses a later copy: for
the pixels whose color the palette repeats, the rank of their index among that color's entries
is kept as a side stream (:func:`palette_ranks`; none when every rank is 0). To re-create the file byte for byte, the zlib
settings that reproduce the original IDAT stream are searched for at compression time; when
none does (optimizers, other deflate libraries), the stream is described by its blocks and its
tokens' differences from a match finder over the filtered data (:mod:`dulzip.formats.deflate_tokens`),
which re-create it bit for bit. Asked to (``redeflate=False``: ``--reencode``), or where neither
reproduces it, the file is rebuilt with the same pixels and chunks and a fresh zlib stream, and
the container records that it is not byte-identical.
"""
from __future__ import annotations

import functools
import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from dulzip.formats.sniff import PNG_SIGNATURE as SIGNATURE

# Pillow and numba are imported where they are used: a PNG that goes the bytes way (interlaced,
# malformed) never loads numba
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # color type -> samples per pixel (8- and 16-bit)
# zlib settings (level, memLevel, strategy) tried, likeliest first: libpng's defaults (the first
# 40, in the order of files written before the others were added), then what optipng and pngcrush
# also try (Z_RLE and Z_HUFFMAN_ONLY), then the other memLevels. Only those whose level the
# stream's header allows (its FLEVEL) are tried, with the header's window size (a fourth setting
# where it is not 15).
_LEVELS = (6, 9, 5, 7, 8, 4, 3, 2, 1, 0)
ZLIB_SEARCH = [(level, mem, strategy) for level in _LEVELS for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED)
               for mem in (8, 9)]
ZLIB_SEARCH += [(level, mem, strategy) for mems in ((8, 9), range(1, 8)) for level in _LEVELS
                for strategy in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_RLE, zlib.Z_HUFFMAN_ONLY)
                for mem in mems if (level, mem, strategy) not in ZLIB_SEARCH]
REENCODE = (9, 9, zlib.Z_DEFAULT_STRATEGY)


class NotModelable(ValueError):
    """The PNG is valid but not of a kind the image models take (it goes the bytes way)."""


@dataclass
class ParsedPNG:
    pixels: np.ndarray  # (H, W, C) uint8, or uint16 for 16-bit samples
    chunks: list[tuple[bytes, bytes]]  # (type, data) in file order, IDAT run replaced by one b"IDAT" marker
    idat_sizes: list[int]
    filters: bytes  # one filter type per row
    zlib_params: tuple[int, ...] | None  # reproduces the IDAT stream, or None
    depth: int = 8  # bits per sample: 8, 16, or 1 (gray: pixels are then levels 0 and 255); palette: 1, 2, 4, 8
    indices: np.ndarray | None = None  # palette images: (H, W, 1) palette indices (pixels are their colors)
    ranks: bytes | None = None  # palette images whose pixels use a repeated color's later entry: palette_ranks
    deflate: tuple[bytes, bytes] | None = None  # no zlib_params: (blocks, tokens) that re-create the stream


def parse_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(SIGNATURE):
        raise NotModelable("not a PNG")
    pos, out = 8, []
    while pos < len(data):
        if pos + 12 > len(data):
            raise NotModelable("truncated chunk")
        (n,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            raise NotModelable("truncated chunk")
        (crc,) = struct.unpack_from(">I", data, pos + 8 + n)
        if zlib.crc32(ctype + body) != crc:
            raise NotModelable("chunk CRC mismatch")
        out.append((ctype, body))
        pos += 12 + n
        if ctype == b"IEND":
            break
    if pos != len(data) or not out or out[-1][0] != b"IEND":
        raise NotModelable("data after IEND or IEND missing")
    return out


def filter_rows(raw: np.ndarray, filters: bytes, bpp: int) -> bytes:
    """Apply PNG filters (one type per row) to raw scanlines (H, stride) -> zlib input."""
    H, stride = raw.shape
    x = raw.astype(np.int16)
    up = np.zeros_like(x)
    up[1:] = x[:-1]
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    ul = np.zeros_like(x)
    ul[1:, bpp:] = x[:-1, :-bpp]
    p = left + up - ul
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - ul)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, ul))
    preds = [np.zeros_like(x), left, up, (left + up) // 2, paeth]
    f = np.frombuffer(filters, dtype=np.uint8)
    out = np.empty((H, stride + 1), dtype=np.uint8)
    out[:, 0] = f
    for t in range(5):
        rows = f == t
        if rows.any():
            out[rows, 1:] = ((x[rows] - preds[t][rows]) & 0xFF).astype(np.uint8)
    return out.tobytes()


def pillow_filters(raw: np.ndarray, bpp: int, optimize: bool) -> bytes:
    """The filter types Pillow's encoder picks for these scanlines: per row the least sum of
    |signed byte| among None, Up, Sub, (Average, with optimize), Paeth, tried in that order
    and kept only when strictly better (as in Pillow's ZipEncode.c). Files that Pillow wrote
    then need no filter list."""
    H, _ = raw.shape
    cost = {}
    for t in (0, 1, 2, 3, 4):
        f = np.frombuffer(filter_rows(raw, bytes([t]) * H, bpp), dtype=np.uint8).reshape(H, -1)[:, 1:]
        f = f.astype(np.int64)
        cost[t] = np.minimum(f, 256 - f).sum(1)
    best, best_cost = np.zeros(H, dtype=np.uint8), cost[0].copy()
    for t in [2, 1] + ([3] if optimize else []) + [4]:
        better = (cost[t] < best_cost) & (cost[0] > 0)
        best[better] = t
        best_cost = np.where(better, cost[t], best_cost)
    return best.tobytes()


def pack_filters(filters: bytes, pixels: np.ndarray, depth: int = 8) -> tuple[int | str | None, bytes | None]:
    """The per-row filter types in their shortest form: a rule that re-creates them from the
    pixels (one type for every row, or Pillow's choice) and no bytes, or (None, the types two
    to a byte)."""
    H, _, C = pixels.shape
    if len(set(filters)) == 1:
        return filters[0], None
    raw = scanlines(pixels, depth)
    for rule, optimize in (("pillow", False), ("pillow-optimize", True)):
        if filters == pillow_filters(raw, bytes_per_pixel(C, depth), optimize):
            return rule, None
    f = np.frombuffer(filters + b"\0", dtype=np.uint8)
    return None, ((f[0:H:2] << 4) | f[1:H + 1:2]).astype(np.uint8).tobytes()


def unpack_filters(rule: int | str | None, packed: bytes | None, pixels: np.ndarray, depth: int = 8) -> bytes:
    """Inverse of :func:`pack_filters`."""
    H, _, C = pixels.shape
    if rule in ("pillow", "pillow-optimize"):
        return pillow_filters(scanlines(pixels, depth), bytes_per_pixel(C, depth), optimize=rule == "pillow-optimize")
    if isinstance(rule, int) and not isinstance(rule, bool):
        return bytes([rule]) * H
    if packed is None:
        raise ValueError("no filter types")
    f = np.frombuffer(packed, dtype=np.uint8)
    return np.stack([f >> 4, f & 15], axis=1).ravel()[:H].tobytes()


def bytes_per_pixel(C: int, depth: int) -> int:
    """The filters' byte distance to the pixel on the left (1 below 8 bits)."""
    return 2 * C if depth == 16 else C


def scanlines(pixels: np.ndarray, depth: int = 8) -> np.ndarray:
    """(H, W, C) pixels -> unfiltered scanlines (H, stride); below 8 bits (C = 1) the samples are
    packed, the first in the high bits (1 bit: any nonzero sample is a 1); 16-bit samples are
    big-endian."""
    H, W, C = pixels.shape
    if depth == 1:
        return _pack_bilevel(pixels)
    if depth == 8:
        return pixels.reshape(H, W * C)
    if depth == 16:
        return np.ascontiguousarray(pixels, dtype=">u2").view(np.uint8).reshape(H, 2 * W * C)
    per = 8 // depth
    v = np.zeros((H, -(-W // per) * per), dtype=np.uint8)
    v[:, :W] = pixels[:, :, 0]
    v = v.reshape(H, -1, per)
    out = np.zeros(v.shape[:2], dtype=np.uint8)
    for k in range(per):
        out |= (v[:, :, k] & ((1 << depth) - 1)) << (8 - depth * (k + 1))
    return out


def _compressor(params):
    level, mem, strategy = params[:3]
    return zlib.compressobj(level, zlib.DEFLATED, params[3] if len(params) > 3 else 15, mem, strategy)


def _deflate(data: bytes, params) -> bytes:
    c = _compressor(params)
    return c.compress(data) + c.flush()


def _flevel(level: int, strategy: int) -> int:
    """The FLEVEL zlib writes in a stream's header for these settings."""
    if level < 2 or strategy >= zlib.Z_HUFFMAN_ONLY:
        return 0
    return 1 if level < 6 else (2 if level == 6 else 3)


def zlib_search(data: bytes, stream: bytes) -> tuple[int, ...] | None:
    """The zlib settings that deflate ``data`` into ``stream``, or None: (level, memLevel,
    strategy), with the window's bits fourth where they are not 15."""
    if len(stream) < 2 or (stream[0] & 15) != 8 or (stream[0] >> 4) > 7:
        return None
    wbits = (stream[0] >> 4) + 8
    extra = (wbits,) if wbits != 15 else ()
    for p in ZLIB_SEARCH:
        if _flevel(p[0], p[2]) == stream[1] >> 6 and _matches(data, stream, p + extra):
            return p + extra
    return None


def _matches(data: bytes, target: bytes, params) -> bool:
    """Does deflating ``data`` with ``params`` give ``target``? Stops at the first difference."""
    c = _compressor(params)
    pos, step = 0, 1 << 16
    for i in range(0, len(data), step):
        out = c.compress(data[i:i + step])
        if target[pos:pos + len(out)] != out:
            return False
        pos += len(out)
    out = c.flush()
    return target[pos:] == out


def parse(data: bytes, redeflate: bool = True) -> ParsedPNG:
    """The PNG's pixels and all else it holds; ``redeflate``: where no zlib setting reproduces
    its stream, describe the stream for :func:`build` to re-create (else it is re-encoded)."""
    chunks = parse_chunks(data)
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise NotModelable("no IHDR")
    W, H, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    bilevel = depth == 1 and ctype == 0
    paletted = ctype == 3 and depth in (1, 2, 4, 8)
    if (depth not in (8, 16) and not bilevel and not paletted) or (ctype not in CHANNELS and not paletted) or \
            interlace or comp or filt or W == 0 or H == 0:
        raise NotModelable("not 8/16-bit gray/RGB(A), 1-bit gray or a palette image without interlacing")
    idx = [i for i, (t, _) in enumerate(chunks) if t == b"IDAT"]
    if not idx or idx != list(range(idx[0], idx[-1] + 1)):
        raise NotModelable("IDAT chunks missing or not consecutive")
    stream = b"".join(chunks[i][1] for i in idx)
    try:
        d = zlib.decompressobj()
        filtered = d.decompress(stream)
        if not d.eof or d.unused_data:
            raise NotModelable("IDAT stream has trailing data or is cut off")
    except zlib.error:
        raise NotModelable("IDAT stream is not valid zlib") from None
    C = 1 if paletted else CHANNELS[ctype]
    stride = (W * depth + 7) // 8 if depth < 8 else W * C * depth // 8
    if len(filtered) != H * (stride + 1):
        raise NotModelable("IDAT has the wrong size")
    filters = bytes(filtered[::stride + 1])
    if any(f > 4 for f in filters):
        raise NotModelable("bad filter type")
    if depth == 16:  # Pillow reads 16-bit color as 8 bits: unfiltered here
        raw = _unfilter(np.frombuffer(filtered, dtype=np.uint8).reshape(H, stride + 1), 2 * C)
        pixels = raw.view(">u2").reshape(H, W, C).astype(np.uint16)
    else:
        from PIL import Image
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except Exception:
            raise NotModelable("Pillow cannot read it") from None
        pixels = np.asarray(img).reshape(H, W, C)
    raw = scanlines(pixels, depth)
    if filter_rows(raw, filters, bytes_per_pixel(C, depth)) != filtered:  # also catches nonzero padding bits
        raise NotModelable("pixels do not reproduce the filtered data")
    indices = ranks = None
    if bilevel:
        pixels = pixels.astype(np.uint8) * 255
    elif paletted:
        indices = pixels.astype(np.uint8)
        pal = palette(chunks)
        pixels = palette_colors(indices, pal)
        ranks = palette_ranks(indices, pixels, pal)
        if not np.array_equal(palette_indices(pixels, pal, ranks), indices):  # by construction; checked
            raise NotModelable("the palette's indices do not come back from the colors")
    params = zlib_search(filtered, stream)
    described = None
    if params is None and redeflate:
        from dulzip.formats import deflate_tokens
        described = deflate_tokens.describe(stream, filtered)
    kept = [(t, b) for i, (t, b) in enumerate(chunks) if i not in idx[1:]]
    kept[idx[0]] = (b"IDAT", b"")
    return ParsedPNG(pixels, kept, [len(chunks[i][1]) for i in idx], filters, params, depth, indices, ranks,
                     described)


def _unfilter(filtered: np.ndarray, bpp: int) -> np.ndarray:
    """Filtered scanlines (H, 1 + stride), each row's filter type first (0..4, checked) -> the
    raw scanlines (H, stride); compiled by numba at its first use."""
    raw = np.zeros((filtered.shape[0], filtered.shape[1] - 1), dtype=np.uint8)
    _unfilter_kernel()(filtered, raw, bpp)
    return raw


@functools.cache
def _unfilter_kernel():
    from numba import njit
    return njit(cache=True)(_unfilter_loop)


def _unfilter_loop(filtered, raw, bpp):
    H, stride = raw.shape
    for y in range(H):
        t = filtered[y, 0]
        for i in range(stride):
            a = np.int64(raw[y, i - bpp]) if i >= bpp else np.int64(0)
            b = np.int64(raw[y - 1, i]) if y > 0 else np.int64(0)
            c = np.int64(raw[y - 1, i - bpp]) if y > 0 and i >= bpp else np.int64(0)
            if t == 1:
                p = a
            elif t == 2:
                p = b
            elif t == 3:
                p = (a + b) >> 1
            elif t == 4:
                q = a + b - c
                pa, pb, pc = abs(q - a), abs(q - b), abs(q - c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                p = np.int64(0)
            raw[y, i] = (np.int64(filtered[y, i + 1]) + p) & 255


def palette(chunks: list[tuple[bytes, bytes]]) -> np.ndarray:
    """The palette (N, 3) RGB, or (N, 4) RGBA when there is a tRNS chunk (its alphas, 255 past
    its end), from a palette image's chunks."""
    plte = next((b for t, b in chunks if t == b"PLTE"), None)
    if plte is None or not 3 <= len(plte) <= 768 or len(plte) % 3:
        raise NotModelable("palette image without a valid PLTE chunk")
    pal = np.frombuffer(plte, dtype=np.uint8).reshape(-1, 3)
    trns = next((b for t, b in chunks if t == b"tRNS"), None)
    if trns is None:
        return pal
    if len(trns) > len(pal):
        raise NotModelable("tRNS longer than the palette")
    alpha = np.full((len(pal), 1), 255, dtype=np.uint8)
    alpha[:len(trns), 0] = np.frombuffer(trns, dtype=np.uint8)
    return np.concatenate([pal, alpha], axis=1)


def palette_colors(indices: np.ndarray, pal: np.ndarray) -> np.ndarray:
    """(H, W, 1) indices into :func:`palette`'s ``pal`` -> (H, W, 3|4) colors."""
    if int(indices.max()) >= len(pal):
        raise NotModelable("palette index beyond the palette")
    return pal[indices[:, :, 0]]


def _keys(a: np.ndarray) -> np.ndarray:
    """One integer per color (the last axis: 3 or 4 channels)."""
    return a.astype(np.uint32) @ (1 << 8 * np.arange(a.shape[-1], dtype=np.uint32))


def _rank_residuals(cls, n, rank, resid, decode) -> None:
    """:func:`_rank_residuals_loop`, compiled by numba (at its first use)."""
    _rank_kernel()(cls, n, rank, resid, decode)


@functools.cache
def _rank_kernel():
    from numba import njit
    return njit(cache=True)(_rank_residuals_loop)


def _rank_residuals_loop(cls, n, rank, resid, decode):
    """The rank of each pixel whose color the palette repeats (n > 1), in raster order, against a
    prediction: the W pixel's rank when it has the same color, else the N pixel's, else the
    rank that color had last (at first 0). Encoding writes (rank - prediction) mod n into
    ``resid``; decoding the reverse into ``rank``. cls: (H, W) a color class in [0, len(pal))."""
    H, W = cls.shape
    last = np.zeros(256, dtype=np.int64)
    k = 0
    for y in range(H):
        for x in range(W):
            m = n[y, x]
            if m < 2:
                continue
            c = cls[y, x]
            if x > 0 and cls[y, x - 1] == c:
                p = rank[y, x - 1]
            elif y > 0 and cls[y - 1, x] == c:
                p = rank[y - 1, x]
            else:
                p = last[c]
            if decode:
                rank[y, x] = (resid[k] + p) % m
            else:
                resid[k] = (rank[y, x] - p) % m
            last[c] = rank[y, x]
            k += 1


def _classes(colors: np.ndarray, pal: np.ndarray):
    """Per pixel: the palette order sorted by color (stable), the pixel's color's first position
    in it (a class id), and how many entries that color has."""
    pk, ck = _keys(pal), _keys(colors)
    order = np.argsort(pk, kind="stable")  # equal colors: in palette order, the first entry first
    sk = pk[order]
    pos = np.minimum(np.searchsorted(sk, ck), len(sk) - 1)
    if not np.array_equal(sk[pos], ck):
        raise ValueError("a pixel's color is not in the palette")
    return order, pos, np.searchsorted(sk, ck, side="right") - pos


def palette_ranks(indices: np.ndarray, colors: np.ndarray, pal: np.ndarray) -> bytes | None:
    """The choice among repeated entries: for each pixel whose color the palette holds more than
    once, the rank of its index among the entries of that color (0: the first), coded as a
    residual against its neighbours (:func:`_rank_residuals`; one byte each, mostly 0). None when
    every rank is 0 (the decoder then takes each color's first entry). ``colors``: the indices'
    colors (:func:`palette_colors`)."""
    order, pos, n = _classes(colors, pal)
    if n.max() < 2:
        return None
    where = np.empty(len(pal), dtype=np.int64)
    where[order] = np.arange(len(pal))
    rank = where[indices[:, :, 0]] - pos  # the index's place among its color's entries
    resid = np.zeros(int((n > 1).sum()), dtype=np.int64)
    _rank_residuals(pos, n, rank, resid, False)
    return resid.astype(np.uint8).tobytes() if resid.any() else None


def palette_indices(colors: np.ndarray, pal: np.ndarray, ranks: bytes | None = None) -> np.ndarray:
    """(H, W, 3|4) colors -> (H, W, 1) indices into :func:`palette`'s ``pal``: each color's first
    entry, or with ``ranks`` (:func:`palette_ranks`) the entry they choose among the color's
    entries. Raises ValueError for a color the palette lacks or ranks that do not fit (a corrupt
    or foreign file)."""
    if colors.shape[2] != pal.shape[1]:
        raise ValueError("pixels do not fit the palette")
    order, pos, n = _classes(colors, pal)
    if ranks is not None:
        resid = np.frombuffer(ranks, dtype=np.uint8).astype(np.int64)
        if len(resid) != int((n > 1).sum()) or (resid >= n[n > 1]).any():
            raise ValueError("the palette ranks do not fit the pixels")
        rank = np.zeros(pos.shape, dtype=np.int64)
        _rank_residuals(pos, n, rank, resid, True)
        pos = pos + rank
    return order[pos].astype(np.uint8)[:, :, None]


def _pack_bilevel(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1) levels (nonzero = white) -> 1-bit scanlines (H, ceil(W/8)), zero padding bits."""
    return np.packbits(pixels[:, :, 0] != 0, axis=1)


COLOR_TYPE = {1: 0, 3: 2, 2: 4, 4: 6}  # samples per pixel -> color type


def standard_chunks(W: int, H: int, C: int, depth: int = 8) -> list[tuple[bytes, bytes]]:
    """The chunk list of a PNG holding nothing but its pixels (IHDR, IDAT, IEND)."""
    ihdr = struct.pack(">IIBBBBB", W, H, depth, COLOR_TYPE[C], 0, 0, 0)
    return [(b"IHDR", ihdr), (b"IDAT", b""), (b"IEND", b"")]


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def build(pixels: np.ndarray, chunks: list[tuple[bytes, bytes]], idat_sizes: list[int], filters: bytes,
          zlib_params: tuple[int, ...] | None, depth: int = 8, described: tuple[bytes, bytes] | None = None) -> bytes:
    """Re-create the PNG: byte-identical when ``zlib_params`` reproduced the original stream, or
    from the stream's description (``described``, :attr:`ParsedPNG.deflate`; ValueError when it is
    damaged). ``idat_sizes`` None: the stream in one IDAT chunk."""
    H, W, C = pixels.shape
    filtered = filter_rows(scanlines(pixels, depth), filters, bytes_per_pixel(C, depth))
    if described is not None:
        if zlib_params is not None:
            raise ValueError("a described zlib stream has no zlib settings")
        from dulzip.formats import deflate_tokens
        # a deflate stream takes at most 2 bytes a byte (15-bit codes; a 3-byte match: 48 bits)
        stream = deflate_tokens.recreate(*described, filtered, 2 * len(filtered) + 65536)
    else:
        stream = _deflate(filtered, zlib_params or REENCODE)
    if zlib_params is None and described is None:  # one IDAT chunk per 64 KiB, as most writers do
        idat_sizes = [min(65536, len(stream) - i) for i in range(0, len(stream), 65536)] or [0]
    elif idat_sizes is None:
        idat_sizes = [len(stream)]
    elif sum(idat_sizes) != len(stream):
        raise ValueError("IDAT sizes do not add up")
    out = [SIGNATURE]
    for ctype, body in chunks:
        if ctype == b"IDAT" and body == b"":
            pos = 0
            for n in idat_sizes:
                out.append(_chunk(b"IDAT", stream[pos:pos + n]))
                pos += n
        else:
            out.append(_chunk(ctype, body))
    return b"".join(out)


def serialize_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(struct.pack(">I", len(b)) + t + b for t, b in chunks)


def deserialize_chunks(blob: bytes) -> list[tuple[bytes, bytes]]:
    """Inverse of :func:`serialize_chunks`; ValueError when ``blob`` is not such a list."""
    out, pos = [], 0
    while pos < len(blob):
        if pos + 8 > len(blob):
            raise ValueError("the kept PNG chunks are cut off")
        (n,) = struct.unpack_from(">I", blob, pos)
        if pos + 8 + n > len(blob):
            raise ValueError("the kept PNG chunks are cut off")
        out.append((blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + n]))
        pos += 8 + n
    return out


def save_png(pixels: np.ndarray) -> bytes:
    """A plain PNG of (H, W, C) pixels (Pillow, level 9, optimize): the benchmark's PNG."""
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[pixels.shape[2]]
    arr = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr), mode).save(buf, format="PNG", compress_level=9, optimize=True)
    return buf.getvalue()
