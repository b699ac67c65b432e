"""What ``microlith report`` reads besides a ``.tflite``: a C output directory, an ``.onnx``.

* A ``--target c`` directory: the emitter's memory plan (``PREFIX_memory_plan.json``:
  offset, size and first/last step of every arena tensor, kernel scratch, weight bytes by
  C type), ``PREFIX.h`` (the interface macros) and ``PREFIX.c`` (one comment per kernel
  call in ``PREFIX_invoke``, naming the node and its target op; the ``static const``
  arrays). From these: the op sequence, the bytes live at each op
  (``sum size[t] for first[t] <= s <= last[t]`` plus the op's scratch), the planned arena's
  high-water mark at each op (``max offset[t] + size[t]`` over the same tensors), the
  lower bound and arena size of the plan, and flash by array and by C element type. MACs
  and shapes per op are not in the sources, so the op table has none (compile with
  ``--report`` for them).
* An ``.onnx``: compiled in memory with the given options (no output written), then
  reported like ``compile --report`` (per-layer errors included when quantized).

Anything else is one error line naming the path and what ``report`` reads.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

from microlith.app.report import OpRow, ReportData
from microlith.diagnostics import UsageError

MAX_SOURCE_BYTES = 256 << 20
_CALL = re.compile(r"^    /\* (.+) \(([\w.]+)\)(?:: (.*))? \*/$")
_ARRAY = re.compile(r"^static const (\w+) (\w+)\[(\d+)\]", re.M)
_SIZES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4,
          "int64_t": 8, "float": 4}


def _read_text(path: Path) -> str:
    from microlith.frontend.input_files import read_bounded

    try:
        return read_bounded(str(path), "a generated C file", MAX_SOURCE_BYTES,
                            error=UsageError).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a generated C file (not UTF-8 text)") from None


def _invoke_calls(source: str, prefix: str, where: Path) -> list[tuple[str, str, str]]:
    """(node, target op, detail) of each kernel call in ``PREFIX_invoke``, in order."""
    start = source.find(f"\nint {prefix}_invoke(void)\n")
    if start < 0:
        raise UsageError(f"{where}: no {prefix}_invoke() (not a microlith C output)")
    calls = []
    for line in source[start:].splitlines()[1:]:
        if line == "}":
            break
        match = _CALL.match(line)
        if match:
            calls.append((match.group(1), match.group(2), match.group(3) or ""))
    return calls


def report_from_c_dir(directory: str | os.PathLike[str]) -> ReportData:
    from microlith.app.inspect_model import _c_plans
    from microlith.app.run_model import header_interface
    from microlith.diagnostics import MicrolithError

    path = Path(directory)
    try:
        plans = _c_plans(str(path))
    except MicrolithError as exc:
        raise UsageError(str(exc)) from None
    plan_name, plan = next(iter(plans.items()))
    prefix, inputs, outputs = header_interface(path)
    source_file = path / f"{prefix}.c"
    if not source_file.is_file():
        raise UsageError(f"{path}: {source_file.name} is missing")
    source = _read_text(source_file)
    calls = _invoke_calls(source, prefix, source_file)
    tensors, scratch = plan["tensors"], plan.get("scratch", {})
    steps = max(len(calls), 1)
    live, arena = [], []
    for s in range(steps):
        spans = [(info["offset"], info["size"]) for info in tensors.values()
                 if info["first"] <= s <= info["last"]]
        node = calls[s][0] if s < len(calls) else None
        extra = scratch.get(node) if node is not None else None
        live.append(sum(size for _, size in spans) + (extra["size"] if extra else 0))
        ends = [o + n for o, n in spans] + ([extra["offset"] + extra["size"]] if extra else [])
        arena.append(max(ends, default=0))
    rows = [OpRow(node, op, [], [], 0, 0, 0, detail=detail) for node, op, detail in calls]
    arrays = [(name.removeprefix(f"{prefix}_"), ctype, _SIZES.get(ctype, 1) * int(count))
              for ctype, name, count in _ARRAY.findall(source)]
    by_type: dict[str, int] = defaultdict(int)
    for _, ctype, size in arrays:
        by_type[ctype] += size

    def io(kind: str, items: list) -> str:  # noqa: ANN001
        return "; ".join(f"{kind}{i}: {'x'.join(map(str, t.shape))} {t.dtype}"
                         for i, t in enumerate(items))

    facts = [("model", str(path)), ("format", "C (--target c)"), ("prefix", prefix),
             ("memory plan", plan_name), ("inputs", io("input", inputs)),
             ("outputs", io("output", outputs)), ("kernel calls", str(len(calls))),
             ("arena bytes", f"{plan['arena_size']:,}"),
             ("lower bound bytes", f"{plan['lower_bound']:,}"),
             ("kernel scratch bytes", f"{sum(v['size'] for v in scratch.values()):,}")]
    data = ReportData(str(path), facts, rows, live, plan["lower_bound"], arena=arena,
                      arena_size=plan["arena_size"])
    data.flash_tensors = sorted(((n, b) for n, _, b in arrays), key=lambda kv: (-kv[1], kv[0]))
    data.flash_kinds = sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))
    return data


def looks_like_onnx(path: str) -> bool:
    """An ``.onnx`` by its name, or a file whose first byte is a protobuf field tag of
    ``ModelProto`` (``ir_version``: 0x08)."""
    if path.lower().endswith(".onnx"):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(1) == b"\x08"
    except OSError:
        return False
