"""The C target, end to end: the acceptance tests of the C issue.

Every trained zoo model (and ``helper_matmul``) is compiled once (module fixture) with
``--target c --quantize int8`` and 300 calibration samples, and once with ``--target
tflite`` (same data) for the oracles. Then:

* host: the generated directory plus a small ``main.c`` (written here, reading inputs
  from a file and poisoning the whole arena before each inference) build with ``gcc
  -std=c99 -Wall -Wextra -Werror -pedantic`` at ``-O2`` and ``-Os``; the output bytes
  equal TFLite-Micro's Python runtime on our int8 ``.tflite`` and our integer
  interpreter (``microlith.interpreter.run_graph``) on all 450 held-out images (seeded
  noise for the helper) plus 50 stress inputs (all -128, all 127, uniform int8 noise);
  an AddressSanitizer + UBSan build runs clean on the same 500; ``--io-dtype uint8`` and
  ``float32`` interfaces equal TFLite-Micro too;
* board: the same C, cross-compiled for Cortex-M4 by ``tools.mcu.run.build_and_run``,
  gives the host's bytes under qemu on 20 inputs (10 images, 10 stress inputs); the
  ``arm-none-eabi-size`` figures are printed (``bss`` holds the arena, the weights are
  in ``text``);
* memory plan: checked independently of ``microlith.memory_plan`` from the graph's node
  order: no two simultaneously live tensors overlap unless the overlap is a legal alias
  (a reshape-like view of the same bytes, or an in-place element-wise op writing over
  its dying input 0), every range is inside the arena and aligned, and the arena is at
  most 1.15x the liveness lower bound on every zoo model; ``microlith inspect OUTDIR``
  shows the plan;
* API: the macros of ``model.h`` against the ``.tflite``; ``--c-prefix`` renames files
  and every exported symbol (``nm``); no ``malloc``, stdio or libm (``nm -u``);
  byte-identical output across compiles and processes;
* bad cases on the CLI: exit 2, one ``error:`` line, no output directory left behind;
* ``--target c-array``: C11 and C++11 builds, bytes equal to the ``.tflite``, 16-byte
  alignment, and an op resolver with exactly the model's ops.

Slow cases (``@pytest.mark.slow``, still run in CI) repeat the board check at ``-Os``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

from microlith.app.driver import CompileOptions, CompileResult, compile_onnx
from microlith.backends.c.emitter import kernel_headers
from microlith.backends.c_array import RESOLVER_METHODS
from microlith.formats.tflite.flatbuffer import TflModel, parse_model
from microlith.interpreter import run_graph
from microlith.ir.core import Graph
from microlith.memory_plan import MemoryPlan
from microlith.passes.pipelines import int8_pipeline
from tools.mcu import run as board
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "tests" / "zoo"
TRAINED = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
MODELS = TRAINED + ("helper_matmul",)
N_CALIBRATION = 300
N_TEST = 450
N_STRESS = 50  # int8 inputs beyond the data: all -128, all 127, then uniform noise
BOARD_ROWS = [*range(10), *range(N_TEST, N_TEST + 10)]  # 10 test images, 10 stress inputs
MAX_ARENA_OVER_LOWER_BOUND = 1.15
JOBS = max(2, min(4, os.cpu_count() or 2))

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
BUILDS = {
    "O2": ["-O2"],
    "Os": ["-Os"],
    "sanitize": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                 "-fno-sanitize-recover=all"],
}
# Rules of ``microlith.memory_plan`` (restated here on purpose: the test is the spec).
VIEW_OPS = ("tfl.reshape",)  # the C target's ops, after legalize-c
INPLACE_OPS = ("tfl.relu", "tfl.logistic", "tfl.tanh", "tfl.leaky_relu", "tfl.hard_swish",
               "tfl.add", "tfl.sub", "tfl.mul", "c.lut")
ALLOWED_UNDEFINED = {"memcpy", "memmove", "memset"}  # what gcc may call for struct copies
FORBIDDEN_SYMBOLS = {
    "malloc", "calloc", "realloc", "free", "printf", "fprintf", "sprintf", "snprintf", "puts",
    "putchar", "fputs", "fwrite", "fopen", "abort", "exit", "exp", "expf", "log", "logf",
    "pow", "powf", "sqrt", "sqrtf", "floor", "floorf", "ceil", "ceilf", "round", "roundf",
    "lround", "lroundf", "frexp", "frexpf", "ldexp", "ldexpf", "tanh", "tanhf", "fabs"}

HOST_MAIN = """\
/* Test harness (tests/test_c_end_to_end.py): run the model on every record of a file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "{p}.h"

int main(int argc, char **argv)
{{
    static unsigned char record[{P}_INPUT0_BYTES];
    FILE *in;
    FILE *out;
    long limit;
    long done = 0;
    if (argc != 4) {{
        return 2;
    }}
    limit = strtol(argv[3], NULL, 10);
    if ({P}_NUM_INPUTS != 1 || {P}_NUM_OUTPUTS != 1
        || {p}_input_bytes(0) != {P}_INPUT0_BYTES || {p}_output_bytes(0) != {P}_OUTPUT0_BYTES
        || {p}_input(1) != NULL || {p}_output(1) != NULL || {p}_input_bytes(1) != 0u
        || ((uintptr_t){p}_input(0) & 7u) != 0u || ((uintptr_t){p}_output(0) & 7u) != 0u
        || {P}_ARENA_SIZE == 0u) {{
        return 3;
    }}
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {{
        return 4;
    }}
    while (done < limit && fread(record, 1, sizeof record, in) == sizeof record) {{
        /* Poison the whole arena first: no kernel may rely on zeroed or stale memory. */
        memset((unsigned char *){p}_input(0) - ML_INPUT_OFFSET, (int)(0xA5u ^ (unsigned)done),
               {P}_ARENA_SIZE);
        memcpy({p}_input(0), record, sizeof record);
        if ({p}_invoke() != 0) {{
            return 5;
        }}
        if (fwrite({p}_output(0), 1, {P}_OUTPUT0_BYTES, out) != {P}_OUTPUT0_BYTES) {{
            return 6;
        }}
        ++done;
    }}
    fclose(in);
    return fclose(out) == 0 && done == limit ? 0 : 7;
}}
"""


# --------------------------------------------------------------------------- data


@functools.cache
def samples(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(300 calibration samples, 450 test samples) in the ONNX model's layout."""
    from tools.digits import load_digits_split

    if name.startswith("helper"):
        model = onnx.load(str(ZOO / f"{name}.onnx"))
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        rng = np.random.default_rng(20240601)
        return (rng.standard_normal((N_CALIBRATION, *shape[1:])).astype(np.float32),
                rng.standard_normal((N_TEST, *shape[1:])).astype(np.float32))
    x_train, _, x_test, _ = (load_digits_split(8, "flat") if name == "mlp_sigmoid"
                             else load_digits_split(16, "NCHW"))
    assert len(x_test) == N_TEST
    return x_train[:N_CALIBRATION], x_test


