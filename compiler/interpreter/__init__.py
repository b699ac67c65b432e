"""Numpy float reference interpreter for the IR.

``run_graph(graph, inputs)`` executes a graph with ONNX semantics in float32; the
kernels are the table ``compiler.interpreter.float_kernels.KERNELS`` (op name ->
``kernel(node, input_arrays) -> output_arrays``).
"""

from compiler.interpreter.float_kernels import KERNELS
from compiler.interpreter.run import InterpreterError, run_graph

__all__ = ["KERNELS", "InterpreterError", "run_graph"]
