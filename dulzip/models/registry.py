"""Model families by name. A family is declared once, as ``FAMILY = Family(...)`` in its own model
file ``dulzip/models/<x>.py``; the registry finds the declarations by scanning that package, so a
new family is its two files (float module, exact runtime) and nothing else. A shipped model's card
names its family; everything else looks families up by string, never by position.

The scan reads the declaration's literal ``name``, ``modality``, ``codec`` and ``summary`` from
the source, without running it: choosing a codec, ``dulzip models``, ``dulzip train --help`` and
error messages know a family without importing torch (see tests/test_startup.py). Anything more (the runtime, training) imports
the model file, once, on first use.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from dulzip.models import n_params

UNITS = {"image": "bits/sub-pixel", "text": "bits/byte", "audio": "bits/sample"}  # a modality's bits per dimension
MODALITIES = tuple(UNITS)
CODECS = ("autoregressive", "flow", "pyramid")  # how an image family's codec runs it (kinds.image.image_codec)
STATIC = ("name", "modality", "codec", "summary")  # the fields the scan reads from the source: literal strings
STATIC_DEFAULTS = "train_defaults"  # and this one, a literal dict, where the family gives it


@dataclass(frozen=True)
class Family:
    """Everything dulzip needs of a model family, in one place.

    ``runtime`` is "module:Class" of the exact integer runtime, built as
    ``Class(tensors, config_dict, device)`` when a model is loaded; imported then, not before.
    ``options`` makes the family's config from ``dulzip train``'s options (a dict of every option
    by name, those not given taken from ``train_defaults``, else None). ``sampler`` makes
    the training data source, ``(TrainConfig, config, folder, files) -> dulzip.train.data.Source``
    (``files``: the folder's training files, :class:`dulzip.train.files.Item`): a "module:function"
    (the shipped ones are in dulzip.train.data) or a function that imports its data code inside,
    so that declaring a family never loads training code. ``train_defaults``: the ``dulzip train``
    options this family trains with where the command line does not say (batch, lr, crop, seq,
    warmup, and its shape: channels, layers, hidden...: what its shipped model was trained
    with); a literal dict, read without importing the family (``dulzip train --help`` lists them).
    """
    name: str
    modality: str  # image | text | audio
    runtime: str
    config: type
    module: Callable  # config -> float module (with .loss(x, gray) and .cfg)
    export: Callable  # float module -> integer tensors
    options: Callable  # dict of dulzip train's options -> config
    sampler: str | Callable
    summary: str = ""  # what it models, for dulzip train --help
    codec: str = "autoregressive"
    n_params: Callable = n_params
    train_defaults: Mapping = field(default_factory=dict)  # dulzip train options the family sets otherwise
    # "module:function" (runtime, training images) -> the adaptive state the model ships ("prime.*"
    # tensors), run at export on a sample of the training folder; None: the family ships none
    primer: str | Callable | None = None

    def __post_init__(self):
        if self.modality not in MODALITIES or self.codec not in CODECS:
            raise ValueError(f"family {self.name}: modality {self.modality!r}, codec {self.codec!r}")

    def load_runtime(self, tensors: dict, config: dict, device="cpu"):
        """The exact runtime of these weights (an :mod:`dulzip.exact.runtime` Protocol's)."""
        return _resolve(self.runtime)(tensors, config, device)

    def prime(self, runtime, images: list) -> dict:
        """The ``primer``'s starting state for these weights (their exact runtime) and images."""
        return _resolve(self.primer)(runtime, images)

    def make_sampler(self, tcfg, config, folder, files):
        """The training data source of ``files`` (under ``folder``) for this family."""
        return _resolve(self.sampler)(tcfg, config, folder, files)


def _resolve(ref: str | Callable) -> Callable:
    """A "module:name" reference, imported now; a callable as it is."""
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Declared:
    """What the scan knows of a family without importing its model file."""
    name: str
    modality: str
    codec: str
    summary: str
    module: str  # the model file's module name, imported for the full Family
    train_defaults: dict = field(default_factory=dict)


_declared: dict[str, Declared] | None = None
_loaded: dict[str, Family] = {}


def _read(path: Path, module: str) -> Declared | None:
    """The literal fields of ``FAMILY = Family(...)`` in a model file, or None without one."""
    src = path.read_text(encoding="utf-8")
    at = src.find("\nFAMILY = Family(")
    if at < 0:
        return None
    stmt = ast.parse(src[at + 1:]).body[0]  # the declaration and whatever follows it
    kw = {k.arg: k.value for k in stmt.value.keywords}
    try:
        vals = {k: ast.literal_eval(kw[k]) for k in (*STATIC, STATIC_DEFAULTS) if k in kw}
    except ValueError:
        raise ValueError(f"{path}: the FAMILY's {', '.join(STATIC)} must be literal strings, "
                         f"its {STATIC_DEFAULTS} a literal dict") from None
    return Declared(vals["name"], vals["modality"], vals.get("codec", "autoregressive"), vals.get("summary", ""), module,
                    dict(vals.get(STATIC_DEFAULTS, {})))


def declared() -> dict[str, Declared]:
    """Every family in the dulzip.models package, by name (scanned once; :func:`rescan` again)."""
    global _declared
    if _declared is None:
        import dulzip.models as pkg
        found: dict[str, Declared] = {}
        for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            if m.ispkg or m.name.startswith("_") or m.name == "registry":
                continue
            path = Path(m.module_finder.path) / f"{m.name}.py"
            d = _read(path, f"{pkg.__name__}.{m.name}") if path.is_file() else None
            if d is not None:
                if d.name in found:
                    raise ValueError(f"two families named {d.name!r}: {found[d.name].module}, {d.module}")
                found[d.name] = d
        _declared = found
    return _declared


def rescan() -> None:
    """Forget the scan (a test that adds a model file to the package)."""
    global _declared
    _declared = None
    _loaded.clear()


def names() -> list[str]:
    return list(declared())


def modality(name: str) -> str:
    """A family's modality, without importing it."""
    return declared()[name].modality


def family(name: str) -> Family:
    """The full declaration: imports the family's model file (torch)."""
    if name not in _loaded:
        d = declared()[name]
        fam = importlib.import_module(d.module).FAMILY
        if tuple(getattr(fam, k) for k in STATIC) != tuple(getattr(d, k) for k in STATIC) \
                or dict(fam.train_defaults) != d.train_defaults:
            raise ValueError(f"{d.module}: FAMILY differs from what the scan read")
        _loaded[name] = fam
    return _loaded[name]


def family_of(config) -> Family:
    """The family whose config ``config`` is."""
    return next(f for f in map(family, names()) if isinstance(config, f.config))


class _Families(Mapping):
    """name -> Family, importing a family on first lookup (``ARCHITECTURES[card["architecture"]]``)."""

    def __getitem__(self, name: str) -> Family:
        if name not in declared():
            raise KeyError(name)
        return family(name)

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(declared())


ARCHITECTURES: Mapping[str, Family] = _Families()
