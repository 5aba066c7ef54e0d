"""The mixing network: first-layer logistic mixers with selectable weight sets, a second layer
mixing their outputs, and the one learning step that updates every table of a mixer.

Each of the n_mix first-layer mixers takes the dot product of all inputs with the weight set
(a row of ``S.weights``) the mixer chose for element k (``sc.sets[k, mi]``): so a mixer is
specialised by a context of its own (the node, the previous byte, ...) without another input.
The second layer weighs their logits by the set ``sc.fsel[k]`` of ``S.weights_f``. Dot products
carry 16 fractional bits and are clamped to +-ST_MAX; weights learn by gradient steps on coding
cost, err = bit - p (1/65536), in integers, in a fixed order: encoder and decoder compute the
same weights bit for bit.
"""
from __future__ import annotations

from numba import njit

from dulzip.exact.cm.apm import APM_LIMIT
from dulzip.exact.cm.counts import learn_slot
from dulzip.exact.cm.luts import ST_MAX
from dulzip.exact.cm.maps import learn_row


@njit(cache=True)
def layer1(S, sc, k):
    """The first layer's logits of element k into ``sc.dots[k, :n_mix]``."""
    n_in = sc.x.shape[1]
    for mi in range(sc.sets.shape[1]):
        ws = sc.sets[k, mi]
        dot = 0
        for i in range(n_in):
            dot += sc.x[k, i] * S.weights[ws, i]
        sc.dots[k, mi] = min(max(dot >> 16, -ST_MAX), ST_MAX)


@njit(cache=True)
def layer2(S, sc, k):
    """The second layer's logit of element k (from the first layer's, weight set ``sc.fsel[k]``)."""
    fs = sc.fsel[k]
    dot = 0
    for mi in range(sc.sets.shape[1]):
        dot += sc.dots[k, mi] * S.weights_f[fs, mi]
    return min(max(dot >> 16, -ST_MAX), ST_MAX)


@njit(cache=True)
def mix(S, sc, k, second):
    """Both layers for element k (``second`` 0: the first mixer's logit stands for the second
    layer's, which then still learns); the final logit, also kept in ``sc.dots[k, n_mix]``."""
    layer1(S, sc, k)
    dot = layer2(S, sc, k) if second else sc.dots[k, 0]
    sc.dots[k, sc.sets.shape[1]] = dot
    return dot


@njit(cache=True)
def learn(S, sc, k, b):
    """Element k's coded bit b teaches everything that predicted it: the first layer's weight
    sets, the second layer's, every context's slot and map, and the APM rows in ``sc.rows[k]``;
    then b is appended to the element's node."""
    n_mix = sc.sets.shape[1]
    n_in = sc.x.shape[1]
    lr = S.lr
    for mi in range(n_mix):
        ws = sc.sets[k, mi]
        err = (b << 16) - S.squash[sc.dots[k, mi] + ST_MAX]
        for i in range(n_in):
            S.weights[ws, i] += (sc.x[k, i] * err * lr) >> 18
    err = (b << 16) - S.squash[sc.dots[k, n_mix] + ST_MAX]
    fs = sc.fsel[k]
    for mi in range(n_mix):
        S.weights_f[fs, mi] += (sc.dots[k, mi] * err * S.lr_f) >> 18
    for c in range(sc.slots.shape[1]):
        learn_slot(S.counts, S.maps, c, sc.slots[k, c], b)
    for r in range(sc.rows.shape[1]):
        learn_row(S.apm, sc.rows[k, r], b, APM_LIMIT)
    sc.node[k] = 2 * sc.node[k] + b
