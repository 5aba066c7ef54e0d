"""The CPU fast paths of the audio model compute the reference integers: the numba CDF tables
equal the torch ones, and the numba decode step equals the torch step and the encoder's batched
pass, for any batch size and thread count."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dulzip.codecs.audio import AudioCoder, AudioLayout
from dulzip.exact.wavenet import ExactWaveNet
from dulzip.formats.wav import parse_wav
from dulzip.heads.audio import (LOGIT_MAX, LOGIT_MIN, LS_MAX, LS_MIN, audio_coarse_table, audio_cum, audio_cum_cpu,
                                audio_fine_table, audio_luts)
from dulzip.models.wavenet import WaveNet, WaveNetConfig, export
from tests.conftest import DATA

SHORT = WaveNetConfig(cycle=6)  # dilations 1..32, 1..8: every queue wraps within 200 steps


def _net(seed: int, scale: float, cfg: WaveNetConfig = SHORT) -> ExactWaveNet:
    """An exported WaveNet with its weights moved off the init by noise of ``scale`` (0.3
    saturates activations and head outputs)."""
    torch.manual_seed(seed)
    m = WaveNet(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn_like(p))
    return ExactWaveNet(export(m), m.cfg.__dict__)


def _speech() -> np.ndarray:
    return parse_wav((DATA / "asterisk-confbridge-participants.wav").read_bytes()).samples[:, 0].astype(np.int64)


def _signals(L: int) -> torch.Tensor:
    """16 segments (16, L) of levels: speech, and extremes (noise, clipping, silence, jumps)."""
    x = _speech()
    g = torch.Generator().manual_seed(0)
    rows = [torch.from_numpy(x[i * 700:i * 700 + L].copy()) for i in range(10)]
    rows += [-rows[0] - 1, torch.randint(-32768, 32768, (L,), generator=g), torch.full((L,), 32767),
             torch.full((L,), -32768), torch.zeros(L, dtype=torch.int64),
             torch.where(torch.arange(L) % 3 == 0, 32767, -32768)]
    return torch.stack(rows)


def _random_params(N: int, K: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixture parameters over their whole ranges and beyond the mean clamp, with edge cases."""
    logits = torch.randint(LOGIT_MIN, LOGIT_MAX + 1, (N, K), generator=g)
    logits[: N // 4] //= 64  # components of similar weight
    logits[N // 4: N // 3, 0] = LOGIT_MAX  # one component alone (the others weigh 0)
    logits[N // 4: N // 3, 1:] = LOGIT_MIN
    mu = torch.randint(-(1 << 20), 1 << 20, (N, K), generator=g)
    mu[N // 2:] //= 64
    edge = torch.tensor([1 << 19, -(1 << 19), (1 << 19) + 1, -(1 << 19) - 1, 0, -4, 4])
    mu[::5, 0] = edge[torch.randint(0, len(edge), (len(mu[::5]),), generator=g)]
    log_s = torch.randint(LS_MIN, LS_MAX + 1, (N, K), generator=g)
    log_s[::7] = LS_MIN
    log_s[1::7] = LS_MAX
    return logits, mu, log_s


@pytest.mark.parametrize("K", [1, 4, 8])
def test_numba_cum_equals_torch(K):
    """audio_cum_cpu and the CPU tables give the integers of the torch reference, bit for bit."""
    luts = audio_luts()
    g = torch.Generator().manual_seed(K)
    p = _random_params(3000, K, g)
    t = torch.randint(0, 65537, (3000, 40), generator=g)
    t[:, :6] = torch.tensor([0, 1, 32767, 32768, 65535, 65536])
    assert np.array_equal(audio_cum_cpu(*(v.numpy() for v in p), t.numpy(), luts), audio_cum(*p, t, luts).numpy())

    p = tuple(v[:600] for v in p)
    high = torch.randint(0, 256, (600,), generator=g)
    high[:2] = torch.tensor([0, 255])
    coarse = audio_coarse_table(*p, luts)
    fine = audio_fine_table(*p, high, luts)
    steps = torch.arange(257)
    assert torch.equal(coarse, torch.diff(audio_cum(*p, (steps * 256).expand(600, -1), luts), dim=1))
    assert torch.equal(fine, torch.diff(audio_cum(*p, high[:, None] * 256 + steps, luts), dim=1))
    assert (coarse >= 1).all() and (coarse.sum(1) == 2 ** 31).all() and (fine >= 1).all()
    assert torch.equal(fine.sum(1), coarse.gather(1, high[:, None])[:, 0])


def _run(step, state, x: torch.Tensor, as_numpy: bool = False) -> list[torch.Tensor]:
    """Decode steps over segments x (B, L) -> (logits, mu, log_s) each (B, L, K)."""
    prev = torch.zeros(x.shape[0], dtype=torch.int64)
    out = []
    for t in range(x.shape[1]):
        out.append(step(state, prev.numpy() if as_numpy else prev))
        prev = x[:, t]
    return [torch.stack(v, dim=1) for v in zip(*out)]


@pytest.mark.parametrize("threads", [1, 2])
def test_fast_step_equals_torch_step_and_full_pass(threads):
    """The numba step (batches of 1, 3 and 16 segments; prev a tensor or a numpy array), the
    torch step and the batched pass agree at every step."""
    torch.set_num_threads(threads)
    x = _signals(200)
    for seed, scale in ((0, 0.05), (1, 0.3)):
        net = _net(seed, scale)
        full = net.params_full(x)
        ref = _run(net.step_torch, net.start_torch(16), x)
        assert all(torch.equal(v, w) for v, w in zip(ref, full)), seed
        for rows in ([3], [0, 11, 13], list(range(16))):
            fast = _run(net.step, net.start(len(rows)), x[rows], as_numpy=len(rows) == 3)
            assert all(torch.equal(u, w[rows]) for u, w in zip(fast, full)), (seed, rows)


def test_fast_step_over_the_full_receptive_field():
    """With the default dilations (up to 512) the numba step equals the batched pass past the
    point where every queue has wrapped."""
    net = _net(2, 0.1, WaveNetConfig())
    x = _signals(1100)[[0, 11, 12]]
    for u, w in zip(_run(net.step, net.start(3), x), net.params_full(x)):
        assert torch.equal(u, w)


@pytest.mark.parametrize("bits", [16, 8])
def test_decode_block_round_trip(bits):
    """Blocks decode through the numba step and tables, segments ending at different steps."""
    x = _speech()[:2500]
    if bits == 8:
        x = (x >> 8) * 256 + 128  # 8-bit samples sit at 256 v + 128
    coder = AudioCoder(_net(0, 0.05), AudioLayout(streams=7, seg_min=64), bits)
    assert list(coder.layout.segments(len(x))) == [358] * 6 + [352]
    s = coder.encode_block(x, allow_zstd=False)
    assert s.coder == "model"
    assert np.array_equal(coder.decode_block(s, len(x)), x)
