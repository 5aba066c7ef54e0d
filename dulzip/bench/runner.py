"""``dulzip bench DIR``: real .dlz sizes beside the baselines, in bits per sub-pixel.

For every image in DIR: the .dlz of its PNG file (the file a user would compress), the
model's own estimate (-log2 p, from the container), encode and decode wall times (decode
verified against the original), and each baseline codec on the same pixels. Writes
``<name>.md``, ``<name>.json`` and ``<name>.png`` (a plot) to the output folder.
"""
from __future__ import annotations

import io
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dulzip import __version__, api
from dulzip.bench.codecs import image_codecs, png
from dulzip.train.data import IMAGE_SUFFIXES

DLZ = "dulzip (.dlz file)"


def _images(folder: Path, limit: int) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return paths[:limit] if limit else paths


def load_native(path: Path) -> np.ndarray:
    """(H, W, C) uint8 in the image's own channels: gray stays 1 channel (its bits per
    sub-pixel are per gray value), alpha is kept; palette and other modes become RGB."""
    img = Image.open(path)
    if img.mode == "1":  # bilevel: levels 0 and 255
        img = img.convert("L")
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    a = np.asarray(img)
    return a[:, :, None] if a.ndim == 2 else a


INPUT = "input file (as given)"


def is_palette_png(path: Path) -> bool:
    """A PNG of color type 3 (its IHDR's tenth byte)."""
    if path.suffix.lower() != ".png":
        return False
    with open(path, "rb") as f:
        head = f.read(26)
    return head.startswith(b"\x89PNG") and len(head) == 26 and head[25] == 3


def bench_image(path: Path, model: str, threads: int, as_given: bool = False) -> dict:
    """One image's row. The .dlz is made of the image as a PNG file (Pillow's), or, with
    ``as_given`` (folders of palette PNGs, whose pixels Pillow would store as RGB), of the file
    itself, which is then also a column."""
    img = load_native(path)
    H, W, C = img.shape
    dims = H * W * C
    png_file = path.read_bytes() if as_given else png(img)
    row = {"image": path.name, "height": H, "width": W, "channels": C, "bpsp": {}}
    if as_given:
        row["bpsp"][INPUT] = 8 * len(png_file) / dims
    for codec in image_codecs():
        row["bpsp"][codec.name] = 8 * len(codec.encode(img)) / dims
    blob, row["encode_s"], row["decode_s"] = timed_round_trip(png_file, api.Options(model=model, threads=threads),
                                                              path.name)
    h = api.describe(blob)
    row["bpsp"][DLZ] = 8 * len(blob) / dims
    row["dlz_kind"] = h["kind"]
    row["dlz_exact"] = h.get("exact", True)  # False: a PNG re-encoded with the same pixels and chunks
    row["dlz_model"] = (h.get("model") or {}).get("name")
    row["model_estimate_bpsp"] = h.get("model_bits", 0) / dims if h["kind"] != "bytes" else None
    return row


def timed_round_trip(data: bytes, opts: api.Options, name: str) -> tuple[bytes, float, float]:
    """(.dlz bytes, compress seconds, decompress seconds), the decoded bytes checked."""
    t0 = time.perf_counter()
    blob = api.compress(data, opts)
    t1 = time.perf_counter()
    out = api.decompress(blob, opts)
    t2 = time.perf_counter()
    if out != data and not _same_image(out, data, blob):
        raise RuntimeError(f"{name}: round trip failed")
    return blob, t1 - t0, t2 - t1


def _same_image(out: bytes, data: bytes, blob: bytes) -> bool:
    """A PNG that dulzip re-encodes (its zlib stream could not be reproduced; the container
    says so) comes back with the same pixels and mode, not the same bytes."""
    if api.describe(blob).get("exact", True):
        return False
    a, b = Image.open(io.BytesIO(out)), Image.open(io.BytesIO(data))
    return a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))


def summarize(rows: list[dict]) -> dict:
    dims = sum(r["height"] * r["width"] * r["channels"] for r in rows)
    names = list(rows[0]["bpsp"])
    total = {n: sum(r["bpsp"][n] * r["height"] * r["width"] * r["channels"] for r in rows) / dims for n in names}
    return {"bpsp": total, "encode_s": sum(r["encode_s"] for r in rows),
            "decode_s": sum(r["decode_s"] for r in rows), "subpixels": dims}