def stress_inputs(shape: Sequence[int]) -> np.ndarray:
    """Saturated and random int8 inputs: they reach clamps real images never reach."""
    rng = np.random.default_rng(7)
    out = rng.integers(-128, 128, (N_STRESS, *shape), dtype=np.int16).astype(np.int8)
    out[0], out[1] = -128, 127
    return out


def run(cmd: Sequence[str | os.PathLike[str]], cwd: Path | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def checked(cmd: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> str:
    proc = run(cmd, cwd)
    assert proc.returncode == 0, f"$ {' '.join(map(str, cmd))}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def parallel(jobs: dict[str, Callable[[], object]]) -> dict[str, object]:
    """Run independent subprocess-bound jobs on a few threads; exceptions are returned."""
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        futures = {key: pool.submit(fn) for key, fn in jobs.items()}
        out: dict[str, object] = {}
        for key, future in futures.items():
            try:
                out[key] = future.result()
            except Exception as exc:  # reported by the test that needs it
                out[key] = exc
        return out


def value_of(result: object) -> object:
    if isinstance(result, Exception):
        raise result
    return result


# --------------------------------------------------------------------------- fixtures


@dataclass
class CModel:
    name: str
    result: CompileResult  # --target c
    tflite: bytes  # --target tflite, same calibration
    tfl: TflModel
    directory: Path  # the generated files
    feeds: np.ndarray  # int8 [450 test + 50 stress, *input shape without batch], NHWC
    tflm: np.ndarray  # TFLite-Micro outputs, [500, output bytes]
    interpreter: np.ndarray  # our integer interpreter, [500, output bytes]

    @property
    def graph(self) -> Graph:
        return self.result.graph

    @property
    def plan(self) -> MemoryPlan:
        return self.graph.meta["memory_plan"]


def compile_c(name: str, **options: object) -> CompileResult:
    calibration, _ = samples(name)
    return compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        target="c", quantize="int8", calibration_data=calibration, quiet=True, **options))


def write_files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True)
    for file_name, text in files.items():
        (directory / file_name).write_text(text)
    return directory


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CModel]:
    root = tmp_path_factory.mktemp("c_models")
    out = {}
    for name in MODELS:
        calibration, x_test = samples(name)
        result = compile_c(name)
        tflite = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
            quantize="int8", calibration_data=calibration, quiet=True)).output
        graph = result.graph
        physical = to_physical(x_test, input_perm(graph))
        quant = graph.inputs[0].quant
        feeds = np.concatenate([quantize_input(physical, quant.scale[0], quant.zero_point[0]),
                                stress_inputs(physical.shape[1:])])
        ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
        model = CModel(name, result, tflite, parse_model(tflite),
                       write_files(root / name, result.files), feeds,
                       run_tflm(tflite, feeds, flatten=True),
                       np.asarray(ours).reshape(len(feeds), -1))
        out[name] = model
    return out


def host_build(directory: Path, input_name: str, build: str, workdir: Path,
               prefix: str = "model") -> Path:
    """Compile a generated directory + the harness; returns the executable."""
    workdir.mkdir(parents=True, exist_ok=True)
    main_c = workdir / "main.c"
    main_c.write_text(HOST_MAIN.format(p=prefix, P=prefix.upper()))
    exe = workdir / f"{prefix}_{build}"
    plan = json.loads((directory / f"{prefix}_memory_plan.json").read_text())
    input_offset = plan["tensors"][input_name]["offset"]
    checked(["gcc", *WARNINGS, *BUILDS[build], f"-DML_INPUT_OFFSET={input_offset}", "-I",
             directory, directory / f"{prefix}.c", main_c, "-o", exe])
    return exe


