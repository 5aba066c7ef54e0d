"""A trained model's card: how it was trained, and what it does on held-out files.

``dulzip train --export`` writes the weights and a card (:mod:`dulzip.train.export`); this adds
what only the run knows: the exact command (with the number of processes), the data, the
hardware, the held-out bits of the float model from the run's last evaluation, and the real
``.dlz`` sizes of held-out files beside the baselines (``dulzip bench`` on them, with the new
model), so that the float estimate and the exact integer model are side by side.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path

from dulzip.train.report import summary


def bench_results(path: Path, bench: dict, root: Path | None = None) -> dict:
    """The totals of a ``dulzip bench`` JSON as a card holds them (images: bits per sub-pixel;
    text: bits per byte; audio: bits per sample)."""
    t = bench["total"]
    report = str(path.relative_to(root)) if root and path.is_absolute() and path.is_relative_to(root) else str(path)
    out = {"corpus": path.stem, "command": bench["meta"]["command"], "encode_s": t["encode_s"],
           "decode_s": t["decode_s"], "report": report}
    if "bps" in t:
        out.update(files=len(bench["files"]), samples=t["samples"], seconds=t["seconds"], bps=t["bps"],
                   encode_x_realtime=t["encode_x_realtime"], decode_x_realtime=t["decode_x_realtime"])
    elif "files" in bench:
        out.update(files=len(bench["files"]), bytes=t["bytes"], bpb=t["bpb"], encode_kb_s=t["encode_kb_s"],
                   decode_kb_s=t["decode_kb_s"])
    else:
        out.update(images=len(bench["images"]), bpsp=t["bpsp"])
    return out


def hardware(device: str, world: int) -> str:
    """What trained it: the processes and their devices."""
    import torch
    if device == "cuda" and torch.cuda.is_available():
        what = f"{torch.cuda.get_device_name(0)} GPU"
    else:
        what = f"CPU ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads per process)"
    nodes = world // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    return f"{world} process(es) on {what}" + (f", {nodes} nodes" if nodes > 1 else "") + f", torch {torch.__version__}"


def command(given: str, world: int) -> str:
    """The command line as given, and under torchrun how many processes ran it."""
    return f"{given} ({world} processes under torchrun)" if world > 1 else given


def heldout_files(run: Path, tcfg, modality: str, limit: int) -> tuple[Path, list[str]]:
    """(folder, up to ``limit`` held-out files in it): those the run held out (its cached listing)."""
    from dulzip.train.loop import split_data
    _, folder, held, _ = split_data(tcfg, modality, run)
    return folder, sorted(held.paths())[:limit]


def training_card(weights: Path, run: Path, tcfg, world: int, files: int, given: str) -> dict:
    """Add the run's facts and held-out results to the card beside ``weights``; returns it.
    ``given``: the command line that trained it."""
    card_path = weights.with_suffix(".json")
    card = json.loads(card_path.read_text())
    s = summary(run)
    t = card.setdefault("training", {})
    t.update(command=command(given, world), data=str(tcfg.data), hardware=hardware(tcfg.device, world), processes=world)
    if "seconds" in s:
        t["wall_time"] = f"{s['seconds'] / 3600:.2f} h"
        t["final_train_bits_ema"] = s["train_bits"]
    if "heldout_bits" in s:
        t["heldout_float_bits"] = {"bits": s["heldout_bits"], "unit": s["unit"], "step": s["heldout_step"],
                                   "what": "the float model (moving average of the weights) on the run's "
                                           "held-out batches"}
    from dulzip.models import registry
    modality = registry.modality(card["architecture"])
    folder, held = heldout_files(run, tcfg, modality, files) if files > 0 else (None, [])
    if held:
        card["results"] = _bench(card["name"], weights.parent, folder, held, run, modality)
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def _bench(name: str, models: Path, folder: Path, held: list[str], run: Path, modality: str) -> dict:
    """``dulzip bench`` of the held-out files with the new model: real .dlz sizes, decoded and
    compared, beside the modality's baselines."""
    from dulzip.bench.audio import run_audio_bench
    from dulzip.bench.images import run_bench
    from dulzip.bench.text import run_text_bench
    runner = {"image": run_bench, "text": run_text_bench, "audio": run_audio_bench}[modality]
    old = os.environ.get("DULZIP_MODELS")
    os.environ["DULZIP_MODELS"] = os.pathsep.join([str(models.resolve()), *([old] if old else [])])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i, rel in enumerate(held):  # the files under their own names, flat
                (Path(tmp) / f"{i:03d}-{Path(rel).name}").symlink_to((folder / rel).resolve())
            paths = runner(Path(tmp), run / "heldout", f"heldout-{name}", name)
    finally:
        if old is None:
            os.environ.pop("DULZIP_MODELS", None)
        else:
            os.environ["DULZIP_MODELS"] = old
    js = next(p for p in paths if p.suffix == ".json")
    return bench_results(js, json.loads(js.read_text()))
