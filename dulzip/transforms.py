"""Reversible transforms between a format's samples and what the models code: color planes
(gray stored as RGB coded once, a constant alpha plane as its value) and stereo as left and
side. Exact integer maps, each with its inverse beside it."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

def split_planes(pixels: np.ndarray) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """(H, W, C) -> (color planes (H, W, 1|3), layout, alpha plane to code or None).

    Redundancy found before modelling: gray stored as RGB (R = G = B) is coded as gray, a
    constant alpha plane as its value.
    """
    import numpy as np
    H, W, C = pixels.shape
    layout = {"height": H, "width": W, "channels": C}
    color = pixels[:, :, :3] if C >= 3 else pixels[:, :, :1]
    if C >= 3 and np.array_equal(color[:, :, 0], color[:, :, 1]) and np.array_equal(color[:, :, 0], color[:, :, 2]):
        color = color[:, :, :1]
        layout["replicated"] = True
    alpha = None
    if C in (2, 4):
        a = pixels[:, :, C - 1]
        if (a == a.flat[0]).all():
            layout["alpha"] = int(a.flat[0])
        else:
            layout["alpha"] = "coded"
            alpha = a[:, :, None]
    return np.ascontiguousarray(color), layout, alpha


def join_planes(color: np.ndarray, layout: dict, alpha: np.ndarray | None, dtype="uint8") -> np.ndarray:
    """Inverse of :func:`split_planes`: (H, W, C) samples of ``dtype`` (uint8, or uint16)."""
    import numpy as np
    H, W, C = layout["height"], layout["width"], layout["channels"]
    out = np.empty((H, W, C), dtype=dtype)
    nc = 3 if C >= 3 else 1
    out[:, :, :nc] = color if color.shape[2] == nc else np.repeat(color, nc, axis=2)
    if C in (2, 4):
        out[:, :, C - 1] = alpha[:, :, 0] if layout["alpha"] == "coded" else layout["alpha"]
    return out


def stereo_mode(samples: np.ndarray, bits: int, choice: str = "auto") -> str:
    """How to code a stereo input: ``choice`` ("lr": channels as they are; "side": left and
    right - left), or under "auto", from the input alone: as left and side when the side
    carries less energy than the right channel (correlated channels), else left and right
    (benchmarks/results/stereo-test.md)."""
    import numpy as np
    if choice != "auto":
        return choice
    side = stereo_side(samples, bits)[:, 1].astype(np.float64)
    return "side" if side @ side < samples[:, 1].astype(np.float64) @ samples[:, 1] else "lr"


def stereo_side(samples: np.ndarray, bits: int, inverse: bool = False) -> np.ndarray:
    """(frames, 2) samples -> left and side = right - left, wrapped into the sample range (so it
    stays a 16-bit or 8-bit signal and the mapping is exactly invertible); ``inverse``: back."""
    import numpy as np
    half = 128 if bits == 8 else 32768
    x = samples.astype(np.int64)
    out = x.copy()
    sign = 1 if inverse else -1
    out[:, 1] = (x[:, 1] + sign * x[:, 0] + half) % (2 * half) - half
    return out.astype(samples.dtype)
