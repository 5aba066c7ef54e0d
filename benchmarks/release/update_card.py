"""Write measured benchmark results into a model card (dulzip/models_data/) and regenerate models/README.md.

    python benchmarks/release/update_card.py pixelcnn benchmarks/results/photos-test.json
    python benchmarks/release/update_card.py charrnn benchmarks/results/prose-test.json --also benchmarks/results/code-test.json
    python benchmarks/release/update_card.py wavenet benchmarks/results/speech-test.json

Numbers come only from the benchmark JSON given (made by ``dulzip bench``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dulzip.train.card import bench_results
from dulzip.train.report import summary

ROOT = Path(__file__).resolve().parents[2]


def render_readme(models: Path) -> str:
    lines = ["# Shipped models", "",
             "Weights are safetensors (integer tensors of the exact runtime, loaded without pickle), "
             "named with their sha256 prefix; each card (`<name>-<sha256 prefix>.json`, beside the weights of the same name) holds the architecture, config, "
             "parameter count, training data and steps, hardware, and measured results on held-out data. "
             "Both are in [dulzip/models_data](../dulzip/models_data), package data that every install of "
             "dulzip carries (a wheel, `pip install .`, a checkout).",
             "", "| model | architecture | parameters | held-out corpus | dulzip bits/sub-pixel | PNG | WebP | "
             "JPEG-XL | zstd -19 | weights |", "|---|---|---|---|---|---|---|---|---|---|"]
    every = [c for c in (json.loads(p.read_text()) for p in sorted(models.glob("*.json"))) if "weights" in c]
    cards = [c for c in every if not c.get("retired")]
    retired = [c for c in every if c.get("retired")]

    def get(r, prefix):
        v = next((v for k, v in r.get(_unit(r), {}).items() if k.startswith(prefix)), None)
        return f"{v:.3f}" if v is not None else "-"
    for c in cards:
        r = c.get("results", {})
        if _unit(r) == "bpsp":
            lines.append(f"| {c['name']} | {c['architecture']} | {c.get('parameters', 0):,} | {r.get('corpus', '-')} | "
                         f"{get(r, 'dulzip')} | {get(r, 'PNG')} | {get(r, 'WebP')} | {get(r, 'JPEG-XL')} | "
                         f"{get(r, 'zstd')} | `{c['weights']}` |")
    lines += ["", "| text model | architecture | parameters | held-out corpus | dulzip bits/byte | xz -9e | PPMd | "
              "brotli -q 11 | zstd -19 | weights |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cards:
        r = c.get("results", {})
        if _unit(r) == "bpb":
            lines.append(f"| {c['name']} | {c['architecture']} | {c.get('parameters', 0):,} | {r.get('corpus', '-')} | "
                         f"{get(r, 'dulzip')} | {get(r, 'xz')} | {get(r, 'PPMd')} | {get(r, 'brotli')} | "
                         f"{get(r, 'zstd -19')} | `{c['weights']}` |")
    lines += ["", "| audio model | architecture | parameters | held-out corpus | dulzip bits/sample | flac -8 | "
              "wavpack -hhx | xz -9e (raw) | weights |", "|---|---|---|---|---|---|---|---|---|"]
    for c in cards:
        r = c.get("results", {})
        if _unit(r) == "bps":
            lines.append(f"| {c['name']} | {c['architecture']} | {c.get('parameters', 0):,} | {r.get('corpus', '-')} | "
                         f"{get(r, 'dulzip')} | {get(r, 'flac')} | {get(r, 'wavpack')} | {get(r, 'xz')} | "
                         f"`{c['weights']}` |")
    if retired:
        lines += ["", "Older versions, kept so that the files made with them still decode (new files use the "
                  "current version; each file names the sha256 of its weights):", ""]
        lines += [f"- {c['name']}: `{c['weights']}`, replaced by `{c.get('superseded_by', '?')}`" for c in retired]
    lines.append("")
    for c in cards:
        lines += [f"## {c['name']}", "", c.get("description", ""), "",
                  f"- architecture: {c['architecture']}, config `{json.dumps(c['config'], sort_keys=True)}`",
                  f"- parameters: {c.get('parameters', 0):,}"]
        t = c.get("training", {})
        lines.append(f"- training: {t.get('steps')} steps, data {t.get('data', t.get('config', {}).get('data'))}, "
                     f"hardware {t.get('hardware', '?')}, wall time {t.get('wall_time', '?')}")
        if t.get("command"):
            lines.append(f"- command: `{t['command']}`")
        r = c.get("results")
        if r:
            lines.append(f"- held-out results ({r.get('corpus')}, {_count(r)}, command `{r.get('command')}`, "
                         f"{_unit_name(r)}): " + ", ".join(f"{k} {v:.3f}" for k, v in r[_unit(r)].items()))
        for o in c.get("other_results", []):
            lines.append(f"- also held out ({o['corpus']}, {_count(o)}, command `{o['command']}`, {_unit_name(o)}): "
                         + ", ".join(f"{k} {v:.3f}" for k, v in o[_unit(o)].items())
                         + f"; encode {o['encode_s']:.0f} s, decode {o['decode_s']:.0f} s in all")
        lines.append("")
    return "\n".join(lines)


def _unit(r: dict) -> str:
    return next((u for u in ("bpb", "bps") if u in r), "bpsp")


def _unit_name(r: dict) -> str:
    return {"bpb": "bits per byte", "bps": "bits per sample", "bpsp": "bits per sub-pixel"}[_unit(r)]


def _count(r: dict) -> str:
    if "samples" in r:
        return f"{r['files']} files, {r['samples']} samples"
    return f"{r['files']} files, {r['bytes']} bytes" if "files" in r else f"{r.get('images')} images"


def _results(path: Path, bench: dict) -> dict:
    return bench_results(path, bench, ROOT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("bench_json", type=Path)
    ap.add_argument("--models", type=Path, default=ROOT / "dulzip" / "models_data", help="cards and weights")
    ap.add_argument("--readme", type=Path, default=ROOT / "models" / "README.md", help="the models' README to rewrite")
    ap.add_argument("--run", type=Path, default=None, help="training run folder (metrics.jsonl)")
    ap.add_argument("--hardware", default=None)
    ap.add_argument("--data", default=None, help="what the training data was")
    ap.add_argument("--command", default=None, help="the command that trained it")
    ap.add_argument("--description", default=None)
    ap.add_argument("--also", nargs="*", type=Path, default=[], help="more benchmark JSONs (other corpora)")
    args = ap.parse_args()
    bench = json.loads(args.bench_json.read_text())
    card_path, card = next((p, c) for p, c in ((p, json.loads(p.read_text())) for p in sorted(args.models.glob("*.json")))
                           if c.get("name") == args.model and not c.get("retired"))  # <name>-<sha256 prefix>.json
    card["results"] = _results(args.bench_json, bench)
    card["other_results"] = [_results(p, json.loads(p.read_text())) for p in args.also]
    t = card.setdefault("training", {})
    if args.run:
        s = summary(args.run)
        if "seconds" in s:
            t["wall_time"] = f"{s['seconds'] / 3600:.2f} h"
            t["final_train_bpsp_ema"] = s["train_bits"]
    for key in ("hardware", "data", "command"):
        if getattr(args, key):
            t[key] = getattr(args, key)
    if args.description:
        card["description"] = args.description
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    args.readme.write_text(render_readme(args.models))


if __name__ == "__main__":
    main()
