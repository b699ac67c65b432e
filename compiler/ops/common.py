"""Helpers shared by the op families: operand access, broadcasting, spatial geometry.

``conv_output_size`` is the explicit-padding rule (``floor((size + pads - d (k - 1) - 1) /
s) + 1``); ``same_valid_pads`` is TFLite's SAME / VALID rule (``ComputePaddingHeightWidth``)
turned into explicit ``(top, left, bottom, right)`` pads, so target ops can reuse the
explicit-padding float kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from microlith.ir.core import Node, Value
from microlith.ir.ops import ShapeError
from microlith.ir.types import TensorType

Arrays = list[np.ndarray | None]
SPATIAL = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0)}


def operand(node: Node, index: int) -> Value:
    """Input ``index`` of ``node``, which must be present (else a ``ShapeError``)."""
    value = node.input(index)
    if value is None:
        raise ShapeError(f"input {index} is required")
    return value


def same_type(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    return [TensorType(x.dtype, x.shape)]


def need(inputs: Arrays, index: int) -> np.ndarray:
    """Input ``index`` of a kernel, which must be present."""
    if index >= len(inputs) or inputs[index] is None:
        raise ValueError(f"input {index} is required")
    return inputs[index]  # type: ignore[return-value]


def optional(inputs: Arrays, index: int) -> np.ndarray | None:
    """Input ``index`` of a kernel, or None when absent."""
    return inputs[index] if index < len(inputs) else None


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Numpy/ONNX multidirectional broadcasting."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"shapes {' and '.join(map(str, shapes))} do not broadcast") from None


def normalize_axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"axis {axis} out of range for rank {rank}")
    return axis % rank


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


def same_valid_pads(padding: str, in_hw: Sequence[int], kernel: Sequence[int],
                    strides: Sequence[int], dilations: Sequence[int] = (1, 1)
                    ) -> tuple[int, int, int, int]:
    """TFLite's SAME / VALID padding as explicit ``(top, left, bottom, right)`` pads.

    SAME: ``out = ceil(in / s)``, ``total = max((out - 1) s + d (k - 1) + 1 - in, 0)``, the
    leading half rounded down; VALID: no padding.
    """
    if padding not in ("SAME", "VALID"):
        raise ShapeError(f"unknown padding {padding!r}")
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
        if padding == "VALID":
            begins.append(0)
            ends.append(0)
            continue
        out = -(-int(size) // int(s))
        total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins[0], begins[1], ends[0], ends[1]


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


def batched_shape(node: Node, x: np.ndarray, out_shape: Sequence[int]) -> tuple[int, ...]:
    """The target shape of a reshape-like op on ``x``, keeping an untyped batch dimension.

    When the typed input and output agree on dimension 0 and ``x``'s leading dimension
    differs from the typed one (many samples run at once), the target is
    ``(N, *out_shape[1:])``.
    """
    typed_in = node.inputs[0].shape if node.inputs and node.inputs[0] is not None else ()
    out = tuple(int(d) for d in out_shape)
    if (x.ndim == len(typed_in) and x.ndim > 0 and len(out) > 0 and x.shape[0] != typed_in[0]
            and typed_in[0] == out[0] and x.shape[1:] == tuple(typed_in[1:])):
        return (x.shape[0], *out[1:])
    return out


def tfl_attrs(builtin: str) -> dict[str, object]:
    """The option fields of TFLite builtin ``builtin`` with their schema defaults."""
    from microlith.formats.tflite.schema import options_table

    table = options_table(builtin)
    return {} if table is None else {f.name: f.default for f in table.fields if f is not None}


def define_tfl(builtin: str, doc: str, **facts: object):  # noqa: ANN201 (an OpDef)
    """Register ``tfl.<builtin lower case>``: attributes are the builtin's options."""
    from microlith.ir.ops import define_op

    attrs = tfl_attrs(builtin)
    if "fused_activation_function" in attrs:
        facts.setdefault("activation_attr", "fused_activation_function")
    return define_op(f"tfl.{builtin.lower()}", doc, attrs=attrs, builtin=builtin,
                     **facts)  # type: ignore[arg-type]
