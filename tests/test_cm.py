"""The context-mixing kernel (dulzip.exact.cm): its tables, and how the mixers built on it keep
their state."""
from __future__ import annotations

import numpy as np

from dulzip.exact.cm import apm, counts, luts


def test_lookup_tables_match_the_correctly_rounded_ones():
    fast, slow = luts.build_float(), luts.build_decimal()
    assert luts.digest(*fast) == luts.digest(*slow) == luts.LUT_SHA256
    assert all((a == b).all() for a, b in zip(luts.tables(), slow))


def test_the_char_rnn_ships_the_kernels_tables():
    """The text mixer reads the stretch and squash tables its model ships (made at export):
    the shipped char-RNN's are the kernel's, integer for integer, as are what export makes now."""
    from dulzip import zoo
    from dulzip.exact.textmix import mixer_luts
    net, _ = zoo.load("charrnn")
    made = mixer_luts()
    for name, table in zip(("lut.stretch", "lut.squash"), luts.tables()):
        assert np.array_equal(net.luts[name].numpy().astype(np.int64), table)
        assert np.array_equal(made[name].numpy(), table)


def test_a_text_mixers_primed_apms_come_back_in_their_two_parts():
    """A model's primed state names the one APM table's two parts "apm" and "apm2"."""
    import torch
    from dulzip.exact.textmix import TextMixer
    t = {k: torch.from_numpy(v) for k, v in zip(("lut.stretch", "lut.squash"), luts.tables())}
    mix = TextMixer(t, slot_bits=16)
    rng = np.random.default_rng(0)
    mix.apm[:, 1] = rng.integers(1, 255, len(mix.apm))
    mix.apm[:, 0] = rng.integers(0, 1 << 30, len(mix.apm)) % mix.apm[:, 1]
    prime = mix.primed_state()
    assert prime["prime.apm"].shape[0] == 65536 * apm.APM_BUCKETS == len(mix.apm) // 4
    again = TextMixer(t, prime=prime, slot_bits=16)
    assert np.array_equal(again.apm, mix.apm)


def test_counts_learn_and_forget():
    c = np.zeros(3 * 64, dtype=np.uint8)
    maps = counts.map_prior(1)
    sl = counts.find(c, 5, 7)
    assert sl == 5 and c[3 * 5 + 2] == 7
    for _ in range(40):
        counts.learn_slot(c, maps, 0, sl, 1)
    assert c[3 * sl] == 0 and 0 < c[3 * sl + 1] <= counts.COUNT_LIMIT
    counts.learn_slot(c, maps, 0, sl, 0)
    assert c[3 * sl] == 1 and c[3 * sl + 1] < counts.COUNT_LIMIT  # the other count forgets
    assert counts.find(c, sl ^ 16, 7) == sl  # found in the neighbouring bucket


def test_borrowed_tuples_are_views_of_the_same_arrays():
    """A borrowed tuple's arrays read and write the originals' data, with their shapes and
    strides, and its other members are untouched: the pyramid mixer codes through them."""
    from numba import njit

    from dulzip.exact.cm.state import borrowed

    @njit
    def use(t):
        b = borrowed(t)
        a, m, k = b
        for i in range(a.shape[0]):
            a[i] += k
        m[1, 1] = 7
        return a.sum() + m[:, 1].sum() + b[2]

    a, m = np.arange(5, dtype=np.int64), np.zeros((3, 4), dtype=np.int32)[:, ::2]
    assert use((a, m, 3)) == 25 + 7 + 3
    assert a.tolist() == [3, 4, 5, 6, 7] and m[1, 1] == 7 and m.sum() == 7
