"""The pyramid family (issue 19): its order covers every pixel once and reads only what earlier
groups coded, the channel conditioning is the same in integers and in training, and the exact
runtime gives the float model's fake-quantized outputs."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from safetensors.torch import load_file

from dulzip.exact.pyramid import ExactPyramid
from dulzip.models.idf import LS_GRID, LS_OFF, MU_GRID, N_SCALES, logistic_bits
from dulzip.models.pyramid import (MU_HI, MU_LO, N_IN, N_OUT, TILE, Pyramid, PyramidConfig, condition, export,
                                   group_inputs, group_targets, groups, levels, put_slot, slot_plane)
from dulzip.zoo import save_weights
from tests.conftest import photo

CFG = PyramidConfig(hidden=12, layers=2)


def small(seed: int = 0, gain: float = 0.05) -> Pyramid:
    """A random model, far from its initialization (which predicts by interpolation only)."""
    torch.manual_seed(seed)
    m = Pyramid(CFG)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * gain)
    return m.eval()


def test_levels_and_groups():
    assert [levels(T) for T in (8, 16, 128, 256)] == [0, 1, 4, 5]
    with pytest.raises(ValueError):
        levels(96)
    assert groups(2) == [(2, 0), (1, 1), (1, 2), (1, 3), (0, 1), (0, 2), (0, 3)]


@pytest.mark.parametrize("H,W,T", [(16, 16, 16), (64, 64, 64), (13, 22, 32), (1, 9, 16), (256, 256, 256)])
def test_every_pixel_is_in_one_group(H, W, T):
    """Partial tiles: the pixels outside are absent, and every pixel inside is coded once."""
    index = torch.arange(H * W).view(1, 1, H, W)
    count = torch.zeros(H * W, dtype=torch.int64)
    for s, phase in groups(levels(T)):
        v, at = group_targets(index, None, s, phase)
        count.index_add_(0, v[at], torch.ones(int(at.sum()), dtype=torch.int64))
    assert (count == 1).all()


def test_inputs_read_only_earlier_groups():
    """A group's inputs change with the pixels coded before it, never with its own or later
    ones; its known slots are where the masks say, and absent pixels read as unknown."""
    T = 32
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (1, 3, T, T), generator=g)
    present = torch.ones(1, 1, T, T, dtype=torch.bool)
    present[..., 27:] = False
    order = groups(levels(T))
    coded = torch.zeros(1, 1, T, T, dtype=torch.bool)
    for s, phase in order:
        inp = group_inputs(x, present, s, phase)
        assert inp.shape[1] == N_IN and (inp[:, -1] == 8 * s).all()
        known = torch.where(coded & present, x, 255 - x)  # everything not coded yet, changed
        assert torch.equal(group_inputs(known, present, s, phase), inp)
        masks = inp[:, 12:16]
        assert set(masks.unique().tolist()) <= {0, 64} and (masks[:, phase:] == 0).all()
        ones = torch.ones(1, 1, T, T, dtype=torch.int64)
        marker = torch.zeros_like(ones)
        put_slot(marker, slot_plane(ones, s, phase, phase), s, phase, phase)
        coded |= marker.bool()
    assert coded.all()


def test_put_slot_inverts_slot_plane():
    x = torch.randint(0, 256, (2, 3, 11, 14))
    y = torch.zeros_like(x)
    for s, phase in groups(levels(16)):
        put_slot(y, slot_plane(x, s, phase, phase), s, phase, phase)
    assert torch.equal(x, y)


def test_gray_planes_are_put_in_all_three_channels():
    x = torch.randint(0, 256, (2, 1, 16, 16))
    for s, phase in groups(1):
        assert torch.equal(group_inputs(x, None, s, phase), group_inputs(x.expand(2, 3, 16, 16), None, s, phase))


def test_condition_integers_equal_training_floats():
    g = torch.Generator().manual_seed(2)
    n = 20000
    mu = torch.randint(MU_LO, MU_HI + 1, (n, 3), generator=g)
    coef = torch.randint(-128, 129, (n, 3), generator=g)
    x = torch.randint(0, 256, (n, 3), generator=g)
    ints = condition(mu, coef, x)
    floats = condition(mu.float().requires_grad_(), coef.float().requires_grad_(), x.float())
    assert torch.equal(floats.detach().long(), ints)
    floats.sum().backward()  # differentiable (straight-through floors)
    assert ints[:, 1:].min() >= MU_LO and ints[:, 1:].max() <= MU_HI
    # G's mean reads R only, B's reads R and G: the decoder calls it channel by channel
    x2 = x.clone()
    x2[:, 2] = 255 - x2[:, 2]
    assert torch.equal(condition(mu, coef, x2), ints)
    x2[:, 1] = 255 - x2[:, 1]
    assert torch.equal(condition(mu, coef, x2)[:, :2], ints[:, :2])


def test_exact_outputs_are_the_float_models():
    """On random inputs the integer runtime gives the fake-quantized float outputs (a rounding
    of a requantization may differ by one unit, rarely), in range, and the code length of a
    photograph under both is the same within a fraction of a percent."""
    m = small(3)
    net = ExactPyramid(export(m), asdict(CFG))
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (2, 3, 32, 32), generator=g)
    with torch.no_grad():
        for s, phase in groups(levels(32)):
            inp = group_inputs(x, None, s, phase)
            a = net.predict(inp, phase)
            b = m.predict(inp, phase)
            assert a.dtype == torch.int64 and a.shape == (2, N_OUT, *inp.shape[2:])
            assert torch.equal(b, b.round())
            d = (a - b.long()).abs()
            assert (d == 0).float().mean() > 0.97 and int(d.max()) <= 4, (s, phase)
            assert a[:, :3].min() >= MU_LO and a[:, :3].max() <= MU_HI
            assert a[:, 3:6].min() >= 0 and a[:, 3:6].max() < N_SCALES
            assert a[:, 6:].abs().max() <= 128
    img = torch.from_numpy(photo(64, 64, 3, seed=1)).permute(2, 0, 1)[None].long()
    with torch.no_grad():
        fl = float(m.loss(img))
    bits = 0.0
    for s, phase in groups(levels(TILE)):  # the crop as the loss codes it: part of a tile
        out = net.predict(group_inputs(img, None, s, phase), phase)
        tgt, at = group_targets(img, None, s, phase)
        mu = condition(out[:, :3], out[:, 6:], tgt).double() / MU_GRID
        bits += float((logistic_bits(tgt.double(), mu, (out[:, 3:6].double() - LS_OFF) / LS_GRID) * at).sum())
    assert abs(bits / img.numel() - fl) < 0.005 * fl


def test_loss_counts_one_channel_of_gray_crops():
    m = small(5)
    img = torch.from_numpy(photo(32, 32, 3, seed=2)).permute(2, 0, 1)[None].long()
    gray = img[:, :1].expand(1, 3, 32, 32)
    with torch.no_grad():
        a = float(m.loss(gray, torch.tensor([True])))
        both = float(m.loss(torch.cat([img, gray]), torch.tensor([False, True])))
        rgb = float(m.loss(img, torch.tensor([False])))
    assert abs(both - (3 * rgb + a) / 4) < 1e-4 * both


def test_loss_trains_every_group_of_the_default_tile():
    """A crop is the top-left part of a TILE tile (its anchors see the level channel of
    TILE's L, and the coarsest D, H, V groups are trained); a larger crop is cut into tiles."""
    m = small(8)
    img = torch.from_numpy(photo(2 * TILE, TILE, 3, seed=3)).permute(2, 0, 1)[None].long()
    with torch.no_grad():
        whole = float(m.loss(img, torch.tensor([False])))
        parts = [float(m.loss(img[..., i * TILE:(i + 1) * TILE, :], torch.tensor([False]))) for i in range(2)]
    assert abs(whole - sum(parts) / 2) < 1e-4 * whole
    with pytest.raises(ValueError):
        m.loss(img[..., :TILE + 8, :])


def test_export_reload_identical(tmp_path):
    t = export(small(6))
    save_weights(t, tmp_path / "w.safetensors", "pyramid", asdict(CFG))
    t2 = load_file(str(tmp_path / "w.safetensors"))
    assert set(t) == set(t2) and all(torch.equal(t[k], t2[k]) for k in t)
    x = torch.randint(0, 256, (1, 3, 16, 16))
    inp = group_inputs(x, None, 0, 2)
    assert torch.equal(ExactPyramid(t, asdict(CFG)).predict(inp, 2), ExactPyramid(t2, asdict(CFG)).predict(inp, 2))
    flat, start, radius = ExactPyramid(t2, asdict(CFG)).tables
    assert len(start) == MU_GRID * N_SCALES + 1 and len(radius) == N_SCALES
