"""One prepared run on a lent GPU, for any modality: train one or more models at once, export
them, code held-out files on the device, and pack everything into one file that the CPU then
checks (``benchmarks/gpu/check.py``: every file coded on the GPU must decode here, bit for bit).

    python benchmarks/gpu/session.py --modality image --data data/corpora/photos-train --out $OUT \\
        --time-limit 330 --code data/corpora/photos-test data/corpora/photos-512 --decode-on-device 2
    python benchmarks/gpu/session.py --modality text --data .carry/text-train.tar.zst --out $OUT \\
        --run h256 "--hidden 256" --run h384 "--hidden 384" --time-limit 400 --code data/text/code-test --max-bytes 131072
    python benchmarks/gpu/session.py --modality audio --data .carry/audio/pack.tar --out $OUT --time-limit 380 \\
        --code speech-test --max-files 6

Why one script: what a session does is the same for every modality (unpack, train runs side by
side — small models are bound by kernel launches, so several share a GPU well —, export, code,
pack); the modality only chooses the default runs (``PRESETS``). A run is a name and the
``dulzip train`` options that differ from the preset's; its training data is ``--data`` (a
folder, or a .tar / .tar.zst unpacked into the work folder, whose .flac files are restored with
the pack's own ``tools/flac``), or the folder its ``--data`` option names inside it.

Everything comes back as ``$OUT/session.tar``: per run ``models-<run>/`` (weights and card),
``train-<run>.log``, ``metrics-<run>.jsonl``, ``float-<run>.pt`` (weights and their moving
average without the optimizer state, to train on: ``--init-from``), ``dlz/<run>/`` (the files
coded on the device) and ``session.json`` (environment, commands, timings, sizes, and the
sha256 of every coded input, which is what the CPU check compares with). Steps that would
overrun ``--deadline`` are skipped and say so; the pack is written whatever fails before it.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

T0 = time.time()
# modality -> run name -> `dulzip train` options (the arch first); --data names a folder inside --data
PRESETS = {
    "image": {"pixelcnn": "--arch pixelcnn --channels 128 --layers 8 --head 256 --batch 48 --crop 64 --lr 1.5e-3 "
                          "--warmup 150"},
    "text": {"h256": "--arch charrnn --hidden 256 --batch 512 --seq 128 --lr 2e-3 --warmup 200"},
    "audio": {"s32": "--arch wavenet --data speech-train --channels 32 --layers 10 --head 64 --seq 2048 --batch 64",
              "m32o16": "--arch wavenet --data music-train --export wavenet-music --channels 32 --layers 10 "
                        "--head 64 --seg-order 16 --seq 4096 --batch 64"},
}
CODED = {"image": (".png", ".ppm", ".pgm"), "audio": (".wav",), "text": None}  # None: every file


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f} s] {msg}", flush=True)


def run_options(modality: str, name: str, extra: str) -> list[str]:
    """The preset's options for a run (its base: the run of that name, else the modality's
    first), then the run's own: a later option wins in click."""
    presets = PRESETS[modality]
    base = presets.get(name, next(iter(presets.values())))
    return shlex.split(base) + shlex.split(extra)


def option(args: list[str], flag: str, default: str | None = None) -> str | None:
    """The last value given to ``flag`` in an option list."""
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]
    return values[-1] if values else default


def unpack(data: Path, work: Path) -> Path:
    """The training data as a folder: ``data`` itself, or the archive unpacked into ``work``."""
    if data.is_dir():
        return data
    root = work / "data"
    if root.exists():
        return root
    root.mkdir(parents=True)
    if data.name.endswith(".zst"):
        import zstandard
        with open(data, "rb") as f, zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(f) as r:
            tarfile.open(fileobj=r, mode="r|").extractall(root)
    else:
        with tarfile.open(data) as tar:
            tar.extractall(root)
    flacs = sorted(str(p) for p in root.rglob("*.flac"))
    if flacs:  # an audio pack: FLAC to travel light, restored by the flac binary it carries
        env = {**os.environ, "LD_LIBRARY_PATH": str(root / "tools" / "lib")}
        subprocess.run(["xargs", "-P16", "-n8", str(root / "tools" / "flac"), "-s", "-d", "-f", "--delete-input-file"],
                       input="\n".join(flacs), text=True, env=env, check=True)
        for p in root.rglob("*.wav.wav"):  # flac names its output <name>.wav: the .flac was <name>.wav.flac
            p.rename(p.with_suffix(""))
    return root


