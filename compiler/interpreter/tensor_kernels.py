"""Reshape-like, data-movement and indexing kernels (ONNX semantics on the given arrays)."""

from __future__ import annotations

import math

import numpy as np

from microlith.interpreter.registry import need, optional, register
from microlith.ir.core import Node
from microlith.ir.opdefs import reshape_target, slice_index
from microlith.ir.types import DType

Arrays = list[np.ndarray | None]


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for rank {rank}")
    return axis % rank


@register("Flatten")
def flatten(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Reshape to [prod(dims[:axis]), prod(dims[axis:])]; axis in [-rank, rank]."""
    x = need(inputs, 0)
    axis = int(node.attr("axis"))
    if not -x.ndim <= axis <= x.ndim:
        raise ValueError(f"axis {axis} out of range for rank {x.ndim}")
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@register("Reshape")
def reshape(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """ONNX Reshape (allowzero=0): 0 copies the input dim, -1 is inferred.

    Batching: when the IR type keeps dimension 0 through the reshape (typed input
    and output agree on it) and the array's leading dimension differs from the typed
    one, the array's leading dimension is kept: the target is ``(N, *typed_out[1:])``.
    """
    x, spec = need(inputs, 0), need(inputs, 1)
    typed_in = node.input(0)
    typed_out = node.outputs[0] if node.outputs else None
    if (typed_in is not None and typed_out is not None and x.ndim == typed_in.type.rank
            and x.ndim > 0 and typed_out.type.rank > 0
            and x.shape[0] != typed_in.shape[0] and typed_in.shape[0] == typed_out.shape[0]
            and x.shape[1:] == typed_in.shape[1:]):
        return [x.reshape((x.shape[0], *typed_out.shape[1:]))]
    return [x.reshape(reshape_target(x.shape, np.asarray(spec).reshape(-1)))]


@register("Squeeze")
def squeeze(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Remove the size-1 ``axes`` (every size-1 axis of the array when None)."""
    x = need(inputs, 0)
    axes = node.attr("axes")
    if axes is None:
        return [np.squeeze(x)]
    return [np.squeeze(x, axis=tuple(_axis(int(a), x.ndim) for a in axes))]


@register("Unsqueeze")
def unsqueeze(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Insert size-1 axes at ``axes`` (positions in the output, negatives allowed)."""
    x = need(inputs, 0)
    axes = node.attr("axes")
    if axes is None:
        raise ValueError("axes is required")
    rank = x.ndim + len(axes)
    normalized = sorted(_axis(int(a), rank) for a in axes)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"repeated axes {list(axes)}")
    return [np.expand_dims(x, tuple(normalized))]


@register("Transpose")
def transpose(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Permute axes by ``perm`` (reverse them when None)."""
    x = need(inputs, 0)
    perm = node.attr("perm")
    return [np.transpose(x, None if perm is None else tuple(int(p) for p in perm))]


@register("Concat")
def concat(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Join the inputs along ``axis``."""
    arrays = [a for a in inputs if a is not None]
    if not arrays:
        raise ValueError("no inputs")
    return [np.concatenate(arrays, axis=_axis(int(node.attr("axis")), arrays[0].ndim))]


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge"}


@register("Pad")
def pad(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Pad by ``pads = [begin_0, ..., begin_r-1, end_0, ..., end_r-1]``.

    ``mode`` is "constant" (fill with ``value``), "reflect" or "edge"; negative pads
    crop, as in ONNX.
    """
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
    return [np.pad(x, widths, mode=_PAD_MODES[mode])]


@register("Shape")
def shape(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """The dimensions ``shape[start:end]`` of the input as int64."""
    x = need(inputs, 0)
    dims = x.shape[int(node.attr("start", 0)):node.attr("end")]
    return [np.asarray(dims, dtype=np.int64).reshape(len(dims))]


@register("Gather")
def gather(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Take ``indices`` (negatives count from the end) along ``axis``."""
    x, indices = need(inputs, 0), need(inputs, 1)
    axis = _axis(int(node.attr("axis")), x.ndim)
    return [np.take(x, indices.astype(np.int64, copy=False), axis=axis)]


@register("Cast")
def cast(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Convert to the element type ``to`` (a ``DType`` or its value, e.g. "f32")."""
    to = node.attr("to")
    if to is None:
        raise ValueError("attribute 'to' is required")
    target = DType(to).numpy
    x = need(inputs, 0)
    if target == np.bool_:
        return [x != 0]
    return [x.astype(target)]


@register("Slice")
def slice_(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """ONNX Slice with starts, ends and optional axes and steps (ends clamp)."""
    x, starts, ends = need(inputs, 0), need(inputs, 1), need(inputs, 2)
    axes, steps = optional(inputs, 3), optional(inputs, 4)
    return [x[slice_index(x.shape, starts, ends, axes, steps)]]