def host_outputs(exe: Path, feeds: np.ndarray, dtype: np.dtype | type = np.int8) -> np.ndarray:
    """Run the harness on every row of ``feeds``: the output rows (bytes as ``dtype``)."""
    in_file, out_file = exe.with_suffix(".in"), exe.with_suffix(".out")
    feeds.tofile(in_file)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(exe), str(in_file), str(out_file), str(len(feeds))],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0 and proc.stderr == "", \
        f"{exe.name} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return np.fromfile(out_file, dtype).reshape(len(feeds), -1)


def model_host_outputs(m: CModel, build: str, workdir: Path) -> np.ndarray:
    exe = host_build(m.directory, m.graph.inputs[0].name, build, workdir)
    return host_outputs(exe, m.feeds)


@pytest.fixture(scope="module")
def host(models: dict[str, CModel], tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, object]:
    """(model, build) -> outputs on the test inputs (or the exception), built in parallel."""
    root = tmp_path_factory.mktemp("host")

    def job(name: str, build: str) -> Callable[[], np.ndarray]:
        return lambda: model_host_outputs(models[name], build, root / f"{name}_{build}")

    return parallel({f"{name}-{build}": job(name, build) for name in MODELS for build in BUILDS})


def first_difference(got: np.ndarray, want: np.ndarray) -> str:
    bad = np.argwhere(got != want)
    k, i = bad[0]
    return (f"{len(np.unique(bad[:, 0]))}/{len(got)} inputs differ, first: input {k} byte "
            f"{i}: {got[k, i]} != {want[k, i]}")


# --------------------------------------------------------------------------- host builds


@pytest.mark.parametrize("build", ["O2", "Os"])
@pytest.mark.parametrize("name", MODELS)
def test_host_c_equals_tflm_and_interpreter(models: dict[str, CModel], host: dict[str, object],
                                            name: str, build: str) -> None:
    m = models[name]
    got = value_of(host[f"{name}-{build}"])
    assert got.shape == m.tflm.shape
    assert np.array_equal(m.interpreter, m.tflm), \
        f"{name}: interpreter vs TFLite-Micro: {first_difference(m.interpreter, m.tflm)}"
    assert np.array_equal(got, m.tflm), \
        f"{name} -{build}: C vs TFLite-Micro: {first_difference(got, m.tflm)}"


@pytest.mark.parametrize("name", MODELS)
def test_sanitizers_run_clean(models: dict[str, CModel], host: dict[str, object],
                              name: str) -> None:
    got = value_of(host[f"{name}-sanitize"])  # a finding exits non-zero with a report
    assert np.array_equal(got, models[name].tflm)


@pytest.mark.parametrize("io_dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", ["lenet", "mlp_sigmoid"])
def test_interface_dtypes(tmp_path: Path, name: str, io_dtype: str) -> None:
    """``--io-dtype uint8|float32``: the C's quantize / requantize edges equal TFLite-Micro."""
    calibration, x_test = samples(name)
    options = {"quantize": "int8", "calibration_data": calibration, "quiet": True,
               "io_dtype": io_dtype}
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(target="c", **options))
    tflite = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(**options)).output
    graph = result.graph
    physical = to_physical(x_test[:100], input_perm(graph))
    if io_dtype == "float32":
        noise = np.random.default_rng(3).standard_normal((20, *physical.shape[1:])) * 4
        feeds = np.concatenate([physical, noise.astype(np.float32)])
    else:
        quant = graph.inputs[0].quant
        stress = stress_inputs(physical.shape[1:]).view(np.uint8).copy()
        stress[0], stress[1] = 0, 255
        feeds = np.concatenate([quantize_input(physical, quant.scale[0], quant.zero_point[0],
                                               "uint8"), stress])
    assert graph.inputs[0].dtype.numpy == np.dtype(io_dtype)
    want = run_tflm(tflite, feeds, flatten=True)
    directory = write_files(tmp_path / "out", result.files)
    exe = host_build(directory, graph.inputs[0].name, "O2", tmp_path / "build")
    got = host_outputs(exe, feeds, want.dtype)
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), \
        first_difference(got.view(np.uint8), want.view(np.uint8))


# --------------------------------------------------------------------------- Cortex-M4


