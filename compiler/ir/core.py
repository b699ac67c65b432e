"""The dataflow-graph IR: ``Value``, ``Node`` and ``Graph`` with use-def links.

A ``Graph`` owns its nodes (kept in a topological order) and values. Every value
has exactly one definition: a graph input, a constant (``Value.data`` set) or the
output of one node; each value knows its uses ``(node, input index)``. Passes
mutate the graph only through the methods here (or the rewriter built on them),
which keep the use lists exact; ``microlith.ir.verifier`` checks that they are.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microlith.ir.types import DType, QuantParams, TensorType

#: value annotations that follow the tensor when ``Graph.replace_all_uses`` replaces it
CARRIED_META = ("qdq",)
#: ``Graph.release_if_dead`` frees constants of at least this many bytes
RELEASE_MIN_BYTES = 1 << 16


@dataclass(frozen=True)
class Use:
    """One use of a value: input ``index`` of ``node``."""

    node: Node
    index: int


class Value:
    """An SSA value: a graph input, a constant, or a node output."""

    def __init__(self, name: str, type: TensorType, data: np.ndarray | None = None) -> None:
        self.name = name
        self.type = type
        self.data = data
        self.producer: Node | None = None
        self.uses: list[Use] = []
        self.meta: dict[str, Any] = {}

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def constant(self) -> np.ndarray:
        """The data of a constant (``ValueError`` naming the value if it is not one)."""
        if self.data is None:
            raise ValueError(f"value {self.name!r} is not a constant")
        return self.data

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def quant(self) -> QuantParams | None:
        return self.type.quant

    def users(self) -> list[Node]:
        """Distinct consuming nodes, in use order."""
        seen: dict[int, Node] = {}
        for use in self.uses:
            seen.setdefault(id(use.node), use.node)
        return list(seen.values())

    def set_type(self, type: TensorType) -> None:
        self.type = type

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.type})"


class Node:
    """An operation: ``outputs = op(inputs; attrs)``. Absent optional inputs are None."""

    def __init__(self, op: str, name: str, attrs: dict[str, Any] | None = None) -> None:
        self.op = op
        self.name = name
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.inputs: list[Value | None] = []
        self.outputs: list[Value] = []
        self.graph: Graph | None = None
        self.meta: dict[str, Any] = {}
        self.params: Any = None  # the parameter record of an integer target op (``prepare``)

    def input(self, index: int) -> Value | None:
        return self.inputs[index] if index < len(self.inputs) else None

    @property
    def owner(self) -> Graph:
        """The graph holding the node (``ValueError`` if it was removed)."""
        if self.graph is None:
            raise ValueError(f"node {self.name!r} is not in a graph")
        return self.graph

    def arg(self, index: int) -> Value:
        """Input ``index``, which must be present (``ValueError`` naming the node if not)."""
        value = self.input(index)
        if value is None:
            raise ValueError(f"node {self.name!r} ({self.op}): input {index} is required")
        return value

    def const_input(self, index: int) -> np.ndarray | None:
        """The constant data of input ``index``, or None if absent or not constant."""
        value = self.input(index)
        return None if value is None else value.data

    @property
    def output(self) -> Value:
        return self.outputs[0]

    def set_input(self, index: int, value: Value | None) -> None:
        old = self.inputs[index]
        if old is not None:
            old.uses.remove(Use(self, index))
        self.inputs[index] = value
        if value is not None:
            value.uses.append(Use(self, index))

    def attr(self, key: str, default: Any = None) -> Any:
        """The attribute ``key``; else the op's registered default; else ``default``."""
        if key in self.attrs:
            return self.attrs[key]
        from microlith.ir.ops import OPS

        opdef = OPS.get(self.op)
        if opdef is not None and opdef.attrs.get(key) is not None:
            return opdef.attrs[key]
        return default

    def __repr__(self) -> str:
        return f"Node({self.op}, {self.name!r})"

    # Use identity semantics so nodes can live in sets and dicts.
    __hash__ = object.__hash__


