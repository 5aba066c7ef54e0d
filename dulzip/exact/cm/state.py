"""What the kernel's functions take: a mixer's adaptive state and a step's scratch, each one
namedtuple of numpy arrays (numba passes them to njit functions as one argument and reads
their fields as if they were separate ones).

Read each field into a local once per function, before its loops (``x, weights = sc.x,
S.weights``): numba takes a reference on an array each time it reads one out of a tuple, and
inside a per-bit loop those reference counts cost the text decoder about a quarter of its
mixing time (measured: 2.2 s -> 1.8 s of kernel time on 196 KB of text). Passing a tuple to
an inlined function takes a reference on every array in it, and releases them at its end (an
atomic add each): a loop that calls the kernel per bit with (S, sc) pays that per bit. An
njit entry that holds its tuples for the whole call can drop those counts with
:func:`borrowed` (the pyramid mixer: 40% of its time was reference counting; half the time
with them dropped, the same bits).

Calls from Python take plain tuples (``tuple(state)``, made once) and name them again inside
njit (``MixerState(*S)``): numba types a tuple argument in C but a namedtuple in Python, 7.5 us
a call against 3-4 us, which a decoder pays at every call (see the ``_entry`` functions of
textmix and imagemix).

MixerState (lives across the symbols of a file; its arrays are updated in place):

- counts: uint8 (slots * 3,), the shared hash table of (n0, n1, check) slots (:mod:`.counts`)
- maps: int64 (n_ctx * 1024, 2), the (n0, n1) -> probability maps, one per context kind
- node_hash: int64 (256,), where each tree node sits among a context's slots
- ctx_on: int64 (n_ctx,), 1 for a context in use, 0 for one switched off (measurements)
- on: int64 (k,), the mixer's own switches (what each means is the mixer's business)
- weights: int64 (n_sets, n_inputs), the first layer's weight sets (16 fractional bits)
- weights_f: int64 (n_sets_f, n_mix), the second layer's weight sets
- apm: int32 (rows, 2), every APM context's rows (:mod:`.apm`)
- stretch, squash: int64, the tables of :mod:`.luts`
- lr, lr_f: the two layers' learning rates (a weight moves by lr * x * err / 2**18 per bit)

Scratch (one step of n elements coded together; row k is element k):

- node: int64 (n,), the node of each element's binary tree (1 at a symbol's start; the kernel
  appends each coded bit)
- base, chk: int64 (n, n_ctx), each context's slot base and check byte, set by the mixer's own
  context hashing once per symbol
- slots: int64 (n, n_ctx), the slot each context read at the current node
- x: int64 (n, n_inputs), the mixer inputs (stretched probabilities, 1/256 logit)
- sets: int64 (n, n_mix), the weight set (row of ``weights``) each first-layer mixer uses
- fsel: int64 (n,), the second layer's weight set (row of ``weights_f``)
- dots: int64 (n, n_mix + 1), the first layer's logits, then the second layer's
- rows: int64 (n, n_rows), the APM rows that learn the coded bit
- p: int64 (n,), the probability (1/65536) that the bit is 1
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from numba import types
from numba.core import cgutils
from numba.core.typing.typeof import typeof_impl
from numba.extending import intrinsic


class _Typed:
    """A namedtuple whose numba type is worked out once per instance (kept in its __dict__): numba
    types a plain namedtuple argument field by field at every call, 10 us and more for these,
    which the decoders pay at every bit (their fields are arrays that keep their types)."""


def _typeof_once(val, c):
    tp = val.__dict__.get("_numba_type")
    if tp is None:
        tp = val.__dict__["_numba_type"] = typeof_impl.dispatch(tuple)(val, c)
    return tp


class MixerState(_Typed, namedtuple("MixerState", ["counts", "maps", "node_hash", "ctx_on", "on", "weights",
                                                   "weights_f", "apm", "stretch", "squash", "lr", "lr_f"])):
    """A mixer's adaptive state (see the module's docstring)."""


class Scratch(_Typed, namedtuple("Scratch", ["node", "base", "chk", "slots", "x", "sets", "fsel", "dots", "rows",
                                             "p"])):
    """A step's scratch (see the module's docstring)."""


def typed_namedtuple(name: str, fields: list[str], module: str) -> type:
    """A namedtuple class for a mixer's own scratch, typed once per instance as MixerState is;
    bind it to ``name`` in ``module`` (numba's cache finds the class there)."""
    cls = type(name, (_Typed, namedtuple(name, fields)), {"__doc__": f"{name}{tuple(fields)}", "__module__": module})
    typeof_impl.register(cls)(_typeof_once)
    return cls


typeof_impl.register(MixerState)(_typeof_once)
typeof_impl.register(Scratch)(_typeof_once)


def new_scratch(n: int, n_ctx: int, n_inputs: int, n_mix: int, n_rows: int) -> Scratch:
    """Scratch for n elements (its contents are set by the mixer before use)."""
    def e(*shape):
        return np.empty(shape, dtype=np.int64)
    return Scratch(node=np.ones(n, dtype=np.int64), base=e(n, n_ctx), chk=e(n, n_ctx), slots=e(n, n_ctx),
                   x=e(n, n_inputs), sets=e(n, n_mix), fsel=np.zeros(n, dtype=np.int64), dots=e(n, n_mix + 1),
                   rows=e(n, n_rows), p=e(n))


@intrinsic
def borrowed(typingctx, tup):
    """``tup`` (a tuple or namedtuple, in njit code) with its arrays as borrowed views: the same
    data, shape and strides, without the reference (meminfo) numba counts at every pass of an
    array to a function, which is then a null test instead of an atomic add. Only for tuples
    that outlive every use of the views: the arguments of the njit function that borrows
    them (its caller holds them until it returns); never one made inside it, nor a view that
    is returned or stored."""
    if not isinstance(tup, types.BaseTuple):
        return None

    def codegen(context, builder, sig, args):
        out = args[0]
        for i, ty in enumerate(tup):
            if isinstance(ty, types.Array):
                ary = context.make_array(ty)(context, builder, value=builder.extract_value(out, i))
                ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
                ary.parent = cgutils.get_null_value(ary.parent.type)
                out = builder.insert_value(out, ary._getvalue(), i)
        return out
    return tup(tup), codegen
