"""The c section of ``tools/bench.py``.

c: for every trained zoo model, ``--target c`` (same 300 calibration images): our arena
vs the smallest arena TFLite-Micro allocates our own int8 ``.tflite`` in (bisection) and
their ratio (target <= 0.7x); the weights and tables bytes; built for Cortex-M4 at
``-O2`` and ``-Os`` (``tools.mcu.run``): flash (``text + data`` of the ELF and of the
model object alone) and instructions per inference under qemu (mean of a few held-out
images; they vary by a few hundred at most, from data-dependent branches), also per MAC
(the MACs of Conv / depthwise / pointwise / fully-connected nodes from the IR shapes);
on the host (x86-64, ``gcc -O2`` / ``-Os``), ``valgrind --tool=callgrind`` counts the
instructions inside our ``model_invoke`` and inside TFLite-Micro's
``MicroInterpreter::Invoke`` (the ``tflite_micro`` Python runtime; ``--toggle-collect`` on
the symbol, callees included, nothing subtracted) over the same inferences on the same
inputs, and their ratio (target <= 0.33x). Every run's outputs are checked to be
TFLite-Micro's bytes. Figures whose tools are missing are reported as n/a.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile

import numpy as np

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.ir.core import Graph
from tools.bench_common import TFLM_ARENA, ZOO, digits_for, progress, tflm_arena_bytes
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

C_ARENA_TARGET = 0.7  # our arena <= 0.7x TFLite-Micro's smallest arena (same .tflite)
C_HOST_TARGET = 0.33  # our model_invoke <= 0.33x MicroInterpreter::Invoke (host instructions)
C_OPTS = ("-O2", "-Os")
C_BOARD_INPUTS = 4  # held-out images per Cortex-M4 run; the counts are averaged
C_HOST_INPUTS = 5  # inferences measured under callgrind, the same inputs for both

C_HOST_HARNESS = """\
/* tools/bench.py: run model_invoke on each record of a file (callgrind counts it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int main(int argc, char **argv)
{
    static unsigned char record[MODEL_INPUT0_BYTES];
    FILE *in;
    FILE *out;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == NULL || (out = fopen(argv[2], "wb")) == NULL) {
        return 2;
    }
    while (fread(record, 1, sizeof record, in) == sizeof record) {
        memcpy(model_input(0), record, sizeof record);
        if (model_invoke() != 0) {
            return 3;
        }
        fwrite(model_output(0), 1, model_output_bytes(0), out);
    }
    fclose(in);
    return fclose(out) == 0 ? 0 : 4;
}
"""

TFLM_HOST_SCRIPT = """\
import sys

import numpy as np
from tflite_micro.python.tflite_micro import runtime

model, inputs, outputs = sys.argv[1:4]
interp = runtime.Interpreter.from_bytes(open(model, "rb").read(), arena_size=1 << 22)
shape = interp.get_input_details(0)["shape"]
feeds = np.fromfile(inputs, np.int8).reshape(-1, *shape[1:])
with open(outputs, "wb") as handle:
    for x in feeds:
        interp.set_input(x[None], 0)
        interp.invoke()
        handle.write(interp.get_output(0).tobytes())
"""


def model_macs(graph: Graph) -> int:
    """Multiply-accumulates of the convolutions and matrix products (the ``macs`` trait of
    each op: one per weight per output element), from the IR shapes."""
    from microlith.ir.ops import node_macs

    return sum(node_macs(node) for node in graph.nodes)


def run_tool(cmd: list[str], cwd: str | None = None) -> str:
    import subprocess

    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"$ {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


@functools.cache
def tflm_invoke_symbol() -> str:
    """The demangled name of TFLite-Micro's ``MicroInterpreter::Invoke()`` in the runtime
    the Python package loads (``tflite::MicroInterpreter::Invoke()`` in older releases)."""
    import glob

    import tflite_micro

    libs = glob.glob(os.path.join(os.path.dirname(tflite_micro.__file__), "**", "_runtime*.so"),
                     recursive=True)
    for lib in libs:
        names = run_tool(["nm", "-C", "--defined-only", lib]).splitlines()
        found = sorted({line.split(" ", 2)[2] for line in names if line.count(" ") >= 2
                        and line.endswith("MicroInterpreter::Invoke()")})
        if found:
            return found[0]
    raise RuntimeError(f"no MicroInterpreter::Invoke() symbol in {libs}")


def callgrind(cmd: list[str], function: str, workdir: str) -> int:
    """Instructions (Ir) executed inside ``function`` and its callees, over the whole run."""
    out = os.path.join(workdir, f"callgrind.{len(os.listdir(workdir))}.out")
    run_tool(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
              f"--toggle-collect={function}", *cmd], cwd=workdir)
    with open(out) as handle:
        totals = [line for line in handle if line.startswith(("totals:", "summary:"))]
    count = int(totals[0].split()[1]) if totals else 0
    if count <= 0:
        raise RuntimeError(f"callgrind collected nothing inside {function!r}")
    return count


def host_c_instructions(model_dir: str, feeds: np.ndarray, opt: str, workdir: str
                        ) -> tuple[float, bytes]:
    """(instructions per model_invoke on the host at ``opt``, the outputs)."""
    main_c, exe = os.path.join(workdir, "bench_main.c"), os.path.join(workdir, f"host{opt}")
    with open(main_c, "w") as handle:
        handle.write(C_HOST_HARNESS)
    run_tool(["gcc", "-std=c99", opt, "-I", model_dir, os.path.join(model_dir, "model.c"),
              main_c, "-o", exe])
    inputs, outputs = os.path.join(workdir, "inputs.bin"), os.path.join(workdir, f"out{opt}")
    feeds.tofile(inputs)
    count = callgrind([exe, inputs, outputs], "model_invoke", workdir)
    with open(outputs, "rb") as handle:
        return count / len(feeds), handle.read()


def host_tflm_instructions(data: bytes, feeds: np.ndarray, workdir: str) -> tuple[float, bytes]:
    """(instructions per ``MicroInterpreter::Invoke`` of the tflite_micro Python runtime)."""
    model, script = os.path.join(workdir, "model.tflite"), os.path.join(workdir, "tflm_run.py")
    with open(model, "wb") as handle:
        handle.write(data)
    with open(script, "w") as handle:
        handle.write(TFLM_HOST_SCRIPT)
    inputs, outputs = os.path.join(workdir, "inputs.bin"), os.path.join(workdir, "out_tflm")
    feeds.tofile(inputs)
    count = callgrind([sys.executable, script, model, inputs, outputs], tflm_invoke_symbol(),
                      workdir)
    with open(outputs, "rb") as handle:
        return count / len(feeds), handle.read()


def object_flash(obj: str) -> int:
    """text + data of one object file (``arm-none-eabi-size``, Berkeley)."""
    from tools.mcu.run import SIZE

    text, data, _ = (int(v) for v in run_tool([SIZE, obj]).splitlines()[-1].split()[:3])
    return text + data


def bench_c(name: str, tools: dict[str, bool]) -> dict:
    """Arena, flash, Cortex-M4 and host instruction counts of our C for one zoo model."""
    from tools.mcu.run import build_and_run

    path = os.path.join(ZOO, f"{name}.onnx")
    x_cal, x_test, _ = digits_for(name)
    common = {"quantize": "int8", "calibration_data": x_cal, "quiet": True,
              "warn": lambda message: None}
    progress(f"  {name}: compiling (C and int8 .tflite)")
    result = compile_onnx(path, CompileOptions(target="c", **common))
    data = compile_onnx(path, CompileOptions(**common)).output
    graph, plan = result.graph, result.graph.meta["memory_plan"]
    x_phys = to_physical(x_test, input_perm(graph))
    quant = graph.inputs[0].quant
    feeds = quantize_input(x_phys, quant.scale[0], quant.zero_point[0], "int8")
    macs = model_macs(graph)
    progress(f"  {name}: TFLite-Micro arena bisection")
    tflm_arena = tflm_arena_bytes(data, feeds[:1])
    row: dict = {"model": name, "macs": macs, "arena": plan.arena_size,
                 "arena_lower_bound": plan.lower_bound, "tflm_arena": tflm_arena,
                 "arena_ratio": round(plan.arena_size / tflm_arena, 4),
                 "weights_bytes": result.sizes["weights"],
                 "flash_estimate": result.sizes["flash"], "board": {}, "host": {}}
    expected = run_tflm(data, feeds[:max(C_BOARD_INPUTS, C_HOST_INPUTS)], TFLM_ARENA)
    with tempfile.TemporaryDirectory(prefix="microlith-bench-c-") as tmp:
        model_dir = os.path.join(tmp, "model")
        os.makedirs(model_dir)
        for file_name, text in result.files.items():
            with open(os.path.join(model_dir, file_name), "w") as handle:
                handle.write(text)
        for opt in C_OPTS if tools["board"] else ():
            progress(f"  {name}: Cortex-M4 {opt} under qemu ({C_BOARD_INPUTS} inferences)")
            workdir = os.path.join(tmp, f"board{opt}")
            run = build_and_run(model_dir, [x.tobytes() for x in feeds[:C_BOARD_INPUTS]],
                                opt=opt, workdir=workdir)
            counts = run.instructions
            mean = sum(counts) / len(counts)
            row["board"][opt] = {
                "text": run.text, "data": run.data, "bss": run.bss, "flash": run.flash,
                "model_flash": object_flash(os.path.join(workdir, "00_model.o")),
                "instructions": round(mean, 1), "instructions_min": min(counts),
                "instructions_max": max(counts),
                "instructions_per_mac": round(mean / macs, 3) if macs else None,
                "byte_exact": all(out == expected[k].tobytes()
                                  for k, out in enumerate(run.outputs)),
                "inputs": len(counts)}
        if tools["callgrind"]:
            host_feeds = feeds[:C_HOST_INPUTS]
            progress(f"  {name}: TFLite-Micro Invoke under callgrind ({len(host_feeds)} "
                     "inferences)")
            tflm, tflm_out = host_tflm_instructions(data, host_feeds, tmp)
            row["host"]["tflm"] = round(tflm, 1)
            row["host"]["tflm_per_mac"] = round(tflm / macs, 3) if macs else None
            for opt in C_OPTS:
                progress(f"  {name}: our model_invoke {opt} under callgrind")
                ours, out = host_c_instructions(model_dir, host_feeds, opt, tmp)
                row["host"][opt] = {"instructions": round(ours, 1),
                                    "ratio": round(ours / tflm, 4),
                                    "byte_exact": out == tflm_out == expected[
                                        :len(host_feeds)].tobytes()}
            row["host"]["inputs"] = len(host_feeds)
    return row


def c_targets(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        checks: dict[str, bool | None] = {
            f"arena <= {C_ARENA_TARGET}x TFLite-Micro": row["arena_ratio"] <= C_ARENA_TARGET}
        for opt in C_OPTS:
            host = row["host"].get(opt)
            checks[f"host instructions {opt} <= {C_HOST_TARGET}x TFLite-Micro"] = \
                None if host is None else host["ratio"] <= C_HOST_TARGET
            checks[f"host {opt} output == TFLite-Micro"] = \
                None if host is None else host["byte_exact"]
            board = row["board"].get(opt)
            checks[f"Cortex-M4 {opt} output == TFLite-Micro"] = \
                None if board is None else board["byte_exact"]
        for target, met in checks.items():
            out.append({"model": row["model"], "target": target, "met": met,
                        "note": "not measured (tool missing)" if met is None else ""})
    return out


def c_tools() -> dict[str, bool]:
    """Which measurements the installed tools allow (the rest is reported as n/a)."""
    import shutil

    from tools.mcu.run import CC, QEMU, SIZE

    board = all(shutil.which(tool) for tool in (CC, SIZE, QEMU))
    callgrind_ok = shutil.which("valgrind") is not None and shutil.which("gcc") is not None
    if not board:
        progress("c: arm-none-eabi-gcc / qemu-system-arm missing: no Cortex-M4 figures "
                 "(tools/mcu/install_toolchain.sh installs them)")
    if not callgrind_ok:
        progress("c: valgrind or gcc missing: no host instruction counts")
    return {"board": board, "callgrind": callgrind_ok}