@pytest.fixture(scope="module")
def boards(models: dict[str, CModel], host: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Model -> the board run at -O2 (RunResult, or the exception)."""
    root = tmp_path_factory.mktemp("board")
    return parallel({name: functools.partial(
        board.build_and_run, models[name].directory,
        [x.tobytes() for x in models[name].feeds[BOARD_ROWS]], opt="-O2",
        workdir=root / name) for name in MODELS})


def check_board(m: CModel, result: board.RunResult, opt: str) -> None:
    got = np.stack([np.frombuffer(o, np.int8) for o in result.outputs])
    want = m.tflm[BOARD_ROWS]
    assert np.array_equal(got, want), \
        f"{m.name} {opt}: board vs host/TFLite-Micro: {first_difference(got, want)}"
    assert "warning" not in result.build_log, result.build_log
    arena = m.plan.arena_size
    print(f"\n{m.name} Cortex-M4 {opt}: text={result.text} data={result.data} "
          f"bss={result.bss} (arena {arena}, weights {m.result.sizes['weights']}); "
          f"instructions/inference {min(result.instructions)}..{max(result.instructions)}")
    assert result.text > 0 and result.bss > 0 and result.data >= 0
    assert result.bss >= arena > 0, "the arena must be zero-initialised RAM (.bss)"
    assert result.text >= m.result.sizes["weights"], "the weights must be in flash (text)"
    assert result.data < m.result.sizes["weights"], "the weights must not be copied to RAM"
    assert all(n > 0 for n in result.instructions)


@pytest.mark.parametrize("name", MODELS)
def test_cortex_m4_equals_host(models: dict[str, CModel], host: dict[str, object],
                               boards: dict[str, object], name: str,
                               record_property: Callable[[str, object], None]) -> None:
    host_o2 = value_of(host[f"{name}-O2"])
    assert np.array_equal(host_o2[BOARD_ROWS], models[name].tflm[BOARD_ROWS])
    result = value_of(boards[name])
    check_board(models[name], result, "-O2")
    record_property("arm_size", {"text": result.text, "data": result.data, "bss": result.bss})


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_cortex_m4_equals_host_at_os(models: dict[str, CModel], tmp_path: Path,
                                     name: str) -> None:
    m = models[name]
    result = board.build_and_run(m.directory, [x.tobytes() for x in m.feeds[BOARD_ROWS]],
                                 opt="-Os", workdir=tmp_path)
    check_board(m, result, "-Os")


# --------------------------------------------------------------------------- memory plan


def recomputed_lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """First definition .. last use of every activation in the graph's node order."""
    end = max(len(graph.nodes) - 1, 0)
    span: dict[str, list[int]] = {v.name: [0, 0] for v in graph.inputs}
    for step, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v is not None and not v.is_constant:
                span.setdefault(v.name, [step, step])[1] = step
        for v in node.outputs:
            span.setdefault(v.name, [step, step])
    for v in graph.outputs:
        span[v.name][1] = end
    return {name: (a, b) for name, (a, b) in span.items()}


def check_memory_plan(graph: Graph, plan: MemoryPlan) -> dict[str, int]:
    """Assert ``plan`` is a valid static layout for ``graph``; returns alias counts by kind.

    Two tensors may share bytes while both are live only if they are a *view* pair (a
    reshape-like node's output and its same-sized input, at the same offset) or an
    *in-place* pair (an element-wise node's output over its same-sized input 0, which is
    no graph input or output and whose bytes — through any view — are not read later).
    """
    life = recomputed_lifetimes(graph)
    values = {v.name: v for v in graph.values.values()}
    assert set(plan.offsets) == set(life), "every activation (and only those) is planned"
    assert plan.lifetimes == life, "the plan's lifetimes follow the graph's node order"
    align = plan.alignment
    assert align > 0 and align & (align - 1) == 0
    assert plan.arena_size % align == 0
    for name, offset in plan.offsets.items():
        assert plan.sizes[name] == values[name].type.nbytes, name
        assert offset >= 0 and offset % align == 0, f"{name}: offset {offset} not aligned"
        assert offset + plan.sizes[name] <= plan.arena_size, f"{name} ends past the arena"

    view_root: dict[str, str] = {name: name for name in life}

    def find(name: str) -> str:
        while view_root[name] != name:
            name = view_root[name]
        return name

    inplace: list[tuple[int, str, str]] = []  # (step, input 0, output)
    outputs = {v.name for v in graph.outputs}
    graph_io = {v.name for v in graph.inputs} | outputs
    for step, node in enumerate(graph.nodes):
        x = node.inputs[0] if node.inputs else None
        if x is None or x.is_constant or len(node.outputs) != 1:
            continue
        y = node.output
        if x.type.nbytes != y.type.nbytes:
            continue
        if node.op in VIEW_OPS:
            view_root[find(y.name)] = find(x.name)
        elif node.op in INPLACE_OPS and x.name not in graph_io:
            inplace.append((step, x.name, y.name))

    def legal(a: str, b: str) -> str | None:
        if plan.offsets[a] != plan.offsets[b]:
            return None  # a partial overlap is never an alias
        if find(a) == find(b):
            return "view"
        for step, x, y in inplace:
            if {find(a), find(b)} != {find(x), find(y)}:
                continue
            old = [n for n in life if find(n) == find(x)]
            new = [n for n in life if find(n) == find(y)]
            if (max(life[n][1] for n in old) <= step <= min(life[n][0] for n in new)
                    and not outputs & set(old)):
                return "in-place"
        return None

    kinds = {"view": 0, "in-place": 0}
    names = sorted(plan.offsets)
    for i, a in enumerate(names):
        (oa, sa), (fa, la) = (plan.offsets[a], plan.sizes[a]), life[a]
        for b in names[i + 1:]:
            (ob, sb), (fb, lb) = (plan.offsets[b], plan.sizes[b]), life[b]
            if fa <= lb and fb <= la and oa < ob + sb and ob < oa + sa:
                kind = legal(a, b)
                assert kind is not None, (
                    f"{graph.name}: {a!r} [{oa}, {oa + sa}) steps {fa}..{la} and {b!r} "
                    f"[{ob}, {ob + sb}) steps {fb}..{lb} overlap and are not an alias")
                kinds[kind] += 1
    for node_name, (offset, size) in plan.scratch.items():
        step = next(i for i, n in enumerate(graph.nodes) if n.name == node_name)
        assert offset % align == 0 and offset + size <= plan.arena_size
        for name, (first, last) in life.items():
            if first <= step <= last:
                assert offset >= plan.offsets[name] + plan.sizes[name] or \
                    plan.offsets[name] >= offset + size, f"scratch of {node_name} over {name}"
    # The lower bound: the most bytes of distinct buffers (alias groups) live at one step.
    group = {name: name for name in life}

    def top(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    for a in names:
        if find(a) != a and plan.offsets[a] == plan.offsets[find(a)]:
            group[top(a)] = top(find(a))
    for _, x, y in inplace:
        if plan.offsets[x] == plan.offsets[y] and legal(x, y) == "in-place":
            group[top(y)] = top(x)
    buffers: dict[str, list[int]] = {}
    for name, (first, last) in life.items():
        buf = buffers.setdefault(top(name), [0, first, last])
        buf[0] = max(buf[0], plan.sizes[name])
        buf[1], buf[2] = min(buf[1], first), max(buf[2], last)
    lower = max((sum(size for size, first, last in buffers.values() if first <= s <= last)
                 for s in range(max(len(graph.nodes), 1))), default=0)
    assert plan.lower_bound == lower, (plan.lower_bound, lower)
    assert plan.lower_bound <= plan.arena_size
    return kinds


def plan_for(name: str) -> tuple[Graph, MemoryPlan]:
    """helper_ops has ops without a C kernel: plan its int8 (float fallback) graph."""
    calibration, _ = samples(name)
    spec = int8_pipeline(fallback="float") + ",prepare,plan-memory"
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        pipeline=spec, quantize="int8", calibration_data=calibration, quiet=True))
    return result.graph, result.graph.meta["memory_plan"]


