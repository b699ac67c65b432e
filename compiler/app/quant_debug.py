"""``microlith debug``: where does int8 quantization lose accuracy? A per-layer error table.

The model is imported, canonicalized and calibrated exactly as ``compile --quantize int8``
does (the same ``int8_pipeline`` up to ``calibrate``); that float graph is copied and the
copy gets ``insert-qdq, fuse-requantize, eliminate-dead``. Both graphs run on the
evaluation data with the reference interpreter (the int8 graph lowered to TFLite's ops by
``microlith.app.integer_run``: its kernels are TFLite-Micro-exact),
and every quantized tensor of the int8 graph (the output of each integer node, plus
quantized graph inputs) is compared with its float counterpart, the float tensor of the
same ONNX node (matched by node name, so a renamed value still pairs up).

Two views per tensor, both accumulated over all samples:

* **cumulative**: the int8 graph end to end vs the float graph, ``f`` = the float graph's
  tensor, ``q`` = the int8 graph's tensor dequantized: how much error has built up by
  this layer.
* **per layer**: the layer's own contribution. Every activation input ``x`` of the node is
  taken from the float graph and quantized with the int8 graph's parameters for that
  input, ``x_q = quantize(x)``. ``q`` = the node's integer kernel on ``x_q`` (dequantized);
  ``f`` = the float node (float weights) on ``dequantize(x_q)``: the same inputs, so the
  difference is only this layer's weight quantization, bias/requantization rounding,
  output rounding and clipping. Input rounding is charged to the producer's own row.

Metrics, with ``e = q - f`` over every element of every sample:

* ``SQNR = 10 log10(sum f^2 / sum e^2)`` dB; +inf when ``e`` is exactly 0 (-inf if ``f`` is
  identically 0 but ``e`` is not);
* ``rel RMSE = sqrt(mean e^2) / (max f - min f)``: the RMS error as a fraction of the float
  tensor's range (0 when exact; +inf for a constant ``f`` with errors);
* ``max LSB = max |e| / s``, ``s`` the int8 tensor's scale; rounding alone gives 0.5.

Rows are sorted by per-layer SQNR, worst first. The model summary gives each graph
output's cumulative metrics, and the float vs int8 argmax agreement of the first output;
with labels (an extra ``labels`` array in the evaluation ``.npz``: one integer class id per
sample) also the top-1 accuracy of both graphs. In the JSON written by ``--json``,
infinite values are the strings ``"inf"`` / ``"-inf"``.

``quantize="int16x8"`` (``microlith debug --quantize int16x8``) builds the quantized graph as
``compile --quantize int16x8`` does (``calibrate{bits=16}``, ``insert-qdq{activations=
int16}``; int16 interface) and measures the same table for it: ``max LSB`` is then in int16
steps. The JSON's ``int8_accuracy`` is the quantized graph's, whichever its width.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from microlith.app.driver import CompileOptions, calibration_context, check_quantize_options
from microlith.app.integer_run import executable, node_runner
from microlith.calibration.data import (
    MAX_CALIBRATION_BYTES,
    CalibrationError,
    CalibrationSet,
    Progress,
    calibration_set_from_arrays,
    input_specs_from_graph,
    load_calibration_file,
)
from microlith.diagnostics import UsageError, WarningSink, stderr_warning
from microlith.frontend.input_files import load_npz
from microlith.interpreter import KERNELS, run_graph
from microlith.ir.core import Graph, Node, Value
from microlith.ir.types import QuantParams
from microlith.pipeline import Pass, PassContext, PassManager
from microlith.pipeline.spec import parse_pipeline
from microlith.quant.params import dequantize_array, quantize_array

LABELS_KEY = "labels"


@dataclass
class DebugOptions:
    """What ``debug_quantization`` needs; data arguments take what ``CompileOptions`` does."""

    calibration_data: Any  # path, CalibrationSet, {input: samples} or representative iterable
    data: Any = None  # eval inputs: path, CalibrationSet or arrays; None: calibration data
    labels: Sequence[int] | np.ndarray | None = None  # overrides a "labels" array in data
    calibration_method: str = "minmax"
    fallback: str = "none"  # "float": ops without int8 kernels stay float (not listed)
    quantize: str = "int8"  # or "int16x8": the 16x8 graph against float
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    samples: int = 0  # evaluate the first N samples only (0: all)
    batch_size: int = 32
    quiet: bool = False  # no progress bars
    warn: WarningSink = stderr_warning


@dataclass(frozen=True)
class Metrics:
    sqnr_db: float
    rel_rmse: float
    max_lsb: float

    def cells(self) -> list[str]:
        return [_fmt(self.sqnr_db, "{:.1f}"), _fmt(100 * self.rel_rmse, "{:#.3g}%"),
                _fmt(self.max_lsb, "{:.2f}")]


class ErrorStats:
    """Running sums over batches for the ``Metrics`` of ``q`` against the reference ``f``."""

    def __init__(self, scale: float) -> None:
        self.scale, self.signal, self.noise, self.max_abs, self.count = scale, 0.0, 0.0, 0.0, 0
        self.lo, self.hi = math.inf, -math.inf

    def add(self, reference: np.ndarray, approx: np.ndarray) -> None:
        f = np.asarray(reference, np.float64)
        e = np.asarray(approx, np.float64) - f
        if f.size:
            self.signal += float(np.sum(f * f))
            self.noise += float(np.sum(e * e))
            self.count += f.size
            self.lo, self.hi = min(self.lo, float(f.min())), max(self.hi, float(f.max()))
            self.max_abs = max(self.max_abs, float(np.abs(e).max()))

    def metrics(self) -> Metrics:
        sqnr = math.inf if self.noise == 0.0 else -math.inf if self.signal == 0.0 else \
            10.0 * math.log10(self.signal / self.noise)
        rmse = math.sqrt(self.noise / self.count) if self.count else 0.0
        span = self.hi - self.lo
        rel = 0.0 if rmse == 0.0 else rmse / span if span > 0.0 else math.inf
        return Metrics(sqnr, rel, self.max_abs / self.scale if self.scale > 0 else math.nan)


@dataclass
class LayerRow:
    """One quantized tensor: its int8 node (``op`` "Input" for a graph input) and errors."""

    index: int  # position in the int8 graph (inputs first)
    op: str
    node: str  # the ONNX node name (the input's name for a graph input)
    tensor: str
    shape: tuple[int, ...]  # as compiled (NHWC for images)
    scale: float
    zero_point: int
    layer: Metrics
    cumulative: Metrics


@dataclass
class DebugReport:
    rows: list[LayerRow]  # worst per-layer SQNR first
    outputs: dict[str, Metrics]  # graph output name -> cumulative metrics
    samples: int
    agreement: float | None = None  # argmax(float) == argmax(int8), first output
    float_accuracy: float | None = None  # with labels
    int8_accuracy: float | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    kind: str = "int8"  # "16x8" for --quantize int16x8

    def table(self, top: int = 0) -> str:
        """The worst ``top`` rows (0: all) as aligned text."""
        rows = self.rows[:top] if top > 0 else self.rows
        head = ["#", "op", "node", "shape", "scale", "zp", *["SQNR dB", "rel RMSE", "max LSB"] * 2]
        cells = [[str(i + 1), r.op, r.node, "x".join(map(str, r.shape)), f"{r.scale:.6g}",
                  str(r.zero_point), *r.layer.cells(), *r.cumulative.cells()]
                 for i, r in enumerate(rows)]
        widths = [max(len(c[k]) for c in [head, *cells]) for k in range(len(head))]

        def line(c: list[str]) -> str:
            text = [c[k].ljust(w) if k in (1, 2, 3) else c[k].rjust(w)
                    for k, w in enumerate(widths)]
            return "   ".join("  ".join(text[a:b]) for a, b in ((0, 6), (6, 9), (9, 12)))

        groups = " " * (sum(widths[:6]) + 13) + " layer ".center(sum(widths[6:9]) + 4, "-") + \
            "   " + " cumulative ".center(sum(widths[9:]) + 4, "-")
        shown = f"{len(rows)} of {len(self.rows)}" if len(rows) < len(self.rows) else len(rows)
        cal = self.calibration
        title = (f"{self.kind} error per layer, worst first ({shown} tensors; "
                 f"{self.samples} samples; calibration: {cal.get('method', '?')} on "
                 f"{cal.get('samples', '?')} samples)")
        return "\n".join([title, groups, line(head), *map(line, cells)]) + "\n"

    def summary(self) -> str:
        lines = [f"output {name!r}: SQNR {m.cells()[0]} dB, rel RMSE {m.cells()[1]}, "
                 f"max {m.cells()[2]} LSB" for name, m in self.outputs.items()]
        if self.float_accuracy is not None and self.int8_accuracy is not None:
            lines.append(f"top-1 accuracy ({self.samples} labelled samples): float "
                         f"{100 * self.float_accuracy:.2f}%, {self.kind} "
                         f"{100 * self.int8_accuracy:.2f}%")
        if self.agreement is not None:
            lines.append(f"argmax agreement float vs {self.kind}: {100 * self.agreement:.2f}%")
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, Any]:
        def metrics(m: Metrics) -> dict[str, float | str]:
            return {k: v if math.isfinite(v) else str(v) for k, v in vars(m).items()}

        layers = [{**{k: v for k, v in vars(r).items() if k not in ("layer", "cumulative")},
                   "shape": list(r.shape), "layer": metrics(r.layer),
                   "cumulative": metrics(r.cumulative)} for r in self.rows]
        return {"samples": self.samples, "calibration": self.calibration, "layers": layers,
                "outputs": {n: metrics(m) for n, m in self.outputs.items()},
                "argmax_agreement": self.agreement, "float_accuracy": self.float_accuracy,
                "int8_accuracy": self.int8_accuracy}


def _fmt(x: float, spec: str) -> str:
    return spec.format(x) if math.isfinite(x) else str(x)


# ---- building the two graphs ----------------------------------------------------------------
def build_graphs(model: str | os.PathLike[str], options: DebugOptions
                 ) -> tuple[Graph, Graph, CalibrationSet]:
    """(calibrated float graph, its int8 -- or 16x8 -- copy, the calibration set), as compile
    builds them."""
    from microlith.frontend.onnx_import import load_onnx
    from microlith.passes.pipelines import TAILS, int8_pipeline, int16x8
    from microlith.pipeline.spec import format_pipeline

    if options.quantize not in ("int8", "int16x8"):
        raise UsageError(f"debug: --quantize int8 or int16x8, not {options.quantize!r}")
    compile_options = CompileOptions(
        input_shapes=dict(options.input_shapes), warn=options.warn, quantize=options.quantize,
        calibration_data=options.calibration_data, quiet=options.quiet,
        calibration_method=options.calibration_method, fallback=options.fallback)
    from microlith.targets import get_target

    check_quantize_options(compile_options, get_target("tflite"))
    passes = parse_pipeline(
        int8_pipeline(options.calibration_method, "int8", options.fallback)
        if options.quantize == "int8" else
        f"{format_pipeline(int16x8(options.calibration_method, 'int16', options.fallback))},"
        f"{TAILS['tflite']}")
    split = next(i for i, p in enumerate(passes) if p.name == "insert-qdq")
    graph = load_onnx(model, compile_options.input_shapes, warn=options.warn)
    if isinstance(options.calibration_data, Mapping):  # arrays by input name
        compile_options.calibration_data = calibration_set_from_arrays(
            options.calibration_data, input_specs_from_graph(graph))
    ctx = PassContext(warn=options.warn)
    ctx.options.update(calibration_context(graph, compile_options))
    PassManager(passes[:split]).run(graph, ctx)
    rest = [p for p in passes[split:] if not p.name.startswith("legalize")]
    return graph, quantize_copy(graph, rest), ctx.options["calibration_data"]


def quantize_copy(graph: Graph, passes: Sequence[Pass] | str = "insert-qdq,fuse-requantize,"
                  "eliminate-dead") -> Graph:
    """A quantized copy of a calibrated float graph (the float graph is left as it is)."""
    copy = graph.copy()
    manager = PassManager.from_spec(passes) if isinstance(passes, str) else PassManager(passes)
    manager.run(copy, PassContext())
    return copy


def load_eval_data(source: Any, graph: Graph) -> tuple[CalibrationSet, np.ndarray | None]:
    """Evaluation inputs and labels: a path (an .npz may add ``labels``), set or arrays."""
    specs = input_specs_from_graph(graph)
    if isinstance(source, CalibrationSet):
        return source, None
    if not isinstance(source, str | os.PathLike):
        return calibration_set_from_arrays(source, specs), None
    where, arrays = os.fspath(source), None
    if os.path.isfile(where) and LABELS_KEY not in {s.name for s in specs}:
        try:  # only the member list here; the arrays are read with their headers checked
            with zipfile.ZipFile(where) as archive:
                with_labels = LABELS_KEY + ".npy" in archive.namelist()
            if with_labels:
                arrays, _ = load_npz(where, MAX_CALIBRATION_BYTES, CalibrationError,
                                     max(spec.dtype.itemsize for spec in specs))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, CalibrationError):
            arrays = None  # load_calibration_file says what is wrong
    if arrays is None:
        return load_calibration_file(where, specs), None
    labels = arrays.pop(LABELS_KEY)
    try:
        data = calibration_set_from_arrays(arrays, specs)
    except CalibrationError as exc:
        raise CalibrationError(str(exc).replace("the given arrays", repr(where))) from None
    return data, check_labels(labels, len(data), f"{where!r}: ")


def _classes(graph: Graph) -> int | None:
    """How many class ids the first output scores (its elements per sample)."""
    return int(np.prod(graph.outputs[0].shape[1:])) if graph.outputs else None


def check_labels(labels: Any, count: int, where: str = "",
                 classes: int | None = None) -> np.ndarray:
    """``count`` integer class ids, one per sample, as an int64 vector; with ``classes``,
    each in ``[0, classes)``."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.dtype.kind not in "iub":
        raise UsageError(f"{where}labels must be a 1-D array of integer class ids, got "
                         f"{array.dtype} of shape {list(array.shape)}")
    if len(array) != count:
        raise UsageError(f"{where}{len(array)} labels for {count} samples")
    if classes is not None and len(array):
        outside = np.flatnonzero((array < 0) | (array >= classes))
        if len(outside):
            raise UsageError(f"{where}label {int(array[outside[0]])} of sample "
                             f"{int(outside[0])} is not a class id of the model's first "
                             f"output (0..{classes - 1})")
    return array.astype(np.int64)


