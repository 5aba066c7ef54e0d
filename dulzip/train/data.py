"""Training data for image models: every image file in a folder, sampled as random crops."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".webp", ".tif", ".tiff"}


def load_images(folder: str | Path, scales: tuple[int, ...] = (1,)) -> list[np.ndarray]:
    """All images under ``folder`` as (H, W, 3) uint8 arrays (gray is replicated, alpha dropped).

    ``scales``: also each image reduced by these integer box filters (smoother, less noisy
    versions of the same scenes: scale augmentation).
    """
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images found under {folder}")
    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        out.extend(np.asarray(img.reduce(s) if s > 1 else img) for s in scales)
    return out


class CropSampler:
    """Random ``size`` x ``size`` crops, random horizontal flips, a fraction made gray (R = G = B,
    or packed rows with ``packed_gray``: see :meth:`batch`).

    Crops are drawn with probability proportional to image area. All images live in one
    uint8 tensor on ``device`` and a batch is cut out by one gather, so sampling keeps up
    with a GPU.
    """

    def __init__(self, images: list[np.ndarray], size: int, gray_fraction: float, seed: int,
                 device: str | torch.device = "cpu", packed_gray: bool = False):
        images = [im for im in images if min(im.shape[:2]) >= size]
        if not images:
            raise ValueError(f"no image is at least {size}x{size}")
        self.device = torch.device(device)
        self.size = size
        self.gray_fraction = gray_fraction
        self.packed_gray = packed_gray
        # all images flattened into one (3, N) tensor; an image is (offset, H, W) within it
        self.pixels = torch.from_numpy(np.concatenate([im.reshape(-1, 3) for im in images])).T.contiguous()
        self.pixels = self.pixels.to(self.device)
        sizes = np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.int64)
        self.offset = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)[:-1]])).to(self.device)
        self.h = torch.tensor([im.shape[0] for im in images], device=self.device)
        self.w = torch.tensor([im.shape[1] for im in images], device=self.device)
        self.p = torch.from_numpy(sizes / sizes.sum()).to(self.device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)

    def _uniform(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.gen, device=self.device, dtype=torch.float64)

    def _crops(self, idx: torch.Tensor, hs: int, ws: int) -> torch.Tensor:
        """(n, 3, hs, ws) crops of images ``idx`` at random places, mirrored at random."""
        n = len(idx)
        h, w = self.h[idx], self.w[idx]
        y = (self._uniform(n) * (h - hs + 1)).long()
        x = (self._uniform(n) * (w - ws + 1)).long()
        ar_y = torch.arange(hs, device=self.device)
        ar_x = torch.arange(ws, device=self.device)
        flip = self._uniform(n) < 0.5
        cols = torch.where(flip[:, None], x[:, None] + ws - 1 - ar_x, x[:, None] + ar_x)  # (n, ws)
        flat = self.offset[idx, None, None] + (y[:, None, None] + ar_y[None, :, None]) * w[:, None, None] \
            + cols[:, None, :]  # (n, hs, ws)
        return self.pixels[:, flat].permute(1, 0, 2, 3).contiguous()

    @staticmethod
    def _luma(x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (0.299 * xf[:, 0] + 0.587 * xf[:, 1] + 0.114 * xf[:, 2]).round().to(torch.uint8)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 3, size, size) uint8 levels and (n,) bool: which crops are gray (R = G = B, or with
        ``packed_gray`` three consecutive gray rows as the channels of a row, as the flow codes gray)."""
        s = self.size
        idx = torch.multinomial(self.p, n, replacement=True, generator=self.gen)
        out = self._crops(idx, s, s)
        gray = self._uniform(n) < self.gray_fraction
        if gray.any() and not self.packed_gray:
            out[gray] = self._luma(out[gray]).unsqueeze(1).expand(-1, 3, -1, -1)
        elif gray.any():
            tall = self.h[idx] >= 3 * s
            gray &= tall
            g = self._luma(self._crops(idx[gray], 3 * s, s))  # (m, 3s, s)
            out[gray] = g.view(-1, s, 3, s).permute(0, 2, 1, 3)
        return out, gray


class ImageSampler:
    """Whole ``size`` x ``size`` gray images (every image under a folder, e.g. digits), drawn
    uniformly: batches of (n, 1, size, size) uint8 (and None: no gray flags)."""

    def __init__(self, folder: str | Path, size: int, seed: int, device: str | torch.device = "cpu"):
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        ims = [np.asarray(Image.open(p).convert("L")) for p in paths]
        ims = [im for im in ims if im.shape == (size, size)]
        if not ims:
            raise FileNotFoundError(f"no {size}x{size} images found under {folder}")
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.stack(ims)).unsqueeze(1).to(self.device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, None]:
        idx = torch.randint(0, len(self.images), (n,), generator=self.gen, device=self.device)
        return self.images[idx], None


