"""``microlith.Converter``: the Python entry point in the spirit of ``tf.lite.TFLiteConverter``.

::

    conv = microlith.Converter.from_onnx("model.onnx")        # or ModelProto / bytes
    conv = microlith.Converter.from_torch(module, (x,))       # exported with torch.onnx
    conv = microlith.Converter.from_tflite("model.tflite")    # int8 or float .tflite
    conv.quantize = "int8"
    conv.representative_dataset = lambda: ([x] for x in samples)
    conv.inference_input_type = conv.inference_output_type = "int8"
    conv.target = "tflite"                                    # or "c", "c-array"
    data = conv.convert()     # bytes; a {file name: text} dict for directory targets

The attributes map one to one onto ``CompileOptions`` (``options`` holds the rest:
input shapes, pipeline, strip, C prefix, limits...); ``compile()`` returns the whole
``CompileResult``. The CLI's ``compile`` builds a Converter too, so both take the same
path. Model errors are ``MicrolithError``s with one short line naming the model.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from microlith.app.driver import CompileOptions, CompileResult, compile_graph, directory_targets
from microlith.diagnostics import UsageError
from microlith.frontend.onnx_import import ModelSource, load_onnx, source_name
from microlith.ir.core import Graph

# A float .tflite is NHWC already: the canonical passes that still apply, then int8.
TFLITE_QUANT_PIPELINE = ("infer-shapes,fold-constants,eliminate-dead,fuse-activation,fold-pad,"
                         "calibrate,insert-qdq,fuse-requantize,eliminate-dead")
_IO_TYPES = {"int8": "int8", "uint8": "uint8", "int16": "int16", "float32": "float32",
             "float": "float32"}


def _io_type(value: Any, attribute: str) -> str | None:
    """``"int8"``, ``np.int8``, ``np.dtype("int8")`` ... -> "int8"; None stays None."""
    if value is None:
        return None
    try:
        name = np.dtype(value).name if not isinstance(value, str) else value
    except TypeError:
        name = str(value)
    if name not in _IO_TYPES:
        raise UsageError(f"{attribute} {value!r} is not one of int8, uint8, int16, float32")
    return _IO_TYPES[name]


def _options(options: CompileOptions | None, fields: dict[str, Any]) -> CompileOptions:
    if options is not None and fields:
        raise UsageError("give either options= or CompileOptions fields, not both")
    try:
        return options or CompileOptions(**fields)
    except TypeError as exc:
        raise UsageError(f"Converter: {exc}") from None


class Converter:
    """Converts one model; set attributes, then call ``convert()`` (see module docstring)."""

    def __init__(self, load: Callable[[CompileOptions], Graph], name: str,
                 options: CompileOptions | None = None,
                 onnx_file: str | os.PathLike[str] | None = None) -> None:
        self._load = load
        self._onnx_file = onnx_file  # an .onnx path (read before the import: qdq, --int16)
        self.name = name  # the model's file name (C comments), e.g. "model.onnx"
        self.options = options or CompileOptions()
        self.quantize: str | None = self.options.quantize
        # a path, a CalibrationSet, an iterable of input lists/dicts, or a callable returning
        # one (TFLiteConverter's representative_dataset)
        self.representative_dataset: Any = self.options.calibration_data
        self.inference_input_type: Any = None
        self.inference_output_type: Any = None
        self.target: str = self.options.target

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_onnx(cls, model: ModelSource, options: CompileOptions | None = None,
                  **fields: Any) -> Converter:
        """An ONNX model: a path, serialized bytes or an ``onnx.ModelProto`` (not modified).
        ``options`` (or ``CompileOptions`` fields as keywords) preset the attributes."""
        name = source_name(model)
        display = "model.onnx" if name.startswith("<") else os.path.basename(name)
        path = model if isinstance(model, str | os.PathLike) else None
        return cls(lambda o: load_onnx(model, o.input_shapes, warn=o.warn), display,
                   _options(options, fields), onnx_file=path)

    @classmethod
    def from_tflite(cls, model: str | os.PathLike[str] | bytes,
                    options: CompileOptions | None = None, **fields: Any) -> Converter:
        """A ``.tflite`` file or its bytes. An int8 model goes straight to the target's
        tail (already integer); a float one compiles as is or is quantized by our
        calibrator (``quantize="int8"``, representative data in the file's NHWC layout)."""
        from microlith.frontend.tflite_import import (
            is_integer_model,
            load_tflite,
            read_tflite,
            tflite_name,
        )

        name = tflite_name(model)
        display = "model.tflite" if name.startswith("<") else os.path.basename(name)
        opts = _options(options, fields)
        if opts.pipeline is None:
            integer = is_integer_model(read_tflite(model))
            if integer and opts.quantize is not None:
                raise UsageError(f"{name}: the model is already quantized (int8); drop "
                                 "--quantize")
            opts = dataclasses.replace(opts, pipeline=TFLITE_QUANT_PIPELINE
                                       if opts.quantize else "fold-pad,eliminate-dead",
                                       integer_model=integer)
        return cls(lambda o: load_tflite(model, o.input_shapes), display, opts)

    @classmethod
    def from_torch(cls, module: Any, example_inputs: Any, *, input_names: list[str] | None
                   = None, output_names: list[str] | None = None, opset: int = 17,
                   **options: Any) -> Converter:
        """A ``torch.nn.Module``, exported with ``torch.onnx.export`` on ``example_inputs``
        (a tensor or a tuple of tensors; their shapes become the model's). Needs torch
        (``pip install microlith[torch]``)."""
        from microlith.app.torch_export import export_onnx

        blob = export_onnx(module, example_inputs, input_names, output_names, opset)
        return cls.from_onnx(blob, **options)

    # ------------------------------------------------------------------ conversion

    def compile_options(self) -> CompileOptions:
        """The ``CompileOptions`` the attributes stand for (checked)."""
        inputs = _io_type(self.inference_input_type, "inference_input_type")
        outputs = _io_type(self.inference_output_type, "inference_output_type")
        data = self.representative_dataset
        if callable(data):
            data = data()
        if data is not None and not isinstance(data, str | os.PathLike) and \
                not isinstance(data, Iterable) and not hasattr(data, "inputs"):
            raise UsageError("representative_dataset must be a path, an iterable of samples "
                             "or a callable returning one")
        if inputs is not None and inputs == outputs:  # one interface type: --io-dtype
            return dataclasses.replace(self.options, target=self.target,
                                       quantize=self.quantize, calibration_data=data,
                                       io_dtype=inputs)
        return dataclasses.replace(  # --input-dtype / --output-dtype
            self.options, target=self.target, quantize=self.quantize, calibration_data=data,
            input_dtype=inputs or self.options.input_dtype,
            output_dtype=outputs or self.options.output_dtype)

    def compile(self) -> CompileResult:
        """Convert and return everything: output bytes, files, graph, pipeline, timings."""
        options = self.compile_options()
        return compile_graph(lambda: self._load(options), self.name, options,
                             onnx_file=self._onnx_file)

    def convert(self) -> bytes | dict[str, str]:
        """The ``.tflite`` bytes, or ``{file name: text}`` for a directory target (c, c-array);
        a streamed ``model.c`` (``StreamedText``) is returned as one string here."""
        result = self.compile()
        if self.target in directory_targets():
            return {name: str(text) for name, text in result.files.items()}
        return result.output


__all__ = ["Converter"]
