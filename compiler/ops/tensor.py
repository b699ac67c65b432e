"""Data movement: reshape-like ops, Transpose, Concat, Pad, Shape/Gather/Cast/Slice, and
TFLite's ``tfl.reshape`` / ``tfl.transpose`` / ``tfl.concatenation`` / ``tfl.pad`` /
``tfl.padv2`` / ``tfl.split`` / ``tfl.split_v`` (shape-like operands are constant int32 inputs).

ONNX ``Pad`` carries ``pads = [begins..., ends...]`` (negative pads crop), ``mode`` and
``value``; TFLite's ``paddings`` is ``[rank, 2]`` (before, after), filled with zero (the
zero point when quantized) or PADV2's constant input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Layout, Memory, NeedsConstant, ShapeError, define_op
from microlith.ir.types import DType, TensorType
from microlith.ops.common import (
    Arrays,
    batched_shape,
    define_tfl,
    need,
    normalize_axis,
    operand,
    optional,
    reshape_target,
    same_type,
    slice_index,
)


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis % rank


# ---- reshape-like ---------------------------------------------------------------------------
def _flatten_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    axis = node.attr("axis", 1)
    if not -x.rank <= axis <= x.rank:
        raise ShapeError(f"axis {axis} out of range for rank {x.rank}")
    axis = axis + x.rank if axis < 0 else axis
    return [TensorType(x.dtype, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))]


def _flatten_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    axis = int(node.attr("axis"))
    if not -x.ndim <= axis <= x.ndim:
        raise ValueError(f"axis {axis} out of range for rank {x.ndim}")
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


def _reshape_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    spec = node.const_input(1)
    if spec is None:
        raise NeedsConstant("the target shape is not a constant (fold-constants first)")
    return [TensorType(x.dtype, reshape_target(x.shape, spec))]


def _reshape_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """ONNX Reshape (allowzero=0): 0 copies the input dim, -1 is inferred (batch kept, see
    ``batched_shape``)."""
    x, spec = need(inputs, 0), need(inputs, 1)
    out = node.outputs[0] if node.outputs else None
    if out is not None and node.inputs[0] is not None:
        target = batched_shape(node, x, out.shape)
        if target != out.shape:
            return [x.reshape(target)]
    return [x.reshape(reshape_target(x.shape, np.asarray(spec).reshape(-1)))]


def _squeeze_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    axes = node.attr("axes")
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {normalize_axis(a, x.rank) for a in axes}
    if any(x.shape[a] != 1 for a in axes):
        raise ShapeError(f"cannot squeeze axes {sorted(axes)} of shape {x.shape}")
    return [TensorType(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in axes))]


def _squeeze_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    axes = node.attr("axes")
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(_axis(int(a), x.ndim) for a in axes))]


def _unsqueeze_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    rank = x.rank + len(node.attr("axes"))
    axes = sorted(normalize_axis(a, rank) for a in node.attr("axes"))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return [TensorType(x.dtype, tuple(shape))]


def _unsqueeze_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    axes = node.attr("axes")
    if axes is None:
        raise ValueError("axes is required")
    rank = x.ndim + len(axes)
    normalized = sorted(_axis(int(a), rank) for a in axes)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"repeated axes {list(axes)}")
    return [np.expand_dims(x, tuple(normalized))]


define_op("Flatten", "reshape to [prod(dims[:axis]), prod(dims[axis:])]", infer=_flatten_infer,
          kernel=_flatten_kernel, attrs={"axis": 1}, layout=Layout.RESHAPE, int8=Int8Rule.SAME,
          int16=True)
define_op("Reshape", "reshape to the constant shape input (0 copies, -1 infers)",
          infer=_reshape_infer, kernel=_reshape_kernel, inputs=(2, 2), layout=Layout.RESHAPE,
          int8=Int8Rule.SAME, int16=True)
define_op("Squeeze", "remove size-1 axes", infer=_squeeze_infer, kernel=_squeeze_kernel,
          attrs={"axes": None}, layout=Layout.RESHAPE, int8=Int8Rule.SAME, int16=True)
define_op("Unsqueeze", "insert size-1 axes", infer=_unsqueeze_infer, kernel=_unsqueeze_kernel,
          attrs={"axes": None}, layout=Layout.RESHAPE, int8=Int8Rule.SAME, int16=True)
define_op("Identity", "x", infer=same_type, kernel=lambda node, inputs: [need(inputs, 0)],
          layout=Layout.ELEMENTWISE, int8=Int8Rule.SAME, int16=True)


def _tfl_reshape_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    spec = node.const_input(1)
    if spec is None:
        raise NeedsConstant("the shape operand is not a constant")
    return [TensorType(x.dtype, reshape_target(x.shape, np.asarray(spec).reshape(-1)))]


def _tfl_reshape_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    return [x.reshape(batched_shape(node, x, node.output.shape))]


define_tfl("RESHAPE", "the same bytes with the shape of input 1", infer=_tfl_reshape_infer,
           kernel=_tfl_reshape_kernel, inputs=(2, 2), memory=Memory.ALIAS)


# ---- Transpose / Concat ----------------------------------------------------------------------
def _transpose_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    perm = node.attr("perm") or tuple(reversed(range(x.rank)))
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"perm {perm} is not a permutation of rank {x.rank}")
    return [TensorType(x.dtype, tuple(x.shape[p] for p in perm))]


def _transpose_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    perm = node.attr("perm")
    return [np.transpose(x, None if perm is None else tuple(int(p) for p in perm))]


define_op("Transpose", "permute axes", infer=_transpose_infer, kernel=_transpose_kernel,
          attrs={"perm": None}, layout=Layout.TRANSPOSE, int8=Int8Rule.SAME, int16=True)


def _tfl_perm(node: Node) -> tuple[int, ...]:
    perm = node.const_input(1)
    if perm is None:
        raise NeedsConstant("the perm operand is not a constant")
    return tuple(int(p) for p in np.asarray(perm).reshape(-1))


def _tfl_transpose_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    perm = _tfl_perm(node)
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"perm {perm} is not a permutation of rank {x.rank}")
    return [TensorType(x.dtype, tuple(x.shape[p] for p in perm))]


define_tfl("TRANSPOSE", "permute axes by the constant perm (input 1)",
           infer=_tfl_transpose_infer, inputs=(2, 2),
           kernel=lambda node, inputs: [np.transpose(need(inputs, 0), _tfl_perm(node))])


def concat_infer(node: Node) -> list[TensorType]:
    types = [v.type for v in node.inputs if v is not None]
    axis = normalize_axis(node.attr("axis"), types[0].rank)
    for t in types[1:]:
        if t.rank != types[0].rank or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, types[0].shape, strict=True))
                if i != axis):
            raise ShapeError(f"shapes {types[0].shape} and {t.shape} differ off axis {axis}")
    shape = list(types[0].shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return [TensorType(types[0].dtype, tuple(shape))]


def concat_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    arrays = [a for a in inputs if a is not None]
    if not arrays:
        raise ValueError("no inputs")
    return [np.concatenate(arrays, axis=_axis(int(node.attr("axis")), arrays[0].ndim))]


define_op("Concat", "join along axis", infer=concat_infer, kernel=concat_kernel,
          inputs=(1, 1 << 16), attrs={"axis": 0}, layout=Layout.CONCAT, int8=Int8Rule.SAME,
          int16=True)
define_tfl("CONCATENATION", "join along axis", infer=concat_infer, kernel=concat_kernel,
           inputs=(1, 1 << 16))


def _tfl_split_infer(node: Node) -> list[TensorType]:
    axis, x = node.const_input(0), operand(node, 1).type
    if axis is None:
        raise NeedsConstant("the axis operand is not a constant")
    a = normalize_axis(int(np.asarray(axis).reshape(-1)[0]), x.rank)
    count = int(node.attr("num_splits"))
    if count <= 0 or x.shape[a] % count:
        raise ShapeError(f"dimension {a} of {x.shape} does not split in {count}")
    shape = list(x.shape)
    shape[a] //= count
    return [TensorType(x.dtype, tuple(shape))] * count


def _tfl_split_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    axis, x = need(inputs, 0), need(inputs, 1)
    a = _axis(int(np.asarray(axis).reshape(-1)[0]), x.ndim)
    return [np.ascontiguousarray(p) for p in np.split(x, int(node.attr("num_splits")), axis=a)]


define_tfl("SPLIT", "equal parts along the constant axis (input 0)", infer=_tfl_split_infer,
           kernel=_tfl_split_kernel, inputs=(2, 2), outputs=0)


def _split_v_sizes(node: Node) -> tuple[list[int], int]:
    """SPLIT_V's ``size_splits`` (input 1) and axis (input 2), checked against input 0."""
    sizes, axis, x = node.const_input(1), node.const_input(2), operand(node, 0).type
    if sizes is None or axis is None:
        raise NeedsConstant("size_splits and axis must be constants")
    a = normalize_axis(int(np.asarray(axis).reshape(-1)[0]), x.rank)
    parts = [int(s) for s in np.asarray(sizes).reshape(-1)]
    if len(parts) != int(node.attr("num_splits")) or min(parts) <= 0 or sum(parts) != x.shape[a]:
        raise ShapeError(f"size_splits {parts} do not split dimension {a} of {x.shape}")
    return parts, a


