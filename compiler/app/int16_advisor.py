"""Which layers to make 16x8 inside an int8 model: ``microlith debug`` and ``--int16 auto``.

The model is imported, canonicalized and calibrated once, as ``compile --quantize int8``
does; every candidate quantization is a copy of that calibrated float graph through
``insert-qdq{io-dtype=float32,int16=...}, fuse-requantize, eliminate-dead,
legalize-tflite`` (float interface, so the float and integer graphs take the same
inputs), run on the evaluation samples by the TFLite-Micro-exact integer interpreter.

* output SQNR ``10 log10(sum f^2 / sum (q - f)^2)`` dB over every output element of every
  sample, ``f`` the float graph's outputs, ``q`` the quantized graph's;
* cost of a choice: the extra bytes of the ``.tflite`` (int64 biases, requantizing
  QUANTIZE ops) plus one byte per element of every activation tensor that became int16
  (the RAM the wider tensors need, an upper bound of the arena growth);
* candidates: the nodes with a rescaling or weighted int8 rule and a 16x8 kernel (conv,
  depthwise, fully connected, add, sub, mul, mean, leaky-relu); each is promoted alone and
  ranked by SQNR gain over all-int8 per byte of cost (then by gain);
* automatic choice (``--int16 auto[:BUDGET]``): walk the candidates by solo gain (the
  worst layers first), keep one when it
  raises the SQNR of the set so far by at least ``MIN_GAIN_DB`` and the set's cost stays
  within ``BUDGET`` bytes (no limit without one); each candidate is tried once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microlith.ir.core import Graph
from microlith.ir.ops import Int8Rule, get_op
from microlith.ir.types import DType

MIN_GAIN_DB = 0.5


@dataclass(frozen=True)
class Candidate:
    name: str
    op: str
    sqnr_db: float  # output SQNR with only this node 16x8
    gain_db: float  # over all-int8
    cost_bytes: int


@dataclass
class Int16Advice:
    int8_sqnr_db: float
    ranking: list[Candidate]
    chosen: list[str] = field(default_factory=list)
    chosen_sqnr_db: float = 0.0
    chosen_cost_bytes: int = 0
    candidates: int = 0
    budget: int | None = None
    all_sqnr_db: float = 0.0  # every candidate 16x8

    @property
    def gap_recovered(self) -> float:
        """The share of the SQNR gap between all-int8 and all candidates 16x8 recovered."""
        gap = self.all_sqnr_db - self.int8_sqnr_db
        return (self.chosen_sqnr_db - self.int8_sqnr_db) / gap if gap > 0 else 1.0

    def table(self) -> str:
        lines = ["16x8 candidates (each promoted alone), best gain per byte first:",
                 f"{'node':<28} {'op':<18} {'SQNR dB':>8} {'gain dB':>8} {'bytes':>7}"]
        for c in self.ranking:
            lines.append(f"{c.name[:28]:<28} {c.op[:18]:<18} {c.sqnr_db:8.2f} {c.gain_db:8.2f} "
                         f"{c.cost_bytes:7d}")
        lines.append(f"all int8: output SQNR {self.int8_sqnr_db:.2f} dB; every candidate 16x8: "
                     f"{self.all_sqnr_db:.2f} dB")
        chosen = ",".join(self.chosen) or "(none)"
        lines.append(f"suggested: --int16 {chosen}  ({len(self.chosen)}/{self.candidates} "
                     f"layers, output SQNR {self.chosen_sqnr_db:.2f} dB, "
                     f"+{self.chosen_cost_bytes} bytes, "
                     f"{100 * self.gap_recovered:.0f}% of the gap)")
        return "\n".join(lines) + "\n"


def parse_auto(items: tuple[str, ...] | None) -> tuple[bool, int | None]:
    """(``--int16 auto[:BUDGET]`` given, BUDGET in bytes or None)."""
    if not items or not items[0].startswith("auto"):
        return False, None
    from microlith.diagnostics import UsageError

    head, _, budget = items[0].partition(":")
    if head != "auto" or len(items) > 1 or (budget and not budget.isdigit()):
        raise UsageError("--int16 auto takes the form auto or auto:BUDGET (bytes), alone")
    return True, int(budget) if budget else None


class _Evaluator:
    def __init__(self, graph: Graph, feeds: dict[str, np.ndarray]) -> None:
        from microlith.interpreter import run_graph

        self.graph, self.feeds = graph, feeds
        self.reference = self._outputs(graph)
        self._run_graph = run_graph

    def _outputs(self, graph: Graph) -> np.ndarray:
        from microlith.interpreter import run_graph

        out = run_graph(graph, self.feeds)
        return np.concatenate([np.asarray(out[v.name], np.float64).reshape(-1)
                               for v in graph.outputs])

    def quantized(self, int16: list[str]) -> tuple[float, int]:
        """(output SQNR dB, cost bytes) of the int8 model with ``int16`` made 16x8."""
        from microlith.backends.tflite import emit_tflite
        from microlith.pipeline import PassContext, PassManager, parse_pipeline

        spec = ("insert-qdq{io-dtype=float32" + (f",int16={';'.join(int16)}" if int16 else "")
                + "},fuse-requantize,eliminate-dead,legalize-tflite")
        copy = self.graph.copy()
        PassManager(parse_pipeline(spec)).run(copy, PassContext())
        got = self._outputs(copy)
        noise = float(np.sum((got - self.reference) ** 2))
        sqnr = 10 * np.log10(float(np.sum(self.reference ** 2)) / max(noise, 1e-30))
        wide = sum(v.type.numel for v in copy.values.values()
                   if not v.is_constant and v.dtype == DType.INT16)
        return float(sqnr), len(emit_tflite(copy)) + int(wide)


def advise(model: str | os.PathLike[str], calibration_data: Any, *, budget: int | None = None,
           samples: int = 64, calibration_method: str | None = None,
           input_shapes: dict[str, tuple[int, ...]] | None = None) -> Int16Advice:
    """Rank the 16x8 candidates of ``model`` and choose a set (see the module doc); the
    evaluation samples are the first ``samples`` calibration samples."""
    from microlith.app.quant_debug import DebugOptions, build_graphs

    graph, _, data = build_graphs(model, DebugOptions(
        calibration_data=calibration_data, calibration_method=calibration_method or "minmax",
        input_shapes=dict(input_shapes or {}), quiet=True))
    perms = graph.meta.get("io_perms", {})
    feeds = {}
    for v in graph.inputs:
        x = np.asarray(data.array(v.name)[:samples], np.float32)
        feeds[v.name] = np.ascontiguousarray(x.transpose(perms[v.name]) if v.name in perms
                                             else x)
    ev = _Evaluator(graph, feeds)
    base_sqnr, base_cost = ev.quantized([])
    nodes = [n for n in graph.nodes if get_op(n.op).int16 and
             get_op(n.op).int8 in (Int8Rule.WEIGHTED, Int8Rule.RESCALE)]
    ranking = []
    for node in nodes:
        sqnr, cost = ev.quantized([node.name])
        ranking.append(Candidate(node.name, node.op, sqnr, sqnr - base_sqnr, cost - base_cost))
    ranking.sort(key=lambda c: (-c.gain_db / max(c.cost_bytes, 1), -c.gain_db, c.name))
    advice = Int16Advice(base_sqnr, ranking, candidates=len(nodes), budget=budget,
                         chosen_sqnr_db=base_sqnr,
                         all_sqnr_db=ev.quantized([n.name for n in nodes])[0])
    for c in sorted(ranking, key=lambda c: (-c.gain_db, c.cost_bytes, c.name)):
        trial = [*advice.chosen, c.name]
        sqnr, cost = ev.quantized(trial)
        if sqnr < advice.chosen_sqnr_db + MIN_GAIN_DB:
            continue
        if budget is not None and cost - base_cost > budget:
            continue
        advice.chosen, advice.chosen_sqnr_db = trial, sqnr
        advice.chosen_cost_bytes = cost - base_cost
    return advice
