"""16-bit images: dulzip (the 16-bit coder) beside the input file, ``optipng -o7``, JPEG-XL
lossless (``cjxl -d 0 -e 9``) and zstd -19 of the raw samples, in bits per sub-pixel, with encode
and decode times. Every coded form is decoded and checked against the input's samples.

    python benchmarks/measure/images16.py data/corpora/photos16-test --out benchmarks/results --name photos16-test

Writes NAME.md, NAME.json and NAME.png. PNM inputs go to optipng as the PNG dulzip's builder makes
of their samples (benchmarks/corpora/images16.py's), to cjxl as they are.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zstandard

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "corpora"))
from images16 import png16  # noqa: E402

from dulzip import __version__, api  # noqa: E402
from dulzip.formats import png, pnm  # noqa: E402

CODECS = ("input file", "dulzip", "optipng -o7", "cjxl -d 0 -e 9", "zstd -19 (raw samples)")


def samples(data: bytes) -> np.ndarray:
    """(H, W, C) uint16 samples of a 16-bit PNG or PNM file."""
    if data.startswith(b"\x89PNG"):
        return png.parse(data).pixels
    return pnm.parse(data).pixels


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def run(args: list[str]) -> None:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_file(path: Path, tmp: Path) -> dict:
    data = path.read_bytes()
    a = samples(data)
    H, W, C = a.shape
    dims = H * W * C
    row = {"image": path.name, "width": W, "height": H, "channels": C, "bytes": {}, "seconds": {}}
    row["bytes"]["input file"] = len(data)
    blob, enc = timed(api.compress, data)
    out, dec = timed(api.decompress, blob)
    assert out == data, path
    row["bytes"]["dulzip"], row["seconds"]["dulzip"] = len(blob), [enc, dec]
    row["dulzip_coder"] = "image16" if "image16" in (api.describe(blob).get("layout") or {}) else "zstd"
    src = tmp / "in.png"
    src.write_bytes(data if data.startswith(b"\x89PNG") else png16(a))
    opt = tmp / "opt.png"
    _, enc = timed(run, ["optipng", "-o7", "-quiet", "-clobber", "-out", str(opt), str(src)])
    got, dec = timed(lambda: samples(opt.read_bytes()))
    assert np.array_equal(got, a), path
    row["bytes"]["optipng -o7"], row["seconds"]["optipng -o7"] = opt.stat().st_size, [enc, dec]
    jxl, back = tmp / "o.jxl", tmp / "back.png"
    jin = path if not data.startswith(b"\x89PNG") else src
    _, enc = timed(run, ["cjxl", "-d", "0", "-e", "9", "--quiet", str(jin), str(jxl)])
    _, dec = timed(run, ["djxl", str(jxl), str(back)])
    got = samples(back.read_bytes())
    assert np.array_equal(got.reshape(a.shape), a), f"{path}: cjxl did not round-trip"
    row["bytes"]["cjxl -d 0 -e 9"], row["seconds"]["cjxl -d 0 -e 9"] = jxl.stat().st_size, [enc, dec]
    raw = a.astype(">u2").tobytes()
    z, enc = timed(zstandard.ZstdCompressor(level=19).compress, raw)
    back_raw, dec = timed(zstandard.ZstdDecompressor().decompress, z)
    assert back_raw == raw
    row["bytes"]["zstd -19 (raw samples)"], row["seconds"]["zstd -19 (raw samples)"] = len(z), [enc, dec]
    row["bpsp"] = {k: 8 * v / dims for k, v in row["bytes"].items()}
    row["seconds"] = {k: [round(x, 3) for x in v] for k, v in row["seconds"].items()}
    return row


def write(rows: list[dict], out: Path, name: str, cmd: str) -> None:
    from dulzip.bench.common import bar_plot, machine
    out.mkdir(parents=True, exist_ok=True)
    dims = sum(r["width"] * r["height"] * r["channels"] for r in rows)
    total = {k: 8 * sum(r["bytes"][k] for r in rows) / dims for k in CODECS}
    secs = {k: [sum(r["seconds"][k][i] for r in rows) for i in (0, 1)] for k in CODECS if k != "input file"}
    meta = {"command": cmd, "version": __version__, "machine": machine()}
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "images": rows, "total": {"bpsp": total, "seconds": secs,
                                                                                          "subpixels": dims}}, indent=2) + "\n")
    lines = [f"# Benchmark: {name} (16-bit images)", "", f"Command: `{cmd}`  ",
             f"dulzip {__version__}, {meta['machine']}", "",
             "Bits per sub-pixel (lower is better; 16 = the raw samples); every coded form decoded and checked. "
             "dulzip: the real .dlz file of the input file (the 16-bit coder, no model).", "",
             "| image | size | C | " + " | ".join(CODECS) + " |", "|---|---|---|" + "---|" * len(CODECS)]
    for r in rows:
        best = min(r["bpsp"][k] for k in CODECS[1:])
        lines.append(f"| {r['image']} | {r['width']}x{r['height']} | {r['channels']} | " + " | ".join(
            f"**{r['bpsp'][k]:.3f}**" if r["bpsp"][k] == best else f"{r['bpsp'][k]:.3f}" for k in CODECS) + " |")
    lines.append(f"| **total** | {dims} sub-px | | " + " | ".join(f"{total[k]:.3f}" for k in CODECS) + " |")
    lines += ["", "Encode and decode seconds per image (encode / decode; dulzip: the whole compress and "
              "decompress calls in one process, numba's compiled code cached; optipng's decode: reading its PNG "
              "back with dulzip's parser):", "", "| image | " + " | ".join(CODECS[1:]) + " |",
              "|---|" + "---|" * (len(CODECS) - 1)]
    for r in rows:
        lines.append(f"| {r['image']} | " + " | ".join(
            f"{r['seconds'][k][0]:.2f} / {r['seconds'][k][1]:.2f}" for k in CODECS[1:]) + " |")
    lines.append("| **total** | " + " | ".join(f"{secs[k][0]:.2f} / {secs[k][1]:.2f}" for k in CODECS[1:]) + " |")
    d, o, j, i = (total[k] for k in ("dulzip", "optipng -o7", "cjxl -d 0 -e 9", "input file"))
    lines += ["", f"In total dulzip is {100 * (1 - d / i):.1f}% below the input files, {100 * (1 - d / o):.1f}% below "
              f"optipng -o7, and {100 * (d / j - 1):+.1f}% against JPEG-XL lossless at effort 9 "
              "(positive: JPEG-XL is smaller)."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    bar_plot(out / f"{name}.png", [r["image"].rsplit(".", 1)[0] for r in rows],
             {k: [r["bpsp"][k] for r in rows] for k in CODECS}, "bits per sub-pixel", f"{name}: lossless, lower is better")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--name", default="photos16-test")
    a = ap.parse_args()
    for tool in ("optipng", "cjxl", "djxl"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in sorted(a.folder.iterdir()):
            if p.suffix in (".png", ".ppm", ".pgm"):
                rows.append(bench_file(p, Path(tmp)))
                print(p.name, {k: round(v, 3) for k, v in rows[-1]["bpsp"].items()}, file=sys.stderr)
    write(rows, a.out, a.name, "python benchmarks/measure/images16.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
