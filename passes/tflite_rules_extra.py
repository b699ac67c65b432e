"""More ``legalize-tflite`` rules (issue 9's op list), registered into ``tflite_rules.RULES``.

* ``Neg``: ``NEG`` in float; quantized, ``MUL`` by a constant -1 (int8 value -1, scale 1,
  zero point 0: exactly -1), as TFLite-Micro has no int8 NEG.
* ``Elu``: ``ELU`` (alpha must be 1).
* ``Slice``: ``STRIDED_SLICE`` with every dimension explicit (begin / end clamped into
  the dimension, ``end_mask`` for a negative step that runs to the beginning).
* ``Gather`` (constant indices): ``GATHER``, negative indices made positive.
* ``ReduceMax`` / ``ReduceMin`` / ``ReduceSum`` / ``ReduceProd``: ``REDUCE_MAX`` /
  ``REDUCE_MIN`` / ``SUM`` / ``REDUCE_PROD`` with int32 axes.
* ``ArgMax`` / ``ArgMin``: ``ARG_MAX`` / ``ARG_MIN`` (int64 output; int32 on an int8 input,
  the only index type of TFLite-Micro's int8 kernels), then a ``RESHAPE`` when
  ``keepdims`` keeps the reduced axis.
* ``Resize``: ``RESIZE_NEAREST_NEIGHBOR`` / ``RESIZE_BILINEAR`` with the ``align_corners`` /
  ``half_pixel_centers`` pair whose sampling equals the ONNX node's on both axes (checked
  index by index; no such pair is an error naming the mode and scales).
* ``AveragePool`` with ``count_include_pad=0`` and pads that are neither SAME nor VALID:
  PAD + VALID ``AVERAGE_POOL_2D`` + ``MUL`` by ``KH*KW / taps in the image`` (exact).
* ``LRN`` (odd ``size``): ``LOCAL_RESPONSE_NORMALIZATION`` with ``radius = (size - 1) / 2``
  and ``alpha / size``.
* ``MatMul`` left by ``lower-fc`` (two activations): ``BATCH_MATMUL``.
* ``Softmax`` on any axis: the last axis is ``SOFTMAX``; another is swapped to the end by
  ``TRANSPOSE`` (``RESHAPE`` when only size-1 dimensions follow it) and back.
"""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Graph, Node
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.ops.common import slice_index
from microlith.passes.tflite_rules import RULES, const, insert, padding_mode, rule
from microlith.quant.params import activation_params, quantize_array


@rule("Neg")
def _neg(graph: Graph, node: Node) -> None:
    x = node.arg(0)
    if x.quant is None:
        graph.rewrite_node(node, "tfl.neg", [x])
        return
    minus_one = const(graph, np.array([-1], np.int8), f"{node.name}_minus_one",
                      QuantParams((1.0,), (0,)))
    graph.rewrite_node(node, "tfl.mul", [x, minus_one], {"fused_activation_function": "NONE"})


def _elu_check(node: Node) -> str | None:
    alpha = float(node.attr("alpha", 1.0))
    return None if alpha == 1.0 else f"Elu with alpha={alpha} (TFLite's ELU has alpha 1)"


@rule("Elu", check=_elu_check)
def _elu(graph: Graph, node: Node) -> None:
    graph.rewrite_node(node, "tfl.elu", [node.arg(0)])


def _slice_check(node: Node) -> str | None:
    if any(node.const_input(i) is None for i in range(1, len(node.inputs))
           if node.input(i) is not None):
        return "starts, ends, axes and steps must be constants (run fold-constants)"
    return None