def write_reports(rows: list[dict], out: Path, name: str, meta: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    total = summarize(rows)
    names = list(rows[0]["bpsp"])
    js = out / f"{name}.json"
    js.write_text(json.dumps({"meta": meta, "images": rows, "total": total}, indent=2) + "\n")
    md = out / f"{name}.md"
    short = [n.split(" (")[0] for n in names]
    lines = [f"# Benchmark: {name}", "", f"Command: `{meta['command']}`  ", f"dulzip {meta['version']}, "
             f"model `{meta['model']}`, {meta['machine']}, torch threads {meta['threads']}", "",
             "Bits per sub-pixel (lower is better); the dulzip column is the real .dlz file size of the "
             + ("input file itself (palette PNGs here)" if INPUT in names else "image's PNG file")
             + ", verified by decoding.", "",
             "| image | size | " + " | ".join(short) + " | model est. | encode s | decode s |",
             "|---|---|" + "---|" * len(names) + "---|---|---|"]
    for r in rows:
        best = min(r["bpsp"].values())
        cells = [f"**{r['bpsp'][n]:.3f}**" if r["bpsp"][n] == best else f"{r['bpsp'][n]:.3f}" for n in names]
        est = f"{r['model_estimate_bpsp']:.3f}" if r["model_estimate_bpsp"] else "-"
        lines.append(f"| {r['image']} | {r['width']}x{r['height']} | " + " | ".join(cells) +
                     f" | {est} | {r['encode_s']:.1f} | {r['decode_s']:.1f} |")
    cells = [f"{total['bpsp'][n]:.3f}" for n in names]
    lines.append(f"| **total** | {total['subpixels']} sub-px | " + " | ".join(cells) +
                 f" | | {total['encode_s']:.1f} | {total['decode_s']:.1f} |")
    used = sorted({r.get("dlz_model") or "zstd" for r in rows})
    if len(used) > 1:  # `-m auto` chose per image
        lines += ["", "Models used: " + "; ".join(
            f"{u}: " + ", ".join(r["image"] for r in rows if (r.get("dlz_model") or "zstd") == u) for u in used) + "."]
    p = total["bpsp"]
    png_name = INPUT if INPUT in names else next(n for n in names if n.startswith("PNG"))
    versus = "the input files" if png_name == INPUT else "PNG"
    per_image = total["subpixels"] / len(rows)
    lines += ["", f"dulzip vs {versus}: {100 * (1 - p[DLZ] / p[png_name]):+.1f}% smaller in total.", "",
              "Bits per image on average: " + ", ".join(f"{n.split(' (')[0]} {p[n] * per_image:.1f}" for n in names)
              + "."]
    md.write_text("\n".join(lines) + "\n")
    plot = bar_plot(out / f"{name}.png", [r["image"].rsplit(".", 1)[0] for r in rows],
                    {n.split(" (")[0]: [r["bpsp"][n] for r in rows] for n in names}, "bits per sub-pixel",
                    f"{name}: lossless, lower is better")
    return [p for p in (md, js, plot) if p]


def bar_plot(path: Path, labels: list[str], series: dict[str, list[float]], ylabel: str, title: str) -> Path | None:
    """Grouped bars (one group per label, one bar per series); None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    w = 0.8 / len(series)
    for i, (n, v) in enumerate(series.items()):
        ax.bar(np.arange(len(labels)) + i * w, v, w, label=n)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - w / 2, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def machine() -> str:
    return f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or 'cpu'}"


def command() -> str:
    import sys
    return "dulzip bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "dulzip bench"


def run_bench(folder: Path, out: Path, name: str, model: str, limit: int = 0, threads: int = 0) -> list[Path]:
    import sys
    rows = []
    paths = _images(folder, limit)
    as_given = any(is_palette_png(p) for p in paths)
    for p in paths:
        rows.append(bench_image(p, model, threads, as_given))
        print(f"{p.name}: " + ", ".join(f"{k.split(' (')[0]} {v:.3f}" for k, v in rows[-1]["bpsp"].items()),
              file=sys.stderr)
    meta = {"command": command(), "version": __version__, "model": model, "machine": machine(),
            "threads": threads or torch.get_num_threads()}
    return write_reports(rows, out, name, meta)
