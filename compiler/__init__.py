"""microlith: compile ONNX models to TFLite flatbuffers and standalone C for microcontrollers.

The public entry points are re-exported here (loaded on first use, so that importing
a core module such as ``microlith.ir`` does not pull in the passes and backends)::

    from microlith import CompileOptions, compile_onnx
    result = compile_onnx("model.onnx", CompileOptions(quantize="int8", calibration_data=x))
    conv = Converter.from_onnx("model.onnx"); conv.quantize = "int8"; data = conv.convert()

In the repository this package is the ``compiler/`` folder; ``passes/`` and
``backends/`` install as ``microlith.passes`` and ``microlith.backends``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from microlith.app.converter import Converter
    from microlith.app.driver import CompileOptions, CompileResult, compile_onnx

__all__ = ["CompileOptions", "CompileResult", "Converter", "compile_onnx"]

_PUBLIC = {"CompileOptions": "microlith.app.driver", "CompileResult": "microlith.app.driver",
           "compile_onnx": "microlith.app.driver", "Converter": "microlith.app.converter"}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'microlith' has no attribute {name!r}")
