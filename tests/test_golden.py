"""Golden bitstreams (tests/golden.py): today's code makes exactly the committed .dlz bytes from
each golden input, and decodes every golden file -- the current ones and those an older dulzip
made (format 1, image mixer 1, retired weights) -- to what it held."""
from __future__ import annotations

import pytest

from dulzip import api
from tests.fuzzing import blake
from tests.golden import GOLDEN, load_manifest, options

MANIFEST = load_manifest()
CURRENT = sorted(n for n, m in MANIFEST.items() if m["set"] == "current")
LEGACY = sorted(n for n, m in MANIFEST.items() if m["set"] == "legacy")


def _shipped(entry: dict) -> None:
    from dulzip import zoo
    if entry["model"] and entry["model"] not in zoo.cards():
        pytest.skip(f"model {entry['model']} is not installed")


def test_every_kind_and_coder_has_golden_files():
    kinds = {MANIFEST[n]["kind"] for n in CURRENT}
    models = {MANIFEST[n]["model"] for n in CURRENT}
    assert kinds == {"png", "pnm", "text", "wav", "bytes"}
    assert {"pixelcnn", "made", "made-binary", "idf", "idf-gray", "charrnn", "wavenet", "wavenet-music", None} <= models
    assert {MANIFEST[n]["format"] for n in LEGACY} >= {1, 2} and 1 in {MANIFEST[n]["mixer"] for n in LEGACY}


@pytest.mark.parametrize("name", CURRENT)
def test_current_code_makes_the_same_bytes(name):
    entry = MANIFEST[name]
    _shipped(entry)
    data = (GOLDEN / f"{name}.in").read_bytes()
    blob = api.compress(data, options(entry["options"]))
    assert blob == (GOLDEN / f"{name}.dlz").read_bytes(), f"{name}: the bitstream changed (python -m tests.golden)"


@pytest.mark.parametrize("name", CURRENT + LEGACY)
def test_golden_files_decode(name):
    entry = MANIFEST[name]
    _shipped(entry)
    out = api.decompress((GOLDEN / f"{name}.dlz").read_bytes(), options({}))
    assert blake(out) == entry["output_blake2b"]
    source = GOLDEN / entry.get("input", f"{name}.in")
    if api.describe((GOLDEN / f"{name}.dlz").read_bytes()).get("exact", True):
        assert out == source.read_bytes()
