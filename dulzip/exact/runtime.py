"""What the codecs ask of an exact runtime, per modality: one typed interface each.

A family's runtime (``Family.runtime`` in its model file) implements the Protocol of its
modality and declares the capabilities as class attributes, so that kinds/ and codecs/ read them
directly instead of probing with defaults: a runtime that lacks one fails loudly at its first
use and in type checking, rather than silently taking another family's default. The methods are
the ones the codecs call; their exact array shapes are documented on the shipped runtimes.

Only annotations here: importing this module loads nothing (``dulzip.kinds`` names it under
TYPE_CHECKING).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np
    import torch


class Runtime(Protocol):
    """Every runtime: built as ``Class(tensors, config_dict, device)``."""
    modality: Literal["image", "text", "audio"]
    cfg: Any  # the family's config dataclass
    device: torch.device


class ImageRuntime(Runtime, Protocol):
    codec: Literal["autoregressive", "flow", "pyramid"]  # which image codec runs it (kinds.image.image_codec)
    gray_only: bool  # codes one-channel images only
    fixed_tile: int | None  # the only tile size it codes, or None for any
    default_tile: int  # the tile when neither the model nor the options fix one


class AutoregressiveImageRuntime(ImageRuntime, Protocol):
    """codecs.image: head parameters of every position at once (encoder) or one position at a
    time (decoder), equal bit for bit (tests/test_exact.py)."""
    wave_delay: int | None  # the wavefront decode order's delay between rows, None: raster only
    luts: dict[str, torch.Tensor]

    def full_pass(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor: ...

    def stepper(self, B: int, T: int, present: torch.Tensor) -> Any: ...  # .params(r, c), .set(r, c, pixel)


class FlowRuntime(ImageRuntime, Protocol):
    """codecs.flow: the integer flow and its exact inverse."""
    multiple: int  # tile sides are multiples of this
    tables: tuple

    def forward(self, x: torch.Tensor) -> list: ...

    def inverse(self, B: int, H: int, W: int, *args: Any) -> torch.Tensor: ...


class PyramidRuntime(ImageRuntime, Protocol):
    """codecs.pyramid: one network pass per group of the multiscale order (the order's helpers
    are in dulzip.models.pyramid)."""
    wave_delay: None
    tables: tuple  # the flow's integer scale tables (flat, start, radius)
    prime: dict[str, torch.Tensor]  # the mixer's starting state the model ships with (may be empty)

    def predict(self, x: torch.Tensor, phase: int) -> torch.Tensor: ...


class TextRuntime(Runtime, Protocol):
    """codecs.text: B independent byte streams, stepped together."""
    luts: dict[str, torch.Tensor]
    prime: dict[str, torch.Tensor]  # the adaptive state the model ships with (may be empty)

    def start(self, B: int) -> Any: ...

    def start_symbols(self, B: int) -> np.ndarray: ...

    def step(self, state: Any, prev: np.ndarray) -> tuple[Any, np.ndarray]: ...

    n_features: int  # the width of features(): what the text mixer's online layer learns from

    def features(self, state: Any) -> np.ndarray: ...  # (B, n_features) int32 of a step's state


class AudioRuntime(Runtime, Protocol):
    """codecs.audio: a batched pass over whole segments (encoder) and sample steps (decoder)."""
    luts: dict[str, torch.Tensor]

    def params_full(self, x: torch.Tensor, seg: torch.Tensor | None = None) -> Any: ...

    def start(self, B: int, seg: Any = None) -> dict: ...

    def step(self, state: dict, prev: Any) -> tuple: ...
