"""Shape inference for every op the IR knows (see ``microlith.ir.ops`` for conventions)."""

from __future__ import annotations

import math

import numpy as np

from microlith.ir.core import Node, Value
from microlith.ir.ops import NeedsConstant, ShapeError, register_op
from microlith.ir.types import DType, TensorType

SPATIAL = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0)}


def _in(node: Node, index: int) -> Value:
    value = node.input(index)
    if value is None:
        raise ShapeError(f"input {index} is required")
    return value


def _same(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    return [TensorType(x.dtype, x.shape)]


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Numpy/ONNX multidirectional broadcasting."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"shapes {' and '.join(map(str, shapes))} do not broadcast") from None


def spatial_axes(layout: str) -> tuple[int, int, int]:
    """(channel, height, width) axes of a 4-D tensor in ``layout``."""
    if layout == "NCHW":
        return 1, 2, 3
    if layout == "NHWC":
        return 3, 1, 2
    raise ShapeError(f"unknown layout {layout!r}")


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, pad_begin: int,
                     pad_end: int) -> int:
    """floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1."""
    effective = dilation * (kernel - 1) + 1
    out = (size + pad_begin + pad_end - effective) // stride + 1
    if out <= 0:
        raise ShapeError(f"window {effective} does not fit input {size} with pads "
                         f"({pad_begin}, {pad_end})")
    return out


def _spatial_out(node: Node, x: TensorType, kernel: tuple[int, int],
                 channels: int) -> list[TensorType]:
    if x.rank != 4:
        raise ShapeError(f"expects a 4-D input, got shape {x.shape}")
    layout = node.attr("layout", "NCHW")
    c_ax, h_ax, w_ax = spatial_axes(layout)
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    top, left, bottom, right = node.attr("pads", (0, 0, 0, 0))
    oh = conv_output_size(x.shape[h_ax], kernel[0], sh, dh, top, bottom)
    ow = conv_output_size(x.shape[w_ax], kernel[1], sw, dw, left, right)
    shape = [x.shape[0], 0, 0, 0]
    shape[c_ax], shape[h_ax], shape[w_ax] = channels, oh, ow
    return [TensorType(x.dtype, tuple(shape))]


@register_op("Conv", "2-D convolution (grouped/depthwise via group), explicit pads",
             inputs=(2, 3), attrs={**SPATIAL, "group": 1}, layout_sensitive=True,
             fusable_activation=True)
def _conv(node: Node) -> list[TensorType]:
    x, w = _in(node, 0).type, _in(node, 1).type
    if w.rank != 4:
        raise ShapeError(f"weights must be 4-D, got {w.shape}")
    layout = node.attr("layout", "NCHW")
    kernel = (w.shape[2], w.shape[3]) if layout == "NCHW" else (w.shape[1], w.shape[2])
    w_in = w.shape[1] if layout == "NCHW" else w.shape[3]
    c_ax = spatial_axes(layout)[0]
    group = node.attr("group", 1)
    if x.rank == 4 and x.shape[c_ax] != w_in * group:
        raise ShapeError(f"input has {x.shape[c_ax]} channels, weights expect "
                         f"{w_in} x group {group}")
    return _spatial_out(node, x, kernel, w.shape[0])


@register_op("ConvTranspose", "2-D transposed convolution (group 1, dilation 1)",
             inputs=(2, 3), attrs={**SPATIAL, "group": 1, "output_padding": (0, 0)},
             layout_sensitive=True, fusable_activation=True)
