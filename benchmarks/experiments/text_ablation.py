"""What each part of the text coder brings: the same held-out text coded with parts of the
mixer switched off (real range-coded sizes, model path forced), in bits per byte.

    python benchmarks/experiments/text_ablation.py data/text/prose-test data/text/code-test --max-bytes 65536 \\
        --out benchmarks/results/text-ablation

Parts: the char-RNN, the order-k contexts, the word contexts, the column contexts, the match
model, the final refinements (APMs) and the second mixing layer (with it the three other
first-layer mixers). "char-RNN alone" keeps one mixer (it only rescales the network's logit
and its two refinements) and nothing else.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dulzip import zoo
from dulzip.bench.baselines import text_baselines
from dulzip.codecs.text import Layout, encode_text
from dulzip.exact.textmix import PARTS

CONFIGS = {
    "all parts (shipped)": PARTS,
    "without the char-RNN": tuple(p for p in PARTS if p != "rnn"),
    "without the order-k contexts": tuple(p for p in PARTS if p != "orders"),
    "without the word contexts": tuple(p for p in PARTS if p != "words"),
    "without the column contexts": tuple(p for p in PARTS if p != "columns"),
    "without the match model": tuple(p for p in PARTS if p != "match"),
    "without the refinements (APMs)": tuple(p for p in PARTS if p not in ("apm", "apm2")),
    "one mixer (no second layer)": tuple(p for p in PARTS if p != "mixer2"),
    "char-RNN alone": ("rnn",),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--max-bytes", type=int, default=65536, help="the first this many bytes of each file")
    ap.add_argument("--model", default="charrnn")
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix")
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, digest = zoo.load(args.model)
    files = [p for d in args.folders for p in sorted(d.iterdir()) if p.is_file()]
    texts = {p.name: p.read_bytes()[:args.max_bytes] for p in files}
    n = sum(len(t) for t in texts.values())
    rows = {}
    for name, parts in CONFIGS.items():
        t0 = time.time()
        size = sum(sum(len(s.payload) for s in encode_text(t, net, Layout.for_length(len(t)), allow_zstd=False,
                                                             parts=parts))
                   for t in texts.values())
        rows[name] = {"bpb": 8 * size / n, "seconds": round(time.time() - t0, 1)}
        print(name, rows[name], flush=True)
    for c in text_baselines():
        rows[c.name] = {"bpb": 8 * sum(len(c.encode(t)) for t in texts.values()) / n}
    report = {"command": "python benchmarks/experiments/text_ablation.py " + " ".join(str(f) for f in args.folders)
              + f" --max-bytes {args.max_bytes} --out {args.out}", "model": args.model, "weights_sha256": digest,
              "files": list(texts), "bytes": n, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    full = rows["all parts (shipped)"]["bpb"]
    lines = ["# What each part of the text coder brings", "", f"Command: `{report['command']}`  ",
             f"Model `{args.model}` (sha256 {digest[:12]}…); the first {args.max_bytes} bytes of each of "
             f"{len(texts)} held-out files ({n} bytes), each coded as one file; real range-coded sizes.", "",
             "| coder | bits/byte | vs all parts |", "|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['bpb']:.3f} | {100 * (r['bpb'] / full - 1):+.1f}% |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
