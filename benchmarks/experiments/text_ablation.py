"""What each part of the text coder brings: the same held-out text coded with parts of the
mixer switched off (real range-coded sizes, model path forced), in bits per byte.

    python benchmarks/experiments/text_ablation.py data/text/prose-test data/text/code-test --max-bytes 65536 \\
        --out benchmarks/results/text-ablation

Parts: the char-RNN, the order-k contexts, the word contexts, the column contexts, the match
model, the final refinements (APMs) and the second mixing layer (with it the three other
first-layer mixers); version 3's run model, sparse, field and private contexts and
online layer. "char-RNN alone" keeps one mixer (it only rescales the network's logit and its
two refinements) and nothing else. A part switched off gives the mixer a zero input (its
tables still learn, its time is still spent), except the run model and the online layer,
which are then not computed. "the previous release" is mixer version 2 with the model that
shipped with it (``--previous SHA256``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from dulzip import zoo
from dulzip.bench.baselines import text_baselines
from dulzip.codecs.text import MIXER_VERSION, Layout, encode_text
from dulzip.exact.textmix import PARTS, VERSION_3

CONFIGS = {
    "all parts (shipped)": PARTS,
    "without the char-RNN": tuple(p for p in PARTS if p != "rnn"),
    "without the order-k contexts": tuple(p for p in PARTS if p != "orders"),
    "without the word contexts": tuple(p for p in PARTS if p != "words"),
    "without the column contexts": tuple(p for p in PARTS if p != "columns"),
    "without the match model": tuple(p for p in PARTS if p != "match"),
    "without the refinements (APMs)": tuple(p for p in PARTS if p not in ("apm", "apm2")),
    "one mixer (no second layer)": tuple(p for p in PARTS if p != "mixer2"),
    "without the run model (v3)": tuple(p for p in PARTS if p != "runs"),
    "without the sparse contexts (v3)": tuple(p for p in PARTS if p != "sparse"),
    "without the field context (v3)": tuple(p for p in PARTS if p != "field"),
    "without the segments' private contexts (v3)": tuple(p for p in PARTS if p != "private"),
    "without the online layer (v3)": tuple(p for p in PARTS if p != "online"),
    "without any of version 3's parts": tuple(p for p in PARTS if p not in VERSION_3),
    "char-RNN alone": ("rnn",),
}
PREVIOUS = "the previous release (mixer 2, its model)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--max-bytes", type=int, default=65536, help="the first this many bytes of each file")
    ap.add_argument("--model", default="charrnn")
    ap.add_argument("--previous", default="", help="sha256 of the model the previous release shipped (with mixer 2)")
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix")
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, digest = zoo.load(args.model)
    files = [p for d in args.folders for p in sorted(d.iterdir()) if p.is_file()]
    texts = {p.name: p.read_bytes()[:args.max_bytes] for p in files}
    n = sum(len(t) for t in texts.values())
    rows = {}
    configs = [(name, parts, net, MIXER_VERSION) for name, parts in CONFIGS.items()]
    if args.previous:
        configs.append((PREVIOUS, PARTS, zoo.load(args.model, expect_sha256=args.previous)[0], 2))
    for name, parts, model, version in configs:
        t0 = time.time()
        size = sum(sum(len(s.payload) for s in encode_text(
            t, model, dataclasses.replace(Layout.for_length(len(t)), mixer=version), allow_zstd=False, parts=parts))
            for t in texts.values())
        rows[name] = {"bpb": 8 * size / n, "seconds": round(time.time() - t0, 1)}
        print(name, rows[name], flush=True)
    for c in text_baselines():
        rows[c.name] = {"bpb": 8 * sum(len(c.encode(t)) for t in texts.values()) / n}
    report = {"command": "python benchmarks/experiments/text_ablation.py " + " ".join(str(f) for f in args.folders)
              + f" --max-bytes {args.max_bytes}" + (f" --previous {args.previous}" if args.previous else "")
              + f" --out {args.out}", "model": args.model, "weights_sha256": digest,
              "files": list(texts), "bytes": n, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    full = rows["all parts (shipped)"]["bpb"]
    lines = ["# What each part of the text coder brings", "", f"Command: `{report['command']}`  ",
             f"Model `{args.model}` (sha256 {digest[:12]}…); the first {args.max_bytes} bytes of each of "
             f"{len(texts)} held-out files ({n} bytes), each coded as one file; real range-coded sizes.", "",
             "Seconds: the whole configuration's coding, one process, 2 threads (noisy: +-15% on this machine).", "",
             "| coder | bits/byte | vs all parts | seconds |", "|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['bpb']:.3f} | {100 * (r['bpb'] / full - 1):+.1f}% | {r.get('seconds', '')} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
