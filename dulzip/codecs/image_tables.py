"""Decode-only: images coded with the model's tables alone, before the image mixer.

Files of container format 1, and format-2 files whose layout has no ``mixer``, were coded with
the PixelCNN's integer PMF tables directly, position by position in raster order. Nothing
writes them any more (the mixer codes smaller and decodes faster); this module keeps them
decoding, byte for byte (tests/data/golden has real ones, made by the commits that wrote them).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from dulzip.codecs.image import _loop, _open_streams, _presence, bands, tile_grid
from dulzip.codecs.stream import Stream
from dulzip.coding.rangecoder import RangeDecoder
from dulzip.heads.logistic import BUCKET, ChannelModel, split_params


def _positions(T: int, progress: bool):
    """(row, column) of a tile in decode order, with a progress bar by rows."""
    for r in tqdm(range(T), disable=not progress, desc="decode", unit="row"):
        for c in range(T):
            yield r, c


def decode_tables(streams: list[Stream], H: int, W: int, C: int, net, T: int,
                  progress: bool = False) -> np.ndarray:
    """Every model-coded tile decoded in one batched raster loop (one position of every tile a
    step, channels in order, each symbol as a bucket then a level within it)."""
    K = net.cfg.mixtures
    luts = {k: v.cpu() for k, v in net.luts.items()}
    grid = tile_grid(H, W, T)
    img, coded = _open_streams(streams, H, W, C, grid, bands(H, W, T))
    model_tiles: list[int] = []
    decoders: list[tuple[list[int], RangeDecoder]] = []
    for band, s in coded:
        rows = list(range(len(model_tiles), len(model_tiles) + len(band)))
        model_tiles.extend(band)
        decoders.append((rows, RangeDecoder(s.payload)))
    if not model_tiles:
        return img
    B = len(model_tiles)
    present = _presence(T, grid)[model_tiles]
    pres_dev = present.to(net.device)
    stepper = net.stepper(B, T, pres_dev)
    out = torch.zeros(B, 3, T, T, dtype=torch.int64)
    present_np = present[:, 0].numpy().astype(bool)
    band_rows = [(np.array(rows), dec) for rows, dec in decoders]
    with _loop():
        for r, c in _positions(T, progress):
            active = present_np[:, r, c]
            if not active.any():
                continue
            split = split_params(stepper.params(r, c).cpu(), K, luts)
            pix = torch.zeros(B, 3, dtype=torch.int64)
            for ch in range(C):
                cm = ChannelModel(None, ch, pix, K, luts, split)
                coarse = cm.coarse().numpy()
                bucket = np.zeros(B, dtype=np.int64)
                parts = []
                for rows, dec in band_rows:
                    sel = rows[active[rows]]
                    if len(sel):
                        bucket[sel] = dec.decode(coarse[sel])
                        parts.append((sel, dec))
                fine = cm.fine(torch.from_numpy(bucket)).numpy()
                level = bucket * BUCKET
                for sel, dec in parts:
                    level[sel] += dec.decode(fine[sel])
                pix[:, ch] = torch.from_numpy(level)
            if C == 1:
                pix[:, 1] = pix[:, 0]
                pix[:, 2] = pix[:, 0]
            pix = pix * torch.from_numpy(active)[:, None]
            stepper.set(r, c, pix.to(net.device))
            out[:, :, r, c] = pix
    for i, t in enumerate(model_tiles):
        y0, x0, h, w = grid[t]
        img[y0:y0 + h, x0:x0 + w] = out[i, :C, :h, :w].permute(1, 2, 0).numpy()
    return img
