"""The integer discrete flow: exact invertibility on any shape, exactness across batch sizes,
thread counts and reload, the prior coder's escapes, round trips through the API and CLI,
the default choice by image size, and bad input."""
from __future__ import annotations

import io
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file

from dulzip import api
from dulzip.cli import main
from dulzip.codecs.flow import PriorCoder, decode_flow, encode_flow
from dulzip.coding.rangecoder import RangeDecoder, RangeEncoder
from dulzip.errors import DulzipError, ModelMismatchError
from dulzip.exact.idf import ExactIDF
from dulzip.kinds import image as image_kind
from dulzip.models import n_params
from dulzip.models.idf import IDF, IDFConfig, export, logistic_bits, plan, squeeze, unsqueeze
from dulzip.zoo import save_weights
from tests.conftest import photo, write_model

SMALL = IDFConfig(levels=2, couplings=2, hidden=8, prior_hidden=8, top=3)


def small_idf(seed: int = 0, cfg: IDFConfig = SMALL, gain: float = 0.3) -> IDF:
    """A random flow whose couplings and priors are far from the identity / flat init."""
    torch.manual_seed(seed)
    m = IDF(cfg)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "c3" in name or "direct" in name:
                p.normal_(0, gain)
    return m.eval()


def exact(seed: int = 0, cfg: IDFConfig = SMALL, gain: float = 0.3) -> ExactIDF:
    return ExactIDF(export(small_idf(seed, cfg, gain)), asdict(cfg))


def write_idf(folder, name: str = "idf", seed: int = 0) -> str:
    m = small_idf(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    digest = save_weights(export(m), path, "idf", asdict(SMALL))
    (folder / f"{name}.json").write_text(json.dumps({
        "name": name, "architecture": "idf", "weights": path.name, "sha256": digest,
        "config": asdict(SMALL), "parameters": n_params(m)}))
    return digest


@pytest.fixture
def idf_models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    write_model(folder)
    write_idf(folder)
    monkeypatch.setenv("DULZIP_MODELS", str(folder))
    return folder


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(buf, format="PNG")
    return buf.getvalue()


def test_plan_and_squeeze():
    assert [s[0] for s in plan(SMALL)].count("couple") == 4
    splits = plan(IDFConfig())
    assert splits[-1] == ("split", 3, 3)  # the last level halves down to `top` channels
    x = torch.arange(2 * 3 * 4 * 6).view(2, 3, 4, 6)
    assert torch.equal(unsqueeze(squeeze(x)), x)
    with pytest.raises(ValueError):
        IDFConfig(levels=8, couplings=10)  # flow values could leave 16 bits


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 9, 3), (9, 1, 1), (7, 13, 3), (31, 17, 1), (40, 24, 3)])
def test_flow_round_trip_any_shape(shape):
    net = exact()
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    streams = encode_flow(img, net, 16, allow_zstd=False)
    assert all(s.coder == "model" for s in streams)
    assert np.array_equal(decode_flow(streams, *shape, net, 16), img)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 20), st.integers(1, 20), st.sampled_from([1, 3]), st.integers(0, 10 ** 6))
def test_flow_round_trip_hypothesis(h, w, c, seed):
    net = exact(seed % 3)
    img = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    streams = encode_flow(img, net, 8, allow_zstd=False)
    assert np.array_equal(decode_flow(streams, h, w, c, net, 8), img)


def test_inverse_is_exact_with_saturated_translations():
    """Huge network outputs: translations at +-TMAX, z far outside the priors (escapes)."""
    net = exact(1, gain=40.0)
    x = torch.randint(0, 256, (2, 3, 8, 12))
    parts = net.forward(x)
    assert max(int(p[0].abs().max()) for p in parts) > 255  # the flow did move values a lot
    it = iter(p[0] * p[3] for p in parts)  # each part's z at its positions
    assert torch.equal(net.inverse(2, 8, 12, lambda mu, k, at: next(it)), x)
    img = x[0].permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.array_equal(decode_flow(encode_flow(img, net, 64, allow_zstd=False), 8, 12, 3, net, 64), img)


def test_forward_is_identical_across_batch_sizes_threads_and_reload(tmp_path):
    m = small_idf(2)
    tensors = export(m)
    net = ExactIDF(tensors, asdict(SMALL))
    x = torch.from_numpy(photo(24, 32, 3, seed=4)).permute(2, 0, 1)[None].long().repeat(3, 1, 1, 1)
    x[1] = torch.randint(0, 256, x[1].shape)
    torch.set_num_threads(2)
    together = net.forward(x)
    torch.set_num_threads(1)
    alone = [net.forward(x[i:i + 1]) for i in range(3)]
    for j, part in enumerate(together):
        for a, b in zip(part[:3], zip(*(al[j][:3] for al in alone))):  # z, means, scales
            assert torch.equal(a, torch.cat(b))
    save_weights(tensors, tmp_path / "w.safetensors", "idf", asdict(SMALL))
    again = ExactIDF(load_file(str(tmp_path / "w.safetensors")), asdict(SMALL)).forward(x)
    assert all(torch.equal(a, b) for p, q in zip(together, again) for a, b in zip(p, q))


