"""Exactness: the decode loop's tables equal the batched encode pass's, bit for bit, across
batch sizes and thread counts; export and reload; causality of the float model."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from dulzip.exact.layers import exact_matmul
from dulzip.exact.pixelcnn import ExactPixelCNN
from dulzip.heads.logistic import (ChannelModel, coarse_table, fine_table, mixture_bits, mixture_cum, mixture_luts,
                                   mixture_pmf)
from dulzip.models.pixelcnn import PixelCNN, PixelCNNConfig, export
from dulzip.zoo import save_weights
from safetensors.torch import load_file
from tests.conftest import photo, tiny_model

CFG = PixelCNNConfig(channels=8, layers=3, head=16, mixtures=3)


def _net(seed=0, cfg=CFG):
    return ExactPixelCNN(export(tiny_model(seed, cfg)), asdict(cfg))


def _tiles(B, T, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (B, 3, T, T), generator=g)
    present = torch.ones(B, 1, T, T, dtype=torch.int64)
    if B > 1:
        present[1, :, :, T - 3:] = 0  # a tile cut by the right edge
    if B > 2:
        present[2, :, T - 2:, :] = 0  # and one cut by the bottom
    return x, present


def _stepwise(net, x, present):
    B, _, T, _ = x.shape
    st = net.stepper(B, T, present)
    out = torch.zeros(B, T, T, 12 * net.cfg.mixtures, dtype=torch.int64)
    for r in range(T):
        for c in range(T):
            out[:, r, c] = st.params(r, c)
            st.set(r, c, x[:, :, r, c])
    return out


def _wavefront(net, x, present):
    """The wavefront decode loop: (r, c) at step c + delay * r."""
    B, _, T, _ = x.shape
    st = net.wave_stepper(B, T, present)
    d = net.wave_delay
    out = torch.zeros(B, T, T, 12 * net.cfg.mixtures, dtype=torch.int64)
    for t in range(d * (T - 1) + T):
        rows = torch.arange(T)
        cols = t - d * rows
        k = (cols >= 0) & (cols < T)
        rows, cols = rows[k], cols[k]
        if len(rows):
            out[:, rows, cols] = st.params(rows, cols)
            st.set(rows, cols, x[:, :, rows, cols].permute(0, 2, 1))
    return out


@pytest.mark.parametrize("cfg,B,T", [
    (CFG, 3, 9), (CFG, 3, 20), (CFG, 1, 1), (CFG, 2, 5),  # tiles narrower than the delay leave steps empty
    (PixelCNNConfig(channels=8, layers=4, head=16, mixtures=3, kv=3, kw=1, kh=2), 3, 13)])
@pytest.mark.parametrize("threads", [1, 2])
def test_wavefront_decode_equals_batched_pass(cfg, B, T, threads):
    torch.set_num_threads(threads)
    net = _net(4, cfg)
    x, present = _tiles(B, T, seed=T)
    full = net.full_pass(x, present)
    m = present[:, 0].bool()
    assert torch.equal(full[m], _wavefront(net, x, present)[m])


def test_wavefront_steps_out_of_order_are_refused():
    net = _net()
    x, present = _tiles(1, 9)
    st = net.wave_stepper(1, 9, present)
    st.params([0], [0])
    with pytest.raises(ValueError):
        st.params([0], [0])
    with pytest.raises(ValueError):  # step 1 + delay holds (0, 1 + delay) and (1, 1)
        st.params([1], [1])


@pytest.mark.parametrize("threads", [1, 2])
def test_decode_loop_equals_batched_pass(threads):
    torch.set_num_threads(threads)
    net = _net()
    x, present = _tiles(3, 9)
    full = net.full_pass(x, present)
    step = _stepwise(net, x, present)
    m = present[:, 0].bool()
    assert torch.equal(full[m], step[m])


def test_batch_size_and_threads_do_not_change_params():
    net = _net(1)
    x, present = _tiles(5, 11, seed=3)
    torch.set_num_threads(2)
    all5 = net.full_pass(x, present)
    torch.set_num_threads(1)
    for i in range(5):  # at the tile's pixels (the pass skips rows and columns absent from all its tiles)
        one = net.full_pass(x[i:i + 1], present[i:i + 1])
        at = present[i, 0].bool()
        assert torch.equal(one[0][at], all5[i][at])


def test_tables_from_full_pass_equal_stepwise_tables():
    net = _net(2)
    x, present = _tiles(2, 6, seed=5)
    full = net.full_pass(x, present)
    step = _stepwise(net, x, present)
    luts = net.luts
    p1 = full.reshape(-1, full.shape[-1])
    p2 = step.reshape(-1, step.shape[-1])
    prev = x.permute(0, 2, 3, 1).reshape(-1, 3)
    for ch in range(3):
        a, b = ChannelModel(p1, ch, prev, net.cfg.mixtures, luts), ChannelModel(p2, ch, prev, net.cfg.mixtures, luts)
        assert torch.equal(a.coarse(), b.coarse())
        bucket = prev[:, ch] // 16
        assert torch.equal(a.fine(bucket), b.fine(bucket))


def test_export_reload_identical(tmp_path):
    m = tiny_model(4, CFG)
    t = export(m)
    save_weights(t, tmp_path / "w.safetensors", "pixelcnn", asdict(CFG))
    t2 = load_file(str(tmp_path / "w.safetensors"))
    assert set(t) == set(t2) and all(torch.equal(t[k], t2[k]) for k in t)
    x, present = _tiles(2, 7)
    a = ExactPixelCNN(t, asdict(CFG)).full_pass(x, present)
    b = ExactPixelCNN(t2, asdict(CFG)).full_pass(x, present)
    assert torch.equal(a, b)


def test_float_model_is_causal():
    """The gradient of the parameters at pixel i w.r.t. any pixel at or after i is zero."""
    torch.manual_seed(0)
    m = PixelCNN(CFG)
    for p in m.parameters():
        p.data.normal_(0, 0.05)
    H = W = 8
    x = (torch.rand(1, 3, H, W) * 255).requires_grad_()
    y = m(x)
    for r, c in [(0, 0), (3, 4), (7, 7), (5, 0), (0, 6)]:
        (g,) = torch.autograd.grad(y[0, :, r, c].sum(), x, retain_graph=True)
        dep = g[0].abs().sum(0).flatten() > 0
        assert not dep[r * W + c:].any(), (r, c)
        if r * W + c > W + 2:
            assert dep[:r * W + c].any()  # it does see the past


def test_exact_model_is_causal():
    """Changing a pixel never changes the integer parameters at or before its position."""
    net = _net(5)
    x, present = _tiles(1, 8, seed=1)
    base = net.full_pass(x, present)
    for r, c in [(2, 3), (0, 0), (7, 7), (4, 0)]:
        x2 = x.clone()
        x2[0, :, r, c] = 255 - x2[0, :, r, c]
        other = net.full_pass(x2, present)
        flat_b, flat_o = base[0].reshape(64, -1), other[0].reshape(64, -1)
        i = r * 8 + c
        assert torch.equal(flat_b[:i + 1], flat_o[:i + 1])


def test_integer_tables_are_valid_and_consistent():
    luts = mixture_luts()
    g = torch.Generator().manual_seed(0)
    N, K = 500, 4
    logits = torch.randint(-300, 300, (N, K), generator=g)
    mu = torch.randint(-1024, 5120, (N, K), generator=g)
    ls = torch.randint(-128, 192, (N, K), generator=g)
    pmf = mixture_pmf(logits, mu, ls, luts)
    assert (pmf >= 1).all() and (pmf.sum(1) == 1 << 20).all()
    coarse = coarse_table(logits, mu, ls, luts)
    assert torch.equal(coarse, pmf.view(N, 16, 16).sum(2))
    b = torch.randint(0, 16, (N,), generator=g)
    assert torch.equal(fine_table(logits, mu, ls, b, luts), pmf.view(N, 16, 16)[torch.arange(N), b])
    t = torch.tensor([[0, 256]]).expand(N, 2)
    assert (mixture_cum(logits, mu, ls, t, luts) == torch.tensor([0, 1 << 20])).all()


def test_exact_bits_track_float_model():
    """Fake quantization makes the integer model's code length close to the float NLL."""
    m = tiny_model(6, CFG)
    net = ExactPixelCNN(export(m), asdict(CFG))
    img = torch.from_numpy(photo(16, 16)).permute(2, 0, 1)[None].long()
    with torch.no_grad():
        float_bits = mixture_bits(m(img), img, CFG.mixtures).sum().item()
    params = net.full_pass(img, torch.ones(1, 1, 16, 16, dtype=torch.int64)).reshape(-1, 12 * CFG.mixtures)
    prev = img[0].permute(1, 2, 0).reshape(-1, 3)
    exact_bits = 0.0
    for ch in range(3):
        pmf = mixture_pmf(*ChannelModel(params, ch, prev, CFG.mixtures, net.luts).args, net.luts)
        exact_bits -= torch.log2(pmf[torch.arange(len(prev)), prev[:, ch]].double() / (1 << 20)).sum().item()
    assert abs(exact_bits - float_bits) / float_bits < 0.03



