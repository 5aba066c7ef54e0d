"""benchmarks/measure/image_compare.py on two tiny synthetic bench reports: the totals are
weighted by sub-pixels (not a mean of rows), the row's minimum is bold, each baseline comes from
the first report that has it (with seconds), and a missing image is an error."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "measure" / "image_compare.py"
spec = importlib.util.spec_from_file_location("image_compare", SCRIPT)
ic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ic)

DLZ, WEBP, E9 = ic.DLZ, "WebP lossless (m6, q100)", "JPEG-XL lossless (e9)"


def report(model: str, dlz: list[float], extra: dict, seconds: bool, exact: bool = True) -> dict:
    images = []
    for i, (name, h, w, c) in enumerate([("a.png", 2, 2, 3), ("b.png", 4, 4, 1)]):  # 12 and 16 sub-pixels
        row = {"image": name, "height": h, "width": w, "channels": c,
               "bpsp": {DLZ: dlz[i], **{k: v[i] for k, v in extra.items()}}, "encode_s": 1.0 + i, "decode_s": 2.0,
               "dlz_exact": exact or i == 0, "dlz_model": model}
        if seconds:
            row["seconds"] = {k: [0.5, 0.25] for k in extra}
        images.append(row)
    return {"meta": {"command": f"dulzip bench d -m {model}", "version": "0", "model": model, "machine": "m",
                     "threads": 2}, "images": images}


def test_merge_totals_bold_sources():
    old = report("pixelcnn", [2.0, 3.0], {WEBP: [2.5, 1.0]}, seconds=False)
    new = report("pyramid", [1.0, 4.0], {WEBP: [2.5, 1.0], E9: [3.0, 2.0]}, seconds=True, exact=False)
    m = ic.merge({"pixelcnn": old, "pyramid": new})
    assert m["columns"] == ["pixelcnn", "pyramid", WEBP, E9]
    assert m["baseline_source"] == {WEBP: "pyramid", E9: "pyramid"}  # the one with seconds
    t = m["total"]
    assert t["subpixels"] == 28
    assert t["bpsp"]["pixelcnn"] == pytest.approx((2.0 * 12 + 3.0 * 16) / 28)
    assert t["bpsp"]["pyramid"] == pytest.approx((1.0 * 12 + 4.0 * 16) / 28)
    assert t["seconds"]["pyramid"] == [3.0, 4.0] and t["seconds"][WEBP] == [1.0, 0.5]
    assert [r["best"] for r in m["images"]] == [["pyramid"], [WEBP]] and t["best"] == [WEBP]
    assert m["flags"]["not_exact"] == [{"label": "pyramid", "image": "b.png"}]
    md = "\n".join(ic.markdown("t", "cmd", [], m))
    assert "| a.png | 2x2 | 2.000 | 1.0 | 2.0 | **1.000** |" in md
    assert "| **1.643** | 1.00 / 0.50 |" in md  # WebP's total: (2.5 * 12 + 1.0 * 16) / 28


def test_missing_image_is_an_error():
    full = report("pixelcnn", [2.0, 3.0], {}, seconds=False)
    short = report("idf", [2.0, 3.0], {}, seconds=False)
    short["images"].pop()
    with pytest.raises(ValueError, match="idf: its report has no b.png"):
        ic.merge({"pixelcnn": full, "idf": short})
