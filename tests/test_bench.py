"""The benchmark runner writes its three reports from real measurements."""
from __future__ import annotations

import json

from PIL import Image

from dulzip.bench.common import DLZ
from dulzip.bench.images import run_bench
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
    import io
    import zlib

    from dulzip import api
    from dulzip.bench.common import _same_image, timed_round_trip
    from dulzip.bench.images import INPUT
    from dulzip.formats import png as pngfmt
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(photo(9, 11)).convert("P", palette=Image.ADAPTIVE, colors=16).save(folder / "p.png")
    # its zlib stream as no zlib setting makes it (a full flush midway): byte for byte by its
    # description, re-encoded (same pixels) with --reencode
    chunks = pngfmt.parse_chunks((folder / "p.png").read_bytes())

    def odd(b: bytes) -> bytes:
        raw, z = zlib.decompress(b), zlib.compressobj(6)
        return z.compress(raw[:len(raw) // 2]) + z.flush(zlib.Z_FULL_FLUSH) + z.compress(raw[len(raw) // 2:]) + z.flush()
    chunks = [(t, odd(b) if t == b"IDAT" else b) for t, b in chunks]
    (folder / "p.png").write_bytes(pngfmt.SIGNATURE + b"".join(pngfmt._chunk(t, b) for t, b in chunks))
    Image.fromarray(photo(5, 7)).save(folder / "rgb.png")  # beside it: its file as given too
    run_bench(folder, tmp_path / "out", "t", "pixelcnn")
    rows = json.loads((tmp_path / "out" / "t.json").read_text())["images"]
    assert [r["channels"] for r in rows] == [3, 3]
    assert rows[0]["bpsp"][INPUT] == 8 * (folder / "p.png").stat().st_size / (9 * 11 * 3)
    assert rows[0]["bpsp"][DLZ] > 0 and rows[1]["bpsp"][INPUT] > 0
    assert rows[0]["dlz_kind"] == "bytes" or rows[0]["dlz_exact"] is True
    # on the model path (no fallback) the re-encoded file passes the round trip by its pixels
    data = (folder / "p.png").read_bytes()
    blob, _, _ = timed_round_trip(data, api.Options(model="pixelcnn", fallback=False, exact=False), "p.png")
    assert api.describe(blob)["exact"] is False and api.decompress(blob) != data
    other = Image.fromarray(photo(9, 11, seed=1)).convert("P", palette=Image.ADAPTIVE, colors=16)
    buf = io.BytesIO()
    other.save(buf, format="PNG")
    assert not _same_image(buf.getvalue(), data, blob)
    md = (tmp_path / "out" / "t.md").read_text()
    assert "input file itself" in md and "dulzip vs the input files" in md


def test_bench_bilevel_images_are_given_to_png_as_1_bit():
    import io

    import numpy as np

    from dulzip.bench.baselines import png
    a = (np.random.default_rng(0).random((28, 28, 1)) < 0.3).astype(np.uint8) * 255
    img = Image.open(io.BytesIO(png(a)))
    assert img.mode == "1" and (np.asarray(img.convert("L"))[:, :, None] == a).all()
