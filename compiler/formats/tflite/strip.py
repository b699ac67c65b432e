"""``--strip``: drop from a ``.tflite`` what TFLite-Micro never reads.

TFLite-Micro's interpreter uses operator codes, tensors (type, shape, buffer,
quantization), operators and the subgraph's inputs/outputs; it never reads tensor or
subgraph names, the description, metadata or SignatureDefs (TFLite-Micro's own model
transforms strip the strings for the same reason). ``strip_model`` blanks those; every
number the runtime reads is kept, so outputs are unchanged -- ``check_stripped`` proves
the structural half of that claim on every stripped model (the tests run both files in
TFLite-Micro). LiteRT still loads a stripped model, but without signatures.
"""

from __future__ import annotations

from .flatbuffer import TflModel, copy_model, normalize_model, parse_model


def strip_model(model: TflModel) -> TflModel:
    out = copy_model(model)
    for tensor in out.tensors:
        tensor.name = ""
    out.description = ""
    out.subgraph_name = ""
    out.metadata = {}
    out.signatures = []
    return out


def check_stripped(original: TflModel, stripped: bytes) -> None:
    """Raise ValueError unless the ``stripped`` file reads back as ``original`` up to what
    TFLite-Micro ignores (names, description, metadata, signatures)."""
    if strip_model(normalize_model(original)) != strip_model(parse_model(stripped)):
        raise ValueError("--strip changed what TFLite-Micro reads (a microlith bug)")
