"""What every ``dulzip bench`` runner shares: the dulzip column's name, the timed and verified
round trip through dulzip, the report's plot, and the machine and command it records."""
from __future__ import annotations

import io
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dulzip import api

DLZ = "dulzip (.dlz file)"


def timed_round_trip(data: bytes, opts: api.Options, name: str) -> tuple[bytes, float, float]:
    """(.dlz bytes, compress seconds, decompress seconds), the decoded bytes checked."""
    t0 = time.perf_counter()
    blob = api.compress(data, opts)
    t1 = time.perf_counter()
    out = api.decompress(blob, opts)
    t2 = time.perf_counter()
    if out != data and not _same_image(out, data, blob):
        raise RuntimeError(f"{name}: round trip failed")
    return blob, t1 - t0, t2 - t1


def _same_image(out: bytes, data: bytes, blob: bytes) -> bool:
    """A PNG that dulzip re-encodes (its zlib stream could not be reproduced; the container
    says so) comes back with the same pixels and mode, not the same bytes."""
    if api.describe(blob).get("exact", True):
        return False
    a, b = Image.open(io.BytesIO(out)), Image.open(io.BytesIO(data))
    return a.mode == b.mode and np.array_equal(np.asarray(a), np.asarray(b))


def bar_plot(path: Path, labels: list[str], series: dict[str, list[float]], ylabel: str, title: str) -> Path | None:
    """Grouped bars (one group per label, one bar per series); None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    w = 0.8 / len(series)
    for i, (n, v) in enumerate(series.items()):
        ax.bar(np.arange(len(labels)) + i * w, v, w, label=n)
    ax.set_xticks(np.arange(len(labels)) + 0.4 - w / 2, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def machine() -> str:
    return f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or 'cpu'}"


def command() -> str:
    return "dulzip bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"] else "dulzip bench"
