"""TFLite flatbuffer backend: the writer table from target ops, operator versions."""

from __future__ import annotations

from microlith.ir.core import Graph


def emit_tflite(graph: Graph, strip: bool = False) -> bytes:
    """Serialize a legalized graph (``legalize-tflite``) to ``.tflite`` bytes; ``strip``
    drops what TFLite-Micro does not read (``formats.tflite.strip``), checked."""
    from microlith.backends.tflite.writer import graph_to_model
    from microlith.formats.tflite.flatbuffer import serialize_model
    from microlith.formats.tflite.strip import check_stripped, strip_model

    model = graph_to_model(graph)
    if not strip:
        return serialize_model(model)
    data = serialize_model(strip_model(model))
    check_stripped(model, data)
    return data