def test_exact_cost_follows_the_float_model():
    """The coded bits of the exported flow are close to the float (fake-quantized) model's."""
    m = small_idf(3, gain=0.05)
    net = ExactIDF(export(m), asdict(SMALL))
    img = photo(48, 64, 3, seed=1)
    streams = encode_flow(img, net, 64, allow_zstd=False)
    coded = sum(len(s.payload) for s in streams) * 8 / img.size
    est = sum(s.est_bits for s in streams) / img.size
    with torch.no_grad():
        fl = float(m.loss(torch.from_numpy(img).permute(2, 0, 1)[None].long()))
    assert abs(coded - est) < 0.02 + 0.01 * est
    assert abs(est - fl) < 0.05 * fl


def test_prior_coder_escapes_and_estimate():
    coder = PriorCoder(exact().tables)
    rng = np.random.default_rng(0)
    mu = rng.integers(-4000, 4000, 500)
    k = rng.integers(0, 56, 500)
    z = (mu >> 3) + rng.integers(-3, 4, 500)
    z[::7] = rng.integers(-32768, 32768, len(z[::7]))  # far away: escapes
    enc = RangeEncoder()
    bits = coder.encode(enc, z, mu, k)
    data = enc.finish()
    assert abs(len(data) * 8 - bits) < 0.01 * bits + 64
    assert np.array_equal(coder.decode(RangeDecoder(data), mu, k), z)


def test_logistic_bits_sum_to_one():
    z = torch.arange(-2000, 2001).float()
    for mu, ls in ((0.3, -2.0), (-5.0, 1.0), (100.0, 4.0)):
        p = torch.exp2(-logistic_bits(z, torch.tensor(mu), torch.tensor(ls)))
        assert abs(float(p.sum()) - 1) < 2e-3  # every in-table level is floored at 2**-20


@pytest.mark.parametrize("c", [1, 3, 4])
def test_api_round_trip_png(idf_models, c):
    img = photo(37, 45, c, seed=c)
    data = png_bytes(img)
    blob = api.compress(data, api.Options(model="idf", fallback=False, tile=32))
    assert api.describe(blob)["model"]["name"] == "idf"
    assert api.decompress(blob) == data


def test_default_model_by_image_size(idf_models, monkeypatch):
    monkeypatch.setattr(image_kind, "PIXELCNN_MAX_TILES", 2)
    small, large = photo(65, 33), photo(65, 129)  # 2 tiles of 64x64; 6
    assert api.choose_image_model(photo(64, 128)) == "pixelcnn"  # 2
    assert api.choose_image_model(small) == "pixelcnn"
    assert api.choose_image_model(large) == "idf"
    blob = api.compress(png_bytes(large), api.Options(fallback=False))
    assert api.describe(blob)["model"]["name"] == "idf"
    assert api.describe(blob)["layout"]["tile"] == 512  # the flow's own default tile
    assert api.decompress(blob) == png_bytes(large)
    gray = large[:, :, :1]
    assert api.choose_image_model(gray) == "idf"  # no gray flow installed
    write_idf(idf_models, "idf-gray", seed=3)
    assert api.choose_image_model(gray) == "idf-gray" and api.choose_image_model(large) == "idf"
    assert api.choose_image_model(photo(20, 30)[:, :, :1]) == "pixelcnn"
    for a in (gray, np.repeat(gray, 3, axis=2)):  # gray, and gray stored as RGB
        blob = api.compress(png_bytes(a), api.Options(fallback=False))
        assert api.describe(blob)["model"]["name"] == "idf-gray" and api.decompress(blob) == png_bytes(a)


def test_other_weights_and_damage_are_refused(idf_models, tmp_path):
    data = png_bytes(photo(30, 30))
    blob = api.compress(data, api.Options(model="idf", fallback=False))
    write_idf(idf_models, seed=5)  # the installed 'idf' now has other weights
    with pytest.raises(ModelMismatchError):
        api.decompress(blob)
    write_idf(idf_models, seed=0)
    bad = bytearray(blob)
    bad[-10] ^= 0x40
    with pytest.raises(DulzipError):
        api.decompress(bytes(bad))
    src = tmp_path / "x.dlz"
    src.write_bytes(bytes(bad))
    r = CliRunner().invoke(main, ["decompress", str(src)])
    assert r.exit_code == 1 and not (tmp_path / "x").exists()


def test_cli_compress_decompress_with_idf(idf_models, tmp_path):
    src = tmp_path / "p.png"
    src.write_bytes(png_bytes(photo(33, 20)))
    r = CliRunner().invoke(main, ["compress", "-m", "idf", "-q", str(src)])
    assert r.exit_code == 0, r.output
    src.rename(tmp_path / "orig.png")
    r = CliRunner().invoke(main, ["decompress", "-q", str(tmp_path / "p.png.dlz")])
    assert r.exit_code == 0, r.output
    assert src.read_bytes() == (tmp_path / "orig.png").read_bytes()
    coded = tmp_path / "q.png.dlz"  # the random flow loses to zstd: keep the model path for `list`
    coded.write_bytes(api.compress(src.read_bytes(), api.Options(model="idf", fallback=False)))
    r = CliRunner().invoke(main, ["list", str(coded)])
    assert r.exit_code == 0 and "idf" in r.output
    assert CliRunner().invoke(main, ["test", str(coded)]).exit_code == 0


@pytest.mark.parametrize("H", [1, 2, 3, 4, 7])
def test_gray_packing_inverts(H):
    from dulzip.codecs.flow import pack_gray, unpack_gray
    g = np.random.default_rng(H).integers(0, 256, (H, 5, 1), dtype=np.uint8)
    p = pack_gray(g)
    assert p.shape == (-(-H // 3), 5, 3)
    assert np.array_equal(p[0, :, 0], g[0, :, 0]) and np.array_equal(unpack_gray(p, H), g)
