"""Round trips through the API: every format, odd sizes, gray/RGB/RGBA, the bytes path."""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from dulzip import api
from dulzip.api import Options
from dulzip.formats import png as pngfmt
from tests.conftest import DATA, photo

MODEL = Options(fallback=False, tile=16)  # keep the model path even where zstd wins


def roundtrip(data: bytes, opts: Options = MODEL) -> dict:
    blob = api.compress(data, opts)
    assert api.decompress(blob) == data
    return api.describe(blob)


def ppm(img: np.ndarray) -> bytes:
    h, w, c = img.shape
    return (b"P6" if c == 3 else b"P5") + f"\n{w} {h}\n255\n".encode() + img.tobytes()


def png_bytes(img: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[img.shape[2]]
    Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img, mode).save(buf, format="PNG", **kw)
    return buf.getvalue()


def model_coded(h: dict) -> bool:
    return any(s["coder"] == "model" for s in h["streams"])


@pytest.mark.parametrize("shape", [(1, 1), (1, 13), (11, 1), (7, 5), (23, 17)])
def test_ppm_odd_sizes(tiny_models, shape):
    h = roundtrip(ppm(photo(*shape)))
    assert h["kind"] == "pnm" and model_coded(h)


def test_pgm_with_comments_and_trailer(tiny_models):
    img = photo(9, 6, 1)
    data = b"P5\n# a comment\n6 9\n# another\n255\n" + img.tobytes() + b"trailing bytes"
    h = roundtrip(data)
    assert h["kind"] == "pnm" and h["layout"]["channels"] == 1 and model_coded(h)


@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_png_channels_byte_identical(tiny_models, c):
    data = png_bytes(photo(13, 19, c))
    h = roundtrip(data)
    assert h["kind"] == "png" and h["exact"] and model_coded(h)


def test_png_gray_stored_as_rgb_and_constant_alpha(tiny_models):
    g = photo(10, 12, 1)
    rgba = np.dstack([g, g, g, np.full_like(g, 200)])
    h = roundtrip(png_bytes(rgba))
    assert h["layout"]["replicated"] is True and h["layout"]["alpha"] == 200
    assert [s["name"] for s in h["streams"] if s["name"].startswith(("color", "alpha"))] == ["color.0"]


def _png_from_chunks(img: np.ndarray, chunks_before_idat, level=9, strategy=zlib.Z_DEFAULT_STRATEGY, n_idat=3,
                     flush=False):
    """flush: a full flush midway (no zlib setting reproduces the stream)."""
    h, w, c = img.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = pngfmt.filter_rows(img.reshape(h, w * c), bytes([4, 1, 2, 3, 0] * h)[:h], c)
    comp = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    cut = len(raw) // 2 if flush else len(raw)
    stream = comp.compress(raw[:cut]) + (comp.flush(zlib.Z_FULL_FLUSH) if flush else b"") + comp.compress(raw[cut:])
    stream += comp.flush()
    step = -(-len(stream) // n_idat)
    parts = [stream[i:i + step] for i in range(0, len(stream), step)]
    out = [pngfmt.SIGNATURE, pngfmt._chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))]
    out += [pngfmt._chunk(t, b) for t, b in chunks_before_idat]
    out += [pngfmt._chunk(b"IDAT", p) for p in parts]
    out += [pngfmt._chunk(b"tEXt", b"After\x00idat"), pngfmt._chunk(b"IEND", b"")]
    return b"".join(out)


def test_png_ancillary_chunks_split_idat_byte_identical(tiny_models):
    data = _png_from_chunks(photo(12, 9), [(b"tEXt", b"Comment\x00hello"), (b"gAMA", struct.pack(">I", 45455))])
    h = roundtrip(data)
    assert h["kind"] == "png" and h["exact"] and len(h["extras"]["idat_sizes"]) == 3


def test_png_unreproducible_zlib_is_described_or_reencoded_on_request(tiny_models):
    data = _png_from_chunks(photo(12, 9), [(b"tEXt", b"k\x00v")], level=1, flush=True)
    h = roundtrip(data)  # by default byte for byte: the stream re-created from its description
    assert h["kind"] == "png" and h["exact"] is True and h["extras"]["zlib"] is None
    blob = api.compress(data, Options(fallback=False, tile=16, exact=False))  # --reencode
    h = api.describe(blob)
    assert h["kind"] == "png" and h["exact"] is False
    out = api.decompress(blob)
    assert out != data
    a, b = Image.open(io.BytesIO(out)), Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    strip = lambda d: [(t, x) for t, x in pngfmt.parse_chunks(d) if t != b"IDAT"]
    assert strip(out) == strip(data)


def test_16_bit_png_goes_to_the_16_bit_coder(tiny_models):
    """A 16-bit PNG as Pillow writes it: the 16-bit coder (no model: none installed is needed)."""
    img = Image.fromarray((photo(8, 8, 1)[:, :, 0].astype(np.uint16) * 250)).convert("I;16")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    h = roundtrip(buf.getvalue(), Options(fallback=False))
    assert h["kind"] == "png" and h["layout"]["image16"] == 1 and "model" not in h


def palette_png(indices: np.ndarray, pal: list[tuple[int, ...]], **kw) -> bytes:
    img = Image.fromarray(indices.astype(np.uint8), "P")
    img.putpalette([v for c in pal for v in c[:3]])
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