def _conv_transpose(node: Node) -> list[TensorType]:
    x, w = _in(node, 0).type, _in(node, 1).type
    layout = node.attr("layout", "NCHW")
    c_ax, h_ax, w_ax = spatial_axes(layout)
    # NCHW weights: [C_in, C_out/group, kH, kW]; NHWC weights: [C_out, kH, kW, C_in].
    if layout == "NCHW":
        out_c, kh, kw = w.shape[1] * node.attr("group", 1), w.shape[2], w.shape[3]
    else:
        out_c, kh, kw = w.shape[0], w.shape[1], w.shape[2]
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    top, left, bottom, right = node.attr("pads", (0, 0, 0, 0))
    oph, opw = node.attr("output_padding", (0, 0))
    oh = sh * (x.shape[h_ax] - 1) + oph + dh * (kh - 1) + 1 - top - bottom
    ow = sw * (x.shape[w_ax] - 1) + opw + dw * (kw - 1) + 1 - left - right
    shape = [x.shape[0], 0, 0, 0]
    shape[c_ax], shape[h_ax], shape[w_ax] = out_c, oh, ow
    return [TensorType(x.dtype, tuple(shape))]


def _pool(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    c_ax = spatial_axes(node.attr("layout", "NCHW"))[0]
    return _spatial_out(node, x, tuple(node.attr("kernel_shape")), x.shape[c_ax])


POOL_ATTRS = {"kernel_shape": None, "strides": (1, 1), "pads": (0, 0, 0, 0)}
register_op("MaxPool", "2-D max pooling", attrs=dict(POOL_ATTRS), layout_sensitive=True,
            fusable_activation=True)(_pool)
register_op("AveragePool", "2-D average pooling", attrs={**POOL_ATTRS, "count_include_pad": 0},
            layout_sensitive=True, fusable_activation=True)(_pool)


@register_op("GlobalAveragePool", "mean over the spatial dims, kept as size 1",
             layout_sensitive=True)
def _global_pool(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    _, h_ax, w_ax = spatial_axes(node.attr("layout", "NCHW"))
    shape = list(x.shape)
    shape[h_ax] = shape[w_ax] = 1
    return [TensorType(x.dtype, tuple(shape))]


@register_op("BatchNormalization", "inference batch norm: (x-mean)/sqrt(var+eps)*scale+B",
             inputs=(5, 5), attrs={"epsilon": 1e-5}, layout_sensitive=True)
def _batchnorm(node: Node) -> list[TensorType]:
    return _same(node)


@register_op("FullyConnected", "y = x @ W.T + b, W of shape [N, K]", inputs=(2, 3),
             fusable_activation=True)
def _fully_connected(node: Node) -> list[TensorType]:
    x, w = _in(node, 0).type, _in(node, 1).type
    if w.rank != 2 or x.shape[-1] != w.shape[1]:
        raise ShapeError(f"input {x.shape} does not match weights {w.shape}")
    return [TensorType(x.dtype, (*x.shape[:-1], w.shape[0]))]


@register_op("Gemm", "alpha * A' @ B' + beta * C", inputs=(2, 3),
             attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0})
def _gemm(node: Node) -> list[TensorType]:
    a, b = _in(node, 0).type, _in(node, 1).type
    m = a.shape[1] if node.attr("transA", 0) else a.shape[0]
    ka = a.shape[0] if node.attr("transA", 0) else a.shape[1]
    kb, n = (b.shape[1], b.shape[0]) if node.attr("transB", 0) else b.shape
    if ka != kb:
        raise ShapeError(f"inner dimensions differ: {a.shape} and {b.shape}")
    return [TensorType(a.dtype, (m, n))]


@register_op("MatMul", "numpy matmul", inputs=(2, 2))
def _matmul(node: Node) -> list[TensorType]:
    a, b = _in(node, 0).type, _in(node, 1).type
    left = (1, *a.shape) if a.rank == 1 else a.shape
    right = (*b.shape, 1) if b.rank == 1 else b.shape
    if left[-1] != right[-2]:
        raise ShapeError(f"cannot multiply {a.shape} by {b.shape}")
    shape = [*broadcast_shapes(left[:-2], right[:-2]), left[-2], right[-1]]
    if b.rank == 1:
        shape.pop(-1)
    if a.rank == 1:
        shape.pop(-2 if b.rank != 1 else -1)
    return [TensorType(a.dtype, tuple(shape))]


def _binary(node: Node) -> list[TensorType]:
    a, b = _in(node, 0).type, _in(node, 1).type
    return [TensorType(a.dtype, broadcast_shapes(a.shape, b.shape))]


for _name, _doc in [("Add", "a + b"), ("Sub", "a - b"), ("Mul", "a * b"), ("Div", "a / b")]:
    register_op(_name, f"elementwise {_doc}, broadcasting", inputs=(2, 2),
                fusable_activation=True)(_binary)
register_op("Max", "elementwise maximum", inputs=(2, 2))(_binary)
register_op("Min", "elementwise minimum", inputs=(2, 2))(_binary)

for _name, _doc, _attrs in [
    ("Relu", "max(x, 0)", {}),
    ("Sigmoid", "1 / (1 + exp(-x))", {}),
    ("Tanh", "tanh(x)", {}),
    ("LeakyRelu", "x if x >= 0 else alpha * x", {"alpha": 0.01}),
    ("HardSigmoid", "max(0, min(1, alpha * x + beta))", {"alpha": 0.2, "beta": 0.5}),
    ("HardSwish", "x * max(0, min(1, x / 6 + 1 / 2))", {}),
    ("Clip", "min(max(x, min), max)", {"min": -math.inf, "max": math.inf}),
    ("Identity", "x", {}),
    ("Exp", "exp(x)", {}),
    ("Sqrt", "sqrt(x)", {}),
    ("Neg", "-x", {}),
    ("Abs", "|x|", {}),
]:
    register_op(_name, _doc, attrs=_attrs)(_same)


@register_op("Softmax", "exp(x) / sum(exp(x)) along axis", attrs={"axis": -1})
def _softmax(node: Node) -> list[TensorType]:
    return _same(node)


def _normalize_axis(axis: int, rank: int, node: Node) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} out of range for rank {rank}")
    return axis % rank


