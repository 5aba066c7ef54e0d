"""``dulzip bench DIR``: real .dlz sizes beside the baselines, in bits per sub-pixel.

For every image in DIR: the .dlz of its PNG file (the file a user would compress), the
model's own estimate (-log2 p, from the container), encode and decode wall times (decode
verified against the original), and each baseline codec on the same pixels. Writes
``<name>.md``, ``<name>.json`` and ``<name>.png`` (a plot) to the output folder.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dulzip import __version__, api
from dulzip.bench.baselines import image_baselines, png
from dulzip.bench.common import DLZ, bar_plot, command, machine, timed_round_trip
from dulzip.train.files import IMAGE_SUFFIXES

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
    row["seconds"] = {}  # each baseline's (encode, decode) seconds
    for codec in image_baselines():
        if codec.available:
            coded, enc, dec = codec.code(img)
            row["bpsp"][codec.name] = 8 * len(coded) / dims
            row["seconds"][codec.name] = [round(enc, 4), round(dec, 4)]
    blob, row["encode_s"], row["decode_s"] = timed_round_trip(png_file, api.Options(model=model, threads=threads),
                                                              path.name)
    h = api.describe(blob)
    row["bpsp"][DLZ] = 8 * len(blob) / dims
    row["dlz_kind"] = h["kind"]
    row["dlz_exact"] = h.get("exact", True)  # False: a PNG re-encoded with the same pixels and chunks
    row["dlz_model"] = (h.get("model") or {}).get("name")
    row["model_estimate_bpsp"] = h.get("model_bits", 0) / dims if h["kind"] != "bytes" else None
    return row


def summarize(rows: list[dict]) -> dict:
    dims = sum(r["height"] * r["width"] * r["channels"] for r in rows)
    names = list(rows[0]["bpsp"])
    total = {n: sum(r["bpsp"][n] * r["height"] * r["width"] * r["channels"] for r in rows) / dims for n in names}
    return {"bpsp": total, "encode_s": sum(r["encode_s"] for r in rows),
            "decode_s": sum(r["decode_s"] for r in rows), "subpixels": dims}


def short_name(name: str) -> str:
    """A column's short name: the codec without its settings, but JPEG-XL's effort kept."""
    base = name.split(" (")[0].replace(" lossless", "")
    effort = re.search(r"\((e\d)\)", name)
    return f"{base} {effort.group(1)}" if effort else base


def write_reports(rows: list[dict], out: Path, name: str, meta: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    total = summarize(rows)
    names = list(rows[0]["bpsp"])
    js = out / f"{name}.json"
    js.write_text(json.dumps({"meta": meta, "images": rows, "total": total}, indent=2) + "\n")
    md = out / f"{name}.md"
    short = [short_name(n) for n in names]
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
    timed = [n for n in names if n in rows[0].get("seconds", {})]
    if timed:
        lines += ["", "Time in all, seconds (each codec in this process, one image after another; dulzip: "
                  "the whole compress and decompress calls):", "", "| codec | encode s | decode s |", "|---|---|---|"]
        lines += [f"| {n} | {sum(r['seconds'][n][0] for r in rows):.2f} | {sum(r['seconds'][n][1] for r in rows):.2f} |"
                  for n in timed]
        lines.append(f"| {DLZ} | {total['encode_s']:.2f} | {total['decode_s']:.2f} |")
    p = total["bpsp"]
    png_name = INPUT if INPUT in names else next(n for n in names if n.startswith("PNG"))
    versus = "the input files" if png_name == INPUT else "PNG"
    per_image = total["subpixels"] / len(rows)
    lines += ["", f"dulzip vs {versus}: {100 * (1 - p[DLZ] / p[png_name]):+.1f}% smaller in total.", "",
              "Bits per image on average: " + ", ".join(f"{short_name(n)} {p[n] * per_image:.1f}" for n in names)
              + "."]
    md.write_text("\n".join(lines) + "\n")
    plot = bar_plot(out / f"{name}.png", [r["image"].rsplit(".", 1)[0] for r in rows],
                    {short_name(n): [r["bpsp"][n] for r in rows] for n in names}, "bits per sub-pixel",
                    f"{name}: lossless, lower is better")
    return [p for p in (md, js, plot) if p]


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
