"""Legalized graph (``legalize-c``, ``prepare``, ``plan-memory``) -> ``model.h``, ``model.c``
and the kernel headers.

``model.c`` holds one static arena (``<PREFIX>_ARENA_SIZE`` bytes, offsets from
``plan-memory``), the weights and tables as ``static const`` arrays and each node's
parameter record as a ``static const`` struct (flash), and ``<prefix>_invoke`` calling one
kernel per node with a pointer to its struct; the kernels are ``static inline``, so the C
compiler can still specialize each layer. ``model.h`` is the whole
API: input/output pointers into the arena, their byte sizes, scales, zero points
and shapes as macros. No malloc, no stdio; libm is never needed.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass

import numpy as np

from microlith.backends.c import sanitize
from microlith.backends.c.render_context import CTYPES, ArrayDecl, RenderContext
from microlith.diagnostics import BackendError, capped
from microlith.ir.core import Graph, Value
from microlith.memory_plan import MemoryPlan, check_plan
from microlith.streamed_text import StreamedText

KERNEL_HEADER = "microlith_kernels.h"
PLAN_SUFFIX = "_memory_plan.json"  # read by `microlith inspect OUTDIR`
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # whole string (fullmatch), ASCII only
MAX_PREFIX = 63
#: ``model.c`` becomes a ``StreamedText`` (written chunk by chunk, never one string) when
#: its weight arrays hold at least this many bytes; below, it is a plain ``str``
STREAM_MIN_BYTES = 8 << 20


@dataclass
class CSources:
    """The generated files (name -> text) and size figures."""

    files: dict[str, str | StreamedText]  # model.c of a large model is a StreamedText
    arena_bytes: int
    weight_bytes: int
    lower_bound: int
    calls: int = 0  # kernel calls in <prefix>_invoke
    scratch_bytes: int = 0  # kernel scratch planned in the arena (select-kernels)

    @property
    def flash_estimate(self) -> int:
        """Weights and tables plus a code estimate (kernels + one call per layer)."""
        return self.weight_bytes + code_estimate(self.calls)


def code_estimate(calls: int) -> int:
    """A rough Thumb-2 code size: 4 KiB of kernels plus 96 bytes per kernel call."""
    return 4096 + 96 * calls


def kernel_headers() -> dict[str, str]:
    """The kernel headers (the umbrella ``microlith_kernels.h`` and one per op family)."""
    kernels = importlib.resources.files("microlith.backends.c").joinpath("kernels")
    return {entry.name: entry.read_text() for entry in sorted(kernels.iterdir(),
                                                              key=lambda e: e.name)
            if entry.name.startswith("microlith_kernels") and entry.name.endswith(".h")}


def check_prefix(prefix: str) -> None:
    """``prefix`` names files and symbols: an ASCII C identifier that clashes with nothing."""
    if not _IDENT.fullmatch(prefix):
        raise BackendError(f"--c-prefix {prefix!r} is not a C identifier")
    if len(prefix) > MAX_PREFIX:
        raise BackendError(f"--c-prefix {prefix[:20]!r}... is longer than {MAX_PREFIX} "
                           "characters")
    if prefix.startswith("microlith_kernels") or prefix.startswith("mlk_"):
        raise BackendError(f"--c-prefix {prefix!r} would overwrite or shadow the kernel "
                           f"header {prefix}.h or the mlk_ kernels; choose another name")


def _ctype(value: Value) -> str:
    return CTYPES[value.dtype.numpy.name]


def kernel_header_text() -> str:
    return kernel_headers()[KERNEL_HEADER]


def emit_c(graph: Graph, prefix: str = "model", source_name: str = "model") -> CSources:
    """Render the legalized, prepared, planned graph; BackendError lists every problem."""
    from microlith.backends.c.render_ops import (
        FLOAT_RENDERERS,
        RENDERERS,
        check_c_supported,
        render_node,
    )

    check_prefix(prefix)
    plan: MemoryPlan | None = graph.meta.get("memory_plan")
    if plan is None:
        raise BackendError("the graph has no memory plan (run plan-memory last)")
    stale = check_plan(graph, plan)
    if stale:
        raise BackendError(f"stale memory plan: {stale}")
    problems = []
    for node in graph.nodes:
        known = node.op in RENDERERS or node.op in FLOAT_RENDERERS
        reason = (f"no C kernel for op {node.op} (run legalize-c)" if not known
                  else check_c_supported(node))
        if reason:
            problems.append(f"{node.name} ({node.op}): {reason}")
    if problems:
        raise BackendError("C target cannot emit: " + capped(problems, "; "))
    upper = prefix.upper()
    arena = f"{prefix}_arena"

    def tensor_expr(value: Value) -> str:
        if value.is_constant:
            return ctx.const_array(value.name, np.asarray(value.data))
        return f"(({_ctype(value)} *)&{arena}[{plan.offsets[value.name]}])"

    def scratch_expr(node, nbytes: int) -> str:  # noqa: ANN001
        offset, size = plan.scratch[node.name]
        if nbytes > size:
            raise BackendError(f"{node.name}: scratch of {nbytes} bytes was not planned")
        return f"((void *)&{arena}[{offset}])"

    ctx = RenderContext(tensor_expr, scratch_expr, prefix)
    body: list[str] = []
    calls = 0
    for node in graph.nodes:  # each renderer starts with a comment naming the node
        statements = render_node(ctx, node).strip("\n")
        calls += sum(1 for line in statements.splitlines() if line.startswith("mlk_"))
        body.extend("    " + line if line else "" for line in statements.splitlines())
    weight_bytes = sum(_array_bytes(d) for d in ctx.declarations)
    pieces = _model_c(graph, prefix, upper, arena, ctx.declarations, body, plan, source_name,
                      portable=graph.meta.get("kernel_optimize") == "size")
    model_c: str | StreamedText = (StreamedText(pieces) if weight_bytes >= STREAM_MIN_BYTES
                                   else "".join(str(p) for p in pieces))
    header = _model_h(graph, prefix, upper, plan, source_name)
    plan_json = json.dumps({**plan.to_json(), "weight_bytes": _bytes_by_type(ctx.declarations)},
                           indent=1, sort_keys=True) + "\n"
    files = {f"{prefix}.h": header, f"{prefix}.c": model_c, **kernel_headers(),
             f"{prefix}{PLAN_SUFFIX}": plan_json}
    scratch = sum(size for _, size in plan.scratch.values())
    return CSources(files, plan.arena_size, weight_bytes, plan.lower_bound, calls, scratch)


def _comment(text: str) -> str:
    return sanitize.comment(text)


def _array_bytes(declaration: str | ArrayDecl) -> int:
    if isinstance(declaration, ArrayDecl):
        declaration = f"static const {declaration.ctype} {declaration.name}" \
                      f"[{max(declaration.array.size, 1)}]"
    match = re.match(r"static const (\w+) \w+\[(\d+)\]", declaration)
    if not match:
        return 0
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4,
             "int64_t": 8, "float": 4}
    return sizes[match.group(1)] * int(match.group(2))


def _bytes_by_type(declarations: list[str | ArrayDecl]) -> dict[str, int]:
    """Flash tables by C element type (``uint16_t`` tables hold float16 weights)."""
    out: dict[str, int] = {}
    for declaration in declarations:
        text = declaration if isinstance(declaration, str) else \
            f"static const {declaration.ctype} x["
        match = re.match(r"static const (\w+) \w+\[", text)
        if match:
            out[match.group(1)] = out.get(match.group(1), 0) + _array_bytes(declaration)
    return out


def _switch(name: str, ret: str, cases: list[str], default: str) -> str:
    lines = [f"{ret} {name}(int index)", "{", "    switch (index) {"]
    lines += [f"    case {i}: return {c};" for i, c in enumerate(cases)]
    lines += [f"    default: return {default};", "    }", "}"]
    return "\n".join(lines)


# select-kernels{optimize=size}: the portable kernels on every core (the least flash).
_SIZE_MODE = ["/* --optimize size: the portable kernels, also on cores with the DSP extension. */",
              "#ifndef MLK_PORTABLE", "#define MLK_PORTABLE 1", "#endif"]


def _model_c(graph: Graph, prefix: str, upper: str, arena: str,
             declarations: list[str | ArrayDecl], body: list[str], plan: MemoryPlan,
             source: str, portable: bool = False) -> list[str | ArrayDecl]:
    """``model.c`` as pieces: text, and the large arrays still as arrays."""
    parts: list[str | ArrayDecl] = [
        f"/* Generated by microlith from {_comment(source)}. Do not edit. */",
        f'#include "{prefix}.h"',
        *(_SIZE_MODE if portable else []),
        f'#include "{KERNEL_HEADER}"',
        "",
        f"/* One working buffer for every activation (lower bound {plan.lower_bound} bytes). */",
        f"static uint8_t {arena}[{upper}_ARENA_SIZE] MICROLITH_ALIGN(16);",
        "",
    ]
    first = len(parts)  # the declarations come next
    parts += [
        *declarations,
        _switch(f"{prefix}_input", "void *",
                [f"&{arena}[{plan.offsets[v.name]}]" for v in graph.inputs], "0"),
        "",
        _switch(f"{prefix}_output", "const void *",
                [f"&{arena}[{plan.offsets[v.name]}]" for v in graph.outputs], "0"),
        "",
        _switch(f"{prefix}_input_bytes", "size_t",
                [f"{v.type.nbytes}u" for v in graph.inputs], "0u"),
        "",
        _switch(f"{prefix}_output_bytes", "size_t",
                [f"{v.type.nbytes}u" for v in graph.outputs], "0u"),
        "",
        f"int {prefix}_invoke(void)",
        "{",
        *body,
        "    return 0;",
        "}",
        "",
    ]
    pieces: list[str | ArrayDecl] = []
    for i, part in enumerate(parts):  # "\n".join(parts), each declaration + "\n"
        if i:
            pieces.append("\n")
        if isinstance(part, ArrayDecl):
            pieces += [part, "\n"]
        elif first <= i < first + len(declarations):
            pieces.append(part + "\n")
        else:
            pieces.append(part)
    return pieces


def _io_macros(kind: str, values: list[Value], upper: str) -> list[str]:
    lines = [f"#define {upper}_NUM_{kind}S {len(values)}"]
    for i, value in enumerate(values):
        name = f"{upper}_{kind}{i}"
        lines.append(f"/* {kind.lower()} {i}: {_comment(value.name)} */")
        lines.append(f"#define {name}_BYTES {value.type.nbytes}u")
        lines.append(f"#define {name}_TYPE {_ctype(value)}")
        lines.append(f"#define {name}_RANK {value.type.rank}")
        for axis, dim in enumerate(value.shape):
            lines.append(f"#define {name}_DIM{axis} {dim}")
        lines.append(f"#define {name}_SHAPE {{{', '.join(str(d) for d in value.shape)}}}")
        if value.quant is not None:
            lines.append(f"#define {name}_SCALE {float(np.float32(value.quant.scale[0]))!r}f")
            lines.append(f"#define {name}_ZERO_POINT {value.quant.zero_point[0]}")
    return lines


def _model_h(graph: Graph, prefix: str, upper: str, plan: MemoryPlan, source: str) -> str:
    guard = f"{upper}_H"
    lines = [
        f"/* Generated by microlith from {_comment(source)}. Do not edit. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"/* The single static working buffer, in bytes (liveness lower bound "
        f"{plan.lower_bound}). */",
        f"#define {upper}_ARENA_SIZE {plan.arena_size}u",
        "",
        *_io_macros("INPUT", graph.inputs, upper),
        "",
        *_io_macros("OUTPUT", graph.outputs, upper),
        "",
        "/* Pointers into the arena; write inputs, call invoke, read outputs. */",
        f"void *{prefix}_input(int index);",
        f"const void *{prefix}_output(int index);",
        f"size_t {prefix}_input_bytes(int index);",
        f"size_t {prefix}_output_bytes(int index);",
        "/* Runs the model once; returns 0 on success. */",
        f"int {prefix}_invoke(void);",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)
