"""``--target tflite``: a ``.tflite`` flatbuffer for LiteRT and TFLite-Micro."""

from __future__ import annotations

from microlith.backends.tflite import emit_tflite
from microlith.ir.core import Graph
from microlith.pipeline.facts import TFLITE_OPS
from microlith.targets import EmitOptions, Emitted, Target, register_target


def _emit(graph: Graph, options: EmitOptions) -> Emitted:
    return Emitted(output=emit_tflite(graph, strip=options.strip))


TFLITE = register_target(Target("tflite", "a .tflite flatbuffer (LiteRT, TFLite-Micro)",
                                ("legalize-tflite",), (TFLITE_OPS,), _emit))
