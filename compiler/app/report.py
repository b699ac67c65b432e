"""``--report report.html`` / ``microlith report``: one self-contained HTML page.

No network, no JavaScript: inline CSS and SVG only, so the file opens anywhere (and is
safe to attach to a bug report). It shows the facts of the compile (target, pipeline,
sizes), the ops as a table (inputs/outputs with shapes and dtypes, MACs, parameter
bytes), a chart of activation bytes live at each op with the liveness lower bound (and,
for the C target, the planned arena's high-water mark at each op), where the flash goes
(by tensor and by op kind), and the pass timings. Every number in a table cell is also
in a ``data-*`` attribute, so tests compare the page with the compile's own numbers.
Model strings are HTML-escaped.

Sources: a ``CompileResult`` (``report_from_result``), or an existing output: a
``.tflite`` (``report_from_tflite``) or a C output directory
(``microlith.app.report_sources``).
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from microlith.liveness import lifetimes

if TYPE_CHECKING:
    from microlith.app.driver import CompileResult
    from microlith.app.report_errors import ErrorTable
    from microlith.formats.tflite.flatbuffer import TflModel
    from microlith.ir.core import Graph

TOP_TENSORS = 15


@dataclass
class OpRow:
    name: str
    op: str
    inputs: list[tuple[str, str]]  # (shape, dtype) of activations and constants
    outputs: list[tuple[str, str]]
    macs: int
    param_bytes: int
    out_bytes: int
    detail: str = ""  # C directory: the kernel call's comment (geometry, scratch)


@dataclass
class ReportData:
    title: str
    facts: list[tuple[str, str]]
    ops: list[OpRow]
    live: list[int]  # activation bytes live at each op
    lower_bound: int
    arena: list[int] | None = None  # C: planned arena high-water mark at each op
    arena_size: int | None = None
    flash_tensors: list[tuple[str, int]] = field(default_factory=list)
    flash_kinds: list[tuple[str, int]] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    errors: ErrorTable | None = None  # quantized modes: per-layer SQNR (report_errors)


def _live_per_step(steps: Sequence[tuple[Sequence[Hashable], Sequence[Hashable]]],
                   inputs: Sequence[Hashable], outputs: Sequence[Hashable],
                   sizes: dict[Hashable, int]) -> list[int]:
    n = max(len(steps), 1)
    delta = [0] * (n + 1)
    for name, span in lifetimes(steps, inputs, outputs).items():
        if span.first <= span.last:
            delta[span.first] += sizes.get(name, 0)
            delta[span.last + 1] -= sizes.get(name, 0)
    live, total = [], 0
    for step in range(n):
        total += delta[step]
        live.append(total)
    return live


def _by_kind(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    totals: dict[str, int] = defaultdict(int)
    for kind, size in pairs:
        totals[kind] += size
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def _fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def report_from_graph(graph: Graph, title: str, facts: list[tuple[str, str]],
                      timings: list[tuple[str, float]]) -> ReportData:
    from microlith.ir.ops import is_registered, node_macs

    rows, steps = [], []
    consumers: dict[str, str] = {}
    for node in graph.nodes:
        ins = [v for v in node.inputs if v is not None]
        for v in ins:
            if v.is_constant:
                consumers.setdefault(v.name, node.op)
        rows.append(OpRow(node.name, node.op,
                          [(_fmt_shape(v.shape), str(v.dtype.numpy)) for v in ins],
                          [(_fmt_shape(v.shape), str(v.dtype.numpy)) for v in node.outputs],
                          node_macs(node) if is_registered(node.op) else 0,
                          sum(v.type.nbytes for v in ins if v.is_constant),
                          sum(v.type.nbytes for v in node.outputs)))
        steps.append(([v.name for v in ins if not v.is_constant],
                      [v.name for v in node.outputs]))
    sizes: dict[Hashable, int] = {v.name: v.type.nbytes for v in graph.values.values()}
    live = _live_per_step(steps, [v.name for v in graph.inputs],
                          [v.name for v in graph.outputs], sizes)
    plan = graph.meta.get("memory_plan")
    names = [node.name for node in graph.nodes]
    if plan is not None:  # a kernel's scratch is live during its own op
        for step, name in enumerate(names):
            if name in plan.scratch:
                live[step] += plan.scratch[name][1]
    data = ReportData(title, facts, rows, live, max(live, default=0), timings=timings)
    if plan is not None:
        data.arena_size, data.lower_bound = plan.arena_size, plan.lower_bound
        data.arena = [max([plan.offsets[t] + plan.sizes[t] for t, (a, b) in
                           plan.lifetimes.items() if a <= s <= b and t in plan.offsets] +
                          ([sum(plan.scratch[names[s]])] if names[s] in plan.scratch else []),
                          default=0) for s in range(len(live))]
    constants = [(v.name, v.type.nbytes, consumers.get(v.name, "?"))
                 for v in graph.constants() if v.uses]
    data.flash_tensors = sorted(((n, b) for n, b, _ in constants), key=lambda kv: (-kv[1],
                                                                                    kv[0]))
    data.flash_kinds = _by_kind([(k, b) for _, b, k in constants])
    return data


def report_from_result(result: CompileResult, model: str, target: str,
                       quiet: bool = True) -> ReportData:
    """The report of a compile; with the calibrated float graph kept
    (``keep_float_graph``), the per-layer errors of the quantized model too."""
    from microlith.app.report_errors import errors_from_result

    facts = [("model", model), ("target", target), ("pipeline", result.pipeline)]
    if result.output:
        facts.append(("output bytes", f"{len(result.output):,}"))
    for key, value in sorted(result.sizes.items()):
        facts.append((key.replace("_", " ") + " bytes", f"{value:,}"))
    facts += [(f"{stage} seconds", f"{seconds:.3f}") for stage, seconds in
              result.seconds.items()]
    timings = [(name, seconds) for name, seconds, _ in
               (result.timing.records if result.timing is not None else [])]
    data = report_from_graph(result.graph, model, facts, timings)
    data.errors = errors_from_result(result, quiet=quiet)
    return data


def report_from_tflite(model: TflModel, path: str) -> ReportData:
    from microlith.app.inspect_model import tflite_macs

    constants = {i for i, t in enumerate(model.tensors) if t.data is not None}

    def nbytes(i: int) -> int:
        t = model.tensors[i]
        return len(t.data) if t.data is not None else math.prod(t.shape) * _itemsize(t.dtype)

    rows, steps = [], []
    consumers: dict[int, str] = {}
    for op in model.operators:
        ins = [i for i in op.inputs if i >= 0]
        for i in ins:
            if i in constants:
                consumers.setdefault(i, op.op)
        rows.append(OpRow(model.tensors[op.outputs[0]].name if op.outputs else op.op, op.op,
                          [(_fmt_shape(model.tensors[i].shape), model.tensors[i].dtype)
                           for i in ins],
                          [(_fmt_shape(model.tensors[o].shape), model.tensors[o].dtype)
                           for o in op.outputs],
                          tflite_macs(model, op), sum(nbytes(i) for i in ins if i in constants),
                          sum(nbytes(o) for o in op.outputs)))
        steps.append(([i for i in ins if i not in constants],
                      [o for o in op.outputs if o not in constants]))
    sizes: dict[Hashable, int] = {i: nbytes(i) for i in range(len(model.tensors))}
    live = _live_per_step(steps, list(model.inputs), list(model.outputs), sizes)
    facts = [("model", path), ("format", "tflite"), ("operators", str(len(model.operators))),
             ("description", model.description)]
    data = ReportData(path, facts, rows, live, max(live, default=0))
    data.flash_tensors = sorted(((model.tensors[i].name or f"tensor {i}", nbytes(i))
                                 for i in constants), key=lambda kv: (-kv[1], kv[0]))
    data.flash_kinds = _by_kind([(consumers.get(i, "?"), nbytes(i)) for i in constants])
    return data


def _itemsize(dtype: str) -> int:
    import numpy as np

    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:
        return 1


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#eef}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px}svg{border:1px solid #ddd;background:#fcfcff}
.live{fill:#9ecae1}.arena{fill:none;stroke:#d6604d;stroke-width:2}
.bound{stroke:#333;stroke-dasharray:6 4}.bar{fill:#6baed6}.lbl{font-size:11px}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _arena_svg(data: ReportData) -> str:
    width, height, pad = 860, 260, 48
    n = max(len(data.live), 1)
    top = max([*data.live, *(data.arena or []), data.lower_bound, 1])
    sx = (width - 2 * pad) / n

    def y(v: int) -> float:
        return height - pad - (height - 2 * pad) * v / top

    parts = [f'<svg id="arena-chart" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="arena over ops">']
    for i, v in enumerate(data.live):
        parts.append(f'<rect class="live" x="{pad + i * sx:.1f}" y="{y(v):.1f}" '
                     f'width="{max(sx - 1, 1):.1f}" height="{height - pad - y(v):.1f}" '
                     f'data-step="{i}" data-live="{v}"><title>op {i}: {v:,} B live</title></rect>')
    if data.arena:
        points = " ".join(f"{pad + (i + 0.5) * sx:.1f},{y(v):.1f}"
                          for i, v in enumerate(data.arena))
        parts.append(f'<polyline class="arena" points="{points}"/>')
    yb = y(data.lower_bound)
    parts.append(f'<line class="bound" x1="{pad}" x2="{width - pad}" y1="{yb:.1f}" '
                 f'y2="{yb:.1f}"/>')
    parts.append(f'<text class="lbl" x="{pad}" y="{max(yb - 4, 12):.1f}">liveness lower bound '
                 f'{data.lower_bound:,} B</text>')
    parts.append(f'<text class="lbl" x="{pad}" y="{height - 16}">op 0</text>'
                 f'<text class="lbl" x="{width - pad - 40}" y="{height - 16}">op {n - 1}</text>'
                 f'<text class="lbl" x="4" y="{pad - 8}">{top:,} B</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(ident: str, pairs: list[tuple[str, int]]) -> str:
    shown = pairs[:TOP_TENSORS]
    rest = sum(b for _, b in pairs[TOP_TENSORS:])
    if rest:
        shown = [*shown, (f"{len(pairs) - TOP_TENSORS} others", rest)]
    width, row = 860, 18
    top = max([b for _, b in shown] + [1])
    parts = [f'<svg id="{ident}" width="{width}" height="{row * len(shown) + 8}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for k, (name, size) in enumerate(shown):
        w = (width - 420) * size / top
        parts.append(f'<text class="lbl" x="4" y="{k * row + 14}">{_esc(name[:48])}</text>'
                     f'<rect class="bar" x="330" y="{k * row + 4}" width="{max(w, 1):.1f}" '
                     f'height="{row - 4}" data-bytes="{size}"/>'
                     f'<text class="lbl" x="{336 + w:.1f}" y="{k * row + 14}">{size:,} B</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(data: ReportData) -> str:
    from microlith.app.report_errors import CSS, render_errors

    def io(pairs: list[tuple[str, str]]) -> str:
        return "<br>".join(f"{_esc(s)} {_esc(d)}" for s, d in pairs)

    facts = "".join(f"<tr><th>{_esc(k)}</th><td><code>{_esc(v)}</code></td></tr>"
                    for k, v in data.facts)
    total_macs = sum(r.macs for r in data.ops)
    ops = "".join(
        f'<tr data-index="{i}" data-macs="{r.macs}" data-params="{r.param_bytes}">'
        f"<td class=n>{i}</td><td>{_esc(r.op)}</td><td><code>{_esc(r.name)}</code>"
        f"{'<br><small>' + _esc(r.detail) + '</small>' if r.detail else ''}</td>"
        f"<td>{io(r.inputs)}</td><td>{io(r.outputs)}</td><td class=n>{r.macs:,}</td>"
        f"<td class=n>{r.param_bytes:,}</td><td class=n>{r.out_bytes:,}</td>"
        f"<td class=n>{data.live[i] if i < len(data.live) else 0:,}</td></tr>"
        for i, r in enumerate(data.ops))
    arena = (f"planned arena {data.arena_size:,} B (red line: high-water mark of the plan at "
             f"each op); " if data.arena_size is not None else "")
    timings = "".join(f"<tr><td><code>{_esc(n)}</code></td><td class=n>{s * 1e3:.2f}</td></tr>"
                      for n, s in data.timings) or "<tr><td colspan=2>not recorded</td></tr>"
    flash = sum(b for _, b in data.flash_tensors)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>microlith report: {_esc(data.title)}</title><style>{_CSS}{CSS}</style></head><body>
<h1>microlith report: {_esc(data.title)}</h1>
<table id="facts">{facts}</table>
<h2>Ops ({len(data.ops)}, <span id="total-macs" data-macs="{total_macs}">{total_macs:,}</span>
MACs)</h2>
<table id="ops"><tr><th>#</th><th>op</th><th>name</th><th>inputs</th><th>outputs</th>
<th>MACs</th><th>param bytes</th><th>output bytes</th><th>live bytes</th></tr>{ops}</table>
<h2>Activation memory over the op sequence</h2>
<p>Bars: activation bytes live at each op; dashed line: the liveness lower bound
(<span id="lower-bound" data-bytes="{data.lower_bound}">{data.lower_bound:,}</span> B);
{arena}</p>
{_arena_svg(data)}
<h2>Flash: <span id="flash-total" data-bytes="{flash}">{flash:,}</span> B of constants</h2>
<h3>by tensor</h3>{_bars_svg("flash-tensors", data.flash_tensors)}
<h3>by op kind</h3>{_bars_svg("flash-kinds", data.flash_kinds)}
{render_errors(data.errors)}<h2>Pass timings (ms)</h2><table id="timings">{timings}</table>
</body></html>
"""
