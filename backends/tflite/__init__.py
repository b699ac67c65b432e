"""TFLite flatbuffer backend: lowering from the IR, writer, reader."""

from __future__ import annotations

from compiler.ir.core import Graph


def emit_tflite(graph: Graph) -> bytes:
    """Serialize a legal graph (see ``lowering.check_legal``) to ``.tflite`` bytes."""
    import backends.tflite.ops  # noqa: F401  (registers lowerings)
    from backends.tflite.flatbuffer import serialize_model
    from backends.tflite.lowering import lower_graph

    return serialize_model(lower_graph(graph))
