"""16-bit images (dulzip.codecs.image16 and the 16-bit paths of formats/png.py, formats/pnm.py):
byte-exact round trips of every color type and odd shapes, the reduced level sets found, damaged
streams refused, headers checked, and no network loaded either way."""
from __future__ import annotations

import subprocess
import sys
import zlib

import numpy as np
import pytest

from dulzip import api
from dulzip.codecs.image16 import decode_image16, encode_image16, levels
from dulzip.container import unpack
from dulzip.errors import CorruptDataError, FormatError, UsageError
from dulzip.formats import png, pnm
from tests.fuzzing import ROOT, _png16, _pnm16, _rgb16

NOFALLBACK = api.Options(fallback=False)


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    rgb = _rgb16(13, 17)
    return {
        "rgb": rgb,
        "gray": np.ascontiguousarray(rgb[:, :, 1:2]),
        "rgba": np.dstack([rgb, (np.arange(13 * 17).reshape(13, 17, 1) * 300).astype(np.uint16)]),
        "gray-alpha": np.dstack([rgb[:, :, :1], rgb[:, :, 2:3] ^ 0x5555]),
        "1x1": rgb[:1, :1],
        "1xN": rgb[:1],
        "Nx1": rgb[:, :1, :1],
        "constant": np.full((5, 9, 3), 40000, dtype=np.uint16),
        "noise": rng.integers(0, 65536, (11, 7, 3)).astype(np.uint16),
        "extremes": np.resize(np.array([0, 65535], dtype=np.uint16), (6, 5, 1)),
        "12-bit shifted": (rgb >> 4) << 4,
        "8-bit times 257": (rgb >> 8) * 257,
        "10-bit scaled": ((rgb.astype(np.int64) >> 6) * 65535 // 1023).astype(np.uint16),
        "gray as rgb": np.repeat(rgb[:, :, :1], 3, axis=2),
        "constant alpha": np.dstack([rgb, np.full((13, 17, 1), 1234, dtype=np.uint16)]),
    }


@pytest.mark.parametrize("name", list(_images()))
def test_codec_round_trip(name):
    a = _images()[name]
    planes = np.ascontiguousarray(a[:, :, :3] if a.shape[2] >= 3 else a[:, :, :1])
    out = decode_image16(encode_image16(planes), *planes.shape)
    assert out.dtype == np.uint16 and np.array_equal(out, planes)


@pytest.mark.parametrize("name", list(_images()))
def test_png_round_trip(name):
    data = _png16(_images()[name])
    blob = api.compress(data, NOFALLBACK)
    h = unpack(blob).header
    assert "model" not in h and h["layout"]["image16"] == 1 and h["extras"]["depth"] == 16
    assert {s["coder"] for s in h["streams"] if s["name"].split(".")[0] in ("color", "alpha")} == {"image16"}
    assert api.decompress(blob) == data
    assert api.decompress(api.compress(data)) == data  # with the zstd fallback, whichever won


@pytest.mark.parametrize("name", ["gray", "rgb", "1xN", "noise", "constant"])
def test_pnm_round_trip(name):
    a = _images()[name]
    data = _pnm16(a) + b"trailing bytes"
    q = pnm.parse(data)
    assert q.pixels.dtype == np.uint16 and np.array_equal(q.pixels, a) and q.tail == b"trailing bytes"
    blob = api.compress(data, NOFALLBACK)
    assert unpack(blob).header["layout"]["image16"] == 1
    assert api.decompress(blob) == data


def test_pnm_maxval_below_65535():
    a = _images()["gray"] >> 4
    data = _pnm16(a, 4095)
    assert api.decompress(api.compress(data, NOFALLBACK)) == data
    assert pnm.parse(_pnm16(a | 4096, 4095)) is None  # a sample above maxval: the bytes way


def test_png_filters_chunks_and_idat_kept():
    """Every filter type, ancillary chunks, several IDAT chunks and an odd zlib setting come back
    byte for byte."""
    a = _images()["rgba"]
    H, W, _ = a.shape
    filters = bytes(i % 5 for i in range(H))
    chunks = png.standard_chunks(W, H, 4, 16)
    chunks.insert(1, (b"tEXt", b"Comment\0sixteen bits"))
    data = png.build(a, chunks, None, filters, (1, 8, 0), 16)
    stream = zlib.compress(png.filter_rows(png.scanlines(a, 16), filters, 8), 6)
    parts = [stream[:50], stream[50:]]
    head = data[:data.index(b"IDAT") - 4]
    split = head + b"".join(png._chunk(b"IDAT", p) for p in parts) + png._chunk(b"IEND", b"")
    for d in (data, split):
        p = png.parse(d)
        assert p.depth == 16 and np.array_equal(p.pixels, a)
        assert api.decompress(api.compress(d, NOFALLBACK)) == d


def test_reduced_levels_cost_what_their_information_does():
    """Samples that use few levels (12-bit data shifted up, 8-bit data times 257) are coded as
    those levels: the size of the reduced samples' own stream."""
    a = _rgb16(32, 30, 5, 5)
    for reduced, full in ((a >> 4, (a >> 4) << 4), (a >> 8, (a >> 8) * 257)):
        lo, step, M, _ = levels(full)
        assert step in (16, 257) and np.array_equal((full - lo) // step, reduced - reduced.min())
        assert len(encode_image16(full)) <= len(encode_image16(reduced.astype(np.uint16))) + 2


def test_a_smooth_image_costs_far_less_than_its_samples():
    y, x = np.mgrid[0:40, 0:50]
    a = (20000 + 300 * y + 170 * x).astype(np.uint16)[:, :, None]  # a few levels, unevenly spaced: as offsets
    assert len(encode_image16(a)) < 0.05 * a.size * 2
    noisy = a + ((x * y) % 7).astype(np.uint16)[:, :, None]  # plus about 2.8 bits of noise a sample
    assert len(encode_image16(noisy)) < 4.0 / 16 * a.size * 2


def test_damaged_streams_are_refused():
    a = _images()["rgb"]
    p = encode_image16(a)
    for bad in (p[:7], p[:len(p) // 2], p + b"\0", bytes([2]) + p[1:], p[:7] + b"\7" + p[8:]):
        with pytest.raises(CorruptDataError):
            decode_image16(bad, *a.shape)
    rng = np.random.default_rng(0)
    for _ in range(40):  # flipped bytes: an error, or some samples (the container's checksums catch those)
        b = bytearray(p)
        b[int(rng.integers(6, len(b)))] ^= 1 << int(rng.integers(0, 8))
        try:
            out = decode_image16(bytes(b), *a.shape)
        except CorruptDataError:
            continue
        assert out.shape == a.shape and out.dtype == np.uint16


def test_ranked_levels_that_do_not_fit_are_refused():
    a = _images()["10-bit scaled"]
    p = encode_image16(a)
    assert p[7] == 1  # ranks
    for bad in (p[:1] + (65000).to_bytes(2, "little") + p[3:], p[:5] + (9).to_bytes(2, "little") + p[7:],
                p[:3] + (0).to_bytes(2, "little") + p[5:]):
        with pytest.raises(CorruptDataError):
            decode_image16(bad, *a.shape)


def _header_refused(blob: bytes, change) -> None:
    from tests.fuzzing import join, split
    header, payloads, version = split(blob)
    change(header)
    with pytest.raises(FormatError):
        api.decompress(join(header, payloads, version))


def test_headers_that_do_not_fit_the_coder_are_refused():
    blob = api.compress(_png16(_images()["rgb"]), NOFALLBACK)
    _header_refused(blob, lambda h: h.update(model={"name": "pixelcnn", "sha256": "0" * 32}))
    _header_refused(blob, lambda h: h["layout"].update(image16=2))
    _header_refused(blob, lambda h: h["layout"].update(tile=64))
    _header_refused(blob, lambda h: h["extras"].pop("depth"))
    _header_refused(blob, lambda h: h["streams"][-1].update(coder="model"))
    _header_refused(blob, lambda h: h["layout"].pop("image16"))


def test_a_named_image_model_refuses_16_bit_samples():
    with pytest.raises(UsageError, match="16-bit"):
        api.compress(_png16(_images()["rgb"]), api.Options(model="pixelcnn"))


def test_no_network_is_loaded():
    """Compressing and decompressing a 16-bit PNG imports neither torch nor a model."""
    code = ("import sys; from dulzip import api; from tests.fuzzing import _png16, _rgb16; "
            "d = _png16(_rgb16(8, 9)); b = api.compress(d, api.Options(fallback=False)); "
            "assert api.decompress(b) == d; print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "False"


def test_decode_memory_is_bounded_by_the_samples():
    from dulzip.schema import DEFAULT_MAX_MEMORY, decode_memory
    h = unpack(api.compress(_png16(_images()["rgb"]), NOFALLBACK)).header
    small = decode_memory(h)
    big = decode_memory({**h, "layout": {**h["layout"], "height": 4000, "width": 6000}})
    assert small < DEFAULT_MAX_MEMORY < big  # 72 million sub-pixels ask for --max-memory
