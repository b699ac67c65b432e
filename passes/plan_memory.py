"""``plan-memory``: static arena offsets from tensor lifetimes (see ``microlith.memory_plan``).

Runs last, on the final node order of a legalized, prepared graph. Stores a
``MemoryPlan`` in ``graph.meta["memory_plan"]``: each activation's offset and lifetime,
kernel scratch (``scratch_bytes`` of each node's parameter record), the arena size and the
liveness lower bound (the most bytes live at once). Ops with ``Memory.ALIAS`` share their
input's bytes; with ``inplace`` an ``Memory.INPLACE`` op may reuse its dying input's
buffer. The plan records the graph it was made for; the C emitter refuses a stale one.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph
from microlith.memory_plan import MAX_ALIGNMENT, plan_memory
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import MEMORY_PLANNED, PREPARED, TARGET_OPS


@register_pass
@dataclass(frozen=True)
class PlanMemory(Pass):
    name = "plan-memory"
    summary = "assign static arena offsets from tensor lifetimes (in-place where legal)"
    alignment: int = 8
    inplace: bool = True
    requires = (TARGET_OPS, PREPARED)
    provides = (MEMORY_PLANNED,)
    invalidates = ()

    def check_options(self) -> str | None:
        if self.alignment <= 0 or self.alignment & (self.alignment - 1) or \
                self.alignment > MAX_ALIGNMENT:
            return (f"option alignment={self.alignment} must be a power of two from 1 to "
                    f"{MAX_ALIGNMENT}")
        return None

    def run(self, graph: Graph, ctx: PassContext) -> None:
        scratch = {n.name: int(getattr(n.params, "scratch_bytes", 0)) for n in graph.nodes}
        plan = plan_memory(graph, scratch, self.alignment, self.inplace)
        graph.meta["memory_plan"] = plan
        ctx.remark(graph.name, f"arena {plan.arena_size} bytes, lower bound "
                   f"{plan.lower_bound} bytes")
