"""The pyramid image coder (codecs/pyramid.py, exact/pyramidmix.py) on a tiny random network:
round trips of every image kind, the same bytes whatever the chunking, damaged streams refused,
the header's fields, the memory estimate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dulzip import api
from dulzip.api import Options
from dulzip.codecs import pyramid as cp
from dulzip.coding import binary
from dulzip.errors import CorruptDataError, DulzipError, FormatError
from dulzip.exact.pyramidmix import PYRAMID_MIXER_VERSION
from dulzip.schema import DEFAULT_MAX_MEMORY, decode_memory, validate
from dulzip.zoo import save_weights
from tests.conftest import photo
from tests.test_roundtrip import palette_png, png_bytes, ppm, roundtrip

TINY = {"hidden": 8, "layers": 1}


def tiny_pyramid(seed: int = 0):
    """A tiny untrained pyramid network, randomly initialised (its output layer too, so that
    scale classes and channel coefficients vary from pixel to pixel), exported."""
    from dulzip.models.pyramid import Pyramid, PyramidConfig, export
    torch.manual_seed(seed)
    m = Pyramid(PyramidConfig(**TINY)).eval()
    with torch.no_grad():
        for n in m.nets:
            n.out.weight.normal_(0, 0.3)
    return export(m)


def _net(seed: int = 0):
    from dulzip.exact.pyramid import ExactPyramid
    return ExactPyramid(tiny_pyramid(seed), TINY)


@pytest.fixture
def pyramid_models(tmp_path, monkeypatch) -> Path:
    """DULZIP_MODELS -> a folder with a tiny random 'pyramid'."""
    folder = tmp_path / "models"
    folder.mkdir()
    digest = save_weights(tiny_pyramid(), folder / "pyramid.safetensors", "pyramid", TINY)
    card = {"name": "pyramid", "architecture": "pyramid", "weights": "pyramid.safetensors", "sha256": digest,
            "config": TINY, "parameters": 0}
    (folder / "pyramid.json").write_text(json.dumps(card))
    monkeypatch.setenv("DULZIP_MODELS", str(folder))
    return folder


@pytest.mark.parametrize("shape,T", [((21, 19, 3), 8), ((13, 30, 1), 8), ((1, 9, 3), 8), ((9, 1, 1), 8),
                                     ((40, 37, 3), 16), ((70, 33, 3), 32)])
def test_planes_round_trip(shape, T):
    img = photo(*shape)
    net = _net()
    streams = cp.encode_pyramid(img, net, T, allow_zstd=False)
    assert len(streams) == -(-shape[0] // T) and all(s.coder == "model" for s in streams)
    assert (cp.decode_pyramid(streams, *shape, net, T) == img).all()


def test_same_bytes_whatever_the_chunking(monkeypatch):
    """Network passes of one tile or of all, encoder buffers emptied often or rarely: the
    network's outputs and the coder's bytes depend on none of it."""
    img = photo(45, 50, 3, seed=3)
    net = _net()
    ref = [s.payload for s in cp.encode_pyramid(img, net, 16, allow_zstd=False)]
    monkeypatch.setattr(cp, "CELLS_PER_PASS", 1)
    monkeypatch.setattr(cp, "OUT_BYTES", 300)
    streams = cp.encode_pyramid(img, net, 16, allow_zstd=False)
    assert [s.payload for s in streams] == ref
    assert (cp.decode_pyramid(streams, 45, 50, 3, net, 16) == img).all()


def test_zstd_band_is_still_learnt_from():
    """A band of noise goes to zstd; the decoder gives its pixels to the mixer, which then
    decodes the model's bands as the encoder coded them."""
    img = photo(24, 24, 3, seed=1)
    img[8:16] = np.random.default_rng(0).integers(0, 256, (8, 24, 3), dtype=np.uint8)
    net = _net()
    streams = cp.encode_pyramid(img, net, 8)
    assert [s.coder for s in streams] == ["model", "zstd", "model"]
    assert (cp.decode_pyramid(streams, 24, 24, 3, net, 8) == img).all()


