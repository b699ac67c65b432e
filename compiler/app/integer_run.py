"""Running an integer graph before it is lowered for a target.

After ``fuse-requantize`` the graph holds ONNX-level ops with integer types; their exact
semantics are those of the target ops they become. ``executable`` lowers a copy with
``legalize-tflite`` (value names are kept, so tensors can still be looked up by name);
``node_runner`` does the same for one node, for per-layer studies (``microlith debug``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.interpreter import run_graph
from microlith.ir.core import Graph, Node, Value
from microlith.passes.legalize_tflite import LegalizeTFLite
from microlith.pipeline import PassContext, PassManager


def executable(graph: Graph) -> Graph:
    """A copy of ``graph`` in TFLite's ops, which the reference interpreter runs exactly."""
    copy = graph.copy()
    PassManager([LegalizeTFLite()]).run(copy, PassContext(warn=lambda message: None))
    return copy


def node_runner(node: Node) -> Callable[[list[np.ndarray | None]], np.ndarray]:
    """``run(args) -> output``: ``node`` alone, lowered, on one array per input."""
    mini = Graph(f"{node.name}_alone")
    inputs: list[Value | None] = []
    feeds: list[tuple[int, str]] = []
    for index, value in enumerate(node.inputs):
        if value is None:
            inputs.append(None)
        elif value.is_constant:
            inputs.append(mini.add_constant(value.constant, value.name, quant=value.quant))
        else:
            feed = mini.add_input(value.name, value.type)
            inputs.append(feed)
            feeds.append((index, feed.name))
    out = node.output
    created = mini.add_node(node.op, inputs, dict(node.attrs), name=node.name,
                            output_types=[out.type], output_names=[out.name])
    mini.outputs = [created.output]
    mini.meta = {k: v for k, v in node.graph.meta.items() if k == "io_perms"} \
        if node.graph is not None else {}
    PassManager([LegalizeTFLite()]).run(mini, PassContext(warn=lambda message: None))
    name = mini.outputs[0].name

    def run(args: list[np.ndarray | None]) -> np.ndarray:
        return run_graph(mini, {feed: np.asarray(args[index]) for index, feed in feeds})[name]

    return run
