"""A C test harness for the per-op renderers: one-node graphs -> one C program -> bytes.

Each ``Case`` is a graph with one integer node (plus its constants), concrete inputs and
the outputs our integer interpreter (== TFLite-Micro) gives. ONNX-level nodes are lowered
with ``legalize-c`` and ``prepare`` first (``make_case``), so the case holds the target op
the C backend renders. ``build_program`` renders every case with
``microlith.backends.c.render_ops.render_node`` into a function of one C file; each
non-constant value gets its own static buffer (or, for ``alias`` cases, the output shares
input 0's buffer, as the memory planner does for in-place element-wise ops). ``main``
reads all inputs from one file, runs the cases in order and writes all outputs to another,
so that a whole batch of cases costs one compilation.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microlith.backends.c import render_ops
from microlith.backends.c.render_context import CTYPES, RenderContext
from microlith.interpreter import run_graph
from microlith.ir.core import Graph, Node, Value
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.passes import legalize_c
from microlith.passes.legalize_c import LegalizeC
from microlith.passes.prepare import Prepare
from microlith.pipeline import PassContext, PassManager

KERNELS_DIR = Path(render_ops.__file__).resolve().parent / "kernels"
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
BUILDS = {
    "O2": ["-O2"],
    "Os": ["-Os"],
    "sanitize": ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
}


@dataclass(frozen=True)
class Const:
    """A constant operand of a test node."""

    data: np.ndarray
    quant: QuantParams | None = None


@dataclass
class Case:
    name: str
    graph: Graph
    inputs: dict[str, np.ndarray]
    expected: list[np.ndarray] = field(default_factory=list)
    alias: bool = False  # the output shares input 0's buffer
    lut_min: int | None = None  # every LUT_MIN_ELEMENTS entry while rendering (if set)

    @property
    def node(self) -> Node:
        return self.graph.nodes[0]


def qparams(scale: float, zero_point: int) -> QuantParams:
    return QuantParams((float(np.float32(scale)),), (int(zero_point),))


def qtype(shape: Sequence[int], scale: float, zero_point: int,
          dtype: DType = DType.INT8) -> TensorType:
    return TensorType(dtype, tuple(int(d) for d in shape), qparams(scale, zero_point))


def one_node_graph(op: str, operands: Sequence[TensorType | Const | None], out: TensorType |
                   QuantParams, name: str = "node", **attrs: object) -> Graph:
    """A graph computing ``op`` on fresh inputs (TensorType) and constants (Const).

    ``out`` is the output type, or just its quantization (the shape is inferred).
    """
    graph = Graph(name.replace("/", "_"))
    values: list[Value | None] = []
    for i, operand in enumerate(operands):
        if operand is None:
            values.append(None)
        elif isinstance(operand, TensorType):
            values.append(graph.add_input(f"x{i}", operand))
        else:
            values.append(graph.add_constant(operand.data, f"c{i}", quant=operand.quant))
    if isinstance(out, TensorType):
        node = graph.add_node(op, values, dict(attrs), name=name, output_types=[out])
    else:
        node = graph.add_node(op, values, dict(attrs), name=name)
        node.output.set_type(TensorType(DType.INT8, node.output.shape, out))
    graph.outputs.append(node.output)
    return graph


def random_inputs(graph: Graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for value in graph.inputs:
        dtype = value.dtype.numpy
        if value.dtype.is_float:
            feeds[value.name] = rng.normal(0, 2, value.shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            feeds[value.name] = rng.integers(info.min, info.max + 1, value.shape).astype(dtype)
    return feeds


def lowered(graph: Graph, lut_min: int | None = None) -> Graph:
    """``graph`` rewritten into the C target's ops (``legalize-c``) and prepared, in place."""
    if not all("." in node.op for node in graph.nodes):
        with lut_threshold(lut_min):
            PassManager([LegalizeC(), Prepare()]).run(graph, PassContext(warn=lambda m: None))
    return graph


def make_case(name: str, graph: Graph, rng: np.random.Generator | None = None,
              inputs: dict[str, np.ndarray] | None = None, **options: object) -> Case:
    """A case with the interpreter's outputs as the expected bytes (lowered for C first)."""
    feeds = inputs if inputs is not None else random_inputs(graph, rng or np.random.default_rng())
    lowered(graph, options.get("lut_min"))  # type: ignore[arg-type]
    results = run_graph(graph, feeds)
    expected = [np.array(results[v.name]) for v in graph.outputs]
    return Case(name, graph, feeds, expected, **options)  # type: ignore[arg-type]


@contextlib.contextmanager
def lut_threshold(value: int | None) -> Iterator[None]:
    """Lower with every ``legalize_c.LUT_MIN_ELEMENTS`` entry set to ``value`` (if given)."""
    saved = dict(legalize_c.LUT_MIN_ELEMENTS)
    if value is not None:
        for op in saved:
            legalize_c.LUT_MIN_ELEMENTS[op] = value
    try:
        yield
    finally:
        legalize_c.LUT_MIN_ELEMENTS.update(saved)


