"""The float models (training side): one module per family, each ending in its ``FAMILY``
declaration (found by registry.py, which names them)."""
from __future__ import annotations


def n_params(model) -> int:
    """Trainable parameters of a float module (a family whose weights are partly masked, as
    MADE's, counts its own way)."""
    return sum(p.numel() for p in model.parameters())