# ---- comparing them -------------------------------------------------------------------------
@dataclass
class _Probe:
    index: int
    value: Value  # the int8 tensor
    ref: str  # its float counterpart
    node: Node | None  # the integer node; None for a graph input
    float_node: Node | None  # the same node in the float graph; None for QuantizeLinear
    inputs: list[str | None]  # float counterparts of the node's activation inputs
    layer: ErrorStats
    cumulative: ErrorStats
    runner: Any = None  # the integer node alone, lowered (made on first use)

    def add_layer(self, fenv: dict[str, np.ndarray], q: np.ndarray) -> None:
        """This layer alone: its kernel on quantized float inputs vs float on the same."""
        node, qp = self.node, _qp(self.value)
        if node is None:  # a graph input: its error is its quantization
            self.layer.add(fenv[self.ref], dequantize_array(q, qp))
            return
        q_args: list[np.ndarray | None] = []
        f_args: list[np.ndarray | None] = []
        for value, ref in zip(node.inputs, self.inputs, strict=True):
            x = None if value is None or ref is None else fenv[ref]
            if x is not None and value is not None and _is_quantized(value):
                x = quantize_array(x, _qp(value), value.dtype.numpy.type)
                f_args.append(dequantize_array(x, _qp(value)))
            else:
                f_args.append(x)
            q_args.append(value.data if value is not None and x is None else x)
        if self.runner is None:
            self.runner = node_runner(node)
        approx = dequantize_array(self.runner(q_args), qp)
        if self.float_node is None:  # QuantizeLinear: the reference is its float input
            reference = f_args[0]
        else:
            args = [None if v is None else v.data if v.is_constant else f_args[i]
                    for i, v in enumerate(self.float_node.inputs)]
            reference = KERNELS[self.float_node.op](self.float_node, args)[0]
        self.layer.add(np.asarray(reference), approx)


