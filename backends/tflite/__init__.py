"""TFLite flatbuffer backend: the writer table from target ops, operator versions."""

from __future__ import annotations

from microlith.ir.core import Graph


def emit_tflite(graph: Graph) -> bytes:
    """Serialize a legalized graph (``legalize-tflite``) to ``.tflite`` bytes."""
    from microlith.backends.tflite.writer import graph_to_model
    from microlith.formats.tflite.flatbuffer import serialize_model

    return serialize_model(graph_to_model(graph))