def start_training(name: str, opts: list[str], root: Path, work: Path, args) -> tuple[subprocess.Popen, list[str], str]:
    """One `dulzip train` process for a run; returns (process, command, export name)."""
    folder = option(opts, "--data")
    export = option(opts, "--export") or option(opts, "--arch", "pixelcnn")
    init = args.init_from / f"float-{name}.pt" if args.init_from else None
    cmd = [sys.executable, "-m", "dulzip.cli", "train", *opts, "--data", str(root / folder if folder else root),
           "--out", str(work / f"run-{name}"), "--steps", "100000000", "--time-limit", str(args.time_limit),
           "--device", args.device, "--no-progress", "--export", export, "--models-dir", str(work / f"models-{name}"),
           "--card-files", "0",  # the session codes its own held-out files, on the device and then here
           *(["--init-from", str(init)] if init and init.exists() else []),
           *(["--prime-bytes", str(args.prime_bytes)] if option(opts, "--arch") == "charrnn" else [])]
    log(f"{name}: {shlex.join(cmd[1:])}")
    return subprocess.Popen(cmd, stdout=open(work / f"train-{name}.log", "w"), stderr=subprocess.STDOUT), cmd, export


def inputs(paths: list[str], root: Path, modality: str, max_files: int) -> list[Path]:
    """The held-out files to code: files as given, folders' files of the modality (at most
    ``max_files`` each); a relative path that does not exist is looked for in the data."""
    out = []
    for s in paths:
        p = Path(s) if Path(s).exists() else root / s
        if p.is_dir():
            files = sorted(q for q in p.iterdir() if q.is_file() and (CODED[modality] is None or q.suffix in CODED[modality]))
            out += files[:max_files or None]
        elif p.is_file():
            out.append(p)
        else:
            log(f"no such file or folder: {s}")
    return out


