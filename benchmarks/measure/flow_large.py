"""Photographs of any size through the default path (`dulzip compress` picks the flow above
512x512 pixels) or through one model (``-m pyramid``): wall time and peak memory of compress
and decompress, each a fresh process on 2 threads, and the real file size beside PNG's.

    python benchmarks/measure/flow_large.py /tmp/debs/mb/usr/share/backgrounds/mate/nature/LadyBird.jpg \\
        --out benchmarks/results/flow-large [-m pyramid]

Each input (any format Pillow reads) is first written as an RGB PNG (Pillow, level 9, optimize):
that PNG is the file compressed. JPEG inputs carry their JPEG artefacts (the held-out corpus
reduces them away), so their bits per sub-pixel are not comparable with photos-test's.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_memory import _run  # noqa: E402

from dulzip import api  # noqa: E402


def measure(src: Path, work: Path, model: list[str]) -> dict:
    png = work / (src.stem + ".png")
    img = Image.open(src).convert("RGB")
    img.save(png, optimize=True, compress_level=9)
    dims = img.width * img.height * 3
    c_s, c_mb = _run(["compress", "-q", "-f", "--no-progress", "-T", "2", *model, str(png)])
    dlz = Path(str(png) + ".dlz")
    out = work / "out.png"
    d_s, d_mb = _run(["decompress", "-q", "-f", "--no-progress", "-T", "2", str(dlz), "-o", str(out)])
    row = {"image": src.name, "width": img.width, "height": img.height,
           "model": (api.describe(dlz.read_bytes()).get("model") or {}).get("name"),
           "png_bpsp": 8 * png.stat().st_size / dims, "dlz_bpsp": 8 * dlz.stat().st_size / dims,
           "compress_s": round(c_s, 1), "compress_peak_rss_mb": round(c_mb),
           "decompress_s": round(d_s, 1), "decompress_peak_rss_mb": round(d_mb),
           "round_trip": out.read_bytes() == png.read_bytes()}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("-m", "--model", help="this model for every image (default: dulzip's choice)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = [measure(p, Path(d), ["-m", args.model] if args.model else []) for p in args.images]
    cmd = "python benchmarks/measure/flow_large.py " + " ".join(sys.argv[1:])
    args.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1) + "\n")
    choice = f"model {args.model}" if args.model else "default model choice"
    lines = [f"# Photographs, {choice} ({cmd})", "",
             "Each a fresh process on 2 CPU threads; peak resident memory of the process.", "",
             "| image | size | model | PNG bits/sub-px | dulzip | compress s | peak MB | decompress s | peak MB | "
             "identical |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['width']}x{r['height']} | {r['model']} | {r['png_bpsp']:.3f} | "
                     f"{r['dlz_bpsp']:.3f} | {r['compress_s']} | {r['compress_peak_rss_mb']} | {r['decompress_s']} | "
                     f"{r['decompress_peak_rss_mb']} | {r['round_trip']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}.md")


if __name__ == "__main__":
    main()
