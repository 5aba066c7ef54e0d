"""The shipped PixelCNN: its weights match its card, and it codes a real photo crop exactly."""
from __future__ import annotations

import pytest

from dulzip import api, zoo
from tests.conftest import DATA


def _assert_file_near_estimate(h: dict) -> None:
    """The real coded streams are within 1% (plus 64 bits) of the model's own estimate."""
    payload = sum(s["size"] for s in h["streams"] if s["name"].startswith("color"))
    assert abs(8 * payload - h["model_bits"]) <= 0.01 * h["model_bits"] + 64


def test_shipped_model_matches_card_and_round_trips():
    if "pixelcnn" not in zoo.cards():
        pytest.skip("no shipped model in models/")
    net, digest = zoo.load("pixelcnn")
    assert digest == zoo.card("pixelcnn")["sha256"]
    data = (DATA / "dune-47x37.ppm").read_bytes()
    blob = api.compress(data, api.Options(fallback=False, device="cpu"))
    h = api.describe(blob)
    assert all(s["coder"] == "model" for s in h["streams"] if s["name"].startswith("color"))
    assert api.decompress(blob) == data
    _assert_file_near_estimate(h)


@pytest.mark.parametrize("name,sample", [("made", "digit-7.png"), ("made-binary", "digit-7-1bit.png")])
def test_shipped_made_is_picked_for_digits_and_round_trips(name, sample):
    if name not in zoo.cards():
        pytest.skip(f"no shipped {name} in models/")
    net, digest = zoo.load(name)
    assert digest == zoo.card(name)["sha256"]
    data = (DATA / sample).read_bytes()
    blob = api.compress(data, api.Options(fallback=False, device="cpu"))
    h = api.describe(blob)
    assert h["model"]["name"] == name and digest.startswith(h["model"]["sha256"])
    assert api.decompress(blob) == data
    _assert_file_near_estimate(h)


@pytest.mark.parametrize("name,mode", [("idf", "RGB"), ("idf-gray", "L")])
def test_shipped_flows_round_trip_and_beat_png_on_a_real_photo(name, mode):
    if name not in zoo.cards():
        pytest.skip(f"no shipped {name} in models/")
    import io

    import numpy as np
    from PIL import Image
    net, digest = zoo.load(name)
    assert digest == zoo.card(name)["sha256"]
    img = np.asarray(Image.open(DATA / "ladybird-256.png").convert(mode))[:120, :200]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=True, compress_level=9)
    data = buf.getvalue()
    blob = api.compress(data, api.Options(model=name, fallback=False, device="cpu"))
    h = api.describe(blob)
    assert h["model"]["name"] == name and all(s["coder"] == "model" for s in h["streams"])
    assert api.decompress(blob) == data
    _assert_file_near_estimate(h)
    assert len(blob) < len(data)  # a trained flow: smaller than the PNG
