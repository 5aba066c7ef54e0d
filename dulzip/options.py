"""What a caller can ask of dulzip: :class:`Options`, compression levels, thread counts.

Light on purpose (no numpy, no torch): the CLI, the library's top level and every pipeline
import it before anything decides whether a model is needed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from dulzip.errors import UsageError
from dulzip.schema import DEFAULT_MAX_MEMORY, IMAGE_MIXER_VERSIONS


@dataclass
class Options:
    model: str = "auto"  # auto | zstd | a model name
    exact: bool = True  # False: a PNG whose zlib stream zlib does not reproduce is re-encoded (not byte-identical)
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch threads for batched passes (0: the free cores, see default_threads)
    tile: int | None = None  # image tile size (None: the model's default)
    progress: bool = False
    fallback: bool = True  # False: keep the model path even where zstd would be smaller (tests)
    max_memory: int = DEFAULT_MAX_MEMORY  # bytes a decode may need; a file that needs more is refused
    level: int | None = None  # 1-3 fast, 4-6 (None) by the input's size, 7-19 maximum ratio (images; LEVELS)
    # how a stereo WAV is coded: "auto" (by the input: transforms.stereo_mode), "lr" or "side"; to measure
    # what each choice costs (benchmarks/experiments/stereo_test.py): every choice decodes
    stereo: str = "auto"
    # the image mixer version to write (None: the current one); an older one only to make the files
    # that prove older versions keep decoding (tests)
    image_mixer: int | None = None

    def __post_init__(self):
        """A choice that would write a file no dulzip decodes is refused here, before any work."""
        if self.stereo not in ("auto", "lr", "side"):
            raise UsageError(f"stereo must be auto, lr or side, not {self.stereo!r}")
        if self.image_mixer is not None and self.image_mixer not in IMAGE_MIXER_VERSIONS:
            raise UsageError(f"image mixer version {self.image_mixer} does not exist "
                             f"(versions: {', '.join(map(str, IMAGE_MIXER_VERSIONS))})")


def make_options(options: dict) -> Options:
    """Options from the library's keywords: ``options=Options(...)`` itself, or its fields by
    name (an unknown name is a TypeError that names it, as for any function)."""
    given = dict(options)
    base = given.pop("options", None)
    if base is not None:
        if given:
            raise TypeError(f"give either options= or its fields, not both ({', '.join(given)})")
        return base
    try:
        return Options(**given)
    except TypeError as e:
        raise TypeError(f"{e}".replace("Options.__init__()", "dulzip")) from None


# what a compression level means (images: the only kind with more than one coder today)
LEVELS = {"fast": range(1, 4), "default": range(4, 7), "best": range(7, 20)}


def level_name(level: int | None) -> str:
    return next((k for k, r in LEVELS.items() if level in r), "default")


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """CPU threads for a run that was not told: the cores this process may use, less those
    busy (the 1-minute load average), at least one. torch's own default (every core) makes a
    busy machine oversubscribed: its threads spin waiting for each other (35 KB of text took
    20-28 s of CPU with it, 5.7 s with one thread). Output never depends on it. (The audio
    coder's blocks, which do not spin, take every core: :func:`cores`.)"""
    cores_ = cores()
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(cores_, int(cores_ - busy + 0.5)))