# -- every family, through the registry, on its shipped model ---------------------------------
# A batched (encoder-side) pass equals itself across batch sizes and thread counts, and the
# decoder-side stepping equals it; small inputs, so each family takes a few seconds.

def _shipped(name: str, monkeypatch):
    """The shipped model of a family (the one whose card's name is the family's)."""
    from dulzip import zoo
    monkeypatch.setenv("DULZIP_MODELS", str(zoo.SHIPPED))
    if zoo.cards().get(name, {}).get("architecture") != name:
        pytest.skip(f"no shipped {name} model")
    net, _ = zoo.load(name)
    return net


def _same_across_batches_and_threads(run, inputs):
    """run(batch) of the whole batch equals run of each item alone, with 1 and 2 threads."""
    threads = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            outs.append(run(inputs))
        torch.set_num_threads(1)
        alone = [run([x[i:i + 1] for x in inputs]) for i in range(inputs[0].shape[0])]
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(outs[0], torch.cat(alone))
    return outs[0]


def _autoregressive_image(net):
    T = net.fixed_tile or 6
    x, present = _tiles(3, T, seed=1)
    if net.gray_only:
        x[:, 1:] = x[:, :1]
    full = _same_across_batches_and_threads(lambda a: net.full_pass(*a) * a[1][:, 0, :, :, None], [x, present])
    m = present[:, 0].bool()
    st = net.stepper(3, T, present)
    n = min(T * T, 40)  # the first positions in raster order (MADE recomputes its layers each step)
    for i in range(n):
        r, c = divmod(i, T)
        assert torch.equal(st.params(r, c)[m[:, r, c]], full[:, r, c][m[:, r, c]]), (r, c)
        st.set(r, c, x[:, :, r, c])
    if net.wave_delay is not None:
        assert torch.equal(full[m], _wavefront(net, x, present)[m])


