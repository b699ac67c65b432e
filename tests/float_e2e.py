"""The float end-to-end modules' shared parts (``test_end_to_end*.py``).

The tolerances against onnxruntime and TFLite-Micro, the compile hook that turns a
compiler warning into a failure, and what the float ``.tflite`` of an ONNX model may
contain, computed from the ONNX graph alone: which convolutions need a PAD in front
(``onnx_pad_sites``: TFLite's SAME/VALID cannot express their padding, recomputed by
enumerating kernel taps) and how many TFLite ops an honest lowering needs
(``op_budget``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

ATOL_ORT = 1e-4
ATOL_TFLM = 1e-5


def _no_warnings(message: str) -> None:
    raise AssertionError(f"unexpected compiler warning: {message}")


def _static_inputs(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in
            [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}


def _taps(size: int, kernel: int, stride: int, dilation: int, begin: int, out: int
          ) -> list[tuple[int | None, ...]]:
    """For each output position, the input index each kernel tap reads (None: padding)."""
    rows = []
    for o in range(out):
        idx = [o * stride - begin + t * dilation for t in range(kernel)]
        rows.append(tuple(i if 0 <= i < size else None for i in idx))
    return rows


def tflite_can_express(size: int, kernel: int, stride: int, dilation: int, begin: int,
                       end: int) -> bool:
    """Do explicit zero pads (begin, end) read exactly what TFLite SAME or VALID reads?

    TFLite (tensorflow/lite/kernels/padding.h): VALID: out = ceil((in - k_eff + 1) / s),
    no padding; SAME: out = ceil(in / s), total = max((out - 1) * s + k_eff - in, 0),
    before = total // 2. ONNX: out = floor((in + begin + end - k_eff) / s) + 1.
    """
    k_eff = dilation * (kernel - 1) + 1
    onnx_out = (size + begin + end - k_eff) // stride + 1
    wanted = _taps(size, kernel, stride, dilation, begin, onnx_out)
    valid_out = -(-(size - k_eff + 1) // stride)
    same_out = -(-size // stride)
    same_before = max((same_out - 1) * stride + k_eff - size, 0) // 2
    return wanted in (_taps(size, kernel, stride, dilation, 0, valid_out),
                      _taps(size, kernel, stride, dilation, same_before, same_out))


@dataclass(frozen=True)
class PadSite:
    """What a PAD in front of a convolution is about: (H, W, C) in, pads, kernel, stride."""

    hwc: tuple[int, int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]


def onnx_pad_sites(model: onnx.ModelProto) -> tuple[list[PadSite], int]:
    """Convs needing a PAD in TFLite (explicit zero Pads merged in), and #Pads merged."""
    shapes, static = _shapes(model), _static_inputs(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = Counter(i for n in model.graph.node for i in n.input)
    sites, merged = [], 0
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        x = node.input[0]
        n, c, h, w = shapes[x]
        _, _, kh, kw = static[node.input[1]].shape
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        pad = producer.get(x)
        if pad is not None and pad.op_type == "Pad" and consumers[x] == 1 and \
                _attr(pad, "mode", b"constant") == b"constant":
            p = static[pad.input[1]].tolist()  # [n0, c0, h0, w0, n1, c1, h1, w1]
            value = static[pad.input[2]] if len(pad.input) > 2 and pad.input[2] else 0.0
            if float(value) == 0.0 and p[0] == p[1] == p[4] == p[5] == 0:
                pads = [pads[0] + p[2], pads[1] + p[3], pads[2] + p[6], pads[3] + p[7]]
                n, c, h, w = shapes[pad.input[0]]
                merged += 1
        strides = list(_attr(node, "strides", [1, 1]))
        dilations = list(_attr(node, "dilations", [1, 1]))
        if not (tflite_can_express(h, kh, strides[0], dilations[0], pads[0], pads[2]) and
                tflite_can_express(w, kw, strides[1], dilations[1], pads[1], pads[3])):
            sites.append(PadSite((h, w, c), tuple(pads), (kh, kw), tuple(strides),
                                 tuple(dilations)))
    return sites, merged


# Producers whose TFLite kernels honour a fused activation (CONCATENATION has the option
# but its kernels refuse anything but NONE, so a Relu after Concat stays an op).
FUSES_ACTIVATION = ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "AveragePool",
                    "MaxPool")


