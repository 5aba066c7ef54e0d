"""The shipped PixelCNN: its weights match its card, and it codes a real photo crop exactly."""
from __future__ import annotations

import pytest

from dulzip import api, zoo
from tests.conftest import DATA


def _assert_file_near_estimate(h: dict) -> None:
    """The real coded streams are within 1% (plus 64 bits) of the model's own estimate."""
    payload = sum(s["size"] for s in h["streams"] if s["name"].startswith("color"))
    assert abs(8 * payload - h["model_bits"]) <= 0.01 * h["model_bits"] + 64


def _shipped_round_trip(name: str, data: bytes, model: str = "auto") -> tuple[bytes, dict, str]:
    """Skip without the shipped model; else check its weights against its card, compress
    ``data`` on the model path, check the decode, and return (the .dlz, its header, the sha256)."""
    if name not in zoo.cards():
        pytest.skip(f"no shipped {name} in {zoo.models_dir()}")
    net, digest = zoo.load(name)
    assert digest == zoo.card(name)["sha256"]
    blob = api.compress(data, api.Options(model=model, fallback=False, device="cpu"))
    assert api.decompress(blob) == data
    return blob, api.describe(blob), digest


def test_shipped_model_matches_card_and_round_trips():
    _, h, _ = _shipped_round_trip("pixelcnn", (DATA / "dune-47x37.ppm").read_bytes())
    assert all(s["coder"] == "model" for s in h["streams"] if s["name"].startswith("color"))
    _assert_file_near_estimate(h)


@pytest.mark.parametrize("name,sample", [("made", "digit-7.png"), ("made-binary", "digit-7-1bit.png")])
def test_shipped_made_is_picked_for_digits_and_round_trips(name, sample):
    _, h, digest = _shipped_round_trip(name, (DATA / sample).read_bytes())
    assert h["model"]["name"] == name and digest.startswith(h["model"]["sha256"])
    _assert_file_near_estimate(h)


@pytest.mark.parametrize("name,mode", [("idf", "RGB"), ("idf-gray", "L")])
def test_shipped_flows_round_trip_and_beat_png_on_a_real_photo(name, mode):
    import io

    import numpy as np
    from PIL import Image
    img = np.asarray(Image.open(DATA / "ladybird-256.png").convert(mode))[:120, :200]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=True, compress_level=9)
    data = buf.getvalue()
    blob, h, _ = _shipped_round_trip(name, data, model=name)
    assert h["model"]["name"] == name and all(s["coder"] == "model" for s in h["streams"])
    _assert_file_near_estimate(h)
    assert len(blob) < len(data)  # a trained flow: smaller than the PNG
