"""Numpy reference interpreter for the IR.

``run_graph(graph, inputs)`` executes a graph: float nodes with the float reference
kernels of the op definitions (``KERNELS``), integer nodes with the integer-exact kernels
of ``microlith.quant`` (TFLite-Micro's arithmetic, bit for bit).
"""

from microlith.interpreter.kernels import KERNELS
from microlith.interpreter.run import InterpreterError, kernel_for, run_graph, run_node

__all__ = ["KERNELS", "InterpreterError", "kernel_for", "run_graph", "run_node"]
