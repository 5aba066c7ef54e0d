"""One prepared run on a lent GPU: train the shipped PixelCNN (or the flow) for a fixed time,
export it, and measure what only a GPU shows: encode/decode times there, and files encoded
there (which the CPU must then decode, bit for bit: ``benchmarks/check_gpu_files.py``).

    python benchmarks/gpu_session.py --data data/corpora/photos-train --out $OUT --time-limit 330 \\
        --encode data/corpora/photos-test data/corpora/photos-512 --decode data/corpora/photos-512

The integer discrete flow at 192 channels, its files made with ``-m idf``; ``--init-from`` grows
the shipped flow's EMA weights in checkpoint form where the machine still has them (not in git;
benchmarks/README.md says how to make them; without them the flow trains from scratch):

    python benchmarks/gpu_session.py --arch idf --hidden 192 --init-from .carry/init/idf-wide2-ema.pt \\
        --batch 64 --lr 1e-3 --warmup 100 --data data/corpora/photos-train --out $OUT --time-limit 400 \\
        --encode data/corpora/photos-test data/corpora/photos-512 --decode data/corpora/photos-512 --model-only

Everything it writes goes under ``--out``: ``models/`` (exported weights and card),
``metrics.jsonl``, ``float-ema.safetensors`` (the float weights, to fine-tune or re-export
later), ``gpu-files.tar`` (the .dlz files made on the GPU) and ``gpu-session.json``
(timings, sizes, environment). Steps that would overrun ``--deadline`` seconds are skipped
and say so, so the results of the earlier steps always come back.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tarfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from PIL import Image

T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f} s] {msg}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run", type=Path, default=Path("runs/gpu"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--time-limit", type=float, default=330.0, help="seconds of training")
    ap.add_argument("--deadline", type=float, default=560.0, help="seconds for the whole script")
    ap.add_argument("--arch", choices=("pixelcnn", "idf"), default="pixelcnn",
                    help="idf: the flow (--hidden, --levels, --layers couplings per level), exported as 'idf'")
    ap.add_argument("--hidden", type=int, default=96, help="idf: network channels")
    ap.add_argument("--levels", type=int, default=3, help="idf: levels")
    ap.add_argument("--init-from", default=None, help="start from (grow) this checkpoint's weights")
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--layers", type=int, default=None, help="pixelcnn: gated layers (8); idf: couplings (4)")
    ap.add_argument("--head", type=int, default=256)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--compile", action="store_true", help="torch.compile the training loss")
    ap.add_argument("--encode", nargs="*", default=[], help="folders of images to encode on the device")
    ap.add_argument("--decode", nargs="*", default=[], help="folders of images to also decode on the device")
    ap.add_argument("--model-only", action="store_true",
                    help="keep the model path where zstd would be smaller (so every file proves the decode)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"env": {"torch": torch.__version__, "python": platform.python_version(),
                            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                            "cpus": os.cpu_count()}}

    def save_report():
        (args.out / "gpu-session.json").write_text(json.dumps(report, indent=2) + "\n")

    log(f"environment {report['env']}")
    save_report()

    # -- training --------------------------------------------------------------------------
    from dulzip.models.idf import IDFConfig
    from dulzip.models.pixelcnn import PixelCNNConfig
    from dulzip.train.export import export_checkpoint
    from dulzip.train.loop import TrainConfig, load_checkpoint, train_model

    if args.init_from and not Path(args.init_from).exists():
        log(f"no {args.init_from}: training from scratch")
        args.init_from = None
    tcfg = TrainConfig(data=args.data, out=str(args.run), steps=10 ** 9, batch=args.batch, crop=args.crop,
                       lr=args.lr, warmup=args.warmup, device=args.device, time_limit=args.time_limit,
                       checkpoint_every=1000, compile=args.compile, init_from=args.init_from)
    if args.arch == "idf":
        mcfg = IDFConfig(levels=args.levels, couplings=args.layers or 4, hidden=args.hidden, prior_hidden=args.hidden)
        shape = (("hidden", args.hidden), ("levels", args.levels), ("layers", args.layers or 4))
    else:
        mcfg = PixelCNNConfig(channels=args.channels, layers=args.layers or 8, head=args.head)
        shape = (("channels", args.channels), ("layers", args.layers or 8), ("head", args.head))
    t = time.time()
    ckpt = train_model(tcfg, mcfg, progress=False)
    report["train"] = {"seconds": round(time.time() - t, 1), "config": asdict(tcfg), "model": asdict(mcfg)}
    lines = (args.run / "metrics.jsonl").read_text().splitlines()
    (args.out / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    last = json.loads(lines[-1]) if lines else {}
    report["train"].update(steps=last.get("step"), final_ema_bpsp=last.get("ema"))
    log(f"trained: {report['train']['steps']} steps, ema {report['train']['final_ema_bpsp']} bits/sub-pixel")
    ck = load_checkpoint(ckpt)
    from safetensors.torch import save_file
    save_file({k: v.detach().float().cpu().contiguous() for k, v in ck["ema"].items()},
              str(args.out / "float-ema.safetensors"), metadata={"config": json.dumps(ck["model_config"])})
    device_name = report["env"]["device"]
    models = args.out / "models"
    weights = export_checkpoint(ckpt, args.arch, models, card={"training": {
        "hardware": f"1x {device_name} (lent GPU), {tcfg.time_limit:.0f} s of training",
        "command": f"python benchmarks/gpu_session.py --arch {args.arch} " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in (("time_limit", args.time_limit), *shape,
                                                       ("batch", args.batch), ("crop", args.crop),
                                                       ("lr", args.lr), ("warmup", args.warmup),
                                                       ("init_from", args.init_from)) if v is not None)
        + f" --data {args.data}"}})
    report["weights"] = weights.name
    log(f"exported {weights}")
    save_report()
    del ck

    # -- encode and decode on the device ----------------------------------------------------
    os.environ["DULZIP_MODELS"] = str(models)
    from dulzip import api

    opts = api.Options(device=args.device, model=args.arch, fallback=not args.model_only)
    files = [p for d in args.encode for p in sorted(Path(d).glob("*.png"))]
    decode_dirs = {Path(d).resolve() for d in args.decode}
    report["files"] = []
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        for p in files:
            if time.time() - T0 > args.deadline - 30:
                log(f"skipped {p}: deadline")
                report["files"].append({"file": str(p), "skipped": "deadline"})
                continue
            data = p.read_bytes()
            if args.device == "cuda":
                torch.cuda.synchronize()
            t = time.time()
            blob = api.compress(data, opts)
            enc_s = time.time() - t
            img = Image.open(io.BytesIO(data))
            n_sub = img.size[0] * img.size[1] * len(img.getbands())
            coders = [s.get("coder") for s in api.describe(blob).get("streams", [])]
            row = {"file": str(p), "bytes": len(data), "dlz_bytes": len(blob), "encode_s": round(enc_s, 2),
                   "bpsp": round(8 * len(blob) / n_sub, 4), "model_streams": coders.count("model"),
                   "streams": len(coders)}
            ti = tarfile.TarInfo(f"{p.parent.name}/{p.name}.dlz")
            ti.size = len(blob)
            tar.addfile(ti, io.BytesIO(blob))
            if p.parent.resolve() in decode_dirs and time.time() - T0 < args.deadline - 90:
                t = time.time()
                back = api.decompress(blob, opts)
                row["decode_s"] = round(time.time() - t, 2)
                row["decode_ok"] = back == data
            log(json.dumps(row))
            report["files"].append(row)
            save_report()
    (args.out / "gpu-files.tar").write_bytes(tar_buf.getvalue())
    report["total_s"] = round(time.time() - T0, 1)
    save_report()
    log("done")


if __name__ == "__main__":
    main()
