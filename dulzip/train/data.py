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
    """Random ``size`` x ``size`` crops, random horizontal flips, a fraction made gray (R=G=B).

    Crops are drawn with probability proportional to image area.
    """

    def __init__(self, images: list[np.ndarray], size: int, gray_fraction: float, seed: int):
        self.images = [im for im in images if min(im.shape[:2]) >= size]
        if not self.images:
            raise ValueError(f"no image is at least {size}x{size}")
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.p = areas / areas.sum()
        self.size = size
        self.gray_fraction = gray_fraction
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.size
        out = np.empty((n, s, s, 3), dtype=np.uint8)
        idx = self.rng.choice(len(self.images), size=n, p=self.p)
        for j, i in enumerate(idx):
            im = self.images[i]
            y = self.rng.integers(0, im.shape[0] - s + 1)
            x = self.rng.integers(0, im.shape[1] - s + 1)
            crop = im[y:y + s, x:x + s]
            out[j] = crop[:, ::-1] if self.rng.random() < 0.5 else crop
        gray = torch.from_numpy(self.rng.random(n) < self.gray_fraction)
        x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
        if gray.any():
            xf = x[gray].float()
            luma = (0.299 * xf[:, 0] + 0.587 * xf[:, 1] + 0.114 * xf[:, 2]).round().to(torch.uint8)
            x[gray] = luma.unsqueeze(1).expand(-1, 3, -1, -1)
        return x, gray
