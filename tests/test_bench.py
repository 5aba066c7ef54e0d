"""The benchmark runner writes its three reports from real measurements."""
from __future__ import annotations

import json

from PIL import Image

from dulzip.bench.runner import DLZ, run_bench
from tests.conftest import photo


def test_bench_writes_reports(tiny_models, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(photo(9, 11)).save(folder / "a.png")
    paths = run_bench(folder, tmp_path / "out", "t", "pixelcnn")
    assert sorted(p.suffix for p in paths) == [".json", ".md", ".png"]
    data = json.loads((tmp_path / "out" / "t.json").read_text())
    row = data["images"][0]
    assert row["bpsp"][DLZ] > 0 and row["bpsp"]["PNG (Pillow -9, optimize)"] > 0
    assert "dulzip vs PNG" in (tmp_path / "out" / "t.md").read_text()


def test_bench_counts_gray_images_per_gray_value(tiny_models, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(photo(9, 11, 1)[:, :, 0]).save(folder / "g.png")
    run_bench(folder, tmp_path / "out", "t", "pixelcnn")
    row = json.loads((tmp_path / "out" / "t.json").read_text())["images"][0]
    assert row["channels"] == 1
    dlz = row["bpsp"][DLZ]
    assert 0 < dlz and all(v > 0 for v in row["bpsp"].values())


def test_bench_compresses_palette_pngs_as_given(tiny_models, tmp_path):
    from dulzip.bench.runner import INPUT
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(photo(9, 11)).convert("P", palette=Image.ADAPTIVE, colors=16).save(folder / "p.png")
    Image.fromarray(photo(5, 7)).save(folder / "rgb.png")  # beside it: its file as given too
    run_bench(folder, tmp_path / "out", "t", "pixelcnn")
    rows = json.loads((tmp_path / "out" / "t.json").read_text())["images"]
    assert [r["channels"] for r in rows] == [3, 3]
    assert rows[0]["bpsp"][INPUT] == 8 * (folder / "p.png").stat().st_size / (9 * 11 * 3)
    assert rows[0]["bpsp"][DLZ] > 0 and rows[1]["bpsp"][INPUT] > 0
    assert "input file itself" in (tmp_path / "out" / "t.md").read_text()


def test_bench_bilevel_images_are_given_to_png_as_1_bit():
    import io

    import numpy as np

    from dulzip.bench.codecs import png
    a = (np.random.default_rng(0).random((28, 28, 1)) < 0.3).astype(np.uint8) * 255
    img = Image.open(io.BytesIO(png(a)))
    assert img.mode == "1" and (np.asarray(img.convert("L"))[:, :, None] == a).all()