@pytest.mark.parametrize("bits,shape", [(1, (5, 13)), (2, (7, 9)), (4, (3, 11)), (8, (9, 7)), (4, (1, 1))])
@pytest.mark.parametrize("transparency", [False, True])
def test_palette_png_modelled_as_colors_byte_identical(tiny_models, bits, shape, transparency):
    rng = np.random.default_rng(bits)
    n = 1 << bits
    pal = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(n)]
    idx = np.clip(photo(*shape, 1)[:, :, 0].astype(int) * n // 256, 0, n - 1)
    kw = {"bits": bits}
    if transparency:  # a tRNS chunk: the colors are coded as RGBA
        kw["transparency"] = bytes(rng.integers(0, 256, min(n, 3)).tolist())
    data = palette_png(idx, pal, **kw)
    assert data[24:26] == bytes([bits, 3])  # bit depth, color type 3 (palette)
    h = roundtrip(data)
    assert h["kind"] == "png" and h["extras"]["palette"] and model_coded(h)
    assert h["layout"]["channels"] == (4 if transparency else 3)


def test_gray_palette_is_coded_as_gray(tiny_models):
    idx = photo(6, 10, 1)[:, :, 0] // 16
    h = roundtrip(palette_png(idx, [(17 * i,) * 3 for i in range(16)]))
    assert h["layout"]["replicated"] and model_coded(h)


def test_palette_with_a_used_repeated_color_keeps_its_indices(tiny_models):
    """Entries that repeat a color: the pixels' choice among them is kept (their ranks), so the
    file comes back byte for byte; a palette whose later copies no pixel uses needs no ranks."""
    idx = np.array([[0, 1, 2, 3]] * 3)  # entry 3 repeats entry 1's color
    pal = [(0, 0, 0), (9, 9, 200), (255, 0, 0), (9, 9, 200)]
    h = roundtrip(palette_png(idx, pal))
    assert h["kind"] == "png" and model_coded(h) and "png.ranks" in h.get("inline", {})
    h = roundtrip(palette_png(idx[:, :3], pal))
    assert h["kind"] == "png" and "png.ranks" not in h.get("inline", {})
    rng = np.random.default_rng(5)  # many repeats, a color three times, and one with a transparent copy
    pal = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(12)]
    pal[7] = pal[9] = pal[2]
    pal[5] = pal[11] = pal[0]
    idx = rng.integers(0, 12, (17, 23))
    for kw in ({}, {"transparency": bytes([255] * 11 + [0])}):
        data = palette_png(idx, pal, **kw)
        assert pngfmt.parse(data).ranks is not None
        assert model_coded(roundtrip(data))


def test_palette_ranks_that_do_not_fit_are_refused():
    pal = np.array([(0, 0, 0), (9, 9, 200), (255, 0, 0), (9, 9, 200)], dtype=np.uint8)
    idx = np.array([[0, 1, 2, 3]], dtype=np.uint8)[:, :, None]
    colors = pngfmt.palette_colors(idx, pal)
    ranks = pngfmt.palette_ranks(idx, colors, pal)
    assert ranks == bytes([0, 1])  # pixel 1: rank 0 (first seen), pixel 3: rank 1, predicted 0
    assert np.array_equal(pngfmt.palette_indices(colors, pal, ranks), idx)
    for bad in (bytes([0]), bytes([0, 2]), bytes([0, 1, 0])):
        with pytest.raises(ValueError):
            pngfmt.palette_indices(colors, pal, bad)


def test_interlaced_png_goes_the_bytes_way(tiny_models):
    chunks = pngfmt.parse_chunks(png_bytes(photo(8, 8)))
    ihdr = chunks[0][1][:12] + b"\x01"  # Adam7 interlacing flag
    data = pngfmt.SIGNATURE + b"".join(pngfmt._chunk(t, ihdr if t == b"IHDR" else b) for t, b in chunks)
    assert roundtrip(data)["kind"] == "bytes"


def test_png_with_bad_crc_or_trailing_data_is_kept_as_bytes(tiny_models):
    data = png_bytes(photo(6, 6))
    bad = bytearray(data)
    bad[40] ^= 0xFF
    assert roundtrip(bytes(bad))["kind"] == "bytes"
    assert roundtrip(data + b"junk")["kind"] == "bytes"


@pytest.mark.parametrize("data", [b"", b"x", os.urandom(5000), b"hello world " * 1000])
def test_bytes(tiny_models, data):
    h = roundtrip(data, Options())
    assert h["kind"] == "bytes"
    assert len(api.compress(data)) <= len(data) + 192  # the container's fixed overhead only


def test_never_worse_than_zstd_on_noise(tiny_models):
    noise = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    blob = api.compress(ppm(noise))
    assert api.decompress(blob) == ppm(noise)
    assert api.describe(blob)["kind"] == "bytes"  # the model lost to zstd: stored as bytes


def test_shipped_sample_photo_roundtrip_fast_path(tiny_models):
    data = (DATA / "dune-47x37.ppm").read_bytes()
    h = roundtrip(data)
    assert h["layout"]["height"] == 37 and h["layout"]["width"] == 47


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_random_bytes_hypothesis(tiny_models, data):
    assert api.decompress(api.compress(data)) == data


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.sampled_from([1, 3]), seed=st.integers(0, 2 ** 16))
def test_random_images_hypothesis(tiny_models, h, w, c, seed):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    data = ppm(img)
    blob = api.compress(data, Options(fallback=False, tile=4))
    assert api.decompress(blob) == data