@rule("Slice", check=_slice_check)
def _slice(graph: Graph, node: Node) -> None:
    x = node.arg(0)
    consts = [node.const_input(i) if node.input(i) is not None else None
              for i in range(1, 5)]
    index = slice_index(x.shape, consts[0], consts[1], consts[2], consts[3])  # type: ignore
    begin, end, strides, end_mask = [], [], [], 0
    for axis, part in enumerate(index):
        if part == slice(None):
            part = slice(0, x.shape[axis], 1)
        begin.append(int(part.start))
        strides.append(int(part.step))
        if part.stop is None:  # a negative step that runs past index 0
            end_mask |= 1 << axis
        end.append(0 if part.stop is None else int(part.stop))
    tensors = [const(graph, np.array(v, np.int32), f"{node.name}_{what}")
               for what, v in (("begin", begin), ("end", end), ("strides", strides))]
    graph.rewrite_node(node, "tfl.strided_slice", [x, *tensors],
                       {"begin_mask": 0, "end_mask": end_mask, "ellipsis_mask": 0,
                        "new_axis_mask": 0, "shrink_axis_mask": 0, "offset": False})


def _gather_check(node: Node) -> str | None:
    return None if node.const_input(1) is not None else "the indices must be constant"


@rule("Gather", check=_gather_check)
def _gather(graph: Graph, node: Node) -> None:
    x = node.arg(0)
    axis = int(node.attr("axis", 0)) % x.type.rank
    indices = np.asarray(node.const_input(1)).astype(np.int64)
    indices = np.where(indices < 0, indices + x.shape[axis], indices).astype(np.int32)
    graph.rewrite_node(node, "tfl.gather", [x, const(graph, indices, f"{node.name}_indices")],
                       {"axis": axis, "batch_dims": 0})


_REDUCE = {"ReduceMax": "tfl.reduce_max", "ReduceMin": "tfl.reduce_min",
           "ReduceSum": "tfl.sum", "ReduceProd": "tfl.reduce_prod"}


@rule(*_REDUCE)
def _reduce(graph: Graph, node: Node) -> None:
    rank = node.arg(0).type.rank
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else sorted({a % rank for a in axes})
    axes_t = const(graph, np.array(axes, np.int32), f"{node.name}_axes")
    graph.rewrite_node(node, _REDUCE[node.op], [node.arg(0), axes_t],
                       {"keep_dims": bool(node.attr("keepdims", 1))})


@rule("ArgMax", "ArgMin")
def _arg(graph: Graph, node: Node) -> None:
    x, out = node.arg(0), node.output
    axis = int(node.attr("axis", 0)) % x.type.rank
    axis_t = const(graph, np.array([axis], np.int32), f"{node.name}_axis")
    op = "tfl.arg_max" if node.op == "ArgMax" else "tfl.arg_min"
    # TFLite-Micro's int8 ARG_MAX / ARG_MIN write int32 only ("Only int32_t are supported")
    dtype = DType.INT32 if x.quant is not None else DType.INT64
    options = {"output_type": "int32" if dtype == DType.INT32 else "int64"}
    out.set_type(TensorType(dtype, out.shape))
    if not node.attr("keepdims", 1):
        graph.rewrite_node(node, op, [x, axis_t], options)
        return
    dropped = tuple(d for i, d in enumerate(x.shape) if i != axis)
    indices = graph.add_node(op, [x, axis_t], options, name=f"{node.name}_arg",
                             output_types=[TensorType(dtype, dropped)],
                             output_names=[f"{node.name}_arg"], before=node)
    indices.output.meta["wanted_name"] = f"{node.name}_arg"
    shape = const(graph, np.array(out.shape, np.int32), f"{node.name}_shape")
    graph.rewrite_node(node, "tfl.reshape", [indices.output, shape],
                       {"new_shape": list(out.shape)})