def _flow(net):
    f = net.multiple
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 256, (2, 3, 2 * f, f), generator=g)
    parts = net.forward(x)
    flat = lambda a: torch.cat([t.flatten(1) for p in net.forward(a[0]) for t in p[:3]], 1)  # noqa: E731
    _same_across_batches_and_threads(flat, [x])
    calls = iter(parts)

    def decode(mu, k, pos):  # the decoder's parameters are the encoder's, part by part
        z, mu_e, k_e, pos_e = next(calls)
        assert torch.equal(pos, pos_e) and torch.equal(mu * pos, mu_e * pos) and torch.equal(k * pos, k_e * pos)
        return z * pos
    assert torch.equal(net.inverse(2, 2 * f, f, decode), x)


def _text(net):
    g = torch.Generator().manual_seed(3)
    data = torch.randint(0, 256, (3, 24), generator=g)

    def run(a):
        (seq,) = a
        B = seq.shape[0]
        state, prev, out = net.start(B), net.start_symbols(B), []
        for t in range(seq.shape[1]):
            state, w = net.step(state, prev)
            out.append(torch.from_numpy(w))
            prev = seq[:, t].numpy()
        return torch.stack(out, 1)
    steps = _same_across_batches_and_threads(run, [data])
    H = net.cfg.hidden  # the torch path (a GPU's) computes the same integers
    state, prev = (torch.zeros(3, H), torch.zeros(3, H, dtype=torch.int64)), torch.from_numpy(net.start_symbols(3))
    for t in range(data.shape[1]):
        state, w = net.step_torch(state, prev)
        assert torch.equal(w.cpu(), steps[:, t]), t
        prev = data[:, t]


def _audio(net):
    g = torch.Generator().manual_seed(4)
    x = torch.randint(-3000, 3000, (3, 40), generator=g).cumsum(1).clamp(-32768, 32767)
    full = _same_across_batches_and_threads(lambda a: torch.cat(net.params_full(a[0]), -1), [x])
    for start, step in ((net.start, net.step), (net.start_torch, net.step_torch)):
        state = start(3)
        for t in range(x.shape[1]):
            prev = x[:, t - 1] if t else torch.zeros(3, dtype=torch.int64)
            assert torch.equal(torch.cat(step(state, prev), -1).cpu(), full[:, t]), t


