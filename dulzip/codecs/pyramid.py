"""Images through the pyramid coder: groups coarse to fine, one batched network pass per group.

An image plane set (H, W, C), C = 1 (gray) or 3 (RGB), is cut into T x T tiles and coded in
the groups of :func:`dulzip.models.pyramid.groups` (anchors, then D, H, V per level), every
tile's share of a group before the next group: so the network runs once per group over every
cell of every tile (in chunks of at most CELLS_PER_PASS cells, to bound memory), never per
pixel, and the only sequential part is the mixer (:mod:`dulzip.exact.pyramidmix`), which codes
the group's pixels in (tile, i, j) raster order, channel by channel.

Streams: one per row of tiles (a *band*), each its own binary arithmetic coder
(:mod:`dulzip.coding.binary`), one adaptive mixer for the image. A band that the mixer codes
worse than zstd -19 is stored with zstd; the decoder still gives that band's known pixels to
the mixer, which learns from them as the encoder's did.

Work and memory: the image planes, the network's prediction planes and one group's network
outputs (9 integers per pixel of the group, at most a quarter of the image), all linear in the
image; the network's own memory is bounded by CELLS_PER_PASS.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from dulzip.codecs.stream import Stream
from dulzip.coding import binary, zstdio
from dulzip.errors import CorruptDataError, FormatError
from dulzip.exact.pyramidmix import (MODE_DECODE, MODE_ENCODE, MODE_KNOWN, PARTS, Coding,
                                     Group, PyramidMixer, slot_bits_for)
from dulzip.models.pyramid import group_inputs, group_targets, groups, levels

CELLS_PER_PASS = 1 << 15  # cells per network call: its memory, not its results, depends on it
OUT_BYTES = 1 << 16  # an encoder's buffer per band, emptied whenever one is nearly full


def check_tile(T: int, error: type[Exception] = FormatError) -> int:
    """The levels of tiles of side T (``error`` where the pyramid cannot cut them)."""
    try:
        return levels(T)
    except ValueError as e:
        raise error(str(e)) from None


class _Planes:
    """The image as tiles of T x T: levels (C, Hp, Wp) uint8 (zero outside the image), the
    network's prediction at each coded sub-pixel (int16), and what a group needs of them."""

    def __init__(self, H: int, W: int, C: int, T: int, img: np.ndarray | None = None):
        self.H, self.W, self.C, self.T = H, W, C, T
        self.ty, self.tx = -(-H // T), -(-W // T)
        self.img = np.zeros((C, self.ty * T, self.tx * T), dtype=np.uint8)
        if img is not None:
            self.img[:, :H, :W] = img.transpose(2, 0, 1)
        self.netp = np.zeros(self.img.shape, dtype=np.int16)
        pres = np.zeros(self.img.shape[1:], dtype=bool)
        pres[:H, :W] = True
        self.present = self._tiles(torch.from_numpy(pres)[None])  # (n_tiles, 1, T, T)

    def _tiles(self, planes: torch.Tensor) -> torch.Tensor:
        """(c, Hp, Wp) -> (n_tiles, c, T, T), tiles row by row."""
        c, T = planes.shape[0], self.T
        return planes.view(c, self.ty, T, self.tx, T).permute(1, 3, 0, 2, 4).reshape(-1, c, T, T)

    def outputs(self, net, s: int, phase: int, progress) -> tuple[np.ndarray, ...]:
        """The group's pixels in coding order (rows, columns, bands) and the network's outputs
        (n, 9), from one pass over every tile (in chunks of whole tiles)."""
        T = self.T
        levels_t = self._tiles(torch.from_numpy(self.img))
        n_tiles = levels_t.shape[0]
        ys, xs, outs = [], [], []
        # each tile's coordinates of the group's slot: (rows, columns) of its cells
        cy, cx = group_targets(torch.from_numpy(_coords(T)).unsqueeze(0), None, s, phase)[0][0]
        cy, cx = cy.numpy(), cx.numpy()
        per = max(1, CELLS_PER_PASS // cy.size)
        with torch.no_grad():
            for a in range(0, n_tiles, per):
                x = levels_t[a:a + per].to(torch.int64)
                pres = self.present[a:a + per]
                out = net.predict(group_inputs(x, pres, s, phase), phase).cpu()
                _, at = group_targets(x, pres, s, phase)
                at = at[:, 0].numpy()
                for k in range(out.shape[0]):
                    t = a + k
                    keep = at[k]
                    ys.append(cy[keep] + (t // self.tx) * T)
                    xs.append(cx[keep] + (t % self.tx) * T)
                    outs.append(out[k].permute(1, 2, 0).numpy()[keep])
                progress.update(len(out))
        ys, xs = np.concatenate(ys).astype(np.int64), np.concatenate(xs).astype(np.int64)
        return ys, xs, ys // T, np.ascontiguousarray(np.concatenate(outs), dtype=np.int64)

    def group(self, net, s: int, phase: int, L: int, tables, progress) -> Group:
        ys, xs, band, out9 = self.outputs(net, s, phase, progress)
        cum, start, radius = tables
        geo = np.array([phase, s, L, self.C, self.H, self.W, self.T], dtype=np.int64)
        return Group(self.img, self.netp, ys, xs, band, out9, cum, start, radius, geo)


def _coords(T: int) -> np.ndarray:
    """(2, T, T) int64: each position's row and column (to read a group's slot positions)."""
    r = np.arange(T, dtype=np.int64)
    return np.stack(np.meshgrid(r, r, indexing="ij"))


def _tables(net) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's scale tables as the mixer reads them: prefix sums of the flat weights (the
    mass of any run of a row in two reads), row starts, radii."""
    flat, start, radius = (t.numpy().astype(np.int64) for t in net.tables)
    cum = np.zeros(len(flat) + 1, dtype=np.int64)
    np.cumsum(flat, out=cum[1:])
    return cum, start, radius


def _bar(net, T: int, planes: _Planes, progress: bool, desc: str):
    L = levels(T)
    return tqdm(total=len(groups(L)) * planes.ty * planes.tx, disable=not progress, desc=desc, unit="tile-group")


def encode_pyramid(img: np.ndarray, net, T: int | None = None, progress: bool = False, allow_zstd: bool = True,
                   parts: tuple[str, ...] = PARTS, ctx_on: np.ndarray | None = None,
                   mix: PyramidMixer | None = None) -> list[Stream]:
    """Encode (H, W, C) uint8 planes, C in {1, 3}: one stream per band of tiles.
    ``allow_zstd=False`` keeps every band model-coded (tests); ``parts`` and ``ctx_on``: of the
    mixer (measurements); ``mix``: the mixer to code with (:func:`prime`), else a new one from
    the model's primed state."""
    H, W, C = img.shape
    T = T or net.default_tile
    L = check_tile(T, ValueError)
    planes = _Planes(H, W, C, T, img)
    tables = _tables(net)
    mix = mix or PyramidMixer(slot_bits_for(H * W * C), parts, ctx_on, net.prime)
    nb = planes.ty
    cd = Coding(binary.new_state(nb), np.full(nb, MODE_ENCODE, dtype=np.int64),
                np.zeros((nb, OUT_BYTES), dtype=np.uint8), np.zeros(1, dtype=np.uint8), np.zeros(nb, dtype=np.int64))
    chunks: list[list[bytes]] = [[] for _ in range(nb)]
    with _bar(net, T, planes, progress, "encode") as bar:
        for s, phase in groups(L):
            g = planes.group(net, s, phase, L, tables, bar)
            a = 0
            while a < len(g.ys):
                a = mix.code(g, cd, a, len(g.ys))
                for k in range(nb):  # empty the buffers (all: cheap, and simple)
                    chunks[k].append(cd.out[k, :cd.st[k, 2]].tobytes())
                    cd.st[k, 2] = 0
    streams = []
    for k in range(nb):
        coded = b"".join(chunks[k]) + binary.finish(cd.st, k)
        packed = zstdio.compress(np.ascontiguousarray(img[k * T:(k + 1) * T]).tobytes())
        if len(coded) < len(packed) or not allow_zstd:
            streams.append(Stream("model", coded, 8.0 * len(coded)))
        else:
            streams.append(Stream("zstd", packed, 8.0 * len(coded)))
    return streams


def decode_pyramid(streams: list[Stream], H: int, W: int, C: int, net, T: int | None = None,
                   progress: bool = False) -> np.ndarray:
    """Inverse of :func:`encode_pyramid`: every group's network pass, then its pixels decoded
    (those of zstd bands known, and learnt from)."""
    T = T or net.default_tile
    L = check_tile(T)
    planes = _Planes(H, W, C, T)
    nb = planes.ty
    if len(streams) != nb:
        raise CorruptDataError(f"image has {len(streams)} streams, expected {nb}")
    mode = np.full(nb, MODE_DECODE, dtype=np.int64)
    parts, ends, pos = [], np.zeros(nb, dtype=np.int64), 0
    st = binary.new_state(nb)
    for k, s in enumerate(streams):
        y0, h = k * T, min(T, H - k * T)
        if s.coder == "zstd":
            raw = zstdio.decompress(s.payload, h * W * C, "a zstd image stream")
            planes.img[:, y0:y0 + h, :W] = np.frombuffer(raw, dtype=np.uint8).reshape(h, W, C).transpose(2, 0, 1)
            mode[k] = MODE_KNOWN
            payload = b""
        else:
            payload = s.payload
        parts.append(payload)
        st[k, 2] = pos
        pos += len(payload)
        ends[k] = pos
    data = np.frombuffer(b"".join(parts) or b"\0", dtype=np.uint8).copy()  # writable: one compiled type
    for k in range(nb):
        if mode[k] == MODE_DECODE:
            binary.start_decoding(st, k, data, ends)
    cd = Coding(st, mode, np.zeros((1, 1), dtype=np.uint8), data, ends)
    mix = PyramidMixer(slot_bits_for(H * W * C), prime=net.prime)
    tables = _tables(net)
    with _bar(net, T, planes, progress, "decode") as bar:
        for s, phase in groups(L):
            g = planes.group(net, s, phase, L, tables, bar)
            if mix.code(g, cd, 0, len(g.ys)) < 0:
                raise CorruptDataError("a pyramid-coded image stream ends before its pixels do (damaged file)")
    for k in range(nb):
        if mode[k] == MODE_DECODE and (st[k, 2] != ends[k] or st[k, 4]):
            raise CorruptDataError("a pyramid-coded image stream has bytes its pixels do not use (damaged file)")
    return planes.img[:, :H, :W].transpose(1, 2, 0).copy()


def prime(net, images: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """The mixer's state after coding ``images`` (training photographs, (H, W, C) uint8) one
    after another, each with a fresh count table: the start a model then ships
    (:meth:`PyramidMixer.primed_state`), so that an image is not coded by a mixer that has
    learnt nothing yet (most of a small image's bits would be its learning)."""
    state = net.prime
    for img in images:
        H, W, C = img.shape
        mix = PyramidMixer(slot_bits_for(H * W * C), prime=state)
        encode_pyramid(img, net, allow_zstd=False, mix=mix)
        state = mix.primed_state()
    return state