def resize_flags(node: Node) -> tuple[bool, bool] | str:
    """TFLite's ``(align_corners, half_pixel_centers)`` computing exactly the node's ONNX
    sampling on both axes, or why none does."""
    from microlith.ops.resize import (
        onnx_coordinates,
        onnx_nearest,
        tflite_bilinear_coordinates,
        tflite_nearest,
    )

    if node.attr("layout", "NCHW") != "NHWC":
        return "layout is NCHW (run to-nhwc)"
    x = node.arg(0)
    mode, coord = node.attr("mode"), node.attr("coordinate_transformation_mode")
    axes = list(zip((x.shape[1], x.shape[2]), node.attr("size"), node.attr("scales"),
                    strict=True))
    for flags in ((False, False), (False, True), (True, False)):
        if mode == "nearest" and all(np.array_equal(
                onnx_nearest(out, size, scale, coord, node.attr("nearest_mode")),
                tflite_nearest(out, size, *flags)) for size, out, scale in axes):
            return flags
        if mode == "linear" and all(np.allclose(
                np.clip(onnx_coordinates(out, size, scale, coord), 0, size - 1),
                np.clip(tflite_bilinear_coordinates(out, size, *flags), 0, size - 1),
                rtol=0, atol=1e-5) for size, out, scale in axes):
            return flags
    return (f"{mode} resize with coordinate_transformation_mode={coord} and scales "
            f"{tuple(node.attr('scales'))} samples differently from every TFLite resize")


def _resize_check(node: Node) -> str | None:
    flags = resize_flags(node)
    return flags if isinstance(flags, str) else None


@rule("Resize", check=_resize_check)
def _resize(graph: Graph, node: Node) -> None:
    flags = resize_flags(node)
    if isinstance(flags, str):
        raise ValueError(flags)
    align, half = flags
    size = const(graph, np.array(node.attr("size"), np.int32), f"{node.name}_size")
    op = "tfl.resize_nearest_neighbor" if node.attr("mode") == "nearest" else \
        "tfl.resize_bilinear"
    graph.rewrite_node(node, op, [node.arg(0), size],
                       {"align_corners": align, "half_pixel_centers": half})


@rule("Softmax")
def _softmax(graph: Graph, node: Node) -> None:
    """SOFTMAX works on the last axis: another axis is swapped with it by a TRANSPOSE before
    and after (a swap is its own inverse); size-1 dimensions after it make it a RESHAPE."""
    x, out = node.arg(0), node.output
    rank = x.type.rank
    axis = int(node.attr("axis")) % rank
    if axis == rank - 1:
        graph.rewrite_node(node, "tfl.softmax", [x], {"beta": 1.0})
        return
    if all(d == 1 for d in x.shape[axis + 1:]):
        shape = (*x.shape[:axis], *x.shape[axis + 1:], x.shape[axis])
        shape_t = const(graph, np.array(shape, np.int32), f"{node.name}_last_shape")
        moved = insert(graph, node, "tfl.reshape", [x, shape_t], x, f"{node.name}_last",
                       {"new_shape": list(shape)}, shape=shape)
        soft = insert(graph, node, "tfl.softmax", [moved], out, f"{node.name}_softmax",
                      {"beta": 1.0}, shape=shape)
        back = const(graph, np.array(out.shape, np.int32), f"{node.name}_shape")
        graph.rewrite_node(node, "tfl.reshape", [soft, back], {"new_shape": list(out.shape)})
        return
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    shape = tuple(x.shape[p] for p in perm)
    perm_t = const(graph, np.array(perm, np.int32), f"{node.name}_perm")
    moved = insert(graph, node, "tfl.transpose", [x, perm_t], x, f"{node.name}_last",
                   shape=shape)
    soft = insert(graph, node, "tfl.softmax", [moved], out, f"{node.name}_softmax",
                  {"beta": 1.0}, shape=shape)
    graph.rewrite_node(node, "tfl.transpose", [soft, perm_t])


_BASE_POOL = RULES["AveragePool"].rewrite  # SAME / VALID / count_include_pad=1


def _average_pool_check(node: Node) -> str | None:
    return None if node.attr("layout", "NCHW") == "NHWC" else "layout is NCHW (run to-nhwc)"