def _pyramid(net):
    """Every group's pass over tiles (one cut by the right edge, one by the bottom, one gray)
    equals each tile's alone, with 1 and 2 threads."""
    from dulzip.models.pyramid import group_inputs, groups, levels
    T = 16
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 256, (3, 3, T, T), generator=g)
    x[2] = x[2, :1]
    present = torch.ones(3, 1, T, T, dtype=torch.bool)
    present[1, ..., T - 3:] = False
    present[2, :, T - 5:] = False

    def run(a):
        return torch.cat([net.predict(group_inputs(a[0], a[1], s, p), p).flatten(1)
                          for s, p in groups(levels(T))], 1)
    _same_across_batches_and_threads(run, [x, present])


CHECKS = {("image", "autoregressive"): _autoregressive_image, ("image", "flow"): _flow,
          ("image", "pyramid"): _pyramid, ("text", "autoregressive"): _text, ("audio", "autoregressive"): _audio}


@pytest.mark.parametrize("family", __import__("dulzip.models.registry").models.registry.names())
def test_every_family_is_exact(family, monkeypatch):
    from dulzip.models import registry
    fam = registry.family(family)
    CHECKS[fam.modality, fam.codec](_shipped(family, monkeypatch))


def test_pyramid_check_on_a_random_model():
    """The pyramid family's check above, before a model of it is shipped."""
    from dulzip.exact.pyramid import ExactPyramid
    from tests.test_pyramid import CFG, small
    from dulzip.models.pyramid import export as export_pyramid
    _pyramid(ExactPyramid(export_pyramid(small(7)), asdict(CFG)))


def test_exact_matmul_turns_tf32_off_inside_only():
    """The runtimes' passes run with full-precision CUDA matmuls, and the caller's TF32 setting
    is back afterwards, after an error too (building a runtime used to switch TF32 off for
    the whole process). Off CUDA there is nothing to do."""
    mm = torch.backends.cuda.matmul
    if not hasattr(mm, "fp32_precision"):
        pytest.skip("torch < 2.9 has only the legacy allow_tf32 setting")
    before = mm.fp32_precision
    cuda = torch.device("cuda")
    try:
        mm.fp32_precision = "tf32"
        with exact_matmul(cuda):
            assert mm.fp32_precision == "ieee"
        assert mm.fp32_precision == "tf32"
        with pytest.raises(ValueError), exact_matmul(cuda):
            raise ValueError
        assert mm.fp32_precision == "tf32"
        with exact_matmul(torch.device("cpu")):
            assert mm.fp32_precision == "tf32"
    finally:
        mm.fp32_precision = before


@pytest.mark.parametrize("shape,bound", [((3, 5, 7, 9), 127), ((2, 48, 16, 1), 127), ((1, 4, 1, 1), 127),
                                         ((2, 6, 5, 4), 2 ** 20)])
def test_conv3x3_equals_window_columns(shape, bound):
    """QLinear.conv3x3 (9 matmuls on shifted views) equals the plain definition: the zero-padded
    3x3 windows as columns (F.unfold), one integer matmul, the requantization; in float32 and,
    past float32's exact range (``bound``: the inputs' magnitude), float64."""
    from dulzip.exact.layers import QLinear
    g = torch.Generator().manual_seed(sum(shape))
    C, out = shape[1], 11
    t = {"l.w": torch.randint(-127, 128, (out, C * 9), generator=g, dtype=torch.int8),
         "l.b": torch.randint(-5000, 5000, (out,), generator=g), "l.m": torch.randint(1, 3000, (out,), generator=g),
         "l.off": torch.randint(-3, 4, (out,), generator=g), "l.lo": torch.full((out,), -9000),
         "l.hi": torch.full((out,), 9000)}
    layer = QLinear.from_tensors(t, "l", bound)
    assert layer.weight.dtype == (torch.float32 if bound == 127 else torch.float64)
    x = torch.randint(-bound, bound + 1, shape, generator=g)
    cols = torch.nn.functional.unfold(x.double(), 3, padding=1).to(torch.int64)  # exact small integers
    acc = torch.einsum("ok,bkn->bon", t["l.w"].to(torch.int64), cols)
    want = layer._requantize(acc, (-1, 1)).view(shape[0], out, *shape[2:])
    assert torch.equal(layer.conv3x3(x), want)
