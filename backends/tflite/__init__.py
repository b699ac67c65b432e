"""TFLite flatbuffer backend: lowering from the IR, writer, reader."""

from __future__ import annotations

from microlith.ir.core import Graph


def emit_tflite(graph: Graph) -> bytes:
    """Serialize a legal graph (see ``lowering.check_legal``) to ``.tflite`` bytes."""
    import microlith.backends.tflite.ops  # noqa: F401  (registers lowerings)
    from microlith.backends.tflite.lowering import lower_graph
    from microlith.formats.tflite.flatbuffer import serialize_model

    return serialize_model(lower_graph(graph))
