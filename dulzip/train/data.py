"""Training data streamed from disk: any folder of images, WAVs or text, of any size.

Nothing is loaded whole. A folder is first listed (:mod:`dulzip.train.files`: each file's size
and what a sample needs of it, an image's dimensions or a WAV's sample layout, read from headers
and cached in the run folder), then each family's :class:`Source` does two things:

* ``plan``: the samples of one *global* batch (which file, where, mirrored or not, gray or not),
  drawn from a generator seeded by (seed, step). Planning reads no file and costs microseconds,
  so every rank and every worker process plans every batch the same way.
* ``load``: the samples of some of those plans, read from disk (an image decoded, a window of a
  recording or a text read with a seek).

:func:`batches` gives a rank its own slice of every global batch, loaded ahead by worker
processes. The global batch is the same whatever the number of processes, so a run on 8 GPUs
sees the data a run on one would, and resumes on any number of them.
"""
from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from dulzip.errors import FormatError, UsageError
from dulzip.formats.wav import Layout, frames_of
from dulzip.train.files import Files


class Source:
    """A family's training data (see the module's docstring). Subclasses give :meth:`plan` (or
    :meth:`plans`, where a batch follows on from the one before, as text streams do) and
    :meth:`load`. A plan is a numpy record array, one record per sample, so that a rank's part
    is a slice of it."""

    def plans(self, seed: int, start: int, n: int) -> Iterator[np.ndarray]:
        """The plans of global batches ``start``, ``start + 1``, ...: each from its own generator,
        seeded by (seed, step), so a resumed run goes on with the batches it would have had."""
        for step in itertools.count(start):
            yield self.plan(np.random.default_rng([seed, step]), n)

    def plan(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def load(self, plan: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


class _Decoded:
    """Decoded images, the most recently used kept up to ``budget`` bytes: where a folder's
    images fit (or its most drawn ones), a batch's crops come from memory, not from decoding
    (a photograph takes some 30 ms); the budget, not the folder, bounds the memory. Each data
    process has its own."""

    def __init__(self, budget: int):
        self.budget, self.used, self.kept = budget, 0, OrderedDict()

    def get(self, key, make):
        a = self.kept.pop(key, None)
        if a is None:
            a = make()
            self.used += a.nbytes
            while self.used > self.budget and self.kept:
                self.used -= self.kept.popitem(last=False)[1].nbytes
            if self.used > self.budget:  # larger than the whole budget: not kept
                self.used -= a.nbytes
                return a
        self.kept[key] = a
        return a

    def __getstate__(self):  # a worker process keeps its own
        return {"budget": self.budget, "used": 0, "kept": OrderedDict()}


class _Handles:
    """Open files, the most recently used kept open (a text or WAV window is one seek and read)."""

    def __init__(self, root: Path, keep: int = 64):
        self.root, self.keep, self.open = root, keep, OrderedDict()

    def read(self, rel: str, offset: int, size: int) -> bytes:
        fd = self.open.pop(rel, None)
        if fd is None:
            fd = os.open(self.root / rel, os.O_RDONLY)
            if len(self.open) >= self.keep:
                os.close(self.open.popitem(last=False)[1])
        self.open[rel] = fd
        out = os.pread(fd, size, offset)
        if len(out) != size:
            raise OSError(f"{self.root / rel}: shorter than when the folder was listed")
        return out

    def __getstate__(self):  # a worker process opens its own
        return {"root": self.root, "keep": self.keep, "open": OrderedDict()}


def _cdf(weights: np.ndarray) -> np.ndarray:
    """Cumulative weights ending at exactly 1, for :func:`_draw`."""
    c = np.cumsum(weights, dtype=np.float64)
    return c / c[-1]


def _draw(cdf: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` indices drawn with the probabilities of ``cdf`` (u < 1 = cdf[-1]: always in range)."""
    return np.searchsorted(cdf, rng.random(n), side="right")


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of (..., 3) uint8, rounded (float32 as the models' gray is)."""
    f = rgb.astype(np.float32)
    return np.round(np.float32(0.299) * f[..., 0] + np.float32(0.587) * f[..., 1]
                    + np.float32(0.114) * f[..., 2]).astype(np.uint8)


def _decode(path: Path, mode: str, scale: int = 1) -> Image.Image:
    """An image file decoded (reduced by ``scale``); a file that cannot be, named in the error."""
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            return img.reduce(scale) if scale > 1 else img
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise FormatError(f"{path}: {e}") from None


CROP = np.dtype([("entry", np.int64), ("y", np.int64), ("x", np.int64), ("flip", bool), ("gray", bool)])


class CropSource(Source):
    """Random ``size`` x ``size`` crops of photographs, mirrored at random, a fraction made gray
    (R = G = B, or with ``packed_gray`` three consecutive gray rows as the channels of a row, as
    the flow codes gray). ``scales``: each image also reduced by these integer box filters
    (smoother, less noisy versions of the same scenes). An image (at a scale) is drawn with
    probability proportional to its area, and gives ``per_image`` crops of a batch, so that one
    decoded image serves several crops; decoded images are kept up to ``cache_mb`` MiB.
    ``load`` gives ((n, 3, size, size) uint8, (n,) bool gray)."""

    def __init__(self, root: Path, files: Files, size: int, gray_fraction: float,
                 scales: tuple[int, ...] = (1,), packed_gray: bool = False, per_image: int = 1, cache_mb: int = 256):
        self.root, self.files, self.size, self.gray_fraction = Path(root), files, size, gray_fraction
        self.packed_gray, self.per_image = packed_gray, max(1, per_image)
        self.decoded = _Decoded(cache_mb << 20)
        n = len(files)
        # an entry: a file at a scale, (file, scale, height, width) as arrays
        file = np.tile(np.arange(n), len(scales))
        scale = np.repeat(np.asarray(scales, np.int64), n)
        h, w = -(-files.meta[file, 0] // scale), -(-files.meta[file, 1] // scale)
        keep = np.minimum(h, w) >= size
        if not keep.any():
            raise UsageError(f"no image under {root} is at least {size}x{size}")
        self.file, self.scale, self.h, self.w = file[keep], scale[keep], h[keep], w[keep]
        self.cdf = _cdf(self.h * self.w)  # an image at a scale is drawn by its area

    def plan(self, rng: np.random.Generator, n: int) -> np.ndarray:
        s, k = self.size, self.per_image
        out = np.zeros(n, CROP)
        e = np.repeat(_draw(self.cdf, rng, -(-n // k)), k)[:n]
        gray = rng.random(n) < self.gray_fraction
        if self.packed_gray:
            gray &= self.h[e] >= 3 * s  # a gray crop is 3 size rows tall
        tall = np.where(gray & self.packed_gray, 3 * s, s)
        out["entry"], out["gray"] = e, gray
        out["y"] = (rng.random(n) * (self.h[e] - tall + 1)).astype(np.int64)
        out["x"] = (rng.random(n) * (self.w[e] - s + 1)).astype(np.int64)
        out["flip"] = rng.random(n) < 0.5
        return out

    def _image(self, entry: int) -> np.ndarray:
        return self.decoded.get(entry, lambda: self._decode(entry))

    def _decode(self, entry: int) -> np.ndarray:
        path = self.root / self.files.path(int(self.file[entry]))
        a = np.asarray(_decode(path, "RGB", int(self.scale[entry])))
        if a.shape[:2] != (self.h[entry], self.w[entry]):
            raise OSError(f"{path}: not the image it was when the folder was listed")
        return a

    def load(self, plan: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.size
        out = np.empty((len(plan), 3, s, s), np.uint8)
        for entry in np.unique(plan["entry"]):
            img = self._image(int(entry))
            for j in np.flatnonzero(plan["entry"] == entry):
                r = plan[j]
                tall = 3 * s if r["gray"] and self.packed_gray else s
                c = img[r["y"]:r["y"] + tall, r["x"]:r["x"] + s]
                c = c[:, ::-1] if r["flip"] else c
                if not r["gray"]:
                    out[j] = c.transpose(2, 0, 1)
                elif self.packed_gray:  # rows 3i, 3i+1, 3i+2 as the channels of row i
                    out[j] = _luma(c).reshape(s, 3, s).transpose(1, 0, 2)
                else:
                    out[j] = _luma(c)[None]
        return torch.from_numpy(out), torch.from_numpy(plan["gray"].copy())


class WholeImageSource(Source):
    """Whole ``size`` x ``size`` gray images (e.g. digits), drawn uniformly: ((n, 1, size, size)
    uint8, None)."""

    def __init__(self, root: Path, files: Files, size: int, cache_mb: int = 256):
        self.root, self.size, self.files = Path(root), size, files
        self.decoded = _Decoded(cache_mb << 20)
        self.index = np.flatnonzero((files.meta[:, 0] == size) & (files.meta[:, 1] == size))
        if not len(self.index):
            raise UsageError(f"no {size}x{size} image under {root}")

    def plan(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.index[rng.integers(0, len(self.index), n)]

    def load(self, plan: np.ndarray) -> tuple[torch.Tensor, None]:
        ims = [self.decoded.get(int(i), lambda: np.asarray(_decode(self.root / self.files.path(int(i)), "L")))
               for i in plan]
        return torch.from_numpy(np.stack(ims)).unsqueeze(1), None


WINDOW = np.dtype([("file", np.int64), ("pos", np.int64), ("fresh", bool)])


class TextSource(Source):
    """Byte streams for the char-RNN: each batch row reads on from where it stopped (so the
    model's state is carried across windows, as over a segment), and starts afresh at a random
    place once per ``segment`` bytes on average: a file drawn uniformly (so that one big source
    does not drown the others), then a place in it. ``load`` gives (n, seq + 1) symbols (the
    input before the window: the previous byte, or START for a fresh row; then the window) and
    which rows are fresh."""

    def __init__(self, root: Path, files: Files, seq: int, segment: int):
        from dulzip.models.charrnn import START
        self.root, self.seq, self.start, self.files = Path(root), seq, START, files
        self.index = np.flatnonzero(files.size > seq + 1)  # the files drawn from
        if not len(self.index):
            raise UsageError(f"no text file longer than {seq + 1} bytes under {root}")
        self.sizes = files.size[self.index]
        self.reset_p = min(1.0, seq / segment)
        self.handles = _Handles(self.root)

    def plans(self, seed: int, start: int, n: int) -> Iterator[np.ndarray]:
        """A batch follows on from the one before, so one generator for the run from ``start``
        (a resumed run starts every row afresh)."""
        rng, L = np.random.default_rng([seed, start]), self.seq
        pos = None
        while True:
            fresh = rng.random(n) < self.reset_p
            f = rng.integers(0, len(self.index), n)
            new = (rng.random(n) * (self.sizes[f] - L)).astype(np.int64)
            if pos is None:
                fresh[:], pos, file = True, new, f
            fresh |= pos + L > self.sizes[file]  # the file ends: start afresh
            pos, file = np.where(fresh, new, pos), np.where(fresh, f, file)
            plan = np.zeros(n, WINDOW)
            plan["file"], plan["pos"], plan["fresh"] = file, pos, fresh
            yield plan
            pos = pos + L

    def load(self, plan: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.seq
        out = np.empty((len(plan), L + 1), np.int64)
        for j, r in enumerate(plan):
            path = self.files.path(int(self.index[r["file"]]))
            if r["fresh"]:
                out[j, 0] = self.start
                out[j, 1:] = np.frombuffer(self.handles.read(path, int(r["pos"]), L), np.uint8)
            else:
                out[j] = np.frombuffer(self.handles.read(path, int(r["pos"]) - 1, L + 1), np.uint8)
        return torch.from_numpy(out), torch.from_numpy(plan["fresh"].copy())


def to_levels(samples: np.ndarray, bits: int) -> np.ndarray:
    """(frames, channels) samples of a WAV -> int64 16-bit levels; an 8-bit sample v sits at
    256 v + 128, the middle of the levels its high byte covers."""
    x = samples.astype(np.int64)
    return x * 256 + 128 if bits == 8 else x


CLIP = np.dtype([("track", np.int64), ("pos", np.int64), ("flip", bool)])


class AudioSource(Source):
    """Windows of ``seq`` samples of one channel of the WAVs under a folder, each starting with
    an empty history as a coded segment does; a channel drawn with probability proportional to
    its length, the polarity flipped at random (speech and music sound the same either way).
    ``load`` gives ((n, seq) int64 16-bit levels, None)."""

    def __init__(self, root: Path, files: Files, seq: int):
        self.root, self.seq, self.files = Path(root), seq, files
        long = np.flatnonzero(files.meta[:, 4] > seq)
        channels = files.meta[long, 2]
        self.file = np.repeat(long, channels)  # a track: one channel of a file
        self.channel = np.concatenate([np.arange(c) for c in channels]) if len(long) else np.zeros(0, np.int64)
        if not len(self.file):
            raise UsageError(f"no WAV file longer than {seq} samples under {root}")
        frames = files.meta[self.file, 4].astype(np.float64)
        self.room = frames - seq
        self.cdf = _cdf(frames)  # a track is drawn by its length
        self.handles = _Handles(self.root)

    def plan(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.zeros(n, CLIP)
        out["track"] = t = _draw(self.cdf, rng, n)
        out["pos"] = (rng.random(n) * self.room[t]).astype(np.int64)
        out["flip"] = rng.random(n) < 0.5
        return out

    def load(self, plan: np.ndarray) -> tuple[torch.Tensor, None]:
        out = np.empty((len(plan), self.seq), np.int64)
        for j, r in enumerate(plan):
            i = int(self.file[r["track"]])
            lay = Layout(*(int(v) for v in self.files.meta[i]))
            fb = lay.channels * lay.bits // 8
            raw = self.handles.read(self.files.path(i), lay.offset + int(r["pos"]) * fb, self.seq * fb)
            x = to_levels(frames_of(raw, lay)[:, self.channel[r["track"]]], lay.bits)
            out[j] = -1 - x if r["flip"] else x  # -1 - x: the 16-bit range maps onto itself
        return torch.from_numpy(out), None


class _Batches(torch.utils.data.IterableDataset):
    """A rank's part (samples lo..hi) of every global batch from ``start`` on; with worker
    processes, worker w of W loads batches w, w + W, ... (the loader yields them in order)."""

    def __init__(self, source: Source, seed: int, start: int, n: int, lo: int, hi: int):
        self.source, self.seed, self.start, self.n, self.lo, self.hi = source, seed, start, n, lo, hi

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, W = (info.id, info.num_workers) if info else (0, 1)
        for i, plan in enumerate(self.source.plans(self.seed, self.start, self.n)):
            if i % W == w:
                try:
                    yield self.source.load(plan[self.lo:self.hi])
                except (OSError, FormatError) as e:  # a file gone or damaged since the listing
                    if info is None:
                        raise
                    yield _Failed(type(e), str(e))  # the loader would wrap it in a worker's traceback
                    return


class _Failed:
    """A worker's load error, brought to the training process as it was raised."""

    def __init__(self, kind: type, message: str):
        self.kind, self.message = kind, message


def _unwrapped(loader) -> Iterator:
    for item in loader:
        if isinstance(item, _Failed):
            raise item.kind(item.message)
        yield item


def batches(source: Source, seed: int, start: int, n: int, rank: int = 0, world: int = 1,
            workers: int = 0, pin: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """This rank's slice of global batches ``start``, ``start + 1``, ... of ``n`` samples (``n``
    a multiple of ``world``), read by ``workers`` processes ahead of the training (0: in this
    process)."""
    if n % world:
        raise UsageError(f"the batch ({n}) must be a multiple of the number of processes ({world})")
    b = n // world
    ds = _Batches(source, seed, start, n, rank * b, (rank + 1) * b)
    if not workers:
        return iter(ds)
    return _unwrapped(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, prefetch_factor=4,
                                                  pin_memory=pin))


def fixed_batches(source: Source, seed: int, count: int, n: int) -> list:
    """``count`` global batches of ``n`` samples, the same every time (the held-out evaluation)."""
    return [source.load(p) for p in itertools.islice(source.plans(seed, 0, n), count)]


# The families' sources (Family.sampler "dulzip.train.data:NAME"): (TrainConfig, model config,
# folder, its training files) -> a Source.

def photo_crops(t, cfg, root: Path, files: Files) -> CropSource:
    """Random crops of photographs, a fraction made gray (R = G = B)."""
    return CropSource(root, files, t.crop, t.gray_fraction, tuple(t.scales), per_image=t.crops_per_image,
                      cache_mb=t.cache_mb)


def photo_crops_packed_gray(t, cfg, root: Path, files: Files) -> CropSource:
    """As :func:`photo_crops`, gray crops packed as codecs.flow codes gray."""
    return CropSource(root, files, t.crop, t.gray_fraction, tuple(t.scales), packed_gray=True,
                      per_image=t.crops_per_image, cache_mb=t.cache_mb)


def whole_images(t, cfg, root: Path, files: Files) -> WholeImageSource:
    """Whole small gray images of the model's size (e.g. 28x28 digits)."""
    return WholeImageSource(root, files, cfg.size, t.cache_mb)


def text_windows(t, cfg, root: Path, files: Files) -> TextSource:
    return TextSource(root, files, t.seq, t.segment)


def audio_windows(t, cfg, root: Path, files: Files) -> AudioSource:
    return AudioSource(root, files, t.seq)
