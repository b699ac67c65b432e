"""The numpy reference interpreter: a kernel for every op, and how ``run_graph`` behaves.

``run_graph``: missing, extra or mis-shaped inputs are named (the batch may differ), inputs
are cast to the typed dtype, kernel failures name the node, intermediates are freed after
their last use, ``keep_all`` returns every value. The op-by-op comparisons with
onnxruntime are in ``test_interpreter_*_ops.py`` (runners in ``op_runners.py``).
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from microlith.interpreter import KERNELS, InterpreterError, run_graph
from microlith.ir.core import Graph
from microlith.ir.ops import OPS, get_op
from microlith.ir.types import DType, TensorType
from tests.compiler.op_runners import close, rand


def test_every_op_has_a_kernel() -> None:
    """A float reference kernel for every op; quantize / dequantize run integer-exact."""
    from microlith.quant.registry import QUANTIZE_OPS, integer_ops

    get_op("Conv")  # loads the registry
    assert set(KERNELS) | set(QUANTIZE_OPS) == set(OPS)
    assert set(QUANTIZE_OPS) <= set(integer_ops())


# ---- run_graph behaviour -----------------------------------------------------------------------
F32 = DType.FLOAT32


def chain_graph() -> Graph:
    """x -> Relu -> Sigmoid -> Tanh -> Neg (output), with a side output of Tanh."""
    graph = Graph()
    value = graph.add_input("x", TensorType(F32, (1, 4)))
    for op in ("Relu", "Sigmoid", "Tanh", "Neg"):
        value = graph.add_node(op, [value], name=op.lower()).output
    graph.outputs = [value]
    return graph


def test_missing_and_extra_inputs_are_named() -> None:
    graph = chain_graph()
    with pytest.raises(InterpreterError, match="missing graph input.*'x'"):
        run_graph(graph, {})
    with pytest.raises(InterpreterError, match="unknown graph input.*'y'"):
        run_graph(graph, {"x": rand(1, 4), "y": rand(1, 4)})


def test_wrong_shape_is_named_but_batch_may_differ() -> None:
    graph = chain_graph()
    with pytest.raises(InterpreterError, match=r"input 'x' has shape \(1, 5\)"):
        run_graph(graph, {"x": rand(1, 5)})
    with pytest.raises(InterpreterError, match="input 'x'"):
        run_graph(graph, {"x": rand(4)})
    x = rand(6, 4)
    out = run_graph(graph, {"x": x})["neg"]
    close(out, -np.tanh(1 / (1 + np.exp(-np.maximum(x, 0)))))


def test_inputs_are_cast_to_the_typed_dtype() -> None:
    out = run_graph(chain_graph(), {"x": np.zeros((1, 4), dtype=np.float64)})["neg"]
    assert out.dtype == np.float32


def test_kernel_failure_names_the_node() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (3, 4)))
    idx = graph.add_constant(np.array([7], dtype=np.int64), "idx")
    graph.outputs = [graph.add_node("Gather", [x, idx], name="pick").output]
    with pytest.raises(InterpreterError, match=r"^while executing %pick \(Gather\): .*7"):
        run_graph(graph, {"x": rand(3, 4)})


def test_missing_kernel_names_op_and_node() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (2,)))
    node = graph.add_node("Bogus", [x], name="weird", output_types=[TensorType(F32, (2,))])
    graph.outputs = [node.output]
    with pytest.raises(InterpreterError, match=r"%weird \(Bogus\): no kernel for op 'Bogus'"):
        run_graph(graph, {"x": rand(2)})


def test_output_shape_disagreeing_with_ir_type_is_reported() -> None:
    graph = chain_graph()
    graph.node("tanh").output.set_type(TensorType(F32, (1, 5)))
    with pytest.raises(InterpreterError, match=r"%tanh \(Tanh\): kernel produced shape"):
        run_graph(graph, {"x": rand(1, 4)})


def test_fused_activation_attribute_is_validated() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (2,)))
    graph.outputs = [graph.add_node("Add", [x, x], {"activation": "GELU"}, name="add").output]
    with pytest.raises(InterpreterError, match=r"%add \(Add\): .*GELU"):
        run_graph(graph, {"x": rand(2)})


def test_intermediates_are_freed_after_their_last_use() -> None:
    graph = chain_graph()
    refs: dict[str, weakref.ref] = {}
    alive_during_run: dict[str, list[str]] = {}

    def observer(node, outputs):
        gc.collect()
        alive_during_run[node.name] = [name for name, ref in refs.items() if ref() is not None]
        refs[node.name] = weakref.ref(outputs[0])

    result = run_graph(graph, {"x": rand(1, 4)}, observer=observer)
    assert list(result) == ["neg"]
    # When Tanh runs, Relu's output (last read by Sigmoid) is gone; Sigmoid's is its input.
    assert alive_during_run["tanh"] == ["sigmoid"]
    assert alive_during_run["neg"] == ["tanh"]
    gc.collect()
    assert [name for name, ref in refs.items() if ref() is not None] == ["neg"]


def test_keep_all_returns_every_value() -> None:
    graph = chain_graph()
    seen: list[str] = []
    x = rand(1, 4)
    values = run_graph(graph, {"x": x}, keep_all=True,
                       observer=lambda node, outs: seen.append(node.name))
    assert seen == ["relu", "sigmoid", "tanh", "neg"]
    assert set(values) == {"x", "relu", "sigmoid", "tanh", "neg"}
    close(values["sigmoid"], 1 / (1 + np.exp(-np.maximum(x, 0))))


def test_value_used_twice_survives_until_its_last_use() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (2, 3)))
    w = graph.add_constant(rand(4, 3), "w")
    h = graph.add_node("FullyConnected", [x, w], name="fc").output
    r = graph.add_node("Relu", [h], name="r").output
    s = graph.add_node("Add", [h, r], name="s").output  # reads h after Relu ran
    graph.outputs = [s, h]
    x_val = rand(2, 3)
    out = run_graph(graph, {"x": x_val})
    hv = x_val @ graph.values["w"].data.T
    close(out["s"], hv + np.maximum(hv, 0))
    close(out["fc"], hv)
