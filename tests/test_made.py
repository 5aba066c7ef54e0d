"""MADE: autoregressive by gradients, exact (batched pass == decode loop, any batch or thread
count), round trips through the image codec, chosen by default for 28x28 gray images."""
from __future__ import annotations

import io
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from dulzip import api
from dulzip.errors import UsageError
from dulzip.exact.made import ExactMADE
from dulzip.models.made import MADE, MADEConfig, export, n_params
from dulzip.zoo import save_weights
from tests.conftest import photo

SMALL = MADEConfig(size=28, hidden=24, layers=2, mixtures=2)


def small_made(cfg: MADEConfig = SMALL, seed: int = 0) -> MADE:
    torch.manual_seed(seed)
    m = MADE(cfg)
    with torch.no_grad():  # away from the initial all-background prediction
        m.out.weight.normal_(0, 0.2)
        m.direct.weight.normal_(0, 0.02)
    return m.eval()


@pytest.fixture
def made_models(tiny_models):
    m = small_made()
    path = tiny_models / "made.safetensors"
    digest = save_weights(export(m), path, "made", asdict(SMALL))
    (tiny_models / "made.json").write_text(json.dumps({
        "name": "made", "architecture": "made", "weights": path.name, "sha256": digest,
        "config": asdict(SMALL), "parameters": n_params(m)}))
    return tiny_models


def digit(seed: int = 0) -> np.ndarray:
    return photo(28, 28, 1, seed)[:, :, 0]


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_autoregressive_by_gradients():
    cfg = MADEConfig(size=5, hidden=16, layers=2, mixtures=2)
    m = small_made(cfg)
    x = torch.randint(0, 256, (1, 1, 5, 5)).float().requires_grad_(True)
    y = m(x)  # (1, 3K, D)
    for d in range(cfg.dims):
        g, = torch.autograd.grad(y[0, :, d].sum(), x, retain_graph=True)
        g = g.flatten()
        assert (g[d:] == 0).all(), d  # pixel d's distribution never sees pixel d or later ones
    assert (g[:cfg.dims - 1] != 0).any()


@pytest.mark.parametrize("batch,threads", [(1, 1), (3, 2)])
def test_decode_loop_equals_batched_pass(batch, threads):
    torch.set_num_threads(threads)
    net = ExactMADE(export(small_made()), asdict(SMALL))
    x = torch.from_numpy(np.stack([digit(s) for s in range(batch)])).long()[:, None].expand(-1, 3, -1, -1)
    present = torch.ones(batch, 1, 28, 28, dtype=torch.int64)
    present[-1, :, 20:, :] = 0  # a partial tile
    full = net.full_pass(x * present, present)
    st = net.stepper(batch, 28, present)
    for r in range(28):
        for c in range(28):
            assert torch.equal(st.params(r, c), full[:, r, c]), (r, c)
            st.set(r, c, (x * present)[:, :, r, c])


def test_made_round_trips_and_is_the_default_for_digits(made_models):
    data = png_bytes(digit(1))
    blob = api.compress(data, api.Options(fallback=False))
    assert api.describe(blob)["model"]["name"] == "made"
    assert api.decompress(blob) == data
    other = png_bytes(photo(30, 20, 1)[:, :, 0])  # not 28x28: PixelCNN by default, MADE on request
    assert api.describe(api.compress(other, api.Options(fallback=False)))["model"]["name"] == "pixelcnn"
    blob = api.compress(other, api.Options(model="made", fallback=False))
    assert api.describe(blob)["layout"]["tile"] == 28 and api.decompress(blob) == other


def test_made_refuses_colour(made_models, tmp_path):
    with pytest.raises(UsageError, match="gray images only"):
        api.compress(png_bytes(photo(28, 28)), api.Options(model="made"))
    from dulzip.cli import main
    f = tmp_path / "c.png"
    f.write_bytes(png_bytes(photo(28, 28)))
    r = CliRunner().invoke(main, ["compress", "-m", "made", str(f)])
    assert r.exit_code == 1 and "gray images only" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "c.png.dlz").exists()


def bilevel_png(h: int, w: int, seed: int = 0) -> bytes:
    a = np.random.default_rng(seed).random((h, w)) < 0.3
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")  # mode "1": a 1-bit gray PNG
    return buf.getvalue()


@pytest.mark.parametrize("h,w", [(28, 28), (1, 1), (3, 9), (17, 8)])
def test_bilevel_png_round_trips_byte_identical(made_models, h, w):
    data = bilevel_png(h, w, seed=h * w)
    blob = api.compress(data, api.Options(fallback=False))
    h_ = api.describe(blob)
    assert h_["kind"] == "png" and h_["exact"] and h_["extras"]["depth"] == 1
    assert api.decompress(blob) == data


def test_binarized_model_is_the_default_for_binary_digits(made_models):
    m = small_made(seed=1)
    path = made_models / "made-binary.safetensors"
    digest = save_weights(export(m), path, "made", asdict(SMALL))
    (made_models / "made-binary.json").write_text(json.dumps({
        "name": "made-binary", "architecture": "made", "weights": path.name, "sha256": digest,
        "config": asdict(SMALL), "parameters": n_params(m)}))
    data = bilevel_png(28, 28)
    blob = api.compress(data, api.Options(fallback=False))
    assert api.describe(blob)["model"]["name"] == "made-binary"
    assert api.decompress(blob) == data
    # 8-bit digits with other levels still go to the 8-bit MADE
    assert api.describe(api.compress(png_bytes(digit(2)), api.Options(fallback=False)))["model"]["name"] == "made"


def test_bilevel_png_with_stray_padding_bits_stays_lossless(made_models):
    import struct
    import zlib

    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
    rows = b"".join(b"\x00" + bytes([0b10100111]) for _ in range(4))  # width 3: 5 padding bits set
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 4, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    blob = api.compress(data)
    assert api.describe(blob)["kind"] == "bytes"  # not modelled: the padding bits would be lost
    assert api.decompress(blob) == data
