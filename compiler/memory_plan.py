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
    # the last step a value is read at; for a buffer root, the last step any member is read
    # at (``x`` is read here, so "it dies here" is "its buffer is read no later")
    read_until: dict[str, int] = {}
    for step, node in enumerate(graph.nodes):
        for operand in node.inputs:
            if operand is not None and not operand.is_constant:
                read_until[operand.name] = step
    is_output = {v.name for v in graph.outputs}
    inputs = {id(v) for v in graph.inputs}
    outputs = {id(v) for v in graph.outputs}

    def join(out: str, x: str) -> None:
        a, b = root(out), root(x)
        read_until[b] = max(read_until.get(a, -1), read_until.get(b, -1))
        if a in is_output:
            is_output.add(b)
        group[a] = b

    for step, node in enumerate(graph.nodes):
        x = node.inputs[0] if node.inputs else None
        if x is None or x.is_constant or len(node.outputs) != 1:
            continue
        out = node.output
        memory = get_op(node.op).memory
        if memory is Memory.ALIAS and out.type.nbytes == x.type.nbytes:
            join(out.name, x.name)
        elif (inplace and memory is Memory.INPLACE and out.type.nbytes == x.type.nbytes
              and id(x) not in inputs and id(x) not in outputs
              and _dies_here(root(x.name), step, read_until, is_output)):
            join(out.name, x.name)
    buffers: dict[str, Buffer] = {}
    for name in sizes:
        r = root(name)
        buf = buffers.setdefault(r, Buffer([], 0, first[name], last[name]))
        buf.values.append(name)
        buf.size = max(buf.size, sizes[name])
        buf.first, buf.last = min(buf.first, first[name]), max(buf.last, last[name])
    step_of: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        step_of.setdefault(n.name, i)
    for node_name, nbytes in sorted(scratch_bytes.items()):
        if nbytes > 0:
            step = step_of[node_name]
            buffers[f"scratch:{node_name}"] = Buffer([], nbytes, step, step)
    placed = _place(sorted(buffers.values(), key=lambda b: (-b.size, b.first, sorted(b.values))),
                    end, alignment)
    arena = _align(max((b.offset + b.size for b in placed), default=0), alignment)
    lower = _peak(placed, end)
    offsets = {name: buf.offset for buf in placed for name in buf.values}
    scratch = {key.split(":", 1)[1]: (buf.offset, buf.size) for key, buf in buffers.items()
               if key.startswith("scratch:")}
    return MemoryPlan(arena, offsets, sizes, {n: (first[n], last[n]) for n in sizes}, lower,
                      alignment, scratch, graph_signature(graph))


def _place(order: list[Buffer], end: int, alignment: int) -> list[Buffer]:
    """Greedy placement in ``order``: each buffer at the lowest aligned offset clear of the
    placed buffers whose lifetimes intersect its own (found through per-step lists, so the
    work is the number of such pairs, not placed x buffers)."""
    live: list[list[tuple[int, int, Buffer]]] = [[] for _ in range(end + 1)]  # step -> placed
    for rank, buf in enumerate(order):
        seen: dict[int, tuple[int, int, Buffer]] = {}
        for step in range(buf.first, buf.last + 1):
            for entry in live[step]:
                seen.setdefault(entry[1], entry)
        offset = 0
        for other_offset, _, other in sorted(seen.values(), key=lambda e: (e[0], e[1])):
            if offset + buf.size <= other_offset:
                break
            offset = max(offset, _align(other_offset + other.size, alignment))
        buf.offset = offset
        for step in range(buf.first, buf.last + 1):
            live[step].append((offset, rank, buf))
    return order


def _peak(buffers: list[Buffer], end: int) -> int:
    """The most bytes live at one step (0 without buffers), by a sweep over the steps."""
    delta = [0] * (end + 2)
    for buf in buffers:
        delta[buf.first] += buf.size
        delta[buf.last + 1] -= buf.size
    best, total = 0, 0
    for step in range(end + 1):
        total += delta[step]
        best = max(best, total)
    return best


def _dies_here(r: str, step: int, read_until: dict[str, int], is_output: set[str]) -> bool:
    """No value sharing the buffer of root ``r`` is read after ``step`` or is a graph output
    (``is_output`` holds the roots of buffers holding one)."""
    return read_until.get(r, -1) <= step and r not in is_output