@register_op("ReduceMean", "mean over axes", attrs={"axes": None, "keepdims": 1})
def _reduce_mean(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    axes = node.attr("axes")
    axes = range(x.rank) if axes is None else [_normalize_axis(a, x.rank, node) for a in axes]
    keep = node.attr("keepdims", 1)
    shape = [1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes]
    return [TensorType(x.dtype, tuple(shape))]


@register_op("Flatten", "reshape to [prod(dims[:axis]), prod(dims[axis:])]", attrs={"axis": 1})
def _flatten(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    axis = node.attr("axis", 1)
    if not -x.rank <= axis <= x.rank:
        raise ShapeError(f"axis {axis} out of range for rank {x.rank}")
    axis = axis + x.rank if axis < 0 else axis
    return [TensorType(x.dtype, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))]


def reshape_target(in_shape: tuple[int, ...], spec: np.ndarray) -> tuple[int, ...]:
    """ONNX Reshape (allowzero=0): 0 copies the input dim, -1 is inferred."""
    out = [int(in_shape[i]) if int(d) == 0 else int(d) for i, d in enumerate(spec)]
    total = math.prod(in_shape)
    if out.count(-1) > 1:
        raise ShapeError(f"more than one -1 in shape {list(spec)}")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or total % known:
            raise ShapeError(f"cannot reshape {in_shape} to {list(spec)}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise ShapeError(f"cannot reshape {in_shape} to {list(spec)}")
    return tuple(out)


@register_op("Reshape", "reshape to the constant shape input (0 copies, -1 infers)",
             inputs=(2, 2))
def _reshape(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    spec = node.const_input(1)
    if spec is None:
        raise NeedsConstant("the target shape is not a constant (fold-constants first)")
    return [TensorType(x.dtype, reshape_target(x.shape, spec))]


@register_op("Squeeze", "remove size-1 axes", attrs={"axes": None})
def _squeeze(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    axes = node.attr("axes")
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {_normalize_axis(a, x.rank, node) for a in axes}
    if any(x.shape[a] != 1 for a in axes):
        raise ShapeError(f"cannot squeeze axes {sorted(axes)} of shape {x.shape}")
    return [TensorType(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in axes))]


@register_op("Unsqueeze", "insert size-1 axes", attrs={"axes": None})
def _unsqueeze(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    rank = x.rank + len(node.attr("axes"))
    axes = sorted(_normalize_axis(a, rank, node) for a in node.attr("axes"))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return [TensorType(x.dtype, tuple(shape))]


@register_op("Transpose", "permute axes", attrs={"perm": None})
def _transpose(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    perm = node.attr("perm") or tuple(reversed(range(x.rank)))
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"perm {perm} is not a permutation of rank {x.rank}")
    return [TensorType(x.dtype, tuple(x.shape[p] for p in perm))]


@register_op("Concat", "join along axis", inputs=(1, 1 << 16), attrs={"axis": 0},
             fusable_activation=True)
def _concat(node: Node) -> list[TensorType]:
    types = [v.type for v in node.inputs if v is not None]
    axis = _normalize_axis(node.attr("axis"), types[0].rank, node)
    for t in types[1:]:
        if t.rank != types[0].rank or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, types[0].shape, strict=True))
                if i != axis):
            raise ShapeError(f"shapes {types[0].shape} and {t.shape} differ off axis {axis}")
    shape = list(types[0].shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return [TensorType(types[0].dtype, tuple(shape))]


@register_op("Pad", "constant padding; pads = [begins..., ends...]",
             attrs={"pads": None, "value": 0.0, "mode": "constant"})
def _pad(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    pads = node.attr("pads")
    if pads is None or len(pads) != 2 * x.rank:
        raise ShapeError(f"pads {pads} do not fit rank {x.rank}")
    shape = tuple(d + pads[i] + pads[i + x.rank] for i, d in enumerate(x.shape))
    return [TensorType(x.dtype, shape)]


@register_op("Shape", "the input's shape as int64", attrs={"start": 0, "end": None})
def _shape(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    dims = x.shape[node.attr("start", 0):node.attr("end")]
    return [TensorType(DType.INT64, (len(dims),))]


@register_op("Gather", "take along axis", inputs=(2, 2), attrs={"axis": 0})
def _gather(node: Node) -> list[TensorType]:
    x, idx = _in(node, 0).type, _in(node, 1).type
    axis = _normalize_axis(node.attr("axis", 0), x.rank, node)
    return [TensorType(x.dtype, (*x.shape[:axis], *idx.shape, *x.shape[axis + 1:]))]


@register_op("Cast", "convert element type", attrs={"to": None})
def _cast(node: Node) -> list[TensorType]:
    return [TensorType(DType(node.attr("to")), _in(node, 0).shape)]


@register_op("Slice", "ONNX Slice with constant starts/ends/axes/steps", inputs=(3, 5))
def _slice(node: Node) -> list[TensorType]:
    x = _in(node, 0).type
    consts = [node.const_input(i) for i in range(1, len(node.inputs))]
    if any(c is None for c in consts[:2]):
        raise NeedsConstant("starts and ends must be constants")
    index = slice_index(x.shape, *consts)
    return [TensorType(x.dtype, tuple(np.empty(x.shape, np.int8)[index].shape))]


def slice_index(shape: tuple[int, ...], starts: np.ndarray, ends: np.ndarray,
                axes: np.ndarray | None = None, steps: np.ndarray | None = None
                ) -> tuple[slice, ...]:
    """The numpy index equivalent to ONNX Slice (ends clamp, negatives count from the end)."""
    rank = len(shape)
    axes_list = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes]
    steps_list = [1] * len(starts) if steps is None else [int(s) for s in steps]
    index = [slice(None)] * rank
    for axis, start, end, step in zip(axes_list, starts, ends, steps_list, strict=True):
        dim = shape[axis]
        start, end = int(max(min(int(start), 2**62), -(2**62))), int(
            max(min(int(end), 2**62), -(2**62)))
        first, stop, step = slice(start, end, step).indices(dim)
        # A negative step that runs past index 0 gives stop == -1, which numpy would
        # read as "the last element": use None (run to the beginning) instead.
        index[axis] = slice(first, None if stop < 0 else stop, step)
    return tuple(index)