def test_damaged_streams_are_refused():
    img = photo(16, 16, 3, seed=2)
    net = _net()
    streams = cp.encode_pyramid(img, net, 8, allow_zstd=False)
    for cut in (streams[0].payload[:-3], streams[0].payload + b"\0"):  # short, or bytes left over
        bad = [cp.Stream("model", cut)] + streams[1:]
        with pytest.raises(CorruptDataError):
            cp.decode_pyramid(bad, 16, 16, 3, net, 8)
    with pytest.raises(CorruptDataError):
        cp.decode_pyramid(streams[:1], 16, 16, 3, net, 8)


def test_binary_coder_round_trips_any_probabilities():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, 5000)
    p = rng.integers(1, 65536, 5000)
    st = binary.new_state(1)
    out = np.zeros((1, 8 * 5000), dtype=np.uint8)
    for b, q in zip(bits, p):
        binary.encode_bit(st, 0, out, b, q)
    data = np.frombuffer(out[0, :st[0, 2]].tobytes() + binary.finish(st, 0), dtype=np.uint8).copy()
    end = np.array([len(data)])
    dec = binary.new_state(1)
    binary.start_decoding(dec, 0, data, end)
    assert [binary.decode_bit(dec, 0, data, end, q) for q in p] == list(bits)
    assert dec[0, 2] == len(data) and dec[0, 4] == 0  # every byte read, none past the end


MODEL = Options(model="pyramid", fallback=False, tile=8)


@pytest.mark.parametrize("make", [
    lambda: png_bytes(photo(19, 23, 3)), lambda: png_bytes(photo(19, 23, 1)), lambda: png_bytes(photo(12, 9, 2)),
    lambda: png_bytes(photo(12, 9, 4)), lambda: ppm(photo(11, 17, 3)), lambda: ppm(photo(11, 17, 1)),
    lambda: palette_png(np.arange(60).reshape(6, 10) % 7, [(10 * i, 200 - 9 * i, 3 * i) for i in range(7)]),
    lambda: palette_png(np.arange(60).reshape(6, 10) % 2, [(0, 0, 0), (255, 255, 255)], bits=1),
    lambda: (Path(__file__).parent / "data" / "digit-7-1bit.png").read_bytes()])
def test_every_image_kind_round_trips(pyramid_models, make):
    h = roundtrip(make(), MODEL)
    assert h["model"]["name"] == "pyramid" and h["layout"]["pyramid"] == PYRAMID_MIXER_VERSION
    assert any(s["coder"] == "model" for s in h["streams"]) and "mixer" not in h["layout"]


def test_damaged_file_is_an_error_not_an_image(pyramid_models):
    blob = bytearray(api.compress(png_bytes(photo(20, 20, 3)), MODEL))
    blob[-5] ^= 0x40
    with pytest.raises(DulzipError):
        api.decompress(bytes(blob))


def test_tiles_it_cannot_cut_are_refused(pyramid_models):
    with pytest.raises(DulzipError):
        api.compress(png_bytes(photo(20, 20, 3)), Options(model="pyramid", tile=12))


def _header(H: int, W: int, T: int = 256, **layout) -> dict:
    return {"kind": "png", "length": 3 * H * W, "blake2b": "0" * 32, "model": {"name": "pyramid", "sha256": "0" * 64},
            "layout": {"height": H, "width": W, "channels": 3, "tile": T, "pyramid": PYRAMID_MIXER_VERSION, **layout}, "extras": {},
            "streams": [{"name": "color.0", "coder": "model", "size": 0, "crc32": 0}]}


@pytest.mark.parametrize("layout,T", [({"pyramid": 1}, 256), ({"pyramid": 3}, 256), ({"pyramid": True}, 256), ({}, 96), ({}, 4),
                                      ({"mixer": 2}, 256)])
def test_header_fields_are_checked(layout, T):
    validate(_header(10, 10))
    with pytest.raises(FormatError, match="pyramid|tile|mixer"):
        validate(_header(10, 10, T, **layout))


