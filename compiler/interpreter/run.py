"""Execute a graph: float nodes with the numpy float kernels, quantized nodes exactly.

Nodes whose outputs are quantized integers (and quantize / dequantize ops) run the
integer-exact kernels of ``microlith.quant`` on their parameter records (``node.params``,
or prepared on the fly), which reproduce TFLite-Micro's int8 arithmetic bit for bit;
everything else runs the float reference kernel of its op definition.

``run_graph`` walks ``graph.nodes`` in order (they are kept topologically sorted),
reads constants from ``Value.data``, runs each node's kernel from ``KERNELS`` and
casts its outputs to the output values' dtypes. An array is dropped as soon as the
last node using it has run (unless ``keep_all``), so peak memory follows the live
activations rather than the whole graph.

Inputs may carry a leading batch dimension different from the typed one (for
calibration over many samples); all other dimensions must match the IR types. When
every input has exactly its typed shape, every node output is checked against its
IR type as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import Kernel, get_op, is_registered
from microlith.ir.types import DType
from microlith.quant.params import dequantize_array
from microlith.quant.registry import is_integer_node, run_integer

Observer = Callable[[Node, list[np.ndarray]], None]


class InterpreterError(RuntimeError):
    """The graph could not be run; the message names the input or node at fault."""


def run_graph(graph: Graph, inputs: Mapping[str, np.ndarray], *, keep_all: bool = False,
              observer: Observer | None = None) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` (by input value name).

    Returns the graph outputs by value name, or every value (inputs, used constants
    and node outputs) when ``keep_all``. ``observer(node, outputs)`` is called after
    each node with its (dtype-cast) output arrays.
    """
    env, exact = _bind_inputs(graph, inputs)
    last_use = _last_uses(graph)
    pinned = {id(v) for v in graph.outputs}
    for step, node in enumerate(graph.nodes):
        args = [None if v is None else _fetch(v, env) for v in node.inputs]
        outputs = _execute(node, args, exact)
        for value, array in zip(node.outputs, outputs, strict=True):
            env[value.name] = array
        if observer is not None:
            observer(node, outputs)
        del args, outputs
        if not keep_all:
            for used in [*node.inputs, *node.outputs]:
                if (used is not None and id(used) not in pinned
                        and last_use.get(id(used), step) <= step):
                    env.pop(used.name, None)
    if keep_all:
        for value in graph.values.values():
            if value.is_constant and (value.uses or id(value) in pinned):
                env.setdefault(value.name, value.constant)
        return env
    return {value.name: _fetch(value, env) for value in graph.outputs}


def _bind_inputs(graph: Graph, inputs: Mapping[str, np.ndarray]
                 ) -> tuple[dict[str, np.ndarray], bool]:
    """Check and convert the feeds; also report whether all shapes are exactly typed."""
    expected = {v.name: v for v in graph.inputs}
    missing = [name for name in expected if name not in inputs]
    if missing:
        raise InterpreterError(f"missing graph input(s) {', '.join(map(repr, missing))}")
    extra = [name for name in inputs if name not in expected]
    if extra:
        raise InterpreterError(f"unknown graph input(s) {', '.join(map(repr, extra))}; "
                               f"the graph takes {sorted(expected)}")
    env: dict[str, np.ndarray] = {}
    exact = True
    for name, value in expected.items():
        array = np.asarray(inputs[name])
        typed = value.shape
        if array.ndim != len(typed) or array.shape[1:] != typed[1:]:
            raise InterpreterError(f"input {name!r} has shape {array.shape}, expected {typed} "
                                   f"(only the leading batch dimension may differ)")
        exact = exact and array.shape == typed
        try:
            env[name] = array.astype(value.dtype.numpy, copy=False)
        except (TypeError, ValueError) as exc:
            raise InterpreterError(f"input {name!r} cannot be converted to {value.dtype}: "
                                   f"{exc}") from None
    return env, exact


def _last_uses(graph: Graph) -> dict[int, int]:
    """For each value (by id), the index of the last node reading it."""
    last: dict[int, int] = {}
    for step, node in enumerate(graph.nodes):
        for value in node.inputs:
            if value is not None:
                last[id(value)] = step
    return last


def _fetch(value: Value, env: dict[str, np.ndarray]) -> np.ndarray:
    if value.data is not None:
        return value.data
    try:
        return env[value.name]
    except KeyError:
        where = "" if value.producer is None else f" (produced by %{value.producer.name})"
        raise InterpreterError(f"value {value.name!r}{where} is used before it is "
                               f"computed: is the graph topologically sorted?") from None


def kernel_for(node: Node) -> Kernel | None:
    """The node's kernel: integer-exact for integer nodes, else its op's float kernel
    (which reads stored-compressed weights widened: see ``widen_weights``)."""
    if is_integer_node(node):
        return run_integer
    kernel = get_op(node.op).float_kernel() if is_registered(node.op) else None
    if kernel is None or not any(_compressed(v) for v in node.inputs):
        return kernel
    return _widened(kernel)


def _compressed(value: Value | None) -> bool:
    """A weight a float op reads in a compressed storage form: int8 with per-channel or
    per-tensor scales (dynamic range) or float16."""
    return value is not None and value.is_constant and (
        value.dtype == DType.FLOAT16 or (value.quant is not None and not value.dtype.is_float))


def widen_weights(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """The float values of a float op's compressed weights: ``scale[c] * (q - zp[c])`` for
    int8 (the hybrid kernels' weights, dequantized) and exact widening for float16."""
    out: list[np.ndarray | None] = []
    for value, array in zip(node.inputs, args, strict=True):
        if array is None or not _compressed(value):
            out.append(array)
        elif value is not None and value.quant is not None:
            out.append(dequantize_array(np.asarray(array), value.quant))
        else:
            out.append(np.asarray(array).astype(np.float32))
    return out


def _widened(kernel: Kernel) -> Kernel:
    def run(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
        return kernel(node, widen_weights(node, args))

    return run


def run_node(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run one node on one array per input (None when absent); ValueError when it has no
    kernel."""
    kernel = kernel_for(node)
    if kernel is None:
        raise ValueError(f"no kernel for op {node.op!r}")
    return kernel(node, args)


def _execute(node: Node, args: list[np.ndarray | None], exact: bool) -> list[np.ndarray]:
    """Run one node's kernel; wrap any failure with the node's name and op."""
    where = f"while executing %{node.name} ({node.op})"
    kernel = kernel_for(node)
    if kernel is None:
        raise InterpreterError(f"{where}: no kernel for op {node.op!r}")
    try:
        results = kernel(node, args)
        if len(results) != len(node.outputs):
            raise ValueError(f"kernel returned {len(results)} outputs for "
                             f"{len(node.outputs)} values")
        outputs = [np.asarray(r).astype(v.dtype.numpy, copy=False)
                   for r, v in zip(results, node.outputs, strict=True)]
    except InterpreterError:
        raise
    except Exception as exc:  # every kernel failure gets the node context
        raise InterpreterError(f"{where}: {type(exc).__name__}: {exc}") from exc
    for array, value in zip(outputs, node.outputs, strict=True):
        if array.ndim != value.type.rank or (exact and array.shape != value.shape):
            raise InterpreterError(f"{where}: kernel produced shape {array.shape} for "
                                   f"{value.name!r}, whose IR type is {value.type}")
    return outputs