def code(run: str, export: str, files: list[Path], work: Path, args, report: dict) -> None:
    """Code each file with the run's model on the device (never zstd: every file proves the
    model's decode); decode the first ``--decode-on-device`` there too, timed."""
    os.environ["DULZIP_MODELS"] = str(work / f"models-{run}")
    from dulzip import api
    opts = api.Options(model=export, device=args.device, fallback=False)
    (work / "dlz" / run).mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(files):
        if time.time() - T0 > args.deadline - 60:
            report["coded"].append({"run": run, "file": p.name, "skipped": "deadline"})
            log(f"{run}: skipped {p.name}: deadline")
            continue
        data = p.read_bytes()[:args.max_bytes or None]
        row = {"run": run, "model": export, "file": p.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        try:
            _sync(args.device)
            t = time.perf_counter()
            blob = api.compress(data, opts)
            _sync(args.device)
            row.update(dlz_bytes=len(blob), encode_s=round(time.perf_counter() - t, 2),
                       dlz=f"dlz/{run}/{p.name}.dlz")
            (work / row["dlz"]).write_bytes(blob)
            if i < args.decode_on_device and time.time() - T0 < args.deadline - 90:
                t = time.perf_counter()
                row["decode_on_device_ok"] = api.decompress(blob, opts) == data
                _sync(args.device)
                row["decode_s"] = round(time.perf_counter() - t, 2)
        except Exception as e:  # one file's failure must not lose the others
            row["error"] = f"{type(e).__name__}: {e}"
        report["coded"].append(row)
        log(json.dumps(row))


def _sync(device: str) -> None:
    if device == "cuda":
        import torch
        torch.cuda.synchronize()


def pack(work: Path, runs: list[str], out: Path) -> None:
    """session.tar: what must come back (no optimizer state: only what trains on or decodes)."""
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
            if ck_path.exists():
                ck = load_checkpoint(ck_path)
                torch.save({k: ck[k] for k in ("arch", "model", "ema", "step", "elapsed", "model_config", "train_config")
                            if k in ck}, work / f"float-{run}.pt")
                tar.add(work / f"float-{run}.pt", arcname=f"float-{run}.pt")
        for name in ("dlz", "session.json"):
            if (work / name).exists():
                tar.add(work / name, arcname=name)
    (out / "session.tar").write_bytes(buf.getvalue())
    log(f"packed {out / 'session.tar'} ({len(buf.getvalue())} bytes)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modality", choices=sorted(PRESETS), required=True)
    ap.add_argument("--data", type=Path, required=True, help="training data: a folder, a .tar or a .tar.zst")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run", nargs=2, action="append", metavar=("NAME", "OPTIONS"), default=None,
                    help="a run: its name and its `dulzip train` options over the preset's (repeat for several)")
    ap.add_argument("--time-limit", type=float, default=330.0, help="seconds of training per run")
    ap.add_argument("--deadline", type=float, default=560.0, help="seconds for the whole script")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script")
    ap.add_argument("--init-from", type=Path, default=None, help="folder of float-<run>.pt from an earlier session")
    ap.add_argument("--prime-bytes", type=int, default=1 << 20, help="charrnn: text that primes the shipped state")
    ap.add_argument("--code", nargs="*", default=[], help="held-out files or folders to code on the device")
    ap.add_argument("--max-files", type=int, default=0, help="at most this many files of each folder (0: all)")
    ap.add_argument("--max-bytes", type=int, default=0, help="code at most this many bytes of each file (0: all)")
    ap.add_argument("--decode-on-device", type=int, default=1, help="files per run also decoded on the device")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("SESSION_WORK", args.out / "work"))
    work.mkdir(parents=True, exist_ok=True)
    runs = {name: run_options(args.modality, name, extra) for name, extra in args.run} if args.run else \
        {name: shlex.split(o) for name, o in PRESETS[args.modality].items()}
    report: dict = {"modality": args.modality, "args": {k: str(v) for k, v in vars(args).items()},
                    "env": {"python": platform.python_version(), "cpus": os.cpu_count()}, "train": {}, "coded": []}
    try:
        import torch
        report["env"].update(torch=torch.__version__,
                             device=torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu")
        log(f"environment {report['env']}")
        root = unpack(args.data, work)
        procs = {name: start_training(name, opts, root, work, args) for name, opts in runs.items()}
        for name, (p, cmd, export) in procs.items():
            p.wait()
            metrics = work / f"run-{name}" / "metrics.jsonl"
            lines = metrics.read_text().splitlines() if metrics.exists() else []
            report["train"][name] = {"rc": p.returncode, "command": shlex.join(["dulzip", *cmd[3:]]), "export": export,
                                     "last": json.loads(lines[-1]) if lines else None}
            log(f"{name}: rc {p.returncode}, last {report['train'][name]['last']}")
        files = inputs(args.code, root, args.modality, args.max_files)
        for name, (p, cmd, export) in procs.items():
            if p.returncode == 0:
                code(name, export, files, work, args, report)
    except Exception as e:  # whatever was trained must still come back
        report["error"] = f"{type(e).__name__}: {e}"
        log(report["error"])
    finally:
        report["total_s"] = round(time.time() - T0, 1)
        (work / "session.json").write_text(json.dumps(report, indent=1) + "\n")
        pack(work, list(runs), args.out)


if __name__ == "__main__":
    main()
