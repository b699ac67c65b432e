"""The stages of one compile (``compile_graph`` checks the options and builds the pipeline,
then calls ``run_stages``): import, calibration data, the passes, emit, each a progress
stage of the compile's ``Heartbeat``; and ``FloatSnapshot``, the instrument that keeps the
calibrated float graph for the report's per-layer errors."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from microlith.ir.core import Graph
from microlith.pipeline import Pass, PassContext, PassManager
from microlith.pipeline.manager import Instrument, Timing
from microlith.pipeline.progress import Heartbeat
from microlith.targets import EmitOptions, Target

if TYPE_CHECKING:
    from microlith.app.driver import CompileOptions, CompileResult


class FloatSnapshot(Instrument):
    """Copies the graph just before ``insert-qdq`` (calibrated, still float): the reference
    the report's per-layer error table compares the quantized graph with."""

    def __init__(self) -> None:
        self.graph: Graph | None = None

    def before(self, pass_: Pass, graph: Graph) -> None:
        if pass_.name == "insert-qdq" and self.graph is None:
            self.graph = graph.copy()


def run_stages(load: Callable[[], Graph], name: str, options: CompileOptions, target: Target,
               manager: PassManager, emit_options: EmitOptions, heartbeat: Heartbeat,
               snapshot: FloatSnapshot | None, timing: Timing | None,
               import_note: str = "") -> CompileResult:
    """Import, passes, emit: each a progress stage (``microlith.pipeline.progress``)."""
    from microlith.app.driver import CompileResult, calibration_context, check_size_limits

    passes = manager.passes
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    heartbeat.begin(f"import {name}", import_note)
    graph = load()
    heartbeat.end()
    seconds["import"] = time.perf_counter() - start
    ctx = PassContext(warn=options.warn)
    if options.quantize is not None or any(p.name == "calibrate" for p in passes):
        heartbeat.begin("load calibration data")
        ctx.options.update(calibration_context(graph, options))
        heartbeat.end()
    start = time.perf_counter()
    manager.run(graph, ctx)
    seconds["passes"] = time.perf_counter() - start
    start = time.perf_counter()
    result = CompileResult(graph, manager.spec, b"", ctx.remarks, timing, seconds)
    if snapshot is not None and snapshot.graph is not None:
        names = [p.name for p in passes]
        first = names.index("insert-qdq")
        last = next((i for i in range(first, len(names)) if names[i].startswith("legalize")),
                    len(names))
        result.float_graph, result.quantize_passes = snapshot.graph, passes[first:last]
        result.calibration = ctx.options.get("calibration_data")
    heartbeat.begin(f"emit {target.name}", f"{len(graph.nodes):,} nodes")
    emitted = target.emit(graph, emit_options)
    heartbeat.end()
    result.output, result.files, result.sizes = emitted.output, emitted.files, emitted.sizes
    if result.sizes:
        check_size_limits(result, options)
    seconds["emit"] = time.perf_counter() - start
    return result


def file_size(path: str | os.PathLike[str] | None) -> str:
    """The model file's size for the import's progress line ("" when not known)."""
    try:
        return "" if path is None else f"{os.path.getsize(path) / 1e6:,.1f} MB"
    except (OSError, TypeError, ValueError):
        return ""
