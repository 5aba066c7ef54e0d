"""Synthetic speech (issue 24): espeak-ng's voices at 16, 22.05 and 44.1 kHz, mono and stereo.

    python benchmarks/corpora/synth_speech.py [--out data/corpora/speech-synth]

Needs the Debian packages espeak-ng and sox (``apt-get install espeak-ng sox``). espeak-ng writes
22.05 kHz mono; sox resamples it (its default, high-quality rate conversion) and makes the stereo
files (both channels the same signal, as a mono voice saved as stereo). Such speech is what a
plain linear predictor codes best: the trained audio models lost to ``flac -8`` on it by 5-11%.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

TEXTS = {
    "fox": "The quick brown fox jumps over the lazy dog. Compression of synthetic speech should never be "
           "worse than a plain linear predictor, and this sentence is long enough to measure it.",
    "numbers": "Flight four hundred and twelve to Amsterdam now boards at gate nineteen. Passengers in rows "
               "one to twenty, please have your boarding cards ready.",
}
VOICES = {"fox": "en", "numbers": "en-us"}
RATES = (16000, 22050, 44100)


def build(out: Path) -> None:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install espeak-ng sox")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in TEXTS.items():
            base = Path(tmp) / f"{name}.wav"
            subprocess.run(["espeak-ng", "-v", VOICES[name], "-w", str(base), text], check=True)
            for rate in RATES:
                for ch in (1, 2):
                    dst = out / f"espeak-{name}-{rate}-{'mono' if ch == 1 else 'stereo'}.wav"
                    subprocess.run(["sox", str(base), "-r", str(rate), "-c", str(ch), "-b", "16", str(dst)], check=True)
    print(f"{len(list(out.glob('*.wav')))} files in {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/corpora/speech-synth"))
    build(ap.parse_args().out)


if __name__ == "__main__":
    main()
