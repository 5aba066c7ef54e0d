"""One prepared run on a lent GPU for the text models: train char-RNNs of several sizes at
once (each its own process: the LSTM's training loop is bound by kernel launches, so they
share the GPU well), export them, then code held-out text on the GPU and keep the coded
streams, which the CPU must decode bit for bit (``benchmarks/check_gpu_text.py``).

    python benchmarks/gpu_text_session.py --archive .carry/text-train.tar.zst --out $OUT \\
        --hidden 256 384 --time-limit 400 --files data/text/code-test/argparse.py ...

Everything comes back in one file, ``$OUT/session.tar``: per size ``models-h<H>/`` (weights
and card), ``train-h<H>.log``, ``metrics-h<H>.jsonl``, ``float-h<H>.pt`` (the float weights, to train on),
and ``gpu-text.json`` (timings and the coded streams, hex).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

T0 = time.time()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f} s] {msg}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archive", required=True, help="tar.zst of the training text folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--hidden", type=int, nargs="+", default=[256])
    ap.add_argument("--time-limit", type=float, default=400.0)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--files", nargs="*", default=[], help="held-out files to code on the GPU")
    ap.add_argument("--max-bytes", type=int, default=131072, help="code at most this many bytes of each")
    ap.add_argument("--deadline", type=float, default=560.0)
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="folder of float-h<H>.pt files from an earlier session: train on from them")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import torch
    import zstandard
    from dulzip.train.loop import load_checkpoint
    work = Path(os.environ.get("TEXT_SESSION_WORK", "/tmp/text-session"))
    data = work / "train"
    if not data.exists():
        with open(args.archive, "rb") as f:
            with zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(f) as r:
                tarfile.open(fileobj=r, mode="r|").extractall(work)
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    log(f"training text: {sum(p.stat().st_size for p in data.rglob('*') if p.is_file())} bytes; "
        f"{device_name}, torch {torch.__version__}, python {platform.python_version()}")
    procs = {}
    for H in args.hidden:
        run = work / f"run-h{H}"
        cmd = [sys.executable, "-m", "dulzip.cli", "train", "--arch", "charrnn", "--data", str(data),
               "--out", str(run), "--hidden", str(H), "--batch", str(args.batch), "--seq", str(args.seq),
               "--lr", str(args.lr), "--warmup", str(args.warmup), "--steps", "100000000", "--time-limit", str(args.time_limit),
               "--device", args.device, "--no-progress",
               *(["--init-from", str(args.init_from / f"float-h{H}.pt")] if args.init_from else []), "--export", "charrnn", "--models-dir", str(work / f"models-h{H}")]
        procs[H] = (subprocess.Popen(cmd, stdout=open(work / f"train-h{H}.log", "w"), stderr=subprocess.STDOUT), cmd)
    report = {"device": device_name, "torch": torch.__version__, "train": {}, "coded": []}
    for H, (p, cmd) in procs.items():
        p.wait()
        lines = (work / f"run-h{H}" / "metrics.jsonl").read_text().splitlines()
        report["train"][H] = {"rc": p.returncode, "command": " ".join(cmd[1:]), "last": json.loads(lines[-1]) if lines else None}
        log(f"h{H}: rc {p.returncode}, last {report['train'][H]['last']}")

    from dulzip.codecs.text import Layout, decode_text, encode_text
    from dulzip.exact.charrnn import ExactCharRNN
    from safetensors import safe_open
    from safetensors.torch import load_file
    layout = Layout()
    for H in args.hidden:
        wfiles = sorted((work / f"models-h{H}").glob("*.safetensors"))
        if not wfiles:
            continue
        with safe_open(str(wfiles[0]), "pt") as f:
            config = json.loads(f.metadata()["config"])
        for dev in (args.device,):
            net = ExactCharRNN(load_file(str(wfiles[0])), config, dev)
            for path in args.files:
                if time.time() - T0 > args.deadline - 60:
                    log(f"skipped {path} on {dev}: deadline")
                    continue
                raw = Path(path).read_bytes()[:args.max_bytes]
                t = time.time()
                streams = encode_text(raw, net, layout)
                enc = time.time() - t
                t = time.time()
                back = decode_text(streams, len(raw), net, layout)
                dec = time.time() - t
                row = {"hidden": H, "weights": wfiles[0].name, "device": dev, "file": path, "bytes": len(raw),
                       "coded_bytes": sum(len(s.payload) for s in streams), "encode_s": round(enc, 2),
                       "decode_s": round(dec, 2), "round_trip": back == raw, "threads": torch.get_num_threads(),
                       "streams": [[s.coder, s.payload.hex()] for s in streams]}
                report["coded"].append(row)
                log(json.dumps({k: v for k, v in row.items() if k != "streams"}))
    (work / "gpu-text.json").write_text(json.dumps(report, indent=1) + "\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for H in args.hidden:
            for src, name in ((work / f"models-h{H}", f"models-h{H}"), (work / f"train-h{H}.log", f"train-h{H}.log"),
                              (work / f"run-h{H}" / "metrics.jsonl", f"metrics-h{H}.jsonl")):
                if src.exists():
                    tar.add(src, arcname=name)
            ck_path = work / f"run-h{H}" / "checkpoint.pt"
            if ck_path.exists():  # the weights and their moving average, without the optimizer state
                ck = load_checkpoint(ck_path)
                torch.save({k: ck[k] for k in ("arch", "model", "ema", "step", "elapsed", "model_config",
                                               "train_config")}, work / f"float-h{H}.pt")
                tar.add(work / f"float-h{H}.pt", arcname=f"float-h{H}.pt")
        tar.add(work / "gpu-text.json", arcname="gpu-text.json")
    (args.out / "session.tar").write_bytes(buf.getvalue())
    log(f"done ({os.path.getsize(args.out / 'session.tar')} bytes back)")


if __name__ == "__main__":
    main()
