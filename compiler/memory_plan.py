"""Static arena planning: tensor lifetimes, in-place aliasing, greedy placement.

Every non-constant value (graph inputs included) gets a byte range in one arena.
Values that may share storage form a *buffer*: the output of an op with the
``Memory.ALIAS`` trait (reshape-like) is the same bytes as its input, and an op with
``Memory.INPLACE`` (element-wise) may write over its input when that input dies at
the op and has the same size. A buffer lives from
its first definition to its last use (graph outputs: to the end). Placement is
greedy by size (largest first), each buffer at the lowest aligned offset that
overlaps no already-placed buffer with an intersecting lifetime. The lower bound
is the largest total of live buffer bytes at any step; for the zoo the greedy plan
meets it or comes close (``microlith inspect OUTDIR`` shows both).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from microlith.ir.core import Graph, Value
from microlith.ir.ops import Memory, get_op

MAX_ALIGNMENT = 4096  # bytes: more would only waste arena


@dataclass
class Buffer:
    values: list[str]
    size: int
    first: int
    last: int
    offset: int = -1


@dataclass
class MemoryPlan:
    """Arena layout: value name -> byte offset, plus scratch per node."""

    arena_size: int
    offsets: dict[str, int]
    sizes: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]
    lower_bound: int
    alignment: int
    scratch: dict[str, tuple[int, int]] = field(default_factory=dict)  # node -> (offset, size)
    signature: str = ""  # graph_signature() of the graph it was made for

    def to_json(self) -> dict:
        return {"arena_size": self.arena_size, "lower_bound": self.lower_bound,
                "alignment": self.alignment,
                "tensors": {name: {"offset": self.offsets[name], "size": self.sizes[name],
                                   "first": self.lifetimes[name][0],
                                   "last": self.lifetimes[name][1]}
                            for name in sorted(self.offsets)},
                "scratch": {k: {"offset": o, "size": s} for k, (o, s) in
                            sorted(self.scratch.items())}}


def graph_signature(graph: Graph) -> str:
    """A digest of the node order, ops, operands and value types the plan depends on."""
    h = hashlib.sha256()
    for node in graph.nodes:
        h.update(f"{node.name}|{node.op}|".encode())
        for value in [*node.inputs, None, *node.outputs]:
            h.update(b"-" if value is None else f"{value.name}:{value.type};".encode())
    h.update(("|".join(v.name for v in [*graph.inputs, *graph.outputs])).encode())
    return h.hexdigest()


def check_plan(graph: Graph, plan: MemoryPlan) -> str | None:
    """Why ``plan`` does not fit ``graph`` (None when it does): it must have been made for
    this very graph, and every tensor must lie aligned inside the arena."""
    if plan.signature != graph_signature(graph):
        return "the graph changed after plan-memory (run plan-memory last)"
    for name, offset in plan.offsets.items():
        value = graph.values.get(name)
        if value is None or value.type.nbytes != plan.sizes[name]:
            return f"the plan's tensor {name!r} does not match the graph"
        if offset % plan.alignment or offset + plan.sizes[name] > plan.arena_size:
            return f"tensor {name!r} at offset {offset} is misplaced in the arena"
    return None


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def plan_memory(graph: Graph, scratch_bytes: dict[str, int] | None = None,
                alignment: int = 8, inplace: bool = True) -> MemoryPlan:
    """Lifetimes, aliasing and greedy placement for ``graph`` (in its node order)."""
    scratch_bytes = scratch_bytes or {}
    end = max(len(graph.nodes) - 1, 0)
    group: dict[str, str] = {}  # value name -> buffer root name

    def root(name: str) -> str:
        while group.get(name, name) != name:
            name = group[name]
        return name

    first: dict[str, int] = {}
    last: dict[str, int] = {}
    sizes: dict[str, int] = {}

    def touch(value: Value, step: int) -> None:
        sizes[value.name] = value.type.nbytes
        first[value.name] = min(first.get(value.name, step), step)
        last[value.name] = max(last.get(value.name, step), step)

    for value in graph.inputs:
        touch(value, 0)
    for step, node in enumerate(graph.nodes):
        for operand in node.inputs:
            if operand is not None and not operand.is_constant:
                touch(operand, step)
        for value in node.outputs:
            touch(value, step)
    for value in graph.outputs:
        if not value.is_constant:
            touch(value, end)
            last[value.name] = end
    for step, node in enumerate(graph.nodes):
        x = node.inputs[0] if node.inputs else None
        if x is None or x.is_constant or len(node.outputs) != 1:
            continue
        out = node.output
        memory = get_op(node.op).memory
        if memory is Memory.ALIAS and out.type.nbytes == x.type.nbytes:
            group[root(out.name)] = root(x.name)
        elif (inplace and memory is Memory.INPLACE and out.type.nbytes == x.type.nbytes
              and x not in graph.inputs and x not in graph.outputs
              and _last_use(graph, x) == step and _dies_here(graph, x, step, root)):
            group[root(out.name)] = root(x.name)
    buffers: dict[str, Buffer] = {}
    for name in sizes:
        r = root(name)
        buf = buffers.setdefault(r, Buffer([], 0, first[name], last[name]))
        buf.values.append(name)
        buf.size = max(buf.size, sizes[name])
        buf.first, buf.last = min(buf.first, first[name]), max(buf.last, last[name])
    for node_name, nbytes in sorted(scratch_bytes.items()):
        if nbytes > 0:
            step = next(i for i, n in enumerate(graph.nodes) if n.name == node_name)
            buffers[f"scratch:{node_name}"] = Buffer([], nbytes, step, step)
    placed: list[Buffer] = []
    for buf in sorted(buffers.values(), key=lambda b: (-b.size, b.first, sorted(b.values))):
        offset = 0
        for other in sorted((o for o in placed if o.first <= buf.last and buf.first <= o.last),
                            key=lambda o: o.offset):
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.size, alignment))
        buf.offset = offset
        placed.append(buf)
    arena = _align(max((b.offset + b.size for b in placed), default=0), alignment)
    lower = max((sum(b.size for b in placed if b.first <= s <= b.last)
                 for s in range(end + 1)), default=0)
    offsets = {name: buf.offset for buf in placed for name in buf.values}
    scratch = {key.split(":", 1)[1]: (buf.offset, buf.size) for key, buf in buffers.items()
               if key.startswith("scratch:")}
    return MemoryPlan(arena, offsets, sizes, {n: (first[n], last[n]) for n in sizes}, lower,
                      alignment, scratch, graph_signature(graph))


def _last_use(graph: Graph, value: Value) -> int:
    steps = [i for i, n in enumerate(graph.nodes) if any(v is value for v in n.inputs)]
    return max(steps, default=-1)


def _dies_here(graph: Graph, value: Value, step: int, root) -> bool:  # noqa: ANN001
    """No other value sharing ``value``'s buffer is read after ``step``."""
    r = root(value.name)
    for later in graph.nodes[step + 1:]:
        for v in later.inputs:
            if v is not None and not v.is_constant and root(v.name) == r:
                return False
    return all(root(o.name) != r for o in graph.outputs)
