"""The numpy reference interpreter against onnxruntime, op by op: the two runners.

Each case of the ``test_interpreter_*_ops.py`` modules builds the op twice: as an IR
graph with the Graph API (``ir_op``, run by ``run_graph``) and as a one-node ONNX model
(``ort_op``, run by onnxruntime). NHWC cases transpose inputs, weights and outputs around
the NCHW ONNX reference. Results must agree to 1e-5 (absolute and relative; ``close``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import helper

from microlith.interpreter import run_graph
from microlith.ir.core import Graph
from microlith.ir.types import DType, TensorType
from microlith.ir.verifier import verify

TOL = {"rtol": 1e-5, "atol": 1e-5}


def rand(*shape: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 7919 * len(shape) + sum(shape))
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def act(y: np.ndarray, activation: str) -> np.ndarray:
    bounds = {"NONE": (None, None), "RELU": (0, None), "RELU6": (0, 6),
              "RELU_N1_TO_1": (-1, 1)}[activation]
    return y if bounds == (None, None) else np.clip(y, *bounds)


# ---- the two runners ----------------------------------------------------------------------
def ort_op(op_type: str, args: Sequence[np.ndarray | None], *, feeds: int = 1, opset: int = 13,
           out_dtype: Any = np.float32, **attrs: Any) -> np.ndarray:
    """Run one ONNX node; the first ``feeds`` args are graph inputs, the rest initializers."""
    args = list(args)
    while args and args[-1] is None:  # trailing optional inputs are left out
        args.pop()
    names, inputs, inits, feed = [], [], [], {}
    for i, arr in enumerate(args):
        if arr is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
        if i < feeds:
            inputs.append(helper.make_tensor_value_info(name, elem, arr.shape))
            feed[name] = arr
        else:
            inits.append(helper.make_tensor(name, elem, arr.shape, arr.flatten().tolist()))
    out_elem = helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype))
    node = helper.make_node(op_type, names, ["out"], **attrs)
    graph = helper.make_graph([node], "g", inputs,
                              [helper.make_tensor_value_info("out", out_elem, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def ir_op(op: str, args: Sequence[np.ndarray | None], *, feeds: int = 1,
          typed_batch: int | None = None, **attrs: Any) -> np.ndarray:
    """Run one IR node through ``run_graph``; the first ``feeds`` args are graph inputs.

    ``typed_batch`` types the inputs with that leading dimension while feeding the
    arrays as given (a batched run of a batch-1 graph).
    """
    graph = Graph()
    values, feed = [], {}
    for i, arr in enumerate(args):
        if arr is None:
            values.append(None)
        elif i < feeds:
            shape = arr.shape if typed_batch is None else (typed_batch, *arr.shape[1:])
            value = graph.add_input(f"in{i}", TensorType(DType.from_numpy(arr.dtype), shape))
            values.append(value)
            feed[value.name] = arr
        else:
            values.append(graph.add_constant(arr, f"c{i}"))
    node = graph.add_node(op, values, attrs)
    graph.outputs = list(node.outputs)
    verify(graph)
    result = run_graph(graph, feed)[node.output.name]
    assert result.dtype == node.output.dtype.numpy
    return result


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, **TOL)