def _is_quantized(value: Value) -> bool:
    return value.quant is not None and not value.dtype.is_float


def _qp(value: Value) -> QuantParams:
    assert value.quant is not None, value.name
    return value.quant


def _counterpart(value: Value, float_graph: Graph) -> str | None:
    """The float graph's name for an int8 graph value: through Q/DQ, then by node name."""
    producer = value.producer
    if producer is not None and producer.op in ("QuantizeLinear", "DequantizeLinear"):
        source = producer.arg(0)
        return None if source is None else _counterpart(source, float_graph)
    if producer is not None:
        try:
            return float_graph.node(producer.name).outputs[producer.outputs.index(value)].name
        except (KeyError, IndexError):
            pass
    return value.name if value.name in float_graph.values else None


def _probes(float_graph: Graph, int8_graph: Graph, warn: WarningSink) -> list[_Probe]:
    candidates: list[tuple[Value, Node | None]] = [(v, None) for v in int8_graph.inputs]
    candidates += [(out, node) for node in int8_graph.nodes for out in node.outputs]
    probes = []
    for index, (value, node) in enumerate(candidates):
        if not _is_quantized(value):
            continue
        ref = _counterpart(value, float_graph)
        twin = None if ref is None or node is None or node.op == "QuantizeLinear" else \
            float_graph.values[ref].producer
        if node is not None and node.op != "QuantizeLinear" and (
                twin is None or twin.op != node.op or len(twin.inputs) != len(node.inputs)):
            ref = None
        if ref is None:
            warn(f"debug: no float counterpart for int8 tensor {value.name!r}; not listed")
            continue
        inputs = [] if node is None else [None if v is None or v.is_constant else
                                          _counterpart(v, float_graph) for v in node.inputs]
        scale = _qp(value).scale[0]
        probes.append(_Probe(index, value, ref, node, twin, inputs, ErrorStats(scale),
                             ErrorStats(scale)))
    return probes


