"""The reference interpreter vs onnxruntime: tensor ops (reshapes, transpose, concat,
pad, shape, gather, cast, slice).

Each case runs the op through ``run_graph`` and through onnxruntime (``op_runners``);
the results must agree to 1e-5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from onnx import helper

from microlith.ir.types import DType
from tests.compiler.op_runners import close, ir_op, ort_op, rand


# ---- tensor ops ----------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2, -1, 4, -4, -2])
def test_flatten(axis: int) -> None:
    x = rand(2, 3, 4, 5)
    close(ir_op("Flatten", [x], axis=axis), ort_op("Flatten", [x], axis=axis))


@pytest.mark.parametrize("spec", [[0, -1], [2, 3, 4], [-1], [0, 4, -1], [4, 0, 2]])
def test_reshape(spec: list[int]) -> None:
    x, target = rand(2, 3, 4), np.array(spec, dtype=np.int64)
    close(ir_op("Reshape", [x, target]), ort_op("Reshape", [x, target]))


def test_reshape_keeps_the_batch_of_a_batched_run() -> None:
    x = rand(5, 3, 4)
    actual = ir_op("Reshape", [x, np.array([1, 12], dtype=np.int64)], typed_batch=1)
    close(actual, x.reshape(5, 12))


@pytest.mark.parametrize("axes", [(0,), (-1,), (0, 2), None])
def test_squeeze(axes: tuple[int, ...] | None) -> None:
    x = rand(1, 3, 1, 1)
    onnx_axes = None if axes is None else np.array(axes, dtype=np.int64)
    attrs = {} if axes is None else {"axes": axes}
    close(ir_op("Squeeze", [x], **attrs), ort_op("Squeeze", [x, onnx_axes]))


@pytest.mark.parametrize("axes", [(0,), (-1,), (1, 3), (0, -1), (3, 0)])
def test_unsqueeze(axes: tuple[int, ...]) -> None:
    x = rand(2, 3)
    close(ir_op("Unsqueeze", [x], axes=axes),
          ort_op("Unsqueeze", [x, np.array(axes, dtype=np.int64)]))


@pytest.mark.parametrize("perm", [None, (0, 2, 3, 1), (0, 3, 1, 2), (3, 1, 0, 2)])
def test_transpose(perm: tuple[int, ...] | None) -> None:
    x = rand(2, 3, 4, 5)
    attrs = {} if perm is None else {"perm": perm}
    close(ir_op("Transpose", [x], **attrs), ort_op("Transpose", [x], **attrs))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis: int) -> None:
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, size in enumerate((1, 2, 3)):
        shapes[i][axis] = size
    args = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    close(ir_op("Concat", args, feeds=3, axis=axis), ort_op("Concat", args, feeds=3, axis=axis))


def test_concat_takes_no_fused_activation() -> None:
    """Concat is not activation-fusable (TFLite's CONCATENATION refuses one): the
    attribute is unknown to the op, so nothing has to split a fusion apart again."""
    from microlith.ir.ops import get_op

    assert not get_op("Concat").fusable_activation
    assert "activation" not in get_op("Concat").attrs


@pytest.mark.parametrize("pads,mode,value", [
    ((0, 0, 1, 2, 0, 0, 2, 1), "constant", 0.0),
    ((0, 1, 1, 0, 1, 0, 0, 3), "constant", 1.5),
    ((0, 0, -1, 1, 0, 0, 1, -2), "constant", -2.0),
    ((0, 0, 1, 2, 0, 0, 2, 1), "reflect", 0.0),
    ((0, 0, 1, 2, 0, 0, 2, 1), "edge", 0.0),
])
def test_pad(pads: tuple[int, ...], mode: str, value: float) -> None:
    x = rand(2, 3, 4, 5)
    expected = ort_op("Pad", [x, np.array(pads, dtype=np.int64), np.array(value, np.float32)],
                      mode=mode)
    close(ir_op("Pad", [x], pads=pads, mode=mode, value=value), expected)


@pytest.mark.parametrize("start,end", [(0, None), (1, None), (-2, None), (1, -1), (0, 10)])
def test_shape(start: int, end: int | None) -> None:
    x = rand(2, 3, 4, 5)
    attrs: dict[str, Any] = {"start": start}
    if end is not None:
        attrs["end"] = end
    expected = ort_op("Shape", [x], opset=15, out_dtype=np.int64, **attrs)
    actual = ir_op("Shape", [x], **attrs)
    assert actual.dtype == np.int64
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("indices", [np.array(1), np.array([2, -1, 0]),
                                     np.array([[0, 1], [-2, 2]], dtype=np.int32)], ids=str)
def test_gather(axis: int, indices: np.ndarray) -> None:
    x = rand(3, 4, 5)
    indices = indices.astype(indices.dtype if indices.dtype == np.int32 else np.int64)
    close(ir_op("Gather", [x, indices], axis=axis), ort_op("Gather", [x, indices], axis=axis))


@pytest.mark.parametrize("src,dst", [(np.float32, DType.INT32), (np.float32, DType.BOOL),
                                     (np.int64, DType.FLOAT32), (np.float32, DType.INT8),
                                     (np.float32, DType.FLOAT32)])
def test_cast(src: type, dst: DType) -> None:
    x = (rand(3, 7, scale=20.0)).astype(src)
    x[0, :3] = 0
    onnx_to = helper.np_dtype_to_tensor_dtype(dst.numpy)
    expected = ort_op("Cast", [x], to=onnx_to, out_dtype=dst.numpy)
    actual = ir_op("Cast", [x], to=dst.value)
    assert actual.dtype == dst.numpy
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([0], [2], None, None),
    ([1, 0], [100, -1], [1, 2], None),
    ([-1], [-1000], [1], [-1]),
    ([3, 4], [0, 0], [-2, -1], [-1, -2]),
    ([0, 1, 0], [2, 4, 5], [0, 1, 2], [1, 2, 3]),
    ([-3], [-1], [-1], [1]),
    ([10], [20], [2], [1]),
    ([2**62], [-(2**62)], [1], [-2]),
])
def test_slice(starts: list[int], ends: list[int], axes: list[int] | None,
               steps: list[int] | None) -> None:
    x = rand(2, 4, 5)
    args = [x, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64),
            None if axes is None else np.array(axes, dtype=np.int64),
            None if steps is None else np.array(steps, dtype=np.int64)]
    close(ir_op("Slice", args), ort_op("Slice", args))
