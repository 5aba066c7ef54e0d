"""The adaptive image mixer: exact tables, its file field, bands stored with zstd, old files."""
from __future__ import annotations

import numpy as np
import pytest
import zstandard

from dulzip import api, zoo
from dulzip.api import Options
from dulzip.codecs import image as ci
from dulzip.errors import FormatError
from dulzip.exact import imagemix as im
from tests.conftest import photo
from tests.test_roundtrip import ppm


def test_slot_bits_follow_the_image_size_within_bounds():
    assert im.slot_bits_for(1) == im.SLOT_BITS_MIN
    assert im.slot_bits_for(10 ** 9) == im.SLOT_BITS_MAX
    assert im.slot_bits_for(256 * 256 * 3) == (64 * 256 * 256 * 3).bit_length() == 24


def _net():
    return zoo.load("pixelcnn")[0]


MIX = {"version": im.IMAGE_MIXER_VERSION, "slot_bits": 16}


@pytest.mark.parametrize("version", im.IMAGE_MIXER_VERSIONS)
@pytest.mark.parametrize("shape,T", [((21, 19, 3), 8), ((13, 30, 1), 8), ((1, 9, 3), 4), ((9, 1, 1), 4),
                                     ((40, 37, 3), 20)])
def test_mixed_planes_round_trip(tiny_models, shape, T, version):
    img = photo(shape[0], shape[1], shape[2])
    mix = {"version": version, "slot_bits": 16}
    streams = ci.encode_planes(img, _net(), T, allow_zstd=False, mixer=mix)
    assert all(s.coder == "model" for s in streams)
    out = ci.decode_planes(streams, shape[0], shape[1], shape[2], _net(), T, mixer=mix)
    assert (out == img).all()


def test_the_orders_visit_every_position_once_after_its_context():
    """Raster and wavefront: each position once; W, WW, N, NN, NW, NE and, for the PixelCNN's
    receptive field, row r - 1 up to column c + layers * kw, all decoded before (r, c)."""
    net = _net()
    T = 23
    reach = net.cfg.layers * net.cfg.kw
    for version in im.IMAGE_MIXER_VERSIONS:
        when = np.full((T, T), -1)
        for k, (rows, cols) in enumerate(ci.decode_order(net, T, version)):
            assert (np.diff(rows) > 0).all() and (when[rows, cols] == -1).all()
            when[rows, cols] = k
        assert (when >= 0).all()
        for r in range(T):
            for c in range(T):
                before = [(r, c - 1), (r, c - 2), (r - 2, c)] + [(r - 1, c + d) for d in range(-1, reach + 1)]
                assert all(when[a, b] < when[r, c] for a, b in before if 0 <= a < T and 0 <= b < T)
    assert len(ci.decode_order(net, 64, 2)) == (reach + 2) * 63 + 1  # against 4096 in raster order


def test_files_of_mixer_version_1_still_decode(tiny_models):
    from dulzip.container import unpack
    data = ppm(photo(20, 18))
    blob = api.compress(data, Options(fallback=False, tile=8, image_mixer=1))
    assert unpack(blob).header["layout"]["mixer"] == 1
    assert api.decompress(blob) == data


def test_a_band_stored_with_zstd_still_teaches_the_mixer(tiny_models):
    """The decoder runs the mixer over a zstd band's known levels, as the encoder did: the
    bands after it decode only if it does."""
    img = photo(24, 20)
    T = 8
    net = _net()
    streams = ci.encode_planes(img, net, T, allow_zstd=False, mixer=MIX)
    raw = np.ascontiguousarray(img[8:16]).tobytes()
    streams[1] = ci.Stream("zstd", zstandard.ZstdCompressor(level=19).compress(raw))
    out = ci.decode_planes(streams, 24, 20, 3, net, T, mixer=MIX)
    assert (out == img).all()


def test_files_without_a_mixer_still_decode():
    """Files coded with the model's tables alone, before the mixer (format 1 and early format 2),
    decode through the decode-only module: real ones, made by the commits that wrote them
    (tests/data/golden, made by tests/golden.py --legacy), byte for byte. Nothing encodes them
    any more."""
    from dulzip.container import unpack
    from tests.golden import GOLDEN, load_manifest
    old = [n for n, m in load_manifest().items() if m["set"] == "legacy" and m["kind"] in ("png", "pnm")
           and m["mixer"] is None and m["model"] == "pixelcnn"]
    assert old
    name = min(old, key=lambda n: (GOLDEN / f"{n}.dlz").stat().st_size)
    blob = (GOLDEN / f"{name}.dlz").read_bytes()
    assert "mixer" not in unpack(blob).header["layout"]
    assert api.decompress(blob) == (GOLDEN / load_manifest()[name]["input"]).read_bytes()
    with pytest.raises(ValueError, match="mixer"):
        ci.encode_planes(photo(8, 8), _net(), 8)


def test_another_mixer_version_is_refused(tiny_models):
    from dulzip.container import pack, unpack
    data = ppm(photo(12, 10))
    c = unpack(api.compress(data, Options(fallback=False, tile=8)))
    assert c.header["layout"]["mixer"] == im.IMAGE_MIXER_VERSION
    c.header["layout"]["mixer"] = im.IMAGE_MIXER_VERSION + 1
    with pytest.raises(FormatError, match="version"):
        api.decompress(pack(c))
    c.header["layout"]["mixer"] = {"version": im.IMAGE_MIXER_VERSION}
    with pytest.raises(FormatError):
        api.decompress(pack(c))


def test_the_codec_refuses_a_table_size_out_of_range(tiny_models):
    with pytest.raises(FormatError):
        ci.check_mixer({"version": im.IMAGE_MIXER_VERSION, "slot_bits": 99})
