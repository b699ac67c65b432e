"""SignatureDefs of a ``.tflite``: named entry points mapping names to tensor indices.

LiteRT's ``get_signature_runner()`` (and tools built on it, such as ai-edge-quantizer)
find a model's inputs and outputs by name through ``Model.signature_defs``; the TF
converter writes one, ``serving_default``, over subgraph 0. Schema (``schema.fbs``)::

    table TensorMap    { name: string; tensor_index: uint; }
    table SignatureDef { inputs: [TensorMap]; outputs: [TensorMap];
                         signature_key: string; deprecated_tag: string (unused);
                         subgraph_index: uint; }

Nothing here knows microlith's IR; the writer (``flatbuffer.serialize_model``) calls
``write_signatures`` and the reader ``read_signatures``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers

SERVING_DEFAULT = "serving_default"
MODEL_SLOT = 7  # Model.signature_defs


@dataclass
class TflSignature:
    key: str = SERVING_DEFAULT
    inputs: list[tuple[str, int]] = field(default_factory=list)  # (name, tensor index)
    outputs: list[tuple[str, int]] = field(default_factory=list)
    subgraph_index: int = 0


def check_signatures(signatures: list[TflSignature], n_tensors: int) -> None:
    keys = [s.key for s in signatures]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate signature keys: {keys}")
    for sig in signatures:
        for kind, entries in (("input", sig.inputs), ("output", sig.outputs)):
            names = [name for name, _ in entries]
            if len(set(names)) != len(names):
                raise ValueError(f"signature {sig.key!r}: duplicate {kind} names {names}")
            for name, index in entries:
                if not 0 <= index < n_tensors:
                    raise ValueError(f"signature {sig.key!r}: {kind} {name!r} tensor index "
                                     f"{index} out of range")
        if sig.subgraph_index != 0:
            raise ValueError(f"signature {sig.key!r}: subgraph {sig.subgraph_index} "
                             "(one subgraph only)")


def _tensor_maps(b: flatbuffers.Builder, entries: list[tuple[str, int]]) -> int:
    maps = []
    for name, index in entries:
        text = b.CreateString(name)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, text, 0)
        b.PrependUint32Slot(1, index, 0)
        maps.append(b.EndObject())
    b.StartVector(4, len(maps), 4)
    for off in reversed(maps):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def write_signatures(b: flatbuffers.Builder, signatures: list[TflSignature]) -> int:
    """Write the ``signature_defs`` vector; returns its offset."""
    tables = []
    for sig in signatures:
        inputs, outputs = _tensor_maps(b, sig.inputs), _tensor_maps(b, sig.outputs)
        key = b.CreateString(sig.key)
        b.StartObject(5)
        b.PrependUOffsetTRelativeSlot(0, inputs, 0)
        b.PrependUOffsetTRelativeSlot(1, outputs, 0)
        b.PrependUOffsetTRelativeSlot(2, key, 0)
        b.PrependUint32Slot(4, sig.subgraph_index, 0)
        tables.append(b.EndObject())
    b.StartVector(4, len(tables), 4)
    for off in reversed(tables):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def read_signatures(root: Any) -> list[TflSignature]:
    """The SignatureDefs of a parsed root table (``reader._Table``)."""
    out = []
    for sig in root.tables(MODEL_SLOT):
        def maps(slot: int, sig: Any = sig) -> list[tuple[str, int]]:
            return [(m.string(0) or "", int(m.scalar(1, "<I", 0))) for m in sig.tables(slot)]

        out.append(TflSignature(sig.string(2) or "", maps(0), maps(1),
                                int(sig.scalar(4, "<I", 0))))
    return out
