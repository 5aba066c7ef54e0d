"""One context-mixing kernel (PAQ-style, integers only) shared by dulzip's mixers.

dulzip's mixers (:mod:`dulzip.exact.textmix` around the char-RNN, :mod:`dulzip.exact.imagemix`
around the PixelCNN and MADE) code a symbol as 8 binary decisions, high bit first, each with a
probability mixed from a network's prediction and context models that learn from the file
being coded. What they have in common lives here, once:

- :mod:`.luts`: the stretch (probability -> logit) and squash tables, checked by a sha256;
- :mod:`.maps`: (hits, total) rows read as probabilities (``ratio``) and their update;
- :mod:`.counts`: bit counts (n0, n1) per (context, node) in one shared hash table, and the
  adaptive maps turning them into probabilities (``context_inputs``);
- :mod:`.apm`: APMs, a probability refined per context in 33 steps of its logit;
- :mod:`.mixer`: the two mixing layers with selectable weight sets, and ``learn``;
- :mod:`.state`: ``MixerState`` and ``Scratch``, the namedtuples every kernel function takes.

A mixer built on this kernel is "context hashes + weight-set choices + network inputs":

1. State: a ``MixerState`` (:mod:`.state`): ``counts.new_counts(slot_bits)``,
   ``counts.map_prior(n_ctx)``, ``counts.node_offsets(slot_bits)``, weights (start by trusting
   the network: its column 1 << 16), ``apm.new_table(squash, n_apm_contexts)``,
   ``luts.tables()``, learning rates. A ``Scratch`` per step size: ``state.new_scratch(n, ...)``.
2. Once per symbol, its own njit code hashes each context c of element k into
   ``sc.base[k, c]`` (a 64-bit hash's top slot_bits - 4 bits, shifted left by 4: a bucket of 16
   slots) and ``sc.chk[k, c]`` (8 other bits of the hash), and sets ``sc.node[k] = 1``.
3. At each bit, for each element k, its own njit ``predict``: the network's input
   ``sc.x[k, 0]`` (stretch of the node's 1-probability), ``counts.context_inputs(S, sc, k,
   node, 1)`` (the context inputs; returns which were seen), any inputs of its own (APM reads,
   a match model, a bias of 256), the weight sets ``sc.sets[k, :]`` and ``sc.fsel[k]``, the APM
   rows to learn ``sc.rows[k, :]``; then ``mixer.mix(S, sc, k, 1)`` gives the logit, and
   ``S.squash[logit + ST_MAX]`` (optionally refined by APMs) the probability ``sc.p[k]``.
4. After the bit is coded: ``mixer.learn(S, sc, k, bit)`` for each k in a fixed order (the
   same on both sides), plus whatever tables of its own the mixer keeps.

Every function is ``njit(cache=True)`` and integer-only; numba compiles it once per
namedtuple type, and inlines the small helpers into the mixer's loops.
"""
from dulzip.exact.cm.luts import ST_MAX
from dulzip.exact.cm.state import MixerState, Scratch, new_scratch

__all__ = ["ST_MAX", "MixerState", "Scratch", "new_scratch"]
