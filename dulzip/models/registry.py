"""Architectures by name. A shipped model's card names its architecture; everything else
looks models up by string, never by position."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

ARCHITECTURES: dict[str, "Architecture"] = {}
UNITS = {"image": "bits/sub-pixel", "text": "bits/byte", "audio": "bits/sample"}  # a modality's bits per dimension


@dataclass(frozen=True)
class Architecture:
    name: str
    modality: str  # image | text | audio
    runtime: Callable  # (tensors, config, device) -> exact runtime


def register(name: str, modality: str):
    def deco(factory: Callable) -> Callable:
        ARCHITECTURES[name] = Architecture(name, modality, factory)
        return factory
    return deco


@register("pixelcnn", "image")
def _pixelcnn(tensors, config, device):
    from dulzip.exact.pixelcnn import ExactPixelCNN
    return ExactPixelCNN(tensors, config, device)


@register("made", "image")
def _made(tensors, config, device):
    from dulzip.exact.made import ExactMADE
    return ExactMADE(tensors, config, device)


@register("charrnn", "text")
def _charrnn(tensors, config, device):
    from dulzip.exact.charrnn import ExactCharRNN
    return ExactCharRNN(tensors, config, device)


@register("wavenet", "audio")
def _wavenet(tensors, config, device):
    from dulzip.exact.wavenet import ExactWaveNet
    return ExactWaveNet(tensors, config, device)


@register("idf", "image")
def _idf(tensors, config, device):
    from dulzip.exact.idf import ExactIDF
    return ExactIDF(tensors, config, device)
