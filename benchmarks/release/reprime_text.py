"""Re-make a shipped text model's adaptive starting state with this version's mixer.

    python benchmarks/release/reprime_text.py charrnn --data data/text/train --bytes 1048576 [--keep-state]

The char-RNN's weights are kept; the mixer weights, maps and refinements it starts every file
with are learned afresh by coding about ``--bytes`` of training text (an equal piece from the
middle of every file, as ``dulzip train --prime-bytes`` does), from priors or (``--keep-state``)
from the state the model has. Writes a new weights file (new sha256) and updates the card; the
older weights stay installed, retired, for the files made with them.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from dulzip import zoo
from dulzip.train.export import reprime, sample_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="shipped text model (e.g. charrnn)")
    ap.add_argument("--data", required=True, help="training text folder")
    ap.add_argument("--bytes", type=int, default=1 << 20, help="bytes of training text to prime on")
    ap.add_argument("--keep-state", action="store_true",
                    help="start from the model's current adaptive state (primed by an older mixer) instead of priors")
    ap.add_argument("-T", "--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    path = reprime(args.name, sample_text(args.data, args.bytes),
                   zoo.SHIPPED if not os.environ.get("DULZIP_MODELS") else zoo.models_dir(), args.keep_state)
    print(f"{path} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
