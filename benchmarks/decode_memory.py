"""Peak memory of real decodes against dulzip.schema.decode_memory's estimate.

The estimate is what lets dulzip refuse a hostile file before decoding it (``--max-memory``),
so it must stay above what a real decode takes. Each case is compressed here, then decoded in a
fresh process whose peak RSS (ru_maxrss: the interpreter, torch and the model included) is read.

    python benchmarks/decode_memory.py --out benchmarks/results/decode-memory
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dulzip import api  # noqa: E402
from dulzip.container import read_header  # noqa: E402
from dulzip.schema import decode_memory  # noqa: E402

DECODE = """
import resource, sys
from dulzip import api
blob = open(sys.argv[1], 'rb').read()
out = api.decompress(blob, api.Options(device='cpu', threads=2))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
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
    ("idf 256x256 RGB", lambda: _png(256, 256), "idf"),
    ("idf 1024x1024 RGB", lambda: _png(1024, 1024), "idf"),
    ("idf-gray 1024x1024", lambda: _png(1024, 1024, "L"), "idf-gray"),
    ("charrnn 2 KB", lambda: _text(2048), "charrnn"),
    ("charrnn 256 KB", lambda: _text(1 << 18), "charrnn"),
    ("wavenet 8 kHz 5 s", lambda: _wav(5, 8000), "wavenet"),
    ("bytes 8 MB", lambda: np.random.default_rng(0).integers(0, 256, 8 << 20, dtype=np.uint8).tobytes(), "zstd"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/decode-memory")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, make, model in CASES:
            data = make()
            blob = api.compress(data, api.Options(model=model, device="cpu", threads=2, fallback=False))
            path = Path(tmp) / "x.dlz"
            path.write_bytes(blob)
            peak = int(subprocess.run([sys.executable, "-c", DECODE, str(path)], check=True, capture_output=True,
                                      text=True, cwd=ROOT).stdout.split()[-1])
            est = decode_memory(read_header(blob)[0])
            rows.append({"case": label, "model": model, "input_bytes": len(data), "peak_rss": peak, "estimate": est,
                         "ratio": est / peak})
            print(f"{label:<24} peak {peak / 2**20:8.1f} MiB  estimate {est / 2**20:8.1f} MiB  x{est / peak:.2f}",
                  flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    lines = ["# Decode memory: peak RSS against the estimate that --max-memory checks", "",
             "`python benchmarks/decode_memory.py` (fresh process per decode, 2 threads, CPU; the estimate must "
             "stay above the peak)", "", "| case | input bytes | peak RSS (MiB) | estimate (MiB) | estimate / peak |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['input_bytes']:,} | {r['peak_rss'] / 2**20:.0f} | {r['estimate'] / 2**20:.0f} | "
              f"{r['ratio']:.2f} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    if any(r["ratio"] < 1 for r in rows):
        sys.exit("the estimate is below a real decode's peak: raise it in dulzip/schema.py")


if __name__ == "__main__":
    main()