class Graph:
    """A dataflow graph with named, unique values and a topological node list."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self._nodes: list[Node] = []  # the order, but for the pending edits below
        self._removed = False  # removed nodes (``node.graph is None``) may still be in _nodes
        self._before: dict[int, list[Node]] = {}  # id(anchor) -> placed just before it
        self._after: dict[int, list[Node]] = {}  # id(anchor) -> placed just after it (oldest 1st)
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.values: dict[str, Value] = {}
        self.meta: dict[str, Any] = {}
        self._node_names: set[str] = set()
        self._counter = itertools.count()

    # ---- the node order -------------------------------------------------------------
    @property
    def nodes(self) -> list[Node]:
        """The nodes in order. Placing a node ``before``/``after`` another and removing one
        are recorded in O(1) and applied here, in one O(n) pass, at the next read."""
        if self._removed or self._before or self._after:
            self._settle()
        return self._nodes

    @nodes.setter
    def nodes(self, nodes: list[Node]) -> None:
        self._nodes = nodes
        self._removed = False
        self._before.clear()
        self._after.clear()

    def _settle(self) -> None:
        """Apply the pending placements and removals (as ``list.insert``/``remove`` would)."""
        order: list[Node] = []
        # a stack of (node, expanded): expand = its befores, itself, its afters (newest first)
        stack: list[tuple[Node, bool]] = [(n, False) for n in reversed(self._nodes)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                if node.graph is self:
                    order.append(node)
                continue
            stack.extend((n, False) for n in self._after.pop(id(node), ()))
            stack.append((node, True))
            stack.extend((n, False) for n in reversed(self._before.pop(id(node), ())))
        self.nodes = order

    def _place(self, node: Node, before: Node | None, after: Node | None) -> None:
        anchor = before if before is not None else after
        if anchor is None:
            self._nodes.append(node)
            return
        if anchor.graph is not self:
            raise ValueError(f"cannot place {node.name} next to {anchor.name}: not in the graph")
        pending = self._before if before is not None else self._after
        pending.setdefault(id(anchor), []).append(node)

    # ---- naming -------------------------------------------------------------------
    def unique_value_name(self, hint: str) -> str:
        hint = hint or "v"
        if hint not in self.values:
            return hint
        for i in itertools.count(1):
            candidate = f"{hint}_{i}"
            if candidate not in self.values:
                return candidate
        raise AssertionError("unreachable")

    def unique_node_name(self, hint: str) -> str:
        hint = hint or "node"
        if hint not in self._node_names:
            return hint
        for i in itertools.count(1):
            candidate = f"{hint}_{i}"
            if candidate not in self._node_names:
                return candidate
        raise AssertionError("unreachable")

    def _register(self, value: Value) -> Value:
        if value.name in self.values:
            raise ValueError(f"value name {value.name!r} already defined")
        self.values[value.name] = value
        return value

    # ---- construction -------------------------------------------------------------
    def add_input(self, name: str, type: TensorType) -> Value:
        value = self._register(Value(self.unique_value_name(name), type))
        self.inputs.append(value)
        return value

    def add_constant(self, data: np.ndarray, name: str = "const",
                     quant: QuantParams | None = None, *, take: bool = False) -> Value:
        """A new constant holding a read-only copy of ``data``; with ``take=True`` the
        graph keeps ``data`` itself when it is already C-contiguous (the caller hands over
        an array it has just computed and does not keep: no second copy of big weights)."""
        if take and isinstance(data, np.ndarray) and data.flags.c_contiguous:
            array = data
        else:
            array = np.array(data, order="C", copy=True)  # keeps 0-d arrays 0-d
        array.setflags(write=False)
        type = TensorType(DType.from_numpy(array.dtype), tuple(int(d) for d in array.shape), quant)
        return self._register(Value(self.unique_value_name(name), type, array))

    def add_node(self, op: str, inputs: Sequence[Value | None], attrs: dict[str, Any] | None = None,
                 *, name: str | None = None, output_types: Sequence[TensorType] | None = None,
                 output_names: Sequence[str] | None = None, num_outputs: int = 1,
                 before: Node | None = None, after: Node | None = None) -> Node:
        """Create a node; output types come from the op registry unless given.

        The node is appended, or placed just before ``before`` / just after ``after``.
        """
        node = Node(op, self.unique_node_name(name or op.lower()), attrs)
        self._node_names.add(node.name)
        node.graph = self
        for index, value in enumerate(inputs):
            node.inputs.append(value)
            if value is not None:
                value.uses.append(Use(node, index))
        if output_types is None:
            from microlith.ir.ops import infer_types

            output_types = infer_types(node)
        count = len(output_types) if output_types is not None else num_outputs
        names = list(output_names) if output_names else [
            f"{node.name}_out{i}" if count > 1 else node.name for i in range(count)]
        for type, out_name in zip(output_types, names, strict=True):
            value = self._register(Value(self.unique_value_name(out_name), type))
            value.producer = node
            node.outputs.append(value)
        self._place(node, before, after)
        return node

    # ---- mutation -----------------------------------------------------------------
    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Point every use of ``old`` (including graph outputs) at ``new``.

        Annotations that describe the tensor rather than its producer (``CARRIED_META``:
        the model's quantization of it) move to ``new``, which now stands for it.
        """
        if old is new:
            return
        for key in CARRIED_META:
            if key in old.meta and not new.is_constant:
                new.meta[key] = old.meta[key]
        for use in list(old.uses):
            use.node.set_input(use.index, new)
        self.outputs = [new if v is old else v for v in self.outputs]

    def rewrite_node(self, node: Node, op: str, inputs: Sequence[Value | None],
                     attrs: dict[str, Any] | None = None) -> Node:
        """Turn ``node`` into ``op(inputs; attrs)`` in place; its outputs (and uses) stay."""
        inputs = list(inputs)  # may be node.inputs itself
        for index in range(len(node.inputs)):
            node.set_input(index, None)
        node.inputs = [None] * len(inputs)
        for index, value in enumerate(inputs):
            node.set_input(index, value)
        node.op = op
        node.attrs = dict(attrs or {})
        node.params = None
        return node

    def release_if_dead(self, value: Value | None) -> None:
        """Free the data of a large constant nobody uses any more (its last use was just
        replaced), without waiting for ``eliminate-dead``.

        The value stays in the table (its name stays taken, so later names do not change)
        with a zero-size stand-in for its data: zeros of the same shape and dtype, a
        broadcast view of one element. ``eliminate-dead`` drops it as before; the IR
        printer never shows unused constants. Small constants are left alone.
        """
        if (value is None or value.data is None or value.uses or value in self.outputs
                or value.data.nbytes < RELEASE_MIN_BYTES):
            return
        value.data = np.broadcast_to(np.zeros((), value.data.dtype), value.data.shape)

    def remove_node(self, node: Node) -> None:
        """Remove ``node``; its outputs must be unused and not graph outputs."""
        for out in node.outputs:
            if out.uses or out in self.outputs:
                raise ValueError(f"cannot remove {node.name}: output {out.name} is still used")
        for index in range(len(node.inputs)):
            node.set_input(index, None)
        for out in node.outputs:
            del self.values[out.name]
        self._node_names.discard(node.name)
        node.graph = None  # dropped from the order at its next read
        self._removed = True

    def remove_value(self, value: Value) -> None:
        """Drop an unused constant or graph input from the value table."""
        if value.uses or value in self.outputs or value.producer is not None:
            raise ValueError(f"cannot remove value {value.name}: still in use")
        del self.values[value.name]
        if value in self.inputs:
            self.inputs.remove(value)

    def rename_node(self, node: Node, name: str) -> None:
        """Give ``node`` the name ``name`` (made unique)."""
        if name == node.name:
            return
        self._node_names.discard(node.name)
        node.name = self.unique_node_name(name)
        self._node_names.add(node.name)

    def rename_value(self, value: Value, name: str) -> None:
        if name == value.name:
            return
        del self.values[value.name]
        value.name = self.unique_value_name(name)
        self.values[value.name] = value

    # ---- queries --------------------------------------------------------------------
    def constants(self) -> list[Value]:
        return [v for v in self.values.values() if v.is_constant]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def find(self, op: str) -> list[Node]:
        return [n for n in self.nodes if n.op == op]

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes))

    def sort(self) -> None:
        """Re-establish a topological order, stable with respect to the current order.

        Raises ValueError naming a node on a cycle if there is one.
        """
        position = {id(n): i for i, n in enumerate(self.nodes)}
        pending = {id(n): sum(1 for v in n.inputs if v is not None and v.producer is not None)
                   for n in self.nodes}
        import heapq

        ready = [(position[id(n)], n) for n in self.nodes if pending[id(n)] == 0]
        heapq.heapify(ready)
        order: list[Node] = []
        while ready:
            _, node = heapq.heappop(ready)
            order.append(node)
            for out in node.outputs:
                for use in out.uses:
                    key = id(use.node)
                    pending[key] -= 1
                    if pending[key] == 0:
                        heapq.heappush(ready, (position[key], use.node))
        if len(order) != len(self.nodes):
            raise ValueError(_unsortable([n for n in self.nodes if pending[id(n)] > 0],
                                         set(position)))
        self.nodes = order

    def parameter_bytes(self) -> int:
        return sum(v.type.nbytes for v in self.constants() if v.uses)

    def copy(self) -> Graph:
        """A deep copy (constant arrays are shared: they are read-only)."""
        clone = Graph(self.name)
        clone.meta = copy.deepcopy(self.meta)
        mapping: dict[int, Value] = {}

        def twin(value: Value) -> Value:
            new = Value(value.name, value.type, value.data)
            new.meta = copy.deepcopy(value.meta)
            clone.values[new.name] = new
            mapping[id(value)] = new
            return new

        for value in self.values.values():
            if value.producer is None:
                twin(value)
        clone.inputs = [mapping[id(v)] for v in self.inputs]
        for node in self.nodes:
            new_node = Node(node.op, node.name, copy.deepcopy(node.attrs))
            new_node.meta = copy.deepcopy(node.meta)
            new_node.params = node.params  # records are immutable
            new_node.graph = clone
            clone._node_names.add(node.name)
            for index, operand in enumerate(node.inputs):
                mapped = None if operand is None else mapping[id(operand)]
                new_node.inputs.append(mapped)
                if mapped is not None:
                    mapped.uses.append(Use(new_node, index))
            for out in node.outputs:
                new_out = twin(out)
                new_out.producer = new_node
                new_node.outputs.append(new_out)
            clone.nodes.append(new_node)
        clone.outputs = [mapping[id(v)] for v in self.outputs]
        return clone


