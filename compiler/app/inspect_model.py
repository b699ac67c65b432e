"""``microlith inspect``: ops, tensors, parameter bytes and peak activation memory.

Works on ``.onnx`` (imported, no passes run) and ``.tflite`` (parsed with our
reader), like ``tf.lite.experimental.Analyzer``. The peak-activation estimate is
the largest sum of bytes of activations live at one op (no in-place reuse), in
the file's own op order.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np

from microlith.diagnostics import FrontendError, UsageError
from microlith.liveness import lifetimes, peak_live_bytes


def _is_tflite(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(8)
    return len(head) == 8 and head[4:8] == b"TFL3"


def inspect_file(path: str, list_tensors: bool = False,
                 input_shapes: dict[str, tuple[int, ...]] | None = None) -> str:
    """The report text; ``input_shapes`` pins dynamic inputs of an .onnx file."""
    if os.path.isdir(path):
        return _inspect_c_dir(path)
    if not os.path.isfile(path):
        raise FrontendError(f"{path}: no such file")
    if _is_tflite(path):
        if input_shapes:
            raise UsageError(f"{path}: --input-shape applies to .onnx files only")
        return _inspect_tflite(path, list_tensors)
    return _inspect_onnx(path, list_tensors, input_shapes or {})


def _fmt_quant(scale: list[float] | tuple[float, ...], zero: list[int] | tuple[int, ...],
               axis: int | None) -> str:
    if len(scale) == 1:
        return f"scale={scale[0]:.6g} zp={zero[0]}"
    return f"per-axis({axis}) n={len(scale)} scale={min(scale):.4g}..{max(scale):.4g}"


def _report(kind: str, path: str, ops: Counter[str], rows: list[tuple[str, str, str, str, str]],
            params: int, peak: tuple[int, int, str], io: list[str], list_tensors: bool) -> str:
    lines = [f"{path}: {kind}, {sum(ops.values())} ops, {len(rows)} tensors"]
    lines += [f"  {line}" for line in io]
    lines.append("ops:")
    lines += [f"  {op:<24} {count}" for op, count in sorted(ops.items())]
    lines.append(f"parameter bytes: {params:,}")
    lines.append(f"peak activation bytes (estimate): {peak[0]:,} at op {peak[1]} ({peak[2]})")
    if list_tensors:
        lines.append("tensors:")
        width = max([len(r[0]) for r in rows] + [4])
        for name, dtype, shape, quant, kind_ in rows:
            lines.append(f"  {name:<{width}}  {dtype:<8} {shape:<18} {kind_:<10} {quant}")
    return "\n".join(lines) + "\n"


def _inspect_tflite(path: str, list_tensors: bool) -> str:
    from microlith.formats.tflite.flatbuffer import parse_model

    with open(path, "rb") as handle:
        data = handle.read()
    try:
        model = parse_model(data)
    except Exception as exc:  # the reader raises ValueError/struct errors on damage
        raise FrontendError(f"{path}: not a valid .tflite file ({exc})") from None
    ops = Counter(op.op for op in model.operators)
    constants = {i for i, t in enumerate(model.tensors) if t.data is not None}
    sizes = {i: int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
             for i, t in enumerate(model.tensors)}
    steps = [([i for i in op.inputs if i >= 0 and i not in constants],
              [o for o in op.outputs if o not in constants]) for op in model.operators]
    live = lifetimes(steps, model.inputs, model.outputs)
    peak, at = peak_live_bytes(live, sizes, len(steps))
    where = model.operators[at].op if model.operators else "-"
    rows = []
    for i, t in enumerate(model.tensors):
        quant = _fmt_quant(t.quant.scale, t.quant.zero_point, t.quant.quantized_dimension) \
            if t.quant and t.quant.scale else ""
        kind = "input" if i in model.inputs else "output" if i in model.outputs else \
            "constant" if i in constants else "activation"
        rows.append((t.name, t.dtype, "x".join(map(str, t.shape)) or "scalar", quant, kind))
    params = sum(len(model.tensors[i].data or b"") for i in constants)
    io = [f"input  {model.tensors[i].name}: {model.tensors[i].dtype} {model.tensors[i].shape}"
          for i in model.inputs]
    io += [f"output {model.tensors[i].name}: {model.tensors[i].dtype} {model.tensors[i].shape}"
           for i in model.outputs]
    return _report("tflite", path, ops, rows, params, (peak, at, where), io, list_tensors)


def _inspect_onnx(path: str, list_tensors: bool,
                  input_shapes: dict[str, tuple[int, ...]]) -> str:
    from microlith.frontend.onnx_import import load_onnx

    graph = load_onnx(path, input_shapes, warn=lambda message: None)
    ops = Counter(node.meta.get("onnx_op", node.op) for node in graph.nodes)
    sizes = {v.name: v.type.nbytes for v in graph.values.values()}
    steps = [([v.name for v in n.inputs if v is not None and not v.is_constant],
              [v.name for v in n.outputs]) for n in graph.nodes]
    live = lifetimes(steps, [v.name for v in graph.inputs], [v.name for v in graph.outputs])
    peak, at = peak_live_bytes(live, sizes, len(steps))
    where = graph.nodes[at].name if graph.nodes else "-"
    rows = []
    for value in graph.values.values():
        quant = _fmt_quant(value.quant.scale, value.quant.zero_point, value.quant.axis) \
            if value.quant else ""
        kind = "input" if value in graph.inputs else "output" if value in graph.outputs else \
            "constant" if value.is_constant else "activation"
        rows.append((value.name, str(value.dtype.numpy), "x".join(map(str, value.shape))
                     or "scalar", quant, kind))
    params = sum(v.type.nbytes for v in graph.constants())
    io = [f"input  {v.name}: {v.dtype.numpy} {list(v.shape)}" for v in graph.inputs]
    io += [f"output {v.name}: {v.dtype.numpy} {list(v.shape)}" for v in graph.outputs]
    return _report("onnx", path, ops, rows, params, (peak, at, where), io, list_tensors)


def _inspect_c_dir(path: str) -> str:
    """A C target output directory: the memory plan (offsets, lifetimes, lower bound)."""
    import json

    plans = sorted(f for f in os.listdir(path) if f.endswith("_memory_plan.json"))
    if not plans:
        raise FrontendError(f"{path}: not a microlith C output directory (no *_memory_plan.json)")
    lines = []
    for name in plans:
        with open(os.path.join(path, name)) as handle:
            plan = json.load(handle)
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
    return "\n".join(lines) + "\n"
