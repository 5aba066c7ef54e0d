"""Peak memory of real decodes against dulzip.schema.decode_memory's estimate.

The estimate is what lets dulzip refuse a hostile file before decoding it (``--max-memory``),
so it must stay above what a real decode takes. Each case is compressed here, then decoded in a
fresh process whose peak RSS (VmHWM: the interpreter, torch and the model included) is read.

    python benchmarks/measure/decode_memory.py --out benchmarks/results/decode-memory
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dulzip import api  # noqa: E402
from dulzip.container import read_header  # noqa: E402

# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child would report
# this (larger) process's peak
DECODE = """
import re, sys
from dulzip import api
blob = open(sys.argv[1], 'rb').read()
out = api.decompress(blob, api.Options(device='cpu', threads=2))
print(1024 * int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)))
"""


def _png(h: int, w: int, mode: str = "RGB") -> bytes:
    src = Image.open(ROOT / "tests/data/ladybird-256.png").convert(mode)
    img = src.resize((w, h), Image.BILINEAR) if (w, h) != src.size else src
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _text(n: int) -> bytes:
    base = (ROOT / "README.md").read_bytes()
    return (base * (n // len(base) + 1))[:n]


def _wav(seconds: float, rate: int) -> bytes:
    src = ROOT / "tests/data/asterisk-confbridge-participants.wav"
    with wave.open(str(src)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    n = int(seconds * rate)
    x = np.resize(x, n)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(x.astype("<i2").tobytes())
    return buf.getvalue()


CASES = [
    ("pixelcnn 64x64 RGB", lambda: _png(64, 64), "pixelcnn"),
    ("pixelcnn 256x256 RGB", lambda: _png(256, 256), "pixelcnn"),
    ("pixelcnn 512x512 RGB", lambda: _png(512, 512), "pixelcnn"),
    ("pixelcnn 120x120, tile 256", lambda: _png(120, 120), "pixelcnn", 256),
    ("pixelcnn 120x120 gray, tile 512", lambda: _png(120, 120, "L"), "pixelcnn", 512),
    ("idf 256x256 RGB", lambda: _png(256, 256), "idf"),
    ("idf 1024x1024 RGB", lambda: _png(1024, 1024), "idf"),
    ("idf 2048x2048 RGB", lambda: _png(2048, 2048), "idf"),
    ("idf-gray 1024x1024", lambda: _png(1024, 1024, "L"), "idf-gray"),
    ("charrnn 2 KB", lambda: _text(2048), "charrnn"),
    ("charrnn 256 KB", lambda: _text(1 << 18), "charrnn"),
    ("charrnn 2 MB", lambda: _text(2 << 20), "charrnn"),
    ("wavenet 8 kHz 5 s", lambda: _wav(5, 8000), "wavenet"),
    ("wavenet-music 44.1 kHz 2 s", lambda: _wav(2, 44100), "wavenet-music"),
    ("bytes 8 MB", lambda: np.random.default_rng(0).integers(0, 256, 8 << 20, dtype=np.uint8).tobytes(), "zstd"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/decode-memory")
    ap.add_argument("--only", nargs="*", help="only the cases whose label contains one of these")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, make, model, *tile in CASES:
            if args.only and not any(o in label for o in args.only):
                continue
            data = make()
            blob = api.compress(data, api.Options(model=model, device="cpu", threads=2, fallback=False,
                                                  tile=tile[0] if tile else None))
            path = Path(tmp) / "x.dlz"
            path.write_bytes(blob)
            peak = int(subprocess.run([sys.executable, "-c", DECODE, str(path)], check=True, capture_output=True,
                                      text=True, cwd=ROOT).stdout.split()[-1])
            est = api.memory_needed(read_header(blob)[0])
            rows.append({"case": label, "model": model, "input_bytes": len(data), "peak_rss": peak, "estimate": est,
                         "ratio": est / peak})
            print(f"{label:<24} peak {peak / 2**20:8.1f} MiB  estimate {est / 2**20:8.1f} MiB  x{est / peak:.2f}",
                  flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    lines = ["# Decode memory: peak RSS against the estimate that --max-memory checks", "",
             "`python benchmarks/measure/decode_memory.py` (fresh process per decode, 2 threads, CPU; the estimate must "
             "stay above the peak)", "", "| case | input bytes | peak RSS (MiB) | estimate (MiB) | estimate / peak |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['input_bytes']:,} | {r['peak_rss'] / 2**20:.0f} | {r['estimate'] / 2**20:.0f} | "
              f"{r['ratio']:.2f} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    if any(r["ratio"] < 1 for r in rows):
        sys.exit("the estimate is below a real decode's peak: raise it in dulzip/schema.py")


if __name__ == "__main__":
    main()