def _in_image_taps(size: int, out: int, kernel: int, stride: int, pad: int) -> np.ndarray:
    starts = np.arange(out) * stride - pad
    return np.minimum(starts + kernel, size) - np.maximum(starts, 0)


@rule("AveragePool", check=_average_pool_check)
def _average_pool(graph: Graph, node: Node) -> None:
    """TFLite averages over the in-image taps only for SAME / VALID pads. Other pads with
    ``count_include_pad=0`` are exact as PAD (zeros) + VALID AVERAGE_POOL_2D (the window
    sum over ``KH*KW``) + MUL by ``KH*KW / in-image taps`` per output position."""
    kh, kw = node.attr("kernel_shape")
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    if node.attr("count_include_pad", 0) or not any(pads) or padding_mode(node, (kh, kw)):
        _BASE_POOL(graph, node)
        return
    x, out = node.arg(0), node.output
    sh, sw = node.attr("strides")
    top, left, bottom, right = pads
    rows = _in_image_taps(x.shape[1], out.shape[1], kh, sh, top)
    cols = _in_image_taps(x.shape[2], out.shape[2], kw, sw, left)
    factor = (kh * kw / np.outer(rows, cols)).astype(np.float32).reshape(1, *out.shape[1:3], 1)
    paddings = const(graph, np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32),
                     f"{node.name}_paddings")
    padded = insert(graph, node, "tfl.pad", [x, paddings], x, f"{node.name}_pad",
                    shape=(x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right,
                           x.shape[3]))
    pooled = insert(graph, node, "tfl.average_pool_2d", [padded], x, f"{node.name}_sum",
                    {"padding": "VALID", "stride_h": sh, "stride_w": sw, "filter_height": kh,
                     "filter_width": kw, "fused_activation_function": "NONE"},
                    shape=out.shape)
    if out.quant is not None:
        qp = activation_params(0.0, float(factor.max()))
        scale_t = const(graph, quantize_array(factor, qp), f"{node.name}_taps", qp)
    else:
        scale_t = const(graph, factor, f"{node.name}_taps")
    graph.rewrite_node(node, "tfl.mul", [pooled, scale_t],
                       {"fused_activation_function": str(node.attr("activation", "NONE"))})


def _lrn_check(node: Node) -> str | None:
    if node.attr("layout", "NCHW") != "NHWC" or node.arg(0).type.rank != 4:
        return "LRN needs a 4-D input in NHWC (run to-nhwc)"
    if int(node.attr("size")) % 2 == 0:
        return f"LRN size {node.attr('size')} is even (TFLite's window is symmetric)"
    return None


@rule("LRN", check=_lrn_check)
def _lrn(graph: Graph, node: Node) -> None:
    size = int(node.attr("size"))
    graph.rewrite_node(node, "tfl.local_response_normalization", [node.arg(0)],
                       {"radius": (size - 1) // 2, "bias": float(node.attr("bias")),
                        "alpha": float(node.attr("alpha")) / size,
                        "beta": float(node.attr("beta"))})


def _matmul_check(node: Node) -> str | None:
    a, b = node.arg(0), node.arg(1)
    if not 2 <= a.type.rank <= 5 or not 2 <= b.type.rank <= 5:
        return (f"MatMul of {a.shape} and {b.shape}: BATCH_MATMUL needs ranks 2..5 (a constant "
                "2-D right operand becomes FULLY_CONNECTED in lower-fc)")
    return None


@rule("MatMul", check=_matmul_check)
def _matmul(graph: Graph, node: Node) -> None:
    graph.rewrite_node(node, "tfl.batch_matmul", [node.arg(0), node.arg(1)],
                       {"adj_x": False, "adj_y": False, "asymmetric_quantize_inputs": False})


@rule("Gelu")
def _gelu(graph: Graph, node: Node) -> None:
    graph.rewrite_node(node, "tfl.gelu", [node.arg(0)],
                       {"approximate": node.attr("approximate", "none") == "tanh"})