@pytest.mark.parametrize("name", [*MODELS, "helper_ops"])
def test_memory_plan_is_valid_and_tight(models: dict[str, CModel], name: str) -> None:
    graph, plan = (models[name].graph, models[name].plan) if name in models else plan_for(name)
    kinds = check_memory_plan(graph, plan)
    assert plan.arena_size <= MAX_ARENA_OVER_LOWER_BOUND * plan.lower_bound, \
        f"{name}: arena {plan.arena_size} > {MAX_ARENA_OVER_LOWER_BOUND} x lower bound " \
        f"{plan.lower_bound}"
    if name in models:
        assert models[name].result.sizes["arena"] == plan.arena_size
        assert models[name].result.sizes["lower_bound"] == plan.lower_bound
    if name in ("resnet8", "mlp_sigmoid", "helper_matmul", "helper_ops"):
        assert kinds["in-place"] > 0, f"{name}: expected in-place element-wise ops"
    if name != "mlp_sigmoid":
        assert kinds["view"] > 0, f"{name}: expected the flatten to be a view"


def test_memory_plan_checker_rejects_bad_plans(models: dict[str, CModel]) -> None:
    """Must-not-pass: the checker catches an overlap, a misaligned and a too-big offset."""
    graph, good = models["lenet"].graph, models["lenet"].plan
    conv, pool = graph.nodes[0].output.name, graph.nodes[1].output.name  # live together

    def variant(offsets: dict[str, int]) -> MemoryPlan:
        return MemoryPlan(good.arena_size, {**good.offsets, **offsets}, good.sizes,
                          good.lifetimes, good.lower_bound, good.alignment, good.scratch)

    cases = {"overlap": {pool: good.offsets[conv]},
             "conv-over-its-input": {graph.inputs[0].name: good.offsets[conv]},
             "misaligned": {pool: good.offsets[pool] + 1},
             "outside": {pool: good.arena_size}}
    check_memory_plan(graph, good)
    for case, offsets in cases.items():
        with pytest.raises(AssertionError):
            check_memory_plan(graph, variant(offsets))
            pytest.fail(f"the checker accepted the bad plan {case!r}")


def test_no_inplace_over_an_input_read_later(tmp_path: Path) -> None:
    """``b = Sigmoid(a); y = Add(a, b)``: the Sigmoid may not write over ``a`` (read by the
    Add later); the Add may write over its dying input 0 ``a``."""
    from onnx import TensorProto, helper, numpy_helper


    scale = numpy_helper.from_array(np.full((1, 64), 0.5, np.float32), "scale")
    graph_def = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["a"], name="mul"),
         helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid"),
         helper.make_node("Add", ["a", "b"], ["y"], name="add")], "inplace",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [scale])
    path = tmp_path / "inplace.onnx"
    onnx.save(helper.make_model(graph_def, opset_imports=[helper.make_opsetid("", 17)]), path)
    calib = np.random.default_rng(3).standard_normal((32, 64)).astype(np.float32)
    result = compile_onnx(path, CompileOptions(target="c", quantize="int8",
                                               calibration_data=calib, quiet=True))
    graph, plan = result.graph, result.graph.meta["memory_plan"]
    assert [n.op for n in graph.nodes] == ["tfl.mul", "c.lut", "tfl.add"]  # Sigmoid: a table
    assert check_memory_plan(graph, plan)["in-place"] == 1
    assert plan.offsets["y"] == plan.offsets["a"] != plan.offsets["b"]
    bad = MemoryPlan(plan.arena_size, {**plan.offsets, "b": plan.offsets["a"]}, plan.sizes,
                     plan.lifetimes, plan.lower_bound, plan.alignment)
    with pytest.raises(AssertionError, match="overlap and are not an alias"):
        check_memory_plan(graph, bad)