def _tfl_split_v_infer(node: Node) -> list[TensorType]:
    parts, a = _split_v_sizes(node)
    x = operand(node, 0).type
    return [TensorType(x.dtype, tuple(s if d == a else n for d, n in enumerate(x.shape)))
            for s in parts]


def _tfl_split_v_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    parts, a = _split_v_sizes(node)
    bounds = np.cumsum(parts)[:-1]
    return [np.ascontiguousarray(p) for p in np.split(need(inputs, 0), bounds, axis=a)]


define_tfl("SPLIT_V", "parts of the constant sizes (input 1) along the constant axis "
           "(input 2)", infer=_tfl_split_v_infer, kernel=_tfl_split_v_kernel, inputs=(3, 3),
           outputs=0)


# ---- Pad -----------------------------------------------------------------------------------
def _pad_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    pads = node.attr("pads")
    if pads is None or len(pads) != 2 * x.rank:
        raise ShapeError(f"pads {pads} do not fit rank {x.rank}")
    shape = tuple(d + pads[i] + pads[i + x.rank] for i, d in enumerate(x.shape))
    return [TensorType(x.dtype, shape)]


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge"}


def _pad_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Pad by ``pads``; ``mode`` "constant" (fill with ``value``), "reflect" or "edge"."""
    x = need(inputs, 0)
    pads = node.attr("pads")
    if pads is None or len(pads) != 2 * x.ndim:
        raise ValueError(f"pads {pads} do not fit rank {x.ndim}")
    mode = node.attr("mode", "constant")
    if mode not in _PAD_MODES:
        raise ValueError(f"unsupported pad mode {mode!r}")
    pads = [int(p) for p in pads]
    begins, ends = pads[:x.ndim], pads[x.ndim:]
    crop = tuple(slice(max(-b, 0), d - max(-e, 0)) for b, e, d in zip(begins, ends, x.shape,
                                                                     strict=True))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends, strict=True)]
    if mode == "constant":
        value = np.asarray(node.attr("value", 0.0)).astype(x.dtype)
        return [np.pad(x, widths, mode="constant", constant_values=value)]
    return [np.pad(x, widths, mode=_PAD_MODES[mode])]  # type: ignore[call-overload]


define_op("Pad", "constant padding; pads = [begins..., ends...]", infer=_pad_infer,
          kernel=_pad_kernel, attrs={"pads": None, "value": 0.0, "mode": "constant"},
          layout=Layout.AXIS, axis_attr="pads", int8=Int8Rule.SAME, int16=True)


def tfl_paddings(node: Node) -> list[tuple[int, int]]:
    """The constant ``[rank, 2]`` paddings operand (input 1)."""
    paddings = node.const_input(1)
    if paddings is None:
        raise NeedsConstant("the paddings operand is not a constant")
    return [(int(a), int(b)) for a, b in np.asarray(paddings).reshape(-1, 2)]


def _tfl_pad_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    widths = tfl_paddings(node)
    if len(widths) != x.rank:
        raise ShapeError(f"paddings for rank {len(widths)} on a rank-{x.rank} tensor")
    return [TensorType(x.dtype, tuple(d + a + b for d, (a, b) in zip(x.shape, widths,
                                                                    strict=True)))]


def _tfl_pad_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    fill = optional(inputs, 2)
    value = 0 if fill is None else np.asarray(fill).reshape(-1)[0]
    return [np.pad(x, tfl_paddings(node), constant_values=value)]


define_tfl("PAD", "pad with zero (the zero point)", infer=_tfl_pad_infer,
           kernel=_tfl_pad_kernel, inputs=(2, 2))
define_tfl("PADV2", "pad with the constant input 2", infer=_tfl_pad_infer,
           kernel=_tfl_pad_kernel, inputs=(3, 3))


# ---- indexing and types ----------------------------------------------------------------------
def _shape_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    dims = x.shape[node.attr("start", 0):node.attr("end")]
    return [TensorType(DType.INT64, (len(dims),))]


def shape_value(node: Node, shape: Sequence[int] | None = None) -> np.ndarray:
    """A ``Shape`` node's int64 result: ``shape`` (default: its input's static dims)
    sliced by ``start``/``end``; shapes are static, so this folds without data."""
    dims = list(node.arg(0).shape if shape is None else shape)
    picked = dims[int(node.attr("start", 0)):node.attr("end")]
    return np.asarray(picked, dtype=np.int64).reshape(len(picked))


def _shape_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    return [shape_value(node, need(inputs, 0).shape)]


def _gather_infer(node: Node) -> list[TensorType]:
    x, idx = operand(node, 0).type, operand(node, 1).type
    axis = normalize_axis(node.attr("axis", 0), x.rank)
    return [TensorType(x.dtype, (*x.shape[:axis], *idx.shape, *x.shape[axis + 1:]))]


def _gather_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x, indices = need(inputs, 0), need(inputs, 1)
    axis = _axis(int(node.attr("axis")), x.ndim)
    return [np.take(x, indices.astype(np.int64, copy=False), axis=axis)]


def _cast_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    to = node.attr("to")
    if to is None:
        raise ValueError("attribute 'to' is required")
    target = DType(to).numpy
    x = need(inputs, 0)
    if target == np.bool_:
        return [x != 0]
    return [x.astype(target)]


def _slice_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    consts = [node.const_input(i) for i in range(1, len(node.inputs))]
    starts, ends = consts[0], consts[1] if len(consts) > 1 else None
    if starts is None or ends is None:
        raise NeedsConstant("starts and ends must be constants")
    index = slice_index(x.shape, starts, ends, *consts[2:])
    return [TensorType(x.dtype, tuple(np.empty(x.shape, np.int8)[index].shape))]


def _slice_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x, starts, ends = need(inputs, 0), need(inputs, 1), need(inputs, 2)
    axes, steps = optional(inputs, 3), optional(inputs, 4)
    return [x[slice_index(x.shape, starts, ends, axes, steps)]]


define_op("Shape", "the input's shape as int64", infer=_shape_infer, kernel=_shape_kernel,
          attrs={"start": 0, "end": None})
define_op("Gather", "take along axis", infer=_gather_infer, kernel=_gather_kernel,
          inputs=(2, 2), attrs={"axis": 0}, int8=Int8Rule.SAME)
define_op("Cast", "convert element type",
          infer=lambda node: [TensorType(DType(node.attr("to")), operand(node, 0).shape)],
          kernel=_cast_kernel, attrs={"to": None}, layout=Layout.ELEMENTWISE)
define_op("Slice", "ONNX Slice with constant starts/ends/axes/steps", infer=_slice_infer,
          kernel=_slice_kernel, inputs=(3, 5), int8=Int8Rule.SAME, layout=Layout.AXIS,
          axis_attr="axes_input")
