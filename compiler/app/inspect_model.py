"""``microlith inspect``: ops, tensors, parameter bytes and peak activation memory.

Works on ``.onnx`` (imported, no passes run; a model with ops the importer does not
know gets a survey instead: every op type with its count, the unknown ones marked and
their nodes listed) and ``.tflite`` (parsed with our
reader), like ``tf.lite.experimental.Analyzer``, and on a C output directory (its
``*_memory_plan.json``). Per tensor it shows the dtype and, for compressed weights, the
storage form (float16 / int8 behind a DEQUANTIZE, or int8 hybrid weights read by a float
kernel), and the parameter bytes per dtype. The peak-activation estimate is the largest sum of bytes
of activations live at one op (no in-place reuse), in the file's own op order.

Damaged input is one ``FrontendError`` line naming the file and the tensor, operator
or field: only regular files are read (at most ``MAX_TFLITE_BYTES`` /
``MAX_PLAN_BYTES``); every tensor index of an operator or of the subgraph's
inputs/outputs must exist (-1 only for an absent optional operator input); dims must
be non-negative (sizes are Python integers: no int64 overflow); a memory plan must
have the fields ``plan-memory`` writes, with non-negative integers where it writes them.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from microlith.diagnostics import FrontendError, UsageError
from microlith.frontend.input_files import open_regular, read_bounded
from microlith.liveness import lifetimes

if TYPE_CHECKING:
    from microlith.formats.tflite.flatbuffer import TflModel, TflOperator


MAX_TFLITE_BYTES = 2**31 - 1  # flatbuffers' 2 GB limit
MAX_PLAN_BYTES = 64 << 20


def _is_tflite(path: str) -> bool:
    handle, _ = open_regular(path, "an .onnx or .tflite file or a C output directory",
                             sys.maxsize)
    with handle:
        head = handle.read(8)
    return len(head) == 8 and head[4:8] == b"TFL3"


def inspect_file(path: str, list_tensors: bool = False,
                 input_shapes: dict[str, tuple[int, ...]] | None = None,
                 as_json: bool = False) -> str:
    """The report text (or, ``as_json``, one JSON document with every op's MACs and, with
    ``list_tensors``, the tensors); ``input_shapes`` pins dynamic inputs of an .onnx file."""
    if os.path.isdir(path):
        if as_json:
            return json.dumps({"path": path, "plans": _c_plans(path)}, indent=2) + "\n"
        return _inspect_c_dir(path)
    if _is_tflite(path):
        if input_shapes:
            raise UsageError(f"{path}: --input-shape applies to .onnx files only")
        summary = _inspect_tflite(path)
    else:
        survey = _inspect_onnx(path, input_shapes or {})
        if isinstance(survey, str):
            return json.dumps({"path": path, "format": "onnx",
                               "unsupported_survey": survey.splitlines()}, indent=2) + "\n" \
                if as_json else survey
        summary = survey
    if as_json:
        if not list_tensors:
            summary.pop("tensors")
        return json.dumps(summary, indent=2) + "\n"
    return _report(summary, list_tensors)


def _peak(steps: list[tuple[list[Hashable], list[Hashable]]], inputs: list[Hashable],
          outputs: list[Hashable], sizes: dict[Hashable, int]) -> tuple[int, int]:
    """``liveness.peak_live_bytes`` of ``liveness.lifetimes`` (the same first step of the
    largest sum) by a sweep over the steps: linear, not steps x tensors."""
    delta = [0] * (max(len(steps), 1) + 1)
    for name, span in lifetimes(steps, inputs, outputs).items():
        if span.first <= span.last:
            delta[span.first] += sizes[name]
            delta[span.last + 1] -= sizes[name]
    best, at, total = 0, 0, 0
    for step in range(max(len(steps), 1)):
        total += delta[step]
        if total > best:
            best, at = total, step
    return best, at


def _fmt_quant(scale: list[float] | tuple[float, ...], zero: list[int] | tuple[int, ...],
               axis: int | None) -> str:
    if len(scale) == 1:
        return f"scale={scale[0]:.6g} zp={zero[0]}"
    return f"per-axis({axis}) n={len(scale)} scale={min(scale):.4g}..{max(scale):.4g}"


def _by_dtype(weights: Counter[str]) -> str:
    return ", ".join(f"{dtype} {count:,}" for dtype, count in sorted(weights.items())) or "none"


def _summary(kind: str, path: str, ops: list[tuple[str, str, int]],
             rows: list[tuple[str, str, str, str, str]], params: int, peak: tuple[int, int, str],
             io: list[dict[str, Any]], weights: Counter[str] | None = None) -> dict[str, Any]:
    """Everything ``inspect`` reports, as plain data (the ``--json`` form)."""
    summary: dict[str, Any] = {
        "path": path, "format": kind, "io": io,
        "ops": [{"index": i, "op": op, "name": name, "macs": macs}
                for i, (op, name, macs) in enumerate(ops)],
        "macs": sum(macs for _, _, macs in ops), "parameter_bytes": params,
        "peak_activation_bytes": {"bytes": peak[0], "at_op": peak[1], "where": peak[2]},
        "tensors": [{"name": n, "dtype": d, "shape": sh, "kind": k, "quant": q}
                    for n, d, sh, q, k in rows]}
    if weights is not None:
        summary["parameter_bytes_by_dtype"] = dict(sorted(weights.items()))
    return summary


def _report(summary: dict[str, Any], list_tensors: bool) -> str:
    ops, rows = summary["ops"], summary["tensors"]
    counts: Counter[str] = Counter(op["op"] for op in ops)
    macs: Counter[str] = Counter()
    for op in ops:
        macs[op["op"]] += op["macs"]
    lines = [f"{summary['path']}: {summary['format']}, {len(ops)} ops, {len(rows)} tensors"]
    lines += [f"  {'input ' if t['role'] == 'input' else 'output'} {t['name']}: {t['dtype']} "
              f"{t['shape']}" for t in summary["io"]]
    lines.append(f"ops:{'':<22} {'count':>5} {'MACs':>14}")
    lines += [f"  {op:<24} {count:>5} {macs[op]:>14,}" for op, count in sorted(counts.items())]
    lines.append(f"MACs: {summary['macs']:,}")
    lines.append(f"parameter bytes: {summary['parameter_bytes']:,}")
    peak = summary["peak_activation_bytes"]
    lines.append(f"peak activation bytes (estimate): {peak['bytes']:,} at op {peak['at_op']} "
                 f"({peak['where']})")
    if "parameter_bytes_by_dtype" in summary:
        lines.append("parameter bytes by dtype: "
                     f"{_by_dtype(Counter(summary['parameter_bytes_by_dtype']))}")
    if "widened_at_load_bytes" in summary:
        lines.append("float32 copies made at load (DEQUANTIZE of constants): "
                     f"{summary['widened_at_load_bytes']:,} bytes (not in the peak above)")
    if list_tensors:
        lines.append("tensors:")
        width = max([len(r["name"]) for r in rows] + [4])
        for r in rows:
            lines.append(f"  {r['name']:<{width}}  {r['dtype']:<8} {r['shape']:<18} "
                         f"{r['kind']:<10} {r['quant']}")
    return "\n".join(lines) + "\n"


def tflite_macs(model: TflModel, op: TflOperator) -> int:
    """Multiply-accumulates of a .tflite operator from its tensors' shapes (conv,
    depthwise, fully connected, transpose conv, batch matmul; 0 for the others)."""
    def shape(k: int, outputs: bool = False) -> list[int]:
        indices = op.outputs if outputs else op.inputs
        if k >= len(indices):  # a damaged operator: fewer operands than its kind has
            return []
        return model.tensors[indices[k]].shape if indices[k] >= 0 else []

    out = math.prod(shape(0, True)) if op.outputs else 0
    if op.op == "CONV_2D":
        return out * math.prod(shape(1)[1:])
    if op.op == "DEPTHWISE_CONV_2D":
        return out * math.prod(shape(1)[1:3])
    if op.op == "FULLY_CONNECTED":
        return out * (shape(1)[-1] if shape(1) else 0)
    if op.op == "TRANSPOSE_CONV":
        return math.prod(shape(2)) * math.prod(shape(1)[:3])
    if op.op == "BATCH_MATMUL":
        x = shape(0)
        return out * (x[-1] if x else 0)
    return 0


def _check_tflite(path: str, model: TflModel) -> None:
    """Indices in range, dims non-negative (see the module docstring)."""
    count = len(model.tensors)
    for i, tensor in enumerate(model.tensors):
        if any(d < 0 for d in tensor.shape):
            raise FrontendError(f"{path}: tensor {i} ({tensor.name!r}) has a negative "
                                f"dimension in shape {tensor.shape}")
    for where, indices in (("subgraph inputs", model.inputs),
                           ("subgraph outputs", model.outputs)):
        for index in indices:
            if not 0 <= index < count:
                raise FrontendError(f"{path}: {where} name tensor {index}, but the subgraph "
                                    f"has {count} tensors")
    for number, op in enumerate(model.operators):
        for kind, indices, lowest in (("input", op.inputs, -1), ("output", op.outputs, 0)):
            for index in indices:
                if not lowest <= index < count:
                    raise FrontendError(f"{path}: operator {number} ({op.op}) {kind} names "
                                        f"tensor {index}, but the subgraph has {count} tensors")


def _inspect_tflite(path: str) -> dict[str, Any]:
    from microlith.formats.tflite.flatbuffer import parse_model

    data = read_bounded(path, "a .tflite file", MAX_TFLITE_BYTES)
    try:
        model = parse_model(data)
    except Exception as exc:  # the reader raises ValueError/struct errors on damage
        raise FrontendError(f"{path}: not a valid .tflite file ({exc})") from None
    _check_tflite(path, model)
    ops = [(op.op, model.tensors[op.outputs[0]].name if op.outputs else "",
            tflite_macs(model, op)) for op in model.operators]
    constants = {i for i, t in enumerate(model.tensors) if t.data is not None}
    sizes: dict[Hashable, int] = {i: math.prod(t.shape) * _itemsize(t.dtype)
                                  for i, t in enumerate(model.tensors)}
    # a DEQUANTIZE of a constant (float16 / int8 storage) is run once by LiteRT, its output
    # kept for the model's lifetime: a load-time copy of the weights, not an activation
    widened = {o for op in model.operators if op.op == "DEQUANTIZE" and op.inputs
               and op.inputs[0] in constants for o in op.outputs}
    fixed = constants | widened
    steps: list[tuple[list[Hashable], list[Hashable]]] = [
        ([i for i in op.inputs if i >= 0 and i not in fixed],
         [o for o in op.outputs if o not in fixed]) for op in model.operators]
    peak, at = _peak(steps, list(model.inputs), list(model.outputs), sizes)
    where = model.operators[at].op if model.operators else "-"
    rows = []
    forms = _storage_forms(model, constants)
    for i, t in enumerate(model.tensors):
        quant = _fmt_quant(t.quant.scale, t.quant.zero_point, t.quant.quantized_dimension) \
            if t.quant and t.quant.scale else ""
        if i in forms:
            quant = f"{forms[i]}; {quant}" if quant else forms[i]
        kind = "input" if i in model.inputs else "output" if i in model.outputs else \
            "constant" if i in constants else "widened" if i in widened else "activation"
        if i in widened:
            quant = "float32 copy of a constant, made once at load (DEQUANTIZE)"
        rows.append((t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", quant, kind))
    params = sum(len(model.tensors[i].data or b"") for i in constants)
    weights: Counter[str] = Counter()
    for i in constants:
        weights[model.tensors[i].dtype] += len(model.tensors[i].data or b"")
    io = [{"role": role, "name": model.tensors[i].name, "dtype": model.tensors[i].dtype,
           "shape": list(model.tensors[i].shape)}
          for role, indices in (("input", model.inputs), ("output", model.outputs))
          for i in indices]
    summary = _summary("tflite", path, ops, rows, params, (peak, at, where), io, weights)
    if widened:
        summary["widened_at_load_bytes"] = sum(sizes[o] for o in widened)
    return summary


def _storage_forms(model: TflModel, constants: set[int]) -> dict[int, str]:
    """How each compressed constant is used: float16 or int8 widened by a DEQUANTIZE, or
    int8 weights read directly by a float kernel (LiteRT's hybrid kernels)."""
    forms: dict[int, str] = {}
    for op in model.operators:
        outputs = [model.tensors[o].dtype for o in op.outputs]
        for position, index in enumerate(op.inputs):
            if index not in constants:
                continue
            dtype = model.tensors[index].dtype
            if op.op == "DEQUANTIZE" and dtype in ("float16", "int8"):
                forms[index] = f"{dtype} storage, DEQUANTIZE to float32"
            elif dtype == "int8" and position == 1 and outputs == ["float32"]:
                forms[index] = f"int8 hybrid weights of {op.op} (float activations)"
    return forms


def _survey_unsupported(path: str) -> str | None:
    """For a model with ops the importer does not know: every op type with its count,
    the unknown ones marked, and the nodes of each unknown op (None if all are known)."""
    from microlith.frontend import onnx_loader, onnx_rewrite
    from microlith.frontend.context import supported_ops

    model = onnx_loader.read_model(path)
    onnx_rewrite.rewrite_model(model)
    known = set(supported_ops())
    ops: Counter[str] = Counter()
    unknown: dict[str, list[str]] = {}
    for index, node in enumerate(model.graph.node):
        op = node.op_type if node.domain in onnx_loader.ONNX_DOMAINS else \
            f"{node.domain}::{node.op_type}"
        ops[op] += 1
        if node.domain not in onnx_loader.ONNX_DOMAINS or node.op_type not in known:
            unknown.setdefault(op, []).append(node.name or f"#{index}")
    if not unknown:
        return None
    lines = [f"{path}: onnx, {sum(ops.values())} ops, {len(unknown)} unsupported op types "
             f"({sum(len(v) for v in unknown.values())} nodes)", "ops:"]
    lines += [f"  {op:<24} {count}" + ("  unsupported" if op in unknown else "")
              for op, count in sorted(ops.items())]
    lines.append("unsupported: " + "; ".join(
        f"{op} x{len(names)} ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})"
        for op, names in sorted(unknown.items())))
    return "\n".join(lines) + "\n"


def _inspect_onnx(path: str, input_shapes: dict[str, tuple[int, ...]]
                  ) -> dict[str, Any] | str:
    """The summary, or for a model with ops the importer does not know, the survey text."""
    from microlith.frontend.onnx_import import load_onnx
    from microlith.ir.ops import node_macs

    try:
        graph = load_onnx(path, input_shapes, warn=lambda message: None)
    except FrontendError as exc:
        survey = _survey_unsupported(path) if ": unsupported ops: " in str(exc) else None
        if survey is None:
            raise
        return survey
    ops = [(node.meta.get("onnx_op", node.op), node.name, node_macs(node))
           for node in graph.nodes]
    sizes: dict[Hashable, int] = {v.name: math.prod(v.shape) * v.dtype.itemsize
                                  for v in graph.values.values()}
    steps: list[tuple[list[Hashable], list[Hashable]]] = [
        ([v.name for v in n.inputs if v is not None and not v.is_constant],
         [v.name for v in n.outputs]) for n in graph.nodes]
    peak, at = _peak(steps, [v.name for v in graph.inputs], [v.name for v in graph.outputs],
                     sizes)
    where = graph.nodes[at].name if graph.nodes else "-"
    rows = []
    for value in graph.values.values():
        quant = _fmt_quant(value.quant.scale, value.quant.zero_point, value.quant.axis) \
            if value.quant else ""
        kind = "input" if value in graph.inputs else "output" if value in graph.outputs else \
            "constant" if value.is_constant else "activation"
        rows.append((value.name, str(value.dtype.numpy), "x".join(map(str, value.shape))
                     or "scalar", quant, kind))
    params = sum(math.prod(v.shape) * v.dtype.itemsize for v in graph.constants())
    weights: Counter[str] = Counter()
    for v in graph.constants():
        weights[str(v.dtype.numpy)] += math.prod(v.shape) * v.dtype.itemsize
    io = [{"role": role, "name": v.name, "dtype": str(v.dtype.numpy), "shape": list(v.shape)}
          for role, values in (("input", graph.inputs), ("output", graph.outputs))
          for v in values]
    return _summary("onnx", path, ops, rows, params, (peak, at, where), io, weights)


def _itemsize(dtype: str) -> int:
    """Bytes per element of a TFLite dtype name (int4 counts as a byte, as stored)."""
    try:
        return np.dtype(dtype).itemsize
    except TypeError:  # int4, string, ...: no numpy dtype of that name
        return 1


def _plan_int(name: str, value: object, field: str, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (
            minimum is not None and value < minimum):
        bound = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise FrontendError(f"{name}: field {field!r} must be {bound}, got {value!r}"[:300])
    return value


def _plan_table(name: str, value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FrontendError(f"{name}: field {field!r} must be an object, got "
                            f"{type(value).__name__}")
    return value


def _read_plan(name: str) -> dict[str, Any]:
    """A ``*_memory_plan.json`` with every field ``_inspect_c_dir`` prints checked."""
    text = read_bounded(name, "a memory plan (JSON)", MAX_PLAN_BYTES)
    try:
        plan = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FrontendError(f"{name}: not a valid memory plan ({reason})") from None
    plan = _plan_table(name, plan, "(top level)")
    for key in ("arena_size", "lower_bound", "alignment", "tensors"):
        if key not in plan:
            raise FrontendError(f"{name}: not a valid memory plan (no field {key!r})")
    _plan_int(name, plan["arena_size"], "arena_size")
    _plan_int(name, plan["lower_bound"], "lower_bound")
    _plan_int(name, plan["alignment"], "alignment", minimum=1)
    for group, keys in (("tensors", ("offset", "size", "first", "last")),
                        ("scratch", ("offset", "size"))):
        for item, info in _plan_table(name, plan.get(group, {}), group).items():
            info = _plan_table(name, info, f"{group}.{item}")
            for key in keys:
                _plan_int(name, info.get(key), f"{group}.{item}.{key}",
                          None if key in ("first", "last") else 0)
    return plan


def _c_plans(path: str) -> dict[str, dict[str, Any]]:
    """Every ``*_memory_plan.json`` of a C output directory, checked."""
    try:
        plans = sorted(f for f in os.listdir(path) if f.endswith("_memory_plan.json"))
    except OSError as exc:
        raise FrontendError(f"{path}: cannot list the directory ({exc.strerror or exc})"
                            ) from None
    if not plans:
        raise FrontendError(f"{path}: not a microlith C output directory (no *_memory_plan.json)")
    return {name: _read_plan(os.path.join(path, name)) for name in plans}


def _inspect_c_dir(path: str) -> str:
    """A C target output directory: the memory plan (offsets, lifetimes, lower bound)."""
    lines = []
    for name, plan in _c_plans(path).items():
        arena, lower = plan["arena_size"], plan["lower_bound"]
        ratio = arena / lower if lower else 1.0
        lines.append(f"{os.path.join(path, name)}: arena {arena:,} bytes, liveness lower bound "
                     f"{lower:,} bytes ({ratio:.2f}x), alignment {plan['alignment']}")
        tensors = sorted(plan["tensors"].items(), key=lambda kv: (kv[1]["offset"], kv[0]))
        width = max([len(t) for t, _ in tensors] + [6])
        lines.append(f"  {'tensor':<{width}}  {'offset':>8}  {'bytes':>8}  live steps")
        for tensor, info in tensors:
            lines.append(f"  {tensor:<{width}}  {info['offset']:>8}  {info['size']:>8}  "
                         f"{info['first']}..{info['last']}")
        for node, info in plan.get("scratch", {}).items():
            lines.append(f"  scratch for {node}: offset {info['offset']}, {info['size']} bytes")
        tables = plan.get("weight_bytes")
        if isinstance(tables, dict) and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in tables.values()):
            names = {"float": "float32", "uint16_t": "float16", "int8_t": "int8",
                     "int32_t": "int32", "int16_t": "int16", "uint8_t": "uint8"}
            shown = Counter({names.get(str(k), str(k)): v for k, v in tables.items()})
            lines.append(f"  weights and tables by dtype: {_by_dtype(shown)}")
    return "\n".join(lines) + "\n"