# --------------------------------------------------------------------------- API


def macros(header: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (.+)$", header, re.MULTILINE))


def c_float(text: str) -> np.float32:
    return np.float32(float(text.rstrip("f")))


@pytest.mark.parametrize("name", MODELS)
def test_header_macros_match_the_tflite(models: dict[str, CModel], name: str) -> None:
    m = models[name]
    defs = macros(m.result.files["model.h"])
    assert int(defs["MODEL_ARENA_SIZE"].rstrip("u")) == m.plan.arena_size
    for kind, index in (("INPUT", m.tfl.inputs[0]), ("OUTPUT", m.tfl.outputs[0])):
        tensor = m.tfl.tensors[index]
        key = f"MODEL_{kind}0"
        assert defs[f"MODEL_NUM_{kind}S"] == "1"
        assert c_float(defs[f"{key}_SCALE"]) == np.float32(tensor.quant.scale[0])
        assert int(defs[f"{key}_ZERO_POINT"]) == tensor.quant.zero_point[0]
        shape = [int(d) for d in defs[f"{key}_SHAPE"].strip("{}").split(",")]
        assert shape == list(tensor.shape), (kind, shape, tensor.shape)
        assert int(defs[f"{key}_RANK"]) == len(tensor.shape)
        assert [int(defs[f"{key}_DIM{i}"]) for i in range(len(shape))] == shape
        assert defs[f"{key}_TYPE"] == "int8_t" and tensor.dtype == "int8"
        assert int(defs[f"{key}_BYTES"].rstrip("u")) == int(np.prod(shape))


def test_header_is_usable_from_cpp(models: dict[str, CModel], tmp_path: Path) -> None:
    source = tmp_path / "use.cpp"
    source.write_text('#include "model.h"\nint main() { return model_invoke() == 0 ? 0 : 1; }\n')
    checked(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I",
             models["lenet"].directory, "-c", source, "-o", tmp_path / "use.o"])
    assert "U model_invoke" in checked(["nm", tmp_path / "use.o"])  # C linkage: unmangled


def defined_symbols(obj: Path) -> list[tuple[str, str]]:
    """(type letter, name) of every symbol ``nm`` lists as defined in ``obj``."""
    rows = [line.split() for line in checked(["nm", "--defined-only", obj]).splitlines()]
    return [(row[1], row[2]) for row in rows if len(row) == 3]


@pytest.fixture(scope="module")
def objects(models: dict[str, CModel], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, object]:
    """(model, O2|Os) -> the compiled model.c object (strict warnings)."""
    root = tmp_path_factory.mktemp("objects")

    def job(name: str, build: str) -> Callable[[], Path]:
        obj = root / f"{name}_{build}.o"
        directory = models[name].directory
        return lambda: (checked(["gcc", *WARNINGS, *BUILDS[build], "-c", directory / "model.c",
                                 "-o", obj]), obj)[1]

    return parallel({f"{n}-{b}": job(n, b) for n in MODELS for b in ("O2", "Os")})


@pytest.mark.parametrize("name", MODELS)
def test_no_malloc_stdio_or_libm(models: dict[str, CModel], objects: dict[str, object],
                                 name: str) -> None:
    for build in ("O2", "Os"):
        obj = value_of(objects[f"{name}-{build}"])
        undefined = set(checked(["nm", "-u", obj]).split()) - {"U", "w"}
        assert undefined <= ALLOWED_UNDEFINED, (build, undefined)
        assert not undefined & FORBIDDEN_SYMBOLS
        exported = {sym for kind, sym in defined_symbols(obj) if kind.isupper()}
        assert exported == {"model_input", "model_output", "model_input_bytes",
                            "model_output_bytes", "model_invoke"}, exported
    for file_name, text in models[name].result.files.items():
        assert "<stdio.h>" not in text and "<math.h>" not in text, file_name
        assert not re.search(r"\b(malloc|calloc|free|printf)\s*\(", text), file_name


def test_c_prefix_renames_files_and_symbols(models: dict[str, CModel], tmp_path: Path) -> None:
    result = compile_c("dscnn", c_prefix="kws")
    assert sorted(result.files) == ["kws.c", "kws.h", "kws_memory_plan.json",
                                    *sorted(kernel_headers())]
    directory = write_files(tmp_path / "kws", result.files)
    obj = tmp_path / "kws.o"
    checked(["gcc", *WARNINGS, "-O0", "-c", directory / "kws.c", "-o", obj])  # no inlining
    symbols = defined_symbols(obj)
    exported = sorted(sym for kind, sym in symbols if kind.isupper())
    assert exported == ["kws_input", "kws_input_bytes", "kws_invoke", "kws_output",
                        "kws_output_bytes"]
    data = [sym for kind, sym in symbols if kind.lower() in "bdr" and not sym.startswith(".")]
    assert data and all(sym.startswith("kws_") for sym in data), data  # arena and weights
    for file_name in ("kws.c", "kws.h"):
        text = result.files[file_name]
        assert not re.search(r"\b(model|MODEL)_\w+", text), file_name
    defs = macros(result.files["kws.h"])
    assert all(name.startswith("KWS_") for name in defs), sorted(defs)
    assert "KWS_ARENA_SIZE" in defs and "KWS_INPUT0_ZERO_POINT" in defs
    # same model, new names: the same bytes
    m = models["dscnn"]
    exe = host_build(directory, m.graph.inputs[0].name, "O2", tmp_path / "build", prefix="kws")
    assert np.array_equal(host_outputs(exe, m.feeds), m.tflm)
    for kws, model in (("kws.c", "model.c"), ("kws.h", "model.h")):  # only names differ
        renamed = (m.result.files[model].replace("model_", "kws_").replace("MODEL_", "KWS_")
                   .replace('"model.h"', '"kws.h"'))
        assert " ".join(result.files[kws].split()) == " ".join(renamed.split()), kws