def _render_case(index: int, case: Case) -> tuple[list[str], list[str], str, list[tuple]]:
    """(declarations, buffer definitions, function, io plan) of one case."""
    prefix = f"c{index}"
    names: dict[int, str] = {}
    buffers: list[str] = []
    for j, value in enumerate(case.graph.inputs):
        names[id(value)] = f"{prefix}_in{j}"
    node = case.node
    out = node.output
    names[id(out)] = names[id(node.inputs[0])] if case.alias else f"{prefix}_out"
    for value in [*case.graph.inputs, out]:
        name = names[id(value)]
        definition = (f"static {CTYPES[value.dtype.numpy.name]} {name}"
                      f"[{max(value.type.numel, 1)}] MICROLITH_ALIGN(16);")
        if definition not in buffers:
            buffers.append(definition)
    ctx = RenderContext(tensor_expr=lambda v: names[id(v)], prefix=prefix)
    body = render_ops.render_node(ctx, node)
    function = f"static void {prefix}_run(void)\n{{\n" + _indent(body) + "\n}\n"
    io = [(names[id(v)], v.type.nbytes) for v in case.graph.inputs]
    return ctx.declarations, buffers, function, [io, (names[id(out)], out.type.nbytes)]


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.splitlines())


def build_program(cases: Sequence[Case]) -> str:
    """The C source running every case (inputs from argv[1], outputs to argv[2])."""
    decls, bufs, funcs, main = [], [], [], []
    for index, case in enumerate(cases):
        d, b, f, (inputs, (out_name, out_bytes)) = _render_case(index, case)
        decls += d
        bufs += b
        funcs.append(f"/* case {index}: {case.name.replace('*/', '')} */\n{f}")
        for name, nbytes in inputs:
            main.append(f"    if (fread({name}, 1, {nbytes}u, in) != {nbytes}u) return 3;")
        main.append(f"    c{index}_run();")
        main.append(f"    if (fwrite({out_name}, 1, {out_bytes}u, out) != {out_bytes}u) "
                    "return 4;")
    return "\n".join([
        "#include <stdio.h>", '#include "microlith_kernels.h"', "", *decls, "", *bufs, "",
        *funcs, "int main(int argc, char **argv)", "{",
        "    FILE *in, *out;", "    if (argc != 3) return 2;",
        '    in = fopen(argv[1], "rb");', '    out = fopen(argv[2], "wb");',
        "    if (in == NULL || out == NULL) return 2;", *main,
        "    fclose(in);", "    return fclose(out) == 0 ? 0 : 5;", "}", ""])


def input_bytes(cases: Sequence[Case]) -> bytes:
    return b"".join(np.ascontiguousarray(case.inputs[v.name]).astype(v.dtype.numpy).tobytes()
                    for case in cases for v in case.graph.inputs)


def compile_program(source: str, workdir: Path, build: str) -> subprocess.Popen:
    """Start gcc on ``source`` with the warning flags and the ``build`` flags."""
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"program_{build}.c"  # one file per build: the compiles run at once
    src.write_text(source)
    exe = workdir / f"program_{build}"
    return subprocess.Popen(["gcc", *WARNINGS, *BUILDS[build], "-I", str(KERNELS_DIR),
                             str(src), "-o", str(exe)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_program(exe: Path, cases: Sequence[Case], workdir: Path) -> list[np.ndarray]:
    """Run a compiled program; returns each case's output array (typed and shaped)."""
    data_in, data_out = workdir / f"{exe.name}.in", workdir / f"{exe.name}.out"
    data_in.write_bytes(input_bytes(cases))
    proc = subprocess.run([str(exe), str(data_in), str(data_out)], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"{exe.name} exited with {proc.returncode}: {proc.stderr[-4000:]}")
    raw = data_out.read_bytes()
    outputs, offset = [], 0
    for case in cases:
        out = case.node.output
        count = out.type.nbytes
        outputs.append(np.frombuffer(raw[offset:offset + count], out.dtype.numpy)
                       .reshape(out.shape))
        offset += count
    if offset != len(raw):
        raise RuntimeError(f"{exe.name} wrote {len(raw)} bytes, expected {offset}")
    return outputs


def build_and_run(cases: Sequence[Case], workdir: Path,
                  builds: Sequence[str] = tuple(BUILDS)) -> dict[str, list[np.ndarray]]:
    """Compile ``cases`` once per build (in parallel) and run each executable."""
    source = build_program(cases)
    procs = {b: compile_program(source, workdir, b) for b in builds}
    results = {}
    for build, proc in procs.items():
        log, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"gcc ({build}) failed:\n{log[-6000:]}")
        results[build] = run_program(workdir / f"program_{build}", cases, workdir)
    return results


def isolate(node: Node, values: dict[str, np.ndarray], name: str) -> Case:
    """A one-node copy of ``node`` (real constants and quantization) fed from ``values``."""
    graph = Graph(name)
    mapping: list[Value | None] = []
    feeds = {}
    for i, value in enumerate(node.inputs):
        if value is None:
            mapping.append(None)
        elif value.is_constant:
            mapping.append(graph.add_constant(value.data, value.name, quant=value.quant))
        else:
            v = graph.add_input(f"x{i}", value.type)
            feeds[v.name] = values[value.name]
            mapping.append(v)
    copy = graph.add_node(node.op, mapping, dict(node.attrs), name=node.name,
                          output_types=[node.output.type])
    graph.outputs.append(copy.output)
    return Case(name, graph, feeds, [np.array(values[node.output.name])])
