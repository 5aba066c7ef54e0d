"""Images (PNG, PGM/PPM): the pipeline from a file to coded planes and back.

Sniffing parses the file into pixels and what else it holds (chunks, filters, zlib settings or
the description of a stream zlib does not reproduce); the planes (:mod:`dulzip.transforms`) go
to the image model chosen from the input alone, under the image mixer (autoregressive models)
or as the flow; decoding rebuilds the same file (or, asked to with ``--reencode``, the same
pixels and chunks with a fresh zlib stream).
16-bit images (the models take 8-bit samples) go to the predictive coder of
:mod:`dulzip.codecs.image16` instead: no model, no torch, either way (layout field ``image16``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dulzip.container import Container, pack
from dulzip.errors import CorruptDataError, FormatError, UsageError
from dulzip.formats import sniff as sniffing
from dulzip.kinds.common import (add_coded, add_side, checksum, coded_streams, content_header, load_for, missing,
                                 model_header, prepare, read_side)
from dulzip.options import level_name
from dulzip.transforms import join_planes, split_planes

if TYPE_CHECKING:
    import numpy as np

    from dulzip.exact.runtime import ImageRuntime
    from dulzip.options import Options

KINDS = ("png", "pnm")
DEFAULT_IMAGE_MODEL = "pixelcnn"
FLOW_MODEL = "idf"  # images of more than PIXELCNN_MAX_TILES tiles, where installed
GRAY_FLOW_MODEL = "idf-gray"  # the flow fine-tuned on gray images: large gray images, where installed
# the PixelCNN (with the image mixer) up to this many tiles of DEFAULT_TILE x DEFAULT_TILE: its decoding
# time grows with them (all tiles step together); 126 tiles (854x534) decode in 65 s on 2 CPU cores,
# 100 (640x640) in 56 s, 64 (512x512) in 36 s
PIXELCNN_MAX_TILES = 128
DEFAULT_TILE = 64  # the autoregressive image models' tiles (the flow's: exact.idf.DEFAULT_TILE)


def sniff(data: bytes, opts: Options):
    """(kind, pixels, extras streams, header extras, exact) for images the model takes, else None."""
    if sniffing.looks_like_png(data):
        from dulzip.formats import png
        try:
            p = png.parse(data, redeflate=opts.exact)
        except png.NotModelable:
            return None
        exact = p.zlib_params is not None or p.deflate is not None
        if not exact and opts.exact:
            return None
        extras = {"zlib": list(p.zlib_params) if p.zlib_params else None}
        if len(p.idat_sizes) > 1:  # else: the whole stream in one IDAT chunk
            extras["idat_sizes"] = p.idat_sizes
        if p.depth != 8:
            extras["depth"] = p.depth
        samples = p.pixels  # what the scanlines hold: the pixels, or a palette image's indices
        side = {}
        if p.deflate is not None:  # the stream's blocks and tokens, to re-create it
            side["png.deflate"], side["png.tokens"] = p.deflate
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
        return "png", p.pixels, side, extras, exact
    if not sniffing.looks_like_pnm(data):
        return None
    from dulzip.formats import pnm
    q = pnm.parse(data)
    if q is not None:
        return "pnm", q.pixels, {"pnm.head": q.head, "pnm.tail": q.tail}, {}, True
    return None


def rebuild(kind: str, pixels: np.ndarray, side: dict[str, bytes], extras: dict) -> bytes:
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
        described = (side["png.deflate"], side["png.tokens"]) if "png.deflate" in side else None
        return png.build(pixels, chunks, extras.get("idat_sizes"), filters, z, depth, described)
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


def image_mixer(layout: dict) -> dict:
    """The image mixer's settings for both sides: its version from the layout, its table size
    from the size of the color planes (one coded channel when gray or replicated, else three)."""
    from dulzip.exact.imagemix import slot_bits_for
    n = layout["height"] * layout["width"] * (1 if layout.get("replicated") or layout["channels"] < 3 else 3)
    return {"version": layout["mixer"], "slot_bits": slot_bits_for(n)}


def image_codec(net: ImageRuntime):
    """(encode, decode) functions of the codec this image model runs under."""
    if net.codec == "flow":
        from dulzip.codecs.flow import decode_flow, encode_flow
        return encode_flow, decode_flow
    if net.codec == "pyramid":
        from dulzip.codecs.pyramid import decode_pyramid, encode_pyramid
        return encode_pyramid, decode_pyramid
    from dulzip.codecs.image import decode_planes, encode_planes
    return encode_planes, decode_planes


def _finish_header(header: dict, sniffed, layout: dict) -> None:
    """The fields an image header has whatever coded it: exactness (and what a re-encoded file
    will be), layout, format extras."""
    kind, pixels, side, extras, exact = sniffed
    header.update({"exact": exact, "layout": layout, "extras": extras})
    if not exact:
        output = rebuild(kind, pixels, side, extras)
        header["output_length"] = len(output)
        header["output_blake2b"] = checksum(output)


def compress16(data: bytes, sniffed) -> bytes:
    """A 16-bit image: its color planes (and a coded alpha plane) each one ``image16`` stream."""
    from dulzip.codecs.image16 import IMAGE16_VERSION, encode_image16
    from dulzip.codecs.stream import Stream
    kind, pixels, side = sniffed[:3]
    color, layout, alpha = split_planes(pixels)
    layout["image16"] = IMAGE16_VERSION
    header = content_header(kind, data)
    _finish_header(header, sniffed, layout)
    payloads: list[bytes] = []
    add_side(header, payloads, side)
    est = 0.0
    for plane_name, plane in (("color", color), ("alpha", alpha)):
        if plane is not None:
            est = add_coded(header, payloads, plane_name, [Stream("image16", encode_image16(plane))], est)
    header["model_bits"] = round(est)
    return pack(Container(header, payloads))


def compress(data: bytes, sniffed, model: str, opts: Options) -> bytes | None:
    kind, pixels, side, extras, exact = sniffed
    if pixels.dtype.itemsize == 2:  # before the models' imports: no torch for these
        if model != "auto":
            raise UsageError(f"model '{model}' codes 8-bit images; this {kind.upper()} has 16-bit samples, "
                             "which dulzip's own 16-bit coder takes (use -m auto, or -m zstd)")
        return compress16(data, sniffed)
    from dulzip import zoo
    from dulzip.codecs.image import encode_planes
    from dulzip.exact.imagemix import IMAGE_MIXER_VERSION
    color, layout, alpha = split_planes(pixels)
    name = choose_image_model(color, opts.level) if model == "auto" else model
    if model == "auto" and name not in zoo.cards():
        missing("image", name)
        return None
    net, digest = prepare(name, opts)
    if net.modality != "image":
        raise UsageError(f"model '{name}' is not an image model")
    if net.gray_only and color.shape[2] != 1:
        raise UsageError(f"model '{name}' codes gray images only")
    encode, _ = image_codec(net)
    layout["tile"] = net.fixed_tile or opts.tile or net.default_tile
    header = model_header(kind, data, name, digest)
    _finish_header(header, sniffed, layout)
    kw = {}
    if encode is encode_planes:  # autoregressive models code through the adaptive image mixer
        layout["mixer"] = opts.image_mixer or IMAGE_MIXER_VERSION
        kw["mixer"] = image_mixer(layout)
    elif net.codec == "pyramid":
        from dulzip.codecs.pyramid import check_tile
        from dulzip.exact.pyramidmix import PYRAMID_MIXER_VERSION
        layout["pyramid"] = PYRAMID_MIXER_VERSION
        check_tile(layout["tile"], UsageError)
    payloads: list[bytes] = []
    add_side(header, payloads, side)
    est = 0.0
    for plane_name, plane in (("color", color), ("alpha", alpha)):
        if plane is None:
            continue
        est = add_coded(header, payloads, plane_name,
                        encode(plane, net, layout["tile"], opts.progress, allow_zstd=opts.fallback, **kw), est)
    header["model_bits"] = round(est)
    return pack(Container(header, payloads))


def decompress16(c: Container) -> bytes:
    """A file of :func:`compress16` (its header checked by dulzip.schema: one ``image16`` stream
    per plane)."""
    from dulzip.codecs.image16 import decode_image16
    layout = c.header["layout"]
    H, W = layout["height"], layout["width"]
    planes = {}
    for plane_name in ("color", "alpha"):
        streams = coded_streams(c, plane_name)
        if streams:
            planes[plane_name] = decode_image16(streams[0].payload, H, W, _plane_channels(plane_name, layout))
    return _rebuild_planes(c, planes)


def _plane_channels(plane_name: str, layout: dict) -> int:
    return 1 if plane_name == "alpha" or layout.get("replicated") or layout["channels"] < 3 else 3


def _rebuild_planes(c: Container, planes: dict) -> bytes:
    """The file from its decoded planes and side data."""
    h = c.header
    layout = h["layout"]
    if "color" not in planes or (layout.get("alpha") == "coded") != ("alpha" in planes):
        raise FormatError("the .dlz file lacks image streams")
    side = read_side(c, ("png", "pnm"))
    pixels = join_planes(planes["color"], layout, planes.get("alpha"), planes["color"].dtype)
    try:
        return rebuild(h["kind"], pixels, side, h["extras"])
    except (KeyError, ValueError, IndexError) as e:
        raise CorruptDataError(f"cannot rebuild the {h['kind']} file: {e}") from None


def decompress(c: Container, opts: Options) -> bytes:
    h = c.header
    layout = h["layout"]  # types and ranges checked by dulzip.schema with the header
    if "image16" in layout:  # before the models' imports: no torch for these
        return decompress16(c)
    from dulzip.codecs.image import decode_planes
    H, W, T = layout["height"], layout["width"], layout["tile"]
    name, net = load_for(h, opts)
    if net.modality != "image":
        raise FormatError(f"model '{name}' is not an image model")
    if net.fixed_tile not in (None, T):
        raise FormatError(f"the .dlz header's tile size {T} does not fit model '{name}'")
    planes = {}
    for plane_name in ("color", "alpha"):
        streams = coded_streams(c, plane_name)
        if not streams:
            continue
        nc = _plane_channels(plane_name, layout)
        decode = image_codec(net)[1]
        kw = {}
        if "mixer" in layout and decode is decode_planes:
            if type(layout["mixer"]) is not int:
                raise FormatError("the .dlz header has an invalid image mixer")
            kw["mixer"] = image_mixer(layout)
        if (net.codec == "pyramid") != ("pyramid" in layout):
            raise FormatError(f"model '{name}' does not decode this file's image coder")
        planes[plane_name] = decode(streams, H, W, nc, net, T, opts.progress, **kw)
    if "color" in planes:
        planes["color"] = planes["color"].astype("uint8", copy=False)
    return _rebuild_planes(c, planes)
