"""The range coder: round trips, and coded size within 1% of the model's own -log2 p."""
from __future__ import annotations

import numpy as np
import torch

from dulzip.coding.rangecoder import RangeDecoder, RangeEncoder
from dulzip.heads.logistic import mixture_luts, mixture_pmf


def test_coded_size_close_to_model_estimate():
    luts = mixture_luts()
    g = torch.Generator().manual_seed(1)
    N, K = 20000, 3
    logits = torch.randint(-40, 40, (N, K), generator=g)
    mu = torch.randint(0, 4080, (N, K), generator=g)
    ls = torch.randint(-40, 120, (N, K), generator=g)
    pmf = mixture_pmf(logits, mu, ls, luts)
    u = torch.randint(0, 1 << 20, (N, 1), generator=g)
    sym = (pmf.cumsum(1) <= u).sum(1)
    est = -torch.log2(pmf[torch.arange(N), sym].double() / (1 << 20)).sum().item()
    enc = RangeEncoder()
    for i in range(0, N, 3000):
        enc.encode(sym[i:i + 3000].numpy(), pmf[i:i + 3000].numpy())
    data = enc.finish()
    assert abs(8 * len(data) - est) / est < 0.01
    dec = RangeDecoder(data)
    out = np.concatenate([dec.decode(pmf[i:i + 777].numpy()) for i in range(0, N, 777)])
    assert np.array_equal(out, sym.numpy())


def test_empty_stream():
    enc = RangeEncoder()
    enc.encode(np.zeros(0, np.int32), np.zeros((0, 4)))
    data = enc.finish()
    assert RangeDecoder(data).decode(np.zeros((0, 4))).size == 0
