"""Write measured benchmark results into a model card and regenerate models/README.md.

    python benchmarks/update_card.py pixelcnn benchmarks/results/photos-test.json

Numbers come only from the benchmark JSON given (made by ``dulzip bench``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render_readme(models: Path) -> str:
    lines = ["# Shipped models", "",
             "Weights are safetensors (integer tensors of the exact runtime, loaded without pickle), "
             "named with their sha256 prefix; each card (`<name>-<sha256 prefix>.json`, beside the weights of the same name) holds the architecture, config, "
             "parameter count, training data and steps, hardware, and measured results on held-out data.",
             "", "| model | architecture | parameters | held-out corpus | dulzip bits/sub-pixel | PNG | WebP | "
             "JPEG-XL | zstd -19 | weights |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(models.glob("*.json")):
        c = json.loads(p.read_text())
        if "weights" not in c:
            continue
        r = c.get("results", {})
        b = r.get("bpsp", {})

        def get(prefix):
            v = next((v for k, v in b.items() if k.startswith(prefix)), None)
            return f"{v:.3f}" if v is not None else "-"
        lines.append(f"| {c['name']} | {c['architecture']} | {c.get('parameters', 0):,} | {r.get('corpus', '-')} | "
                     f"{get('dulzip')} | {get('PNG')} | {get('WebP')} | {get('JPEG-XL')} | {get('zstd')} | "
                     f"`{c['weights']}` |")
    lines.append("")
    for p in sorted(models.glob("*.json")):
        c = json.loads(p.read_text())
        if "weights" not in c:
            continue
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
            lines.append(f"- held-out results ({r.get('corpus')}, {r.get('images')} images, command "
                         f"`{r.get('command')}`): " + ", ".join(f"{k} {v:.3f}" for k, v in r["bpsp"].items()))
        for o in c.get("other_results", []):
            lines.append(f"- also held out ({o['corpus']}, {o['images']} images, command `{o['command']}`): "
                         + ", ".join(f"{k} {v:.3f}" for k, v in o["bpsp"].items())
                         + f"; encode {o['encode_s']:.0f} s, decode {o['decode_s']:.0f} s in all")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("bench_json", type=Path)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--run", type=Path, default=None, help="training run folder (metrics.jsonl)")
    ap.add_argument("--hardware", default=None)
    ap.add_argument("--data", default=None, help="what the training data was")
    ap.add_argument("--command", default=None, help="the command that trained it")
    ap.add_argument("--description", default=None)
    ap.add_argument("--also", nargs="*", type=Path, default=[], help="more benchmark JSONs (other corpora)")
    args = ap.parse_args()
    bench = json.loads(args.bench_json.read_text())
    card_path = next(p for p in sorted(args.models.glob("*.json"))
                     if json.loads(p.read_text()).get("name") == args.model)  # <name>-<sha256 prefix>.json
    card = json.loads(card_path.read_text())
    card["results"] = {"corpus": args.bench_json.stem, "images": len(bench["images"]),
                       "command": bench["meta"]["command"], "bpsp": bench["total"]["bpsp"],
                       "encode_s": bench["total"]["encode_s"], "decode_s": bench["total"]["decode_s"],
                       "report": str(args.bench_json.relative_to(ROOT)) if args.bench_json.is_absolute() else
                       str(args.bench_json)}
    card["other_results"] = [
        {"corpus": p.stem, "images": len(b["images"]), "command": b["meta"]["command"], "bpsp": b["total"]["bpsp"],
         "encode_s": b["total"]["encode_s"], "decode_s": b["total"]["decode_s"], "report": str(p)}
        for p, b in ((p, json.loads(p.read_text())) for p in args.also)]
    t = card.setdefault("training", {})
    if args.run:
        log = [json.loads(x) for x in (args.run / "metrics.jsonl").read_text().splitlines() if x.strip()]
        if log:
            t["wall_time"] = f"{log[-1]['time'] / 3600:.2f} h"
            t["final_train_bpsp_ema"] = log[-1]["ema"]
    for key in ("hardware", "data", "command"):
        if getattr(args, key):
            t[key] = getattr(args, key)
    if args.description:
        card["description"] = args.description
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (args.models / "README.md").write_text(render_readme(args.models))


if __name__ == "__main__":
    main()