def _feeds(graph: Graph, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX-layout samples -> the graph's inputs (``io_perms`` applied, int8 quantized)."""
    feeds = {}
    for value in graph.inputs:
        array, perm = batch[value.name], graph.meta.get("io_perms", {}).get(value.name)
        array = array if perm is None else np.ascontiguousarray(array.transpose(perm))
        feeds[value.name] = quantize_array(array, _qp(value), value.dtype.numpy.type) \
            if _is_quantized(value) else array
    return feeds


def _quantized_value(probe: _Probe, qenv: dict[str, np.ndarray]) -> np.ndarray:
    """The int8 run's value of ``probe``; a reshape that the TFLite lowering removed
    (FULLY_CONNECTED flattens its input itself) is its input's bytes in its own shape."""
    name = probe.value.name
    if name not in qenv and probe.node is not None and probe.node.inputs and \
            probe.node.inputs[0] is not None and probe.node.inputs[0].name in qenv:
        return qenv[probe.node.inputs[0].name].reshape((-1, *probe.value.shape[1:]))
    return qenv[name]


def _top1(graph: Graph, name: str, array: np.ndarray) -> np.ndarray:
    perm = graph.meta.get("io_perms", {}).get(name)
    array = array if perm is None else array.transpose(np.argsort(perm))
    return array.reshape(len(array), -1).argmax(axis=1)


def compare(float_graph: Graph, int8_graph: Graph, data: CalibrationSet,
            labels: np.ndarray | None = None, *, batch_size: int = 32, quiet: bool = False,
            stream: TextIO | None = None, warn: WarningSink = stderr_warning) -> DebugReport:
    """Run both graphs on ``data`` and measure every int8 tensor (see the module docstring)."""
    probes = _probes(float_graph, int8_graph, warn)
    outputs = [p for v in int8_graph.outputs for p in probes if p.value is v]
    labels = None if labels is None else check_labels(labels, len(data),
                                                      classes=_classes(int8_graph))
    picks: list[tuple[np.ndarray, np.ndarray]] = []
    progress = Progress(len(data), label="comparing", stream=stream,
                        enabled=False if quiet else None)
    progress.update(0)
    runnable = executable(int8_graph)
    try:
        for start in range(0, len(data), batch_size):
            batch = {n: data.array(n)[start:start + batch_size] for n in data.names}
            with np.errstate(over="ignore", invalid="ignore"):
                fenv = run_graph(float_graph, _feeds(float_graph, batch), keep_all=True)
                qenv = run_graph(runnable, _feeds(int8_graph, batch), keep_all=True)
                for probe in probes:
                    q = _quantized_value(probe, qenv)
                    probe.cumulative.add(fenv[probe.ref], dequantize_array(q, _qp(probe.value)))
                    probe.add_layer(fenv, q)
            if outputs:  # the first output's top-1 class per sample, float and int8
                first = outputs[0]
                picks.append((_top1(float_graph, first.ref, fenv[first.ref]),
                              _top1(int8_graph, first.value.name, qenv[first.value.name])))
            progress.update(min(start + batch_size, len(data)))
    finally:
        progress.close()
    rows = [LayerRow(p.index, "Input" if p.node is None else p.node.op,
                     p.value.name if p.node is None else p.node.name, p.value.name,
                     p.value.shape, _qp(p.value).scale[0], _qp(p.value).zero_point[0],
                     p.layer.metrics(), p.cumulative.metrics()) for p in probes]
    rows.sort(key=lambda r: (r.layer.sqnr_db, r.cumulative.sqnr_db, r.index))
    report = DebugReport(rows, {p.value.name: p.cumulative.metrics() for p in outputs},
                         len(data), calibration=dict(float_graph.meta.get("calibration", {})))
    if picks and int(np.prod(outputs[0].value.shape[1:])) > 1:  # a classifier
        f_top, q_top = (np.concatenate(part) for part in zip(*picks, strict=True))
        report.agreement = float(np.mean(f_top == q_top))
        if labels is not None:
            report.float_accuracy = float(np.mean(f_top == labels))
            report.int8_accuracy = float(np.mean(q_top == labels))
    return report


def debug_quantization(model: str | os.PathLike[str], options: DebugOptions) -> DebugReport:
    """Calibrate and quantize ``model`` like compile does, then compare int8 with float."""
    if options.samples < 0 or options.batch_size < 1:
        raise UsageError("samples must be >= 0 (0: all) and batch_size >= 1")
    float_graph, int8_graph, calibration = build_graphs(model, options)
    if options.data is None:
        data, labels = calibration, None
    else:
        try:
            data, labels = load_eval_data(options.data, float_graph)
        except CalibrationError as exc:  # the messages say "calibration data"
            raise CalibrationError(str(exc).replace("calibration data", "evaluation data")
                                   ) from None
    if options.labels is not None:
        labels = check_labels(options.labels, len(data))
    if labels is not None:
        where = f"{os.fspath(options.data)!r}: " if options.labels is None else ""
        labels = check_labels(labels, len(data), where, classes=_classes(float_graph))
    if options.samples and options.samples < len(data):
        data = data.head(options.samples)
        labels = None if labels is None else labels[:options.samples]
    report = compare(float_graph, int8_graph, data, labels, batch_size=options.batch_size,
                     quiet=options.quiet, warn=options.warn)
    report.kind = "16x8" if options.quantize == "int16x8" else "int8"
    return report
