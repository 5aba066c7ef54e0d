#!/usr/bin/env bash
# The main job: compress and decompress a sample photo with the shipped PixelCNN, check the
# round trip, and print bits per sub-pixel beside PNG's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
SAMPLE=${1:-tests/data/ladybird-256.png}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$SAMPLE" "$WORK/sample.png"
.venv/bin/dulzip compress "$WORK/sample.png"
mv "$WORK/sample.png" "$WORK/original.png"
.venv/bin/dulzip decompress -v "$WORK/sample.png.dlz"
cmp "$WORK/sample.png" "$WORK/original.png" && echo "round trip: byte-identical"
.venv/bin/dulzip list "$WORK/sample.png.dlz"
.venv/bin/python - "$WORK/original.png" "$WORK/sample.png.dlz" <<'PY'
import sys
import numpy as np
from PIL import Image
from dulzip.bench.baselines import png
from dulzip.coding import zstdio
img = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
dims = img.size
dlz = open(sys.argv[2], "rb").read()
print(f"bits per sub-pixel: dulzip {8 * len(dlz) / dims:.3f} | PNG (Pillow -9, optimize) "
      f"{8 * len(png(img)) / dims:.3f} | zstd -19 {8 * len(zstdio.compress(img.tobytes())) / dims:.3f}")
PY
