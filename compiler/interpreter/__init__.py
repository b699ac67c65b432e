"""Numpy float reference interpreter for the IR.

``run_graph(graph, inputs)`` executes a graph with ONNX semantics in float32; the
kernels are the table ``microlith.interpreter.float_kernels.KERNELS`` (op name ->
``kernel(node, input_arrays) -> output_arrays``).
"""

from microlith.interpreter.float_kernels import KERNELS
from microlith.interpreter.run import InterpreterError, run_graph

__all__ = ["KERNELS", "InterpreterError", "run_graph"]
