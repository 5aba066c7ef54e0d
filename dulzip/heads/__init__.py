"""Probability heads: per family of models, everything that turns a network's head outputs
into the probability of a symbol, in one module.

* :mod:`dulzip.heads.logistic`: the images' discretized logistic mixture (PixelCNN, MADE);
* :mod:`dulzip.heads.audio`: the audio samples' discretized logistic mixture (WaveNet).

Each holds its fixed-point grids, the float side that training uses (fake quantization of the
head outputs, the loss in bits), the lookup tables that export ships with the weights, and the
integer side that the exact runtimes and codecs run (head integers -> integer PMF tables). The
float loss and the integer tables model the same distribution on the same grids, so keeping
them side by side keeps them in step.

Dependencies point one way: the models (training, export), the exact runtimes and the codecs
import a head; a head imports only torch, numpy/numba, the fixed-point primitives of
:mod:`dulzip.exact.quant` and the generic table arithmetic of :mod:`dulzip.coding.tables`,
never :mod:`dulzip.models` or :mod:`dulzip.codecs` (no import cycle, not even inside a function).

The integer discrete flow's prior stays in :mod:`dulzip.models.idf`: its grids, its float loss
and its tables (built once at export, shipped as weights) already share that one file, and
they are entangled with the flow's own ranges (MU_CLAMP, Z_LIMIT check the flow's bijection).
"""