def test_memory_estimate_is_linear_and_fits_large_photographs():
    """The estimate grows with the image (no more than linearly) and a 2560 x 1600 photograph
    stays under the default limit of 2 GB."""
    big = decode_memory(validate(_header(1600, 2560)), configs=[TINY])
    assert big < DEFAULT_MAX_MEMORY
    one, four = (decode_memory(validate(_header(512 * k, 512 * k))) for k in (1, 2))
    fixed = decode_memory(validate(_header(8, 8)))
    assert four - fixed <= 4 * (one - fixed)


def test_mixer_conditions_means_as_the_model_does():
    """The mixer's channel conditioning (njit, per pixel) gives the integers of the model's
    :func:`dulzip.models.pyramid.condition`, clamps included."""
    from dulzip.exact.pyramidmix import condition as mixer_condition
    from dulzip.models.pyramid import condition
    rng = np.random.default_rng(0)
    n = 2000
    mu = torch.from_numpy(rng.integers(-256, 2297, (n, 3)))
    coef = torch.from_numpy(rng.integers(-128, 129, (n, 3)))
    x = torch.from_numpy(rng.integers(0, 256, (n, 3)))
    want = condition(mu, coef, x).numpy()
    o = np.concatenate([mu.numpy(), np.zeros((n, 3), dtype=np.int64), coef.numpy()], axis=1)
    got = np.array([[mixer_condition(o[i], ch, x[i, 0].item(), x[i, 1].item()) for ch in range(3)] for i in range(n)])
    assert (got == want).all()


def test_future_switch_keeps_only_what_a_raster_order_has():
    """The ablation's "future" switch: off, no context of a pixel looks below it or right of it
    on its row; on, the grouped order's contexts do (else the ablation would measure nothing)."""
    from dulzip.exact.pyramidmix import Group, neighbours
    from dulzip.models.pyramid import groups
    T, L, H, W = 32, 2, 64, 64
    img = np.zeros((1, H, W), dtype=np.uint8)
    later = 0
    for s, phase in groups(L):
        d = 1 << s
        step, (oy, ox) = ((1 << L), (0, 0)) if phase == 0 else (2 * d, {1: (d, d), 2: (0, d), 3: (d, 0)}[phase])
        geo = np.array([phase, s, L, 1, H, W, T], dtype=np.int64)
        g = Group(img, img.astype(np.int16), *(np.zeros(1, dtype=np.int64),) * 3, np.zeros((1, 9), dtype=np.int64),
                  np.zeros(2, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), geo)
        for y in range(oy, H, step):
            for x in range(ox, W, step):
                for future in (0, 1):
                    out = np.empty((6, 2), dtype=np.int64)
                    neighbours(g, y, x, out, future)
                    after = [(r, c) for r, c in out if r >= 0 and (r > y or (r == y and c > x))]
                    assert not (after and not future), (s, phase, y, x, after)
                    later += len(after)
    assert later > 0


def test_a_primed_mixer_is_what_both_sides_start_from():
    """A model's primed state (the mixer after coding training photographs) is where the encoder
    and the decoder start: the image decodes, and its bytes are not the unprimed ones."""
    net = _net()
    img = photo(40, 37, 3, seed=3)
    plain = cp.encode_pyramid(img, net, T=16, allow_zstd=False)
    state = cp.prime(net, [photo(32, 32, 3, seed=1), photo(24, 40, 1, seed=2)])
    assert set(state) == {"prime.weights", "prime.weights_f", "prime.maps", "prime.lms"}
    assert all(t.dtype == torch.int32 for t in state.values())
    net.prime = state
    primed = cp.encode_pyramid(img, net, T=16, allow_zstd=False)
    assert [s.payload for s in primed] != [s.payload for s in plain]
    assert (cp.decode_pyramid(primed, *img.shape, net, T=16) == img).all()


@pytest.mark.parametrize("bad", [{"prime.apm": torch.zeros(4, dtype=torch.int32)},
                                 {"prime.weights": torch.zeros(7, dtype=torch.int32)}])
def test_a_primed_state_that_does_not_fit_the_mixer_is_refused(bad):
    from dulzip.exact.pyramidmix import PyramidMixer
    with pytest.raises(FormatError, match="primed mixer state"):
        PyramidMixer(16, prime=bad)
