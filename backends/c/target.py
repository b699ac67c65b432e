"""``--target c``: standalone C99 (``model.h``, ``model.c``, the kernel headers)."""

from __future__ import annotations

from microlith.backends.c.emitter import check_prefix, emit_c
from microlith.ir.core import Graph
from microlith.pipeline.facts import C_OPS, MEMORY_PLANNED, PREPARED
from microlith.targets import EmitOptions, Emitted, Target, register_target


def _emit(graph: Graph, options: EmitOptions) -> Emitted:
    sources = emit_c(graph, options.prefix, options.source_name)
    return Emitted(files=sources.files, sizes={
        "arena": sources.arena_bytes, "lower_bound": sources.lower_bound,
        "weights": sources.weight_bytes, "flash": sources.flash_estimate})


C = register_target(Target("c", "standalone C99 with int8 or float32 kernels and a static arena",
                           ("legalize-c", "prepare", "plan-memory"),
                           (C_OPS, PREPARED, MEMORY_PLANNED), _emit, directory=True,
                           check_options=lambda options: check_prefix(options.prefix)))