@pytest.mark.parametrize("name", MODELS)
def test_c_output_is_deterministic(models: dict[str, CModel], name: str) -> None:
    again = compile_c(name)
    assert again.files == models[name].result.files
    assert again.sizes == models[name].result.sizes


# --------------------------------------------------------------------------- CLI


def microlith(*args: str | os.PathLike[str], cwd: Path) -> subprocess.Popen[str]:
    """``python -m microlith`` as a user runs it (its own process and hash seed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTHONHASHSEED", None)
    return subprocess.Popen([sys.executable, "-m", "microlith", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


C_ARGS = ("--target", "c", "--quantize", "int8", "--calibration-data", "calib.npz")
# case -> (model, CLI arguments after the model and "-o out", strings the error must name)
BAD_CLI: dict[str, tuple[str, list[str], tuple[str, ...]]] = {
    "op-without-int8-kernel": ("helper_ops", [*C_ARGS], ("div (Div)", "hardsigmoid",
                                                         "--fallback float")),
    "fallback-float": ("helper_ops", [*C_ARGS, "--fallback", "float"],
                       ("div (Div)", "hardsigmoid (HardSigmoid)", "integer")),
    "no-quantize": ("lenet", ["--target", "c"], ("--target c", "--quantize int8")),
    "ram-limit": ("lenet", [*C_ARGS, "--ram-limit", "1K"],
                  ("1,920", "1,024", "/0/Conv_output_0 (1,536 B)", "/3/MaxPool_output_0")),
    "flash-limit": ("lenet", [*C_ARGS, "--flash-limit", "4K"], ("4,096", "flash",
                                                                "9.weight_fc_nhwc_q")),
    "bad-prefix": ("lenet", [*C_ARGS, "--c-prefix", "my-model"], ("--c-prefix", "'my-model'",
                                                                  "C identifier")),
    "prefix-digit": ("lenet", [*C_ARGS, "--c-prefix", "9lives"], ("'9lives'",)),
    "c-array-bad-prefix": ("lenet", ["--target", "c-array", "--c-prefix", "a b"],
                           ("--c-prefix", "'a b'")),
    "missing-parent": ("lenet", [*C_ARGS, "-o", "missing/out"], ("missing/out",
                                                                 "does not exist")),
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, str, str]]:
    """Every CLI case, run concurrently in its own directory, plus one good compile."""
    procs = {}
    for case, (model, args, _) in {**BAD_CLI, "good": ("dscnn", [*C_ARGS], ())}.items():
        where = tmp_path_factory.mktemp(case)
        np.savez(where / "calib.npz", input=samples(model)[0])
        output = [] if "-o" in args else ["-o", "out"]
        procs[case] = (where, microlith("compile", ZOO / f"{model}.onnx", *output, *args,
                                        cwd=where))
    out = {}
    for case, (where, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[case] = (where, proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("case", list(BAD_CLI))
def test_cli_bad_c_cases(cli_runs: dict[str, tuple[Path, int, str, str]], case: str) -> None:
    where, code, out, err = cli_runs[case]
    lines = err.strip().splitlines()
    assert code == 2, (case, code, err)
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in BAD_CLI[case][2]:
        assert needle in lines[0], (needle, lines[0])
    assert out == ""
    left = sorted(p.name for p in where.iterdir() if p.name != "calib.npz")
    assert left == [], f"{case}: left behind {left}"


def test_cli_c_output_and_inspect(cli_runs: dict[str, tuple[Path, int, str, str]],
                                  models: dict[str, CModel]) -> None:
    where, code, out, err = cli_runs["good"]
    assert code == 0, err
    directory = where / "out"
    assert sorted(p.name for p in directory.iterdir()) == sorted(models["dscnn"].result.files)
    for file_name, text in models["dscnn"].result.files.items():  # another process: same bytes
        assert (directory / file_name).read_text() == text, file_name
    proc = microlith("inspect", "out", cwd=where)
    report, errors = proc.communicate(timeout=120)
    assert proc.returncode == 0, errors
    plan = models["dscnn"].plan
    assert f"arena {plan.arena_size:,} bytes" in report
    assert f"lower bound {plan.lower_bound:,} bytes" in report
    for name, offset in plan.offsets.items():
        first, last = plan.lifetimes[name]
        row = re.compile(rf"^\s+{re.escape(name)}\s+{offset}\s+{plan.sizes[name]}\s+"
                         rf"{first}\.\.{last}$", re.MULTILINE)
        assert row.search(report), (name, report)


# --------------------------------------------------------------------------- c-array


@functools.cache
def c_array_of(name: str) -> tuple[bytes, dict[str, str]]:
    """(the int8 .tflite, the c-array files); helper_ops keeps its float ops (fallback)."""
    calibration, _ = samples(name)
    options = {"quantize": "int8", "calibration_data": calibration, "quiet": True,
               "fallback": "float" if name == "helper_ops" else "none"}
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(target="c-array", **options))
    tflite = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(**options)).output
    assert result.output == tflite
    return tflite, result.files


@pytest.fixture(scope="module")
def c_array(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[str, str]]:
    tflite, files = c_array_of("resnet8")
    directory = write_files(tmp_path_factory.mktemp("c_array") / "out", files)
    return directory, tflite, files


def test_c_array_bytes_equal_the_tflite(c_array: tuple[Path, bytes, dict[str, str]]) -> None:
    directory, tflite, files = c_array
    assert sorted(files) == ["model_data.c", "model_data.h", "model_data_op_resolver.h"]
    body = files["model_data.c"].split("{", 1)[1].split("}", 1)[0]
    parsed = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert parsed == tflite
    assert f"model_data_len = {len(tflite)}u" in files["model_data.c"]
    assert f"#define MODEL_DATA_LEN {len(tflite)}u" in files["model_data.h"]


def rodata_alignment(obj: Path, symbol: str) -> int:
    """Alignment of the section holding ``symbol`` (compiled with -fdata-sections)."""
    sections = checked(["readelf", "-SW", obj])
    rows = [line.split() for line in sections.splitlines() if f" .rodata.{symbol} " in line]
    assert len(rows) == 1 and rows[0][-1].isdigit(), sections
    return int(rows[0][-1])  # the last column: Al


@pytest.mark.parametrize("language", ["c11", "c++11"])
def test_c_array_compiles_aligned_and_round_trips(c_array: tuple[Path, bytes, dict[str, str]],
                                                  tmp_path: Path, language: str) -> None:
    directory, tflite, _ = c_array
    compiler = ["gcc", "-std=c11"] if language == "c11" else ["g++", "-std=c++11", "-x", "c++"]
    strict = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fdata-sections"]
    obj = tmp_path / "model_data.o"
    checked([*compiler, *strict, "-I", directory, "-c", directory / "model_data.c", "-o", obj])
    assert rodata_alignment(obj, "model_data") >= 16
    symbols = dict((name, kind) for kind, name in defined_symbols(obj))
    assert symbols.get("model_data") == "R" and symbols.get("model_data_len") == "R", symbols
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdint.h>\n#include <stdio.h>\n#include "model_data.h"\n'
        "int main(void)\n{\n"
        "    if (((uintptr_t)model_data & 15u) != 0u || model_data_len != MODEL_DATA_LEN) {\n"
        "        return 1;\n    }\n"
        "    return fwrite(model_data, 1, model_data_len, stdout) == model_data_len ? 0 : 2;\n"
        "}\n")
    exe = tmp_path / "dump"
    checked(["gcc", "-std=c11", *strict, "-I", directory, "-c", main, "-o", tmp_path / "main.o"])
    checked(["gcc", tmp_path / "main.o", obj, "-o", exe])
    proc = subprocess.run([str(exe)], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout == tflite


RESOLVER_STANDIN = """\
/* Stand-in for TFLite-Micro's header: every Add*() registers one op, N at most. */
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver {
 public:
  unsigned int registered = 0;
%s
 private:
  TfLiteStatus Add() {
    if (registered >= tOpCount) return kTfLiteError;
    ++registered;
    return kTfLiteOk;
  }
};
}  // namespace tflite
"""


@pytest.mark.parametrize("name", [*MODELS, "helper_ops"])
def test_c_array_op_resolver_lists_exactly_the_models_ops(tmp_path: Path, name: str) -> None:
    tflite, files = c_array_of(name)
    directory = write_files(tmp_path / "out", files)
    resolver = files["model_data_op_resolver.h"]
    ops = {op.op for op in parse_model(tflite).operators}
    listed = re.findall(r"resolver\.(\w+)\(\)", resolver)
    assert sorted(listed) == sorted(RESOLVER_METHODS[op] for op in ops)
    assert f"MicroMutableOpResolver<{len(ops)}>" in resolver
    # it compiles as C++11 and registers exactly len(ops) ops into a resolver of that size
    include = tmp_path / "include" / "tensorflow" / "lite" / "micro"
    include.mkdir(parents=True)
    methods = "\n".join(f"  TfLiteStatus {m}() {{ return Add(); }}"
                        for m in sorted(set(RESOLVER_METHODS.values())))
    (include / "micro_mutable_op_resolver.h").write_text(RESOLVER_STANDIN % methods)
    main = tmp_path / "main.cc"
    main.write_text(f'#include "model_data_op_resolver.h"\n'
                    f"int main() {{\n  ModelDataOpResolver resolver;\n"
                    f"  if (RegisterModelDataOps(resolver) != kTfLiteOk) return 1;\n"
                    f"  return resolver.registered == {len(ops)}u ? 0 : 2;\n}}\n")
    exe = tmp_path / "resolver"
    checked(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I",
             tmp_path / "include", "-I", directory, main, "-o", exe])
    assert run([exe]).returncode == 0
