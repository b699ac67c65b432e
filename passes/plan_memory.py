"""``plan-memory``: static arena offsets from tensor lifetimes (see ``microlith.memory_plan``).

Runs last, on the final node order. Stores a ``MemoryPlan`` in
``graph.meta["memory_plan"]``: each activation's offset and lifetime, kernel
scratch, the arena size and the liveness lower bound (the most bytes live at
once). Reshapes alias their input; with ``inplace`` an elementwise op may reuse
its dying input's buffer. Kernel scratch sizes come from the C renderers.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph
from microlith.memory_plan import plan_memory
from microlith.pipeline import Pass, PassContext, register_pass


@register_pass
@dataclass(frozen=True)
class PlanMemory(Pass):
    name = "plan-memory"
    summary = "assign static arena offsets from tensor lifetimes (in-place where legal)"
    alignment: int = 8
    inplace: bool = True

    def run(self, graph: Graph, ctx: PassContext) -> None:
        if self.alignment <= 0 or self.alignment & (self.alignment - 1):
            raise self.fail(None, f"alignment {self.alignment} is not a power of two")
        scratch: dict[str, int] = {}
        try:
            from microlith.backends.c.render_ops import scratch_bytes
        except ImportError:  # planning without the C backend: no kernel scratch
            scratch_bytes = None
        if scratch_bytes is not None:
            scratch = {n.name: scratch_bytes(n) for n in graph.nodes}
        plan = plan_memory(graph, scratch, self.alignment, self.inplace)
        graph.meta["memory_plan"] = plan
        ctx.remark(graph.name, f"arena {plan.arena_size} bytes, lower bound "
                   f"{plan.lower_bound} bytes")
