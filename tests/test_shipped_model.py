"""The shipped PixelCNN: its weights match its card, and it codes a real photo crop exactly."""
from __future__ import annotations

import numpy as np
import pytest

from dulzip import api, zoo
from tests.conftest import DATA


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
    # the real file is within 1% (plus the container's header) of the model's own estimate
    payload = sum(s["size"] for s in h["streams"] if s["name"].startswith("color"))
    assert abs(8 * payload - h["model_bits"]) <= 0.01 * h["model_bits"] + 64
