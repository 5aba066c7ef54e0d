"""Text: the model choice and the layout a text file records (blocks, streams, the text
mixer's table size and version). Text is coded block by block as a stream, by
:func:`dulzip.api.compress_stream` and :func:`dulzip.api.decompress_stream`, with
:class:`dulzip.codecs.text.TextCoder`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dulzip.errors import FormatError
from dulzip.formats import sniff
from dulzip.kinds.common import missing, modality

if TYPE_CHECKING:
    from dulzip.codecs.text import Layout
    from dulzip.options import Options

DEFAULT_TEXT_MODEL = "charrnn"


def model_for(head: bytes, opts: Options) -> str | None:
    """The text model for an input starting with ``head``: the one named if it is a text model
    (unknown names are refused), the default one for text-like input under 'auto', else None."""
    from dulzip import zoo
    if opts.model == "zstd":
        return None
    if opts.model != "auto":
        return opts.model if modality(opts.model) == "text" else None
    if sniff.looks_like_png(head) or not sniff.looks_like_text(head):
        return None
    if DEFAULT_TEXT_MODEL not in zoo.cards():
        missing("text", DEFAULT_TEXT_MODEL)
        return None
    return DEFAULT_TEXT_MODEL


def layout_header(layout: Layout) -> dict:
    return {"block": layout.block, "max_streams": layout.streams, "seg_min": layout.seg_min,
            "slot_bits": layout.slot_bits, "mixer": layout.mixer}


def layout_of(h: dict) -> Layout:
    from dulzip.codecs.text import Layout
    from dulzip.exact.textmix import SLOT_BITS, VERSIONS
    lay = h["layout"]  # its fields' types and ranges checked by dulzip.schema with the header
    layout = Layout(block=lay["block"], streams=lay["max_streams"], seg_min=lay["seg_min"],
                    slot_bits=lay["slot_bits"], mixer=lay.get("mixer", 1))
    if layout.mixer not in VERSIONS:
        raise FormatError(f"this file's text was coded by version {layout.mixer} of the text mixer; this dulzip "
                          f"decodes versions {', '.join(map(str, VERSIONS))}: decode it with the dulzip version "
                          "that wrote it")
    if min(layout.block, layout.streams, layout.seg_min) < 1 or not 12 <= layout.slot_bits <= SLOT_BITS:
        raise FormatError("the .dlz header has an invalid text layout")
    return layout
