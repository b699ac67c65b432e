"""The report's per-layer error section for quantized modes (int8, 16x8, mixed).

The figures are ``microlith debug``'s (``microlith.app.quant_debug.compare``): the
calibrated float graph, kept by the compile just before ``insert-qdq``
(``CompileOptions.keep_float_graph``), is quantized again by the compile's own passes
from ``insert-qdq`` up to the target's ``legalize-*`` (so ``--int16``, ``--keep-float``
and the mode's options apply), and both graphs run on the calibration data. Per tensor,
with ``f`` the float tensor and ``q`` the quantized one dequantized, ``e = q - f``:

* ``SQNR = 10 log10(sum f^2 / sum e^2)`` dB, per layer (the layer alone, on quantized
  float inputs) and cumulative (the quantized graph end to end);
* ``rel RMSE = sqrt(mean e^2) / (max f - min f)`` and ``max LSB = max |e| / scale``.

Rows are in graph order (inputs first), so the bars read along the model; ``debug``
sorts the same rows worst first. Without calibration data (a ``--calibration-cache``
alone) or without a quantizing pass there is no table, and the page says why.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from microlith.app.driver import CompileResult
    from microlith.app.quant_debug import DebugReport

MAX_EVAL_SAMPLES = 256  # the calibration set's first samples (debug --samples N)


@dataclass
class ErrorTable:
    """The debug rows (graph order) and what was compared, or why there are none."""

    rows: list  # microlith.app.quant_debug.LayerRow
    samples: int = 0
    mode: str = ""
    note: str = ""


def errors_from_result(result: CompileResult, quiet: bool = True,
                       samples: int = MAX_EVAL_SAMPLES) -> ErrorTable | None:
    """The per-layer errors of a quantizing compile (None when nothing was quantized)."""
    from microlith.app.quant_debug import compare, quantize_copy

    if result.float_graph is None:
        return None
    mode = _mode(result)
    data = result.calibration
    if data is None:
        return ErrorTable([], mode=mode, note="no per-layer errors: the compile had no "
                          "calibration data to evaluate on (a --calibration-cache alone)")
    if samples and len(data) > samples:
        data = data.head(samples)
    quantized = quantize_copy(result.float_graph, result.quantize_passes)
    report: DebugReport = compare(result.float_graph, quantized, data, quiet=quiet,
                                  warn=lambda message: None)
    rows = sorted(report.rows, key=lambda r: r.index)
    return ErrorTable(rows, report.samples, mode)


def _mode(result: CompileResult) -> str:
    for p in result.quantize_passes:
        if p.name == "insert-qdq":
            return "16x8" if getattr(p, "activations", "int8") == "int16" else "int8"
    return "quantized"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(x: float, spec: str) -> str:
    return spec.format(x) if math.isfinite(x) else str(x)


def _attr(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else str(x)


def _bars(rows: list) -> str:
    """Horizontal bars, one per tensor: per-layer SQNR (blue) and cumulative (line)."""
    width, row, left = 860, 16, 300
    finite = [v for r in rows for v in (r.layer.sqnr_db, r.cumulative.sqnr_db)
              if math.isfinite(v)]
    top = max([*finite, 1.0])
    scale = (width - left - 90) / top

    def length(v: float) -> float:
        return (width - left - 90) if v == math.inf else max(v, 0.0) * scale if \
            math.isfinite(v) else 0.0

    parts = [f'<svg id="sqnr-chart" width="{width}" height="{row * len(rows) + 24}" '
             'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="SQNR per layer">']
    for k, r in enumerate(rows):
        y = k * row + 4
        lw, cw = length(r.layer.sqnr_db), length(r.cumulative.sqnr_db)
        label = f"{r.op} {r.node}"[:44]
        parts.append(f'<text class="lbl" x="4" y="{y + 11}">{_esc(label)}</text>'
                     f'<rect class="sqnr" x="{left}" y="{y}" width="{max(lw, 1):.1f}" '
                     f'height="{row - 4}" data-tensor="{_esc(r.tensor)}" '
                     f'data-sqnr="{_attr(r.layer.sqnr_db)}"><title>{_esc(r.tensor)}: '
                     f'{_num(r.layer.sqnr_db, "{:.1f}")} dB (layer), '
                     f'{_num(r.cumulative.sqnr_db, "{:.1f}")} dB (cumulative)</title></rect>'
                     f'<line class="cum" x1="{left + cw:.1f}" x2="{left + cw:.1f}" '
                     f'y1="{y - 1}" y2="{y + row - 3}"/>'
                     f'<text class="lbl" x="{left + lw + 6:.1f}" y="{y + 11}">'
                     f'{_num(r.layer.sqnr_db, "{:.1f}")} dB</text>')
    parts.append(f'<text class="lbl" x="{left}" y="{row * len(rows) + 18}">0 dB</text>'
                 f'<text class="lbl" x="{width - 150}" y="{row * len(rows) + 18}">'
                 f'{top:.1f} dB</text></svg>')
    return "".join(parts)


def render_errors(table: ErrorTable | None) -> str:
    """The HTML section (empty for a float compile)."""
    if table is None:
        return ""
    head = f"<h2>Per-layer error ({_esc(table.mode)} vs float)</h2>"
    if not table.rows:
        return f'{head}<p id="sqnr-note">{_esc(table.note or "no quantized tensors")}</p>'
    cells = []
    for i, r in enumerate(table.rows):
        metrics = [*r.layer.cells(), *r.cumulative.cells()]
        cells.append(
            f'<tr data-tensor="{_esc(r.tensor)}" data-sqnr="{_attr(r.layer.sqnr_db)}" '
            f'data-cumulative="{_attr(r.cumulative.sqnr_db)}"><td class=n>{i}</td>'
            f"<td>{_esc(r.op)}</td><td><code>{_esc(r.node)}</code></td>"
            f"<td>{_esc('x'.join(map(str, r.shape)))}</td><td class=n>{r.scale:.6g}</td>"
            f"<td class=n>{r.zero_point}</td>"
            + "".join(f"<td class=n>{_esc(m)}</td>" for m in metrics) + "</tr>")
    worst = min(table.rows, key=lambda r: r.layer.sqnr_db)
    return f"""{head}
<p>The same figures as <code>microlith debug</code>, on {table.samples} calibration samples:
per tensor, <i>layer</i> is the layer alone (its kernel on quantized float inputs against the
float op on the same inputs), <i>cumulative</i> the quantized model end to end against the
float model; SQNR = 10&nbsp;log<sub>10</sub>(&Sigma;f&sup2;/&Sigma;e&sup2;) dB. Bars: per-layer
SQNR; tick: cumulative. Worst layer: <code id="sqnr-worst"
data-tensor="{_esc(worst.tensor)}">{_esc(worst.node)}</code>
({_num(worst.layer.sqnr_db, "{:.1f}")} dB).</p>
{_bars(table.rows)}
<table id="sqnr"><tr><th>#</th><th>op</th><th>node</th><th>shape</th><th>scale</th><th>zp</th>
<th>layer SQNR dB</th><th>rel RMSE</th><th>max LSB</th><th>cumulative SQNR dB</th>
<th>rel RMSE</th><th>max LSB</th></tr>{"".join(cells)}</table>
"""


CSS = ".sqnr{fill:#74c476}.cum{stroke:#333;stroke-width:2}"
