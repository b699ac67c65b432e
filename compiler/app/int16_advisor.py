"""Which layers to make 16x8 inside an int8 model: ``microlith debug`` and ``--int16 auto``.

The model is imported, canonicalized and calibrated once, as ``compile --quantize int8``
does; every candidate quantization is a copy of that calibrated float graph through
``insert-qdq{io-dtype=float32,int16=...}, fuse-requantize, eliminate-dead,
legalize-tflite`` (float interface, so the float and integer graphs take the same
inputs; the outputs are float too, or with ``output_dtype`` the compile's own), run on the
evaluation samples by the TFLite-Micro-exact integer interpreter.

* output SQNR ``10 log10(sum f^2 / sum (q - f)^2)`` dB over every output element of every
  sample, ``f`` the float graph's outputs, ``q`` the quantized graph's;
* cost of a choice: the extra bytes of the ``.tflite`` (int64 biases, requantizing
  QUANTIZE ops) plus one byte per element of every activation tensor that became int16
  (the RAM the wider tensors need, an upper bound of the arena growth);
* candidates: one per activation tensor written by a node with a 16x8 kernel (conv,
  depthwise, fully connected, add, sub, mul, mean, leaky-relu, logistic, tanh, softmax):
  its producer together with every reader that has a 16x8 kernel, followed through the
  readers that only move data (pooling, reshape, concatenation: one scale in and out) to
  theirs. Promoting a producer alone gains nothing when its readers are int8 -- the
  requantizing QUANTIZE in between rounds the tensor to 8 bits again --, so the unit is the
  tensor: its producer and consumers become 16x8 together. Each candidate is promoted alone
  and ranked by SQNR gain over all-int8 per byte of cost (then by gain);
* automatic choice (``--int16 auto[:BUDGET]``): greedy on measured gains, in the ranking's
  order (solo gain per byte): keep a candidate when it raises the SQNR of the set so far by
  at least ``MIN_GAIN_DB`` and the set's cost stays within ``BUDGET`` bytes (no limit
  without one); stop once the set recovers ``ENOUGH`` of the gap to the whole model 16x8
  (the rest costs more layers than it gains). Each candidate is tried once (at most
  2n + 2 evaluations for n candidates).
* the gap: ``gap_recovered`` is ``(chosen - int8) / (16x8 - int8)`` with the whole model
  16x8 (``insert-qdq{activations=int16}``); ``layers`` counts the model's computing nodes
  (every node with an integer kernel but the data-movement ones).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microlith.ir.core import Graph, Node
from microlith.ir.ops import Int8Rule, get_op
from microlith.ir.types import DType

MIN_GAIN_DB = 0.5
ENOUGH = 0.9


@dataclass(frozen=True)
class Candidate:
    name: str  # the activation tensor
    nodes: tuple[str, ...]  # its producer and 16x8 readers, promoted together
    ops: str
    sqnr_db: float  # output SQNR with only these nodes 16x8
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
    all_sqnr_db: float = 0.0  # the whole model 16x8
    layers: int = 0  # computing nodes of the model
    chosen_layers: int = 0  # of them in ``chosen``

    @property
    def gap_recovered(self) -> float:
        """The share of the SQNR gap between all-int8 and the whole model 16x8 recovered."""
        gap = self.all_sqnr_db - self.int8_sqnr_db
        return (self.chosen_sqnr_db - self.int8_sqnr_db) / gap if gap > 0 else 1.0

    def table(self) -> str:
        lines = ["16x8 candidates: a tensor with its producer and readers (each promoted alone), "
                 "best gain per byte first:",
                 f"{'tensor':<28} {'nodes (producer, readers)':<34} {'SQNR dB':>8} "
                 f"{'gain dB':>8} {'bytes':>7}"]
        for c in self.ranking:
            lines.append(f"{c.name[:28]:<28} {c.ops[:34]:<34} {c.sqnr_db:8.2f} {c.gain_db:8.2f} "
                         f"{c.cost_bytes:7d}")
        lines.append(f"all int8: output SQNR {self.int8_sqnr_db:.2f} dB; whole model 16x8: "
                     f"{self.all_sqnr_db:.2f} dB")
        chosen = ",".join(self.chosen) or "(none)"
        lines.append(f"suggested: --int16 {chosen}  ({self.chosen_layers}/{self.layers} "
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
    def __init__(self, graph: Graph, feeds: dict[str, np.ndarray], output_dtype: str) -> None:
        self.graph, self.feeds, self.output_dtype = graph, feeds, output_dtype
        self.reference = self._outputs(graph)

    def _outputs(self, graph: Graph) -> np.ndarray:
        from microlith.interpreter import run_graph
        from microlith.quant.params import dequantize_array

        out = run_graph(graph, self.feeds)
        return np.concatenate([np.asarray(
            out[v.name] if v.quant is None or v.dtype.is_float else
            dequantize_array(out[v.name], v.quant), np.float64).reshape(-1)
            for v in graph.outputs])

    def quantized(self, int16: list[str], whole: bool = False) -> tuple[float, int]:
        """(output SQNR dB, cost bytes) of the int8 model with ``int16`` made 16x8 (``whole``:
        the whole model 16x8)."""
        from microlith.backends.tflite import emit_tflite
        from microlith.pipeline import PassContext, PassManager, parse_pipeline

        spec = ("insert-qdq{io-dtype=float32,output-dtype=" + self.output_dtype
                + (f",int16={';'.join(int16)}" if int16 else "")
                + (",activations=int16" if whole else "")
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
           input_shapes: dict[str, tuple[int, ...]] | None = None,
           output_dtype: str = "float32") -> Int16Advice:
    """Rank the 16x8 candidates of ``model`` and choose a set (see the module doc); the
    evaluation samples are the first ``samples`` calibration samples, the outputs of the
    quantized graphs are ``output_dtype`` (an int8 output rounds away what a 16x8 output
    layer gains: ``--int16 auto`` evaluates with the compile's own output dtype)."""
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
    ev = _Evaluator(graph, feeds, output_dtype)
    base_sqnr, base_cost = ev.quantized([])
    ranking = []
    for value, nodes in candidate_groups(graph):
        sqnr, cost = ev.quantized(list(nodes))
        ops = ", ".join(graph_node(graph, n).op for n in nodes)
        ranking.append(Candidate(value, nodes, ops, sqnr, sqnr - base_sqnr, cost - base_cost))
    ranking.sort(key=lambda c: (-c.gain_db / max(c.cost_bytes, 1), -c.gain_db, c.name))
    layers = {n.name for n in graph.nodes if _computes(n)}
    advice = Int16Advice(base_sqnr, ranking, candidates=len(ranking), budget=budget,
                         chosen_sqnr_db=base_sqnr, layers=len(layers),
                         all_sqnr_db=ev.quantized([], whole=True)[0])
    chosen: set[str] = set()
    for c in ranking:
        if advice.gap_recovered >= ENOUGH:
            break
        if set(c.nodes) <= chosen:
            continue
        trial = sorted(chosen | set(c.nodes))
        sqnr, cost = ev.quantized(trial)
        if sqnr < advice.chosen_sqnr_db + MIN_GAIN_DB:
            continue
        if budget is not None and cost - base_cost > budget:
            continue
        chosen = set(trial)
        advice.chosen, advice.chosen_sqnr_db = trial, sqnr
        advice.chosen_cost_bytes = cost - base_cost
    advice.chosen_layers = len(chosen & layers)
    return advice


def graph_node(graph: Graph, name: str) -> Node:
    return next(n for n in graph.nodes if n.name == name)


def _promotable(node: Node) -> bool:
    return get_op(node.op).int16 and get_op(node.op).int8 is not Int8Rule.NONE


def _computes(node: Node) -> bool:
    return get_op(node.op).int8 not in (Int8Rule.NONE, Int8Rule.SAME)


def candidate_groups(graph: Graph) -> list[tuple[str, tuple[str, ...]]]:
    """(tensor, nodes) per activation tensor a computing 16x8-capable node writes: the
    producer and its 16x8-capable readers, through data-movement readers to theirs."""
    groups: list[tuple[str, tuple[str, ...]]] = []
    seen: set[tuple[str, ...]] = set()
    for producer in graph.nodes:
        if not (_promotable(producer) and _computes(producer)):
            continue
        for value in producer.outputs:
            members, stack = {producer.name}, [value]
            while stack:
                for use in stack.pop().uses:
                    reader = use.node
                    if _promotable(reader) and reader.name not in members:
                        members.add(reader.name)
                        if not _computes(reader):
                            stack.extend(reader.outputs)
            key = tuple(sorted(members))
            if key not in seen:
                seen.add(key)
                groups.append((value.name, key))
    return groups