def _unsortable(stuck: list[Node], members: set[int]) -> str:
    """Why the nodes a topological sort could not place cannot be ordered.

    Every stuck node reads a value whose producer was not placed: either another
    stuck node or a node outside ``members`` (the ids of the graph's nodes).
    Walking stuck producers from any stuck node must revisit one, which lies on a
    cycle (the first stuck node may only be downstream of the cycle).
    """
    stuck_ids = {id(n) for n in stuck}
    node, seen = stuck[0], set()
    while id(node) not in seen:
        seen.add(id(node))
        producers = [v.producer for v in node.inputs if v is not None and v.producer is not None]
        inside = [p for p in producers if id(p) in stuck_ids]
        if not inside:
            outside = next(p for p in producers if id(p) not in members)
            return (f"node {node.name!r} ({node.op}) reads the output of {outside.name!r}, "
                    "which is not in the graph")
        node = inside[0]
    return f"graph has a cycle through node {node.name!r} ({node.op})"


def live_values(graph: Graph) -> Iterable[Value]:
    """Values referenced by a node or a graph output."""
    seen: dict[str, Value] = {}
    for node in graph.nodes:
        for value in [*node.inputs, *node.outputs]:
            if value is not None:
                seen.setdefault(value.name, value)
    for value in [*graph.inputs, *graph.outputs]:
        seen.setdefault(value.name, value)
    return seen.values()
