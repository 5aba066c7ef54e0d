"""One prepared run on a lent GPU for the audio models: train WaveNets of several sizes at once
(each its own process: the training loop is bound by kernel launches, so they share the GPU
well), export them, then code held-out speech on the GPU and keep the .dlz files, which the
CPU must decode bit for bit (``benchmarks/check_gpu_audio.py``), and time GPU decoding.

    python benchmarks/gpu_audio_session.py --pack .carry/audio/pack.tar --out $OUT --time-limit 380

The pack (``benchmarks/gpu_audio_pack.sh``) holds the training and held-out WAVs as FLAC and a
flac binary to restore them. Everything comes back in one file, ``$OUT/session.tar``: per run
``models-<run>/`` (weights and card), ``train-<run>.log``, ``metrics-<run>.jsonl``,
``float-<run>.pt`` (the float weights, to train on), ``dlz/`` (files coded on the GPU) and
``gpu-audio.json`` (timings, sizes).
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
# run name -> (training folder, model config, samples per training window)
RUNS = {
    "s32": ("speech-train", {"channels": 32, "layers": 10, "skip": 64, "head": 64}, 2048),
    "s64": ("speech-train", {"channels": 64, "layers": 10, "skip": 128, "head": 128}, 2048),
    "s32x2": ("speech-train", {"channels": 32, "layers": 20, "cycle": 10, "skip": 64, "head": 64}, 2048),
    "m32": ("music-train", {"channels": 32, "layers": 10, "skip": 64, "head": 64}, 2048),
    # music with each segment's own predictor (as the codec's 4096-sample segments)
    "m32o16": ("music-train", {"channels": 32, "layers": 10, "skip": 64, "head": 64, "seg_order": 16}, 4096),
    "m64o16": ("music-train", {"channels": 64, "layers": 10, "skip": 128, "head": 128, "seg_order": 16}, 4096),
}
MODEL_NAME = {"speech-train": "wavenet", "music-train": "wavenet-music"}


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f} s] {msg}", flush=True)


def train_one(run: str, work: Path, args) -> None:
    """Child process: train one run, then export it."""
    from dulzip.models.wavenet import WaveNetConfig
    from dulzip.train.export import export_checkpoint
    from dulzip.train.loop import TrainConfig, train_model
    folder, cfg, seq = RUNS[run]
    init = args.init_from / f"float-{run}.pt" if args.init_from else None
    tcfg = TrainConfig(data=str(work / folder), out=str(work / f"run-{run}"), steps=10 ** 8, batch=args.batch,
                       seq=seq, lr=args.lr, warmup=args.warmup, time_limit=args.time_limit, device=args.device,
                       checkpoint_every=1000, init_from=str(init) if init and init.exists() else None)
    ckpt = train_model(tcfg, WaveNetConfig(**cfg), progress=False)
    export_checkpoint(ckpt, MODEL_NAME[folder], work / f"models-{run}",
                      card={"training": {"hardware": args.device_name, "data": folder}})


def unpack(pack: Path, work: Path) -> None:
    with tarfile.open(pack) as tar:
        tar.extractall(work)
    env = {**os.environ, "LD_LIBRARY_PATH": str(work / "tools" / "lib")}
    flacs = sorted(str(p) for p in work.rglob("*.flac"))
    subprocess.run(["xargs", "-P16", "-n8", str(work / "tools" / "flac"), "-s", "-d", "-f", "--delete-input-file"],
                   input="\n".join(flacs), text=True, env=env, check=True)
    for p in work.rglob("*.wav.wav"):  # flac names its output <name>.wav: the .flac was <name>.wav.flac
        p.rename(p.with_suffix(""))


def code_on_gpu(work: Path, runs: list[str], args, report: dict) -> None:
    """Held-out speech coded on the GPU by every speech run; the .dlz files are kept."""
    from dulzip import api
    import numpy as np

    from dulzip.bench.runner import timed_round_trip
    from dulzip.formats.wav import canonical_prefix, parse_wav, sample_bytes
    files = sorted((work / "speech-test").glob("*.wav"))[:args.files]
    (work / "dlz").mkdir(exist_ok=True)
    for run in runs:
        if RUNS[run][0] != "speech-train" or not (work / f"models-{run}").is_dir() or not files:
            continue
        os.environ["DULZIP_MODELS"] = str(work / f"models-{run}")
        opts = api.Options(model="wavenet", device=args.device, fallback=False)
        for p in files:
            if time.time() - T0 > args.deadline - 60:
                log(f"skipped {p.name}: deadline")
                continue
            raw = p.read_bytes()
            blob, enc, dec = timed_round_trip(raw, opts, p.name)
            (work / "dlz" / f"{run}-{p.name}.dlz").write_bytes(blob)
            w = parse_wav(raw)
            row = {"run": run, "file": p.name, "samples": int(w.samples.size), "dlz_bytes": len(blob),
                   "bits_per_sample": round(8 * len(blob) / max(1, w.samples.size), 4), "encode_s": round(enc, 2),
                   "decode_s": round(dec, 2), "round_trip": True}
            report["coded"].append(row)
            log(json.dumps(row))
        # decode throughput on a long input (a minute of held-out speech: 64 segments per block)
        if time.time() - T0 < args.deadline - 120:
            x = np.concatenate([parse_wav(p.read_bytes()).samples for p in files])[:8000 * args.long_seconds]
            fixed = canonical_prefix(8000, 16, 1, len(x)) + sample_bytes(x, 16)
            blob, enc, dec = timed_round_trip(fixed, opts, "long speech")
            row = {"run": run, "file": f"{len(x) / 8000:.0f} s of held-out speech", "samples": len(x),
                   "bits_per_sample": round(8 * len(blob) / len(x), 4), "encode_s": round(enc, 2),
                   "decode_s": round(dec, 2), "round_trip": True,
                   "decode_samples_per_s": round(len(x) / dec)}
            report["throughput"].append(row)
            log(json.dumps(row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--runs", nargs="+", default=list(RUNS))
    ap.add_argument("--time-limit", type=float, default=380.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--init-from", type=Path, default=None,
                    help="folder of float-<run>.pt files from an earlier session: those runs train on from them")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--files", type=int, default=6, help="held-out speech files coded on the GPU")
    ap.add_argument("--long-seconds", type=int, default=60, help="length of the decode-throughput input")
    ap.add_argument("--deadline", type=float, default=540.0)
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script")
    ap.add_argument("--train-one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--device-name", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(os.environ.get("AUDIO_SESSION_WORK", "/tmp/audio-session"))
    if args.train_one:
        train_one(args.train_one, work, args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    import torch
    if not (work / "speech-train").exists():
        unpack(args.pack, work)
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    n = {d: len(list((work / d).glob("*.wav"))) for d in ("speech-train", "speech-test", "music-train")}
    log(f"unpacked {n}; {device_name}, torch {torch.__version__}, python {platform.python_version()}")
    procs = {}
    for run in args.runs:
        cmd = [sys.executable, __file__, "--pack", str(args.pack), "--out", str(args.out), "--train-one", run,
               "--time-limit", str(args.time_limit), "--batch", str(args.batch),
               *(["--init-from", str(args.init_from)] if args.init_from else []),
               "--lr", str(args.lr), "--warmup", str(args.warmup), "--device", args.device,
               "--device-name", device_name]
        procs[run] = subprocess.Popen(cmd, stdout=open(work / f"train-{run}.log", "w"), stderr=subprocess.STDOUT)
    report = {"device": device_name, "torch": torch.__version__, "runs": RUNS, "train": {}, "coded": [],
              "throughput": [], "args": {k: str(v) for k, v in vars(args).items()}}
    for run, p in procs.items():
        p.wait()
        mpath = work / f"run-{run}" / "metrics.jsonl"
        lines = mpath.read_text().splitlines() if mpath.exists() else []
        report["train"][run] = {"rc": p.returncode, "last": json.loads(lines[-1]) if lines else None}
        log(f"{run}: rc {p.returncode}, last {report['train'][run]['last']}")
    try:
        code_on_gpu(work, args.runs, args, report)
    except Exception as e:  # the trained models must come back even if this part fails
        report["error"] = f"{type(e).__name__}: {e}"
        log(report["error"])
    (work / "gpu-audio.json").write_text(json.dumps(report, indent=1) + "\n")
    pack_results(work, args.runs, args.out)


def pack_results(work: Path, runs: list[str], out: Path) -> None:
    import torch
    from dulzip.train.loop import load_checkpoint
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for run in runs:
            for src, name in ((work / f"models-{run}", f"models-{run}"), (work / f"train-{run}.log", f"train-{run}.log"),
                              (work / f"run-{run}" / "metrics.jsonl", f"metrics-{run}.jsonl")):
                if src.exists():
                    tar.add(src, arcname=name)
            ck_path = work / f"run-{run}" / "checkpoint.pt"
            if ck_path.exists():  # the weights and their moving average, without the optimizer state
                ck = load_checkpoint(ck_path)
                torch.save({k: ck[k] for k in ("arch", "model", "ema", "step", "elapsed", "model_config",
                                               "train_config")}, work / f"float-{run}.pt")
                tar.add(work / f"float-{run}.pt", arcname=f"float-{run}.pt")
        for name in ("dlz", "gpu-audio.json"):
            if (work / name).exists():
                tar.add(work / name, arcname=name)
    (out / "session.tar").write_bytes(buf.getvalue())
    log(f"done ({os.path.getsize(out / 'session.tar')} bytes back)")


if __name__ == "__main__":
    main()
