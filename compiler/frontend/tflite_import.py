"""``.tflite`` -> IR: a TFLite model comes in as the canonical NHWC graph ``to-nhwc`` makes.

The TFLite layout is already NHWC, so operators map onto the canonical ops with
``layout="NHWC"`` and explicit pads (SAME padding is turned into TFLite's own split: the
smaller half before), fused activations become the ``activation`` attribute, and
quantized tensors keep their scales and zero points (per-axis for weights and biases):

==================  =====================================================================
CONV_2D             ``Conv`` (weights OHWI, as TFLite stores them)
DEPTHWISE_CONV_2D   ``Conv`` with ``group`` = channels (weights 1HWC -> C,H,W,1)
FULLY_CONNECTED     ``FullyConnected`` (2-D input; weights [units, in])
MAX/AVERAGE_POOL_2D ``MaxPool`` / ``AveragePool`` (padding never counted, as TFLite)
RESHAPE             ``Reshape`` (shape from the options or the constant input)
PAD                 ``Pad`` (constant paddings; zeros, i.e. the zero point when quantized)
MEAN                ``ReduceMean`` (constant axes, ``keep_dims``)
SOFTMAX, LOGISTIC, TANH, RELU, ADD, MUL
QUANTIZE            ``QuantizeLinear`` from a quantized input: a requantize (uint8 <-> int8
                    at the interface of a uint8-I/O model, int8 <-> int16 borders)
==================  =====================================================================

The graph's facts say what it already is: ``nhwc`` always (``io_perms`` empty: the
interface is the file's own layout, calibration data too), ``integer`` for an integer
model (every activation quantized: int8, int16 or uint8) -- it goes straight to the target's
tail. Anything else is refused with one error naming every unsupported operator. One subgraph only.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from microlith.diagnostics import FrontendError, capped
from microlith.frontend.input_files import read_bounded
from microlith.ir.core import Graph, Value
from microlith.ir.types import DType, QuantParams, TensorType

MAX_TFLITE_BYTES = 2**31 - 1
SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D",
             "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX", "LOGISTIC", "TANH", "RELU", "ADD", "MUL",
             "PAD", "MEAN", "QUANTIZE")
_ACTIVATIONS = {"NONE": None, "RELU": "RELU", "RELU6": "RELU6"}
_SIMPLE = {"SOFTMAX": "Softmax", "LOGISTIC": "Sigmoid", "TANH": "Tanh", "RELU": "Relu",
           "ADD": "Add",
           "MUL": "Mul"}


def tflite_name(source: Any) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        return "<tflite bytes>"
    if not isinstance(source, str | os.PathLike):
        raise FrontendError(f"expected a .tflite path or bytes, not {type(source).__name__}")
    return os.fspath(source)


def read_tflite(source: Any) -> Any:
    """The parsed ``TflModel`` of a path or bytes, damage reported in one line."""
    from microlith.formats.tflite.flatbuffer import parse_model

    name = tflite_name(source)
    data = bytes(source) if not isinstance(source, str | os.PathLike) else \
        read_bounded(name, "a .tflite file", MAX_TFLITE_BYTES)
    try:
        return parse_model(data)
    except Exception as exc:  # the reader raises ValueError / struct errors on damage
        raise FrontendError(f"{name}: not a valid .tflite file ({exc})") from None


def is_integer_model(model: Any) -> bool:
    """Every activation (non-constant tensor) is quantized int8 / int16 / uint8."""
    return all(t.data is not None or (t.dtype in ("int8", "int16", "uint8") and
                                      t.quant is not None)
               for t in model.tensors if t.dtype != "int32")


def _quant(t: Any, axis_map: dict[int, int] | None = None) -> QuantParams | None:
    q = t.quant
    if q is None or not q.scale:
        return None
    axis = None if len(q.scale) == 1 else (axis_map or {}).get(q.quantized_dimension,
                                                              q.quantized_dimension)
    return QuantParams(tuple(float(s) for s in q.scale), tuple(int(z) for z in q.zero_point),
                       axis)


def _array(t: Any) -> np.ndarray:
    return np.frombuffer(t.data, np.dtype(t.dtype).newbyteorder("<")).reshape(t.shape).astype(
        np.dtype(t.dtype))


def _same_pads(size: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
               dilations: tuple[int, int]) -> tuple[int, int, int, int]:
    totals = []
    for n, k, s, d in zip(size, kernel, strides, dilations, strict=True):
        out = -(-n // s)
        totals.append(max((out - 1) * s + (k - 1) * d + 1 - n, 0))
    (th, tw) = totals
    return th // 2, tw // 2, th - th // 2, tw - tw // 2


def load_tflite(source: Any, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    name = tflite_name(source)
    model = read_tflite(source)
    if input_shapes:
        raise FrontendError(f"{name}: --input-shape does not apply to a .tflite (its shapes "
                            "are static)")
    missing: dict[str, list[str]] = {}
    for op in model.operators:
        if op.op not in SUPPORTED:
            missing.setdefault(op.op, []).append(model.tensors[op.outputs[0]].name
                                                 if op.outputs else "?")
    if missing:
        raise FrontendError(f"{name}: unsupported TFLite operators: " + capped(
            [f"{op} ({capped(outs)})" for op, outs in sorted(missing.items())], "; "))
    graph = Graph(model.subgraph_name or "main")
    values: dict[int, Value] = {}

    def ttype(t: Any, axis_map: dict[int, int] | None = None) -> TensorType:
        return TensorType(DType.from_numpy(np.dtype(t.dtype)), tuple(int(d) for d in t.shape),
                          _quant(t, axis_map))

    for i in model.inputs:
        values[i] = graph.add_input(model.tensors[i].name or f"input_{i}", ttype(model.tensors[i]))

    def value(i: int) -> Value | None:
        if i < 0:
            return None
        if i not in values:
            t = model.tensors[i]
            if t.data is None:
                raise FrontendError(f"{name}: tensor {i} ({t.name!r}) is read before any "
                                    "operator writes it")
            values[i] = graph.add_constant(_array(t), t.name or f"const_{i}", _quant(t))
        return values[i]

    for k, op in enumerate(model.operators):
        where = f"{name}: operator {k} ({op.op})"
        out = model.tensors[op.outputs[0]]
        opts = op.options
        act = _ACTIVATIONS.get(str(opts.get("fused_activation_function", "NONE")), "bad")
        if act == "bad":
            raise FrontendError(f"{where}: fused activation "
                                f"{opts['fused_activation_function']} is not supported")
        attrs: dict[str, Any] = {}
        ins = [value(i) for i in op.inputs]
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"):
            x = ins[0]
            assert x is not None
            strides = (int(opts["stride_h"]), int(opts["stride_w"]))
            if op.op.endswith("POOL_2D"):
                kernel = (int(opts["filter_height"]), int(opts["filter_width"]))
                dilations = (1, 1)
            else:
                w = model.tensors[op.inputs[1]]
                kernel = (int(w.shape[1]), int(w.shape[2]))
                dilations = (int(opts["dilation_h_factor"]), int(opts["dilation_w_factor"]))
            pads = _same_pads((x.shape[1], x.shape[2]), kernel, strides, dilations) \
                if opts["padding"] == "SAME" else (0, 0, 0, 0)
            attrs = {"layout": "NHWC", "strides": strides, "pads": pads}
            if op.op.endswith("POOL_2D"):
                attrs["kernel_shape"] = kernel
                if op.op == "AVERAGE_POOL_2D":
                    attrs["count_include_pad"] = 0
                kind = "MaxPool" if op.op == "MAX_POOL_2D" else "AveragePool"
                ins = ins[:1]
            else:
                attrs.update(dilations=dilations, group=1)
                kind = "Conv"
                if op.op == "DEPTHWISE_CONV_2D":
                    w = model.tensors[op.inputs[1]]
                    if int(opts["depth_multiplier"]) != 1 and w.shape[3] != x.shape[3] * int(
                            opts["depth_multiplier"]):
                        raise FrontendError(f"{where}: inconsistent depth_multiplier")
                    weights = _array(w).transpose(3, 1, 2, 0)
                    ins[1] = graph.add_constant(weights, (w.name or "w") + "_ohwi",
                                                _quant(w, {3: 0}))
                    attrs["group"] = int(x.shape[3])
        elif op.op == "FULLY_CONNECTED":
            if ins[0] is None or ins[1] is None or len(ins[1].shape) != 2:
                raise FrontendError(f"{where}: the input and 2-D weights are required")
            if len(ins[0].shape) != 2:  # FULLY_CONNECTED flattens to [N / K, K] itself
                depth = int(ins[1].shape[1])
                total = math.prod(ins[0].shape)
                if depth <= 0 or total % depth:
                    raise FrontendError(f"{where}: input {list(ins[0].shape)} does not flatten "
                                        f"to rows of the weights' depth {depth}")
                flat = TensorType(ins[0].dtype, (total // depth, depth), ins[0].quant)
                flat_shape = graph.add_constant(np.asarray(flat.shape, np.int64),
                                                f"{out.name or f'op{k}'}_flat_shape")
                ins[0] = graph.add_node("Reshape", [ins[0], flat_shape], {},
                                        name=f"{out.name or f'op{k}'}_flatten",
                                        output_types=[flat]).outputs[0]
            kind = "FullyConnected"
        elif op.op in ("PAD", "MEAN"):
            const = model.tensors[op.inputs[1]]
            if const.data is None:
                raise FrontendError(f"{where}: the second input must be a constant")
            arg = _array(const).astype(np.int64)
            if op.op == "PAD":
                kind, attrs = "Pad", {"pads": tuple(int(v) for v in (*arg[:, 0], *arg[:, 1]))}
            else:
                kind = "ReduceMean"
                attrs = {"axes": tuple(int(v) for v in arg.reshape(-1)),
                         "keepdims": int(bool(opts.get("keep_dims", False)))}
            ins = ins[:1]
        elif op.op == "QUANTIZE":
            source = model.tensors[op.inputs[0]]
            if source.quant is None or not source.quant.scale or out.quant is None:
                raise FrontendError(f"{where}: only a requantize (quantized input and output) "
                                    "is supported; a float input means a float model")
            kind, attrs = "QuantizeLinear", {"to": DType.from_numpy(np.dtype(out.dtype)).value}
            ins = ins[:1]
        elif op.op == "RESHAPE":
            shape = np.asarray(out.shape, np.int64)
            ins = [ins[0], graph.add_constant(shape, f"{out.name or 'reshape'}_shape")]
            kind = "Reshape"
        else:
            kind = _SIMPLE[op.op]
            if op.op == "SOFTMAX":
                if float(opts.get("beta", 1.0)) != 1.0:
                    raise FrontendError(f"{where}: beta != 1 is not supported")
                attrs = {"axis": -1}
        if act is not None:
            attrs["activation"] = act
        node = graph.add_node(kind, ins, attrs, name=out.name or f"op{k}",
                              output_types=[ttype(out)], output_names=[out.name or f"t{k}"])
        values[op.outputs[0]] = node.outputs[0]
    for i in model.outputs:
        if i not in values:
            raise FrontendError(f"{name}: output tensor {i} is not computed by any operator")
        graph.outputs.append(values[i])
    graph.meta["io_perms"] = {}
    graph.meta["facts"] = ["nhwc", "integer"] if is_integer_model(model) else ["nhwc"]
    graph.meta["source_format"] = "tflite"
    return graph
