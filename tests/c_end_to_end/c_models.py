"""The C target, end to end (the acceptance tests of the C issue): the shared parts.

Every trained zoo model (and ``helper_matmul``) is compiled once (``models``, a session
fixture in ``conftest.py``) with ``--target c --quantize int8`` and 300 calibration
samples, and once with ``--target tflite`` (same data) for the oracles. Then:

* host (``test_c_host_board.py``): the generated directory plus a small ``main.c``
  (``HOST_MAIN`` here, reading inputs from a file and poisoning the whole arena before
  each inference) build with ``gcc -std=c99 -Wall -Wextra -Werror -pedantic`` at ``-O2``
  and ``-Os``; the output bytes equal TFLite-Micro's Python runtime on our int8
  ``.tflite`` and our integer interpreter (``microlith.interpreter.run_graph``) on all 450
  held-out images (seeded noise for the helper) plus 50 stress inputs (all -128, all 127,
  uniform int8 noise); an AddressSanitizer + UBSan build runs clean on the same 500;
  ``--io-dtype uint8`` and ``float32`` interfaces equal TFLite-Micro too;
* board (``test_c_host_board.py``): the same C, cross-compiled for Cortex-M4 by
  ``tools.mcu.run.build_and_run``, gives the host's bytes under qemu on 20 inputs (10
  images, 10 stress inputs); the ``arm-none-eabi-size`` figures are printed (``bss``
  holds the arena, the weights are in ``text``);
* memory plan (``test_c_memory_plan.py``): checked independently of
  ``microlith.memory_plan`` from the graph's node order: no two simultaneously live
  tensors overlap unless the overlap is a legal alias (a reshape-like view of the same
  bytes, or an in-place element-wise op writing over its dying input 0), every range is
  inside the arena and aligned, and the arena is at most 1.15x the liveness lower bound
  on every zoo model; ``microlith inspect OUTDIR`` shows the plan (``test_c_cli.py``);
* API (``test_c_api.py``): the macros of ``model.h`` against the ``.tflite``;
  ``--c-prefix`` renames files and every exported symbol (``nm``); no ``malloc``, stdio
  or libm (``nm -u``); byte-identical output across compiles and processes;
* bad cases on the CLI (``test_c_cli.py``): exit 2, one ``error:`` line, no output
  directory left behind;
* ``--target c-array`` (``test_c_array.py``): C11 and C++11 builds, bytes equal to the
  ``.tflite``, 16-byte alignment, and an op resolver with exactly the model's ops.

Slow cases (``@pytest.mark.slow``, still run in CI) repeat the board check at ``-Os``.

This module holds what the test modules of this folder share: the constants, the data
(``samples``, ``stress_inputs``), ``CModel``, the host harness (``HOST_MAIN``,
``host_build``, ``host_outputs``) and the subprocess helpers.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from microlith.app.driver import CompileOptions, CompileResult, compile_onnx
from microlith.formats.tflite.flatbuffer import TflModel
from microlith.ir.core import Graph
from microlith.memory_plan import MemoryPlan

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "tests" / "zoo"
TRAINED = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
MODELS = TRAINED + ("helper_matmul",)
N_CALIBRATION = 300
N_TEST = 450
N_STRESS = 50  # int8 inputs beyond the data: all -128, all 127, then uniform noise
JOBS = max(2, min(4, os.cpu_count() or 2))

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
BUILDS = {
    "O2": ["-O2"],
    "Os": ["-Os"],
    "sanitize": ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                 "-fno-sanitize-recover=all"],
}

HOST_MAIN = """\
/* Test harness (tests/c_end_to_end/c_models.py): run the model on every record of a file. */
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


def assert_no_libm_and_no_double(directory: Path, tmp: Path) -> None:
    """``directory/model.c`` compiled alone (host gcc, and the Cortex-M4 with a hard-float
    ABI where the Arm toolchain is installed) leaves only memcpy/memset/memmove undefined
    (no libm) and, on the M4, holds no double-precision instruction."""
    import shutil

    obj = tmp / "model.o"
    checked(["gcc", *WARNINGS, "-Wdouble-promotion", "-O2", "-c", directory / "model.c",
             "-o", obj])
    undefined = {line.split()[-1] for line in checked(["nm", "-u", obj]).splitlines()}
    assert undefined <= {"memcpy", "memset", "memmove"}
    if shutil.which("arm-none-eabi-gcc") and shutil.which("arm-none-eabi-objdump"):
        arm = tmp / "model_m4.o"
        checked(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                 "-mfpu=fpv4-sp-d16", *WARNINGS, "-Wdouble-promotion", "-O2", "-c",
                 directory / "model.c", "-o", arm])
        assert ".f64" not in checked(["arm-none-eabi-objdump", "-d", arm])
        undefined = {line.split()[-1]
                     for line in checked(["arm-none-eabi-nm", "-u", arm]).splitlines()}
        assert undefined <= {"memcpy", "memset", "memmove"}


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


# --------------------------------------------------------------------------- models and host builds


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


def first_difference(got: np.ndarray, want: np.ndarray) -> str:
    bad = np.argwhere(got != want)
    k, i = bad[0]
    return (f"{len(np.unique(bad[:, 0]))}/{len(got)} inputs differ, first: input {k} byte "
            f"{i}: {got[k, i]} != {want[k, i]}")


def defined_symbols(obj: Path) -> list[tuple[str, str]]:
    """(type letter, name) of every symbol ``nm`` lists as defined in ``obj``."""
    rows = [line.split() for line in checked(["nm", "--defined-only", obj]).splitlines()]
    return [(row[1], row[2]) for row in rows if len(row) == 3]