def op_budget(model: onnx.ModelProto) -> tuple[int, dict[str, int]]:
    """The most TFLite ops an honest lowering needs, counted from the ONNX graph.

    ONNX nodes, minus: Constant; Identity/Dropout; nodes whose inputs are all
    constant or come from Shape (the Shape chain folds); a zero Pad absorbed by the
    next Conv; the bias Add of MatMul-with-constant-weights (one FULLY_CONNECTED);
    BatchNormalization right after Conv/Gemm/MatMul; Relu / Clip(0, 6) right after an
    op with a TFLite fused activation. Plus: one PAD per conv whose padding SAME/VALID
    cannot express; one more op for a BatchNormalization with nothing to fold into
    (MUL + ADD); SPLIT + CONCATENATION + one conv per group for grouped (not
    depthwise) convs; HardSigmoid as MUL, ADD(RELU6), MUL (no TFLite builtin).
    Flatten / Reshape / Squeeze / Unsqueeze each count as one RESHAPE.
    """
    static = set(_static_inputs(model))
    values = _static_inputs(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = Counter(i for n in model.graph.node for i in n.input if i)
    outputs = {o.name for o in model.graph.output}
    single_use = {o for o, k in consumers.items() if k == 1 and o not in outputs}
    linear: set[str] = set()  # outputs of a Conv/FC (bias and BN already folded in)
    fusable: set[str] = set()  # outputs a Relu/Relu6 can fuse into
    removed: Counter[str] = Counter()
    added: Counter[str] = Counter()
    for node in model.graph.node:
        op, ins = node.op_type, [i for i in node.input if i]
        out = node.output[0]
        if op == "Constant":
            removed["Constant"] += 1
        elif op in ("Identity", "Dropout"):
            removed[op] += 1
            if ins[0] in static:
                static.add(out)
            for s in (linear, fusable):
                if ins[0] in s:
                    s.add(out)
        elif op == "Shape" or all(i in static for i in ins):
            removed["folded"] += 1
            static.add(out)
        elif op == "Pad" and consumers[out] == 1 and all(
                n.op_type == "Conv" for n in model.graph.node if out in n.input):
            removed["Pad into conv"] += 1
        elif op in ("Add",) and ins[0] in linear and ins[0] in single_use and \
                producer[ins[0]].op_type == "MatMul" and ins[1] in static:
            removed["bias Add into FC"] += 1
            linear.add(out)
            fusable.add(out)
        elif op == "BatchNormalization" and ins[0] in linear and ins[0] in single_use:
            removed["BN folded"] += 1
            linear.add(out)
            fusable.add(out)
        elif op in ("Relu", "Clip") and ins[0] in fusable and ins[0] in single_use and (
                op == "Relu" or [float(values[i]) for i in ins[1:]] == [0.0, 6.0]):
            removed["activation fused"] += 1
        else:
            if op in ("Conv", "Gemm") or (op == "MatMul" and ins[1] in static):
                linear.add(out)
            if op in FUSES_ACTIVATION:
                fusable.add(out)
            if op == "BatchNormalization":
                added["BN as MUL+ADD"] += 1
            if op == "HardSigmoid":
                added["HardSigmoid"] += 2
            if op == "Conv":
                group = int(_attr(node, "group", 1))
                in_per_group = values[ins[1]].shape[1]
                if group > 1 and in_per_group != 1:
                    added["grouped conv"] += group + 1
    added["PAD"] = len(onnx_pad_sites(model)[0])
    budget = len(model.graph.node) - sum(removed.values()) + sum(added.values())
    return budget, {**{f"-{k}": v for k, v in removed.items()},
                    **{f"+{k}": v for k, v in added.items() if v}}