class TextSampler:
    """Byte streams for the char-RNN: each batch row reads on from where it stopped (so the
    model's state is carried across windows, as over a segment), and starts afresh at a random
    place once per ``segment`` bytes on average: a file under the folder drawn uniformly (so
    that one big source does not drown the others), then a place in it. ``batch(n)`` gives
    (n, seq + 1) symbols (the input before the window: the previous byte, or START for a
    fresh row; then the window) and which rows are fresh."""

    def __init__(self, folder: str | Path, seq: int, segment: int, seed: int, device: str | torch.device = "cpu"):
        from dulzip.models.charrnn import START
        files = [p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()]
        files = [f for f in files if len(f) > seq + 1]
        if not files:
            raise FileNotFoundError(f"no text file longer than {seq + 1} bytes under {folder}")
        self.device = torch.device(device)
        self.data = torch.frombuffer(bytearray(b"".join(files)), dtype=torch.uint8).to(self.device)
        sizes = torch.tensor([len(f) for f in files], dtype=torch.int64)
        self.begin = (torch.cumsum(sizes, 0) - sizes).to(self.device)
        self.end = torch.cumsum(sizes, 0).to(self.device)
        self.seq, self.reset_p, self.start = seq, min(1.0, seq / segment), START
        self.pos = self.stop = None
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        L, dev = self.seq, self.device
        fresh = torch.rand(n, generator=self.gen, device=dev) < self.reset_p
        f = torch.randint(0, len(self.begin), (n,), generator=self.gen, device=dev)
        u = torch.rand(n, generator=self.gen, device=dev, dtype=torch.float64)
        new = self.begin[f] + (u * (self.end[f] - self.begin[f] - L)).long()
        if self.pos is None or len(self.pos) != n:
            fresh[:] = True
            self.pos, self.stop = new, self.end[f]
        fresh |= self.pos + L > self.stop  # the file ends: start afresh
        self.pos = torch.where(fresh, new, self.pos)
        self.stop = torch.where(fresh, self.end[f], self.stop)
        window = self.data[self.pos[:, None] + torch.arange(L, device=dev)].long()
        first = torch.where(fresh, self.start, self.data[(self.pos - 1).clamp(min=0)].long())
        self.pos = self.pos + L
        return torch.cat([first[:, None], window], dim=1), fresh


def to_levels(samples: np.ndarray, bits: int) -> np.ndarray:
    """(frames, channels) samples of a WAV -> int64 16-bit levels; an 8-bit sample v sits at
    256 v + 128, the middle of the levels its high byte covers."""
    x = samples.astype(np.int64)
    return x * 256 + 128 if bits == 8 else x


def load_audio(folder: str | Path) -> list[np.ndarray]:
    """Every channel of every WAV under ``folder`` the audio path models, as 16-bit levels."""
    from dulzip.formats.wav import parse_wav
    out = []
    for p in sorted(Path(folder).rglob("*.wav")):
        w = parse_wav(p.read_bytes())
        if w is not None:
            lv = to_levels(w.samples, w.bits)
            out.extend(np.ascontiguousarray(lv[:, c]) for c in range(lv.shape[1]))
    return out


class AudioSampler:
    """Windows of ``seq`` samples of the recordings under a folder, each starting with an empty
    history as a coded segment does; a recording drawn with probability proportional to its
    length, the polarity flipped at random (speech and music sound the same either way).
    ``batch(n)`` gives ((n, seq) int64 levels, None)."""

    def __init__(self, folder: str | Path, seq: int, seed: int, device: str | torch.device = "cpu"):
        tracks = [t for t in load_audio(folder) if len(t) > seq]
        if not tracks:
            raise FileNotFoundError(f"no WAV file longer than {seq} samples under {folder}")
        self.device = torch.device(device)
        self.data = torch.from_numpy(np.concatenate(tracks)).to(self.device)
        sizes = torch.tensor([len(t) for t in tracks], dtype=torch.int64)
        self.begin = (torch.cumsum(sizes, 0) - sizes).to(self.device)
        self.room = (sizes - seq).to(torch.float64).to(self.device)  # start positions per track
        self.weight = sizes.to(torch.float64).to(self.device)
        self.seq = seq
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, None]:
        dev = self.device
        f = torch.multinomial(self.weight, n, replacement=True, generator=self.gen)
        u = torch.rand(n, generator=self.gen, device=dev, dtype=torch.float64)
        pos = self.begin[f] + (u * self.room[f]).long()
        x = self.data[pos[:, None] + torch.arange(self.seq, device=dev)]
        flip = torch.rand(n, 1, generator=self.gen, device=dev) < 0.5
        return torch.where(flip, (-1 - x), x), None  # -1 - x: the 16-bit range maps onto itself


# The families' samplers (Family.sampler "dulzip.train.data:NAME"): (TrainConfig, model config,
# seed, device) -> a sampler with .batch(n).

def photo_crops(t, cfg, seed: int, device) -> CropSampler:
    """Random crops of photographs, a fraction made gray (R = G = B)."""
    return CropSampler(load_images(t.data, tuple(t.scales)), t.crop, t.gray_fraction, seed, device)


def photo_crops_packed_gray(t, cfg, seed: int, device) -> CropSampler:
    """As :func:`photo_crops`, gray crops packed as codecs.flow codes gray."""
    return CropSampler(load_images(t.data, tuple(t.scales)), t.crop, t.gray_fraction, seed, device, packed_gray=True)


def whole_images(t, cfg, seed: int, device) -> ImageSampler:
    """Whole small gray images of the model's size (e.g. 28x28 digits)."""
    return ImageSampler(t.data, cfg.size, seed, device)


def text_windows(t, cfg, seed: int, device) -> TextSampler:
    return TextSampler(t.data, t.seq, t.segment, seed, device)


def audio_windows(t, cfg, seed: int, device) -> AudioSampler:
    return AudioSampler(t.data, t.seq, seed, device)
