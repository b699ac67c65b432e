"""Benchmark the zoo: compile each model and measure it against real runtimes.

    python tools/bench.py [--json out/bench.json] [--only NAME] [--samples N]
                          [--skip-float] [--skip-int8] [--skip-c]

float: for every ``tests/zoo/*.onnx``: ONNX node count, TFLite op count (and PAD /
TRANSPOSE counts), ``.tflite`` bytes, compile seconds (best of 3), and the max
abs difference against onnxruntime of LiteRT (reference kernels) and
TFLite-Micro on real inputs (held-out digits for the trained models, seeded
random data for the helper models).

int8: for every trained zoo model, ``--quantize int8`` with 300 training images as
calibration data: top-1 of the float model (onnxruntime) and of our int8 model
(TFLite-Micro) on the 450 held-out images and their argmax agreement, ``.tflite``
bytes and the ratio to the float ``.tflite``, the smallest TFLite-Micro arena that
allocates (bisection) for our float and int8 models, compile seconds (best of 3).
Side by side: onnxruntime's ``quantize_static`` (QDQ, per-channel, QInt8
activations and weights, MinMax on the same 300 images) run by onnxruntime, and the
TFLite converter (full-integer, same data) when ``tensorflow`` and ``onnx2tf`` are
importable (otherwise a note says it was skipped). The issue's targets are
reported, not asserted.

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

Prints the tables (progress goes to stderr) and writes everything to the JSON; sections
not run keep their previous contents of an existing JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from microlith.app.driver import CompileOptions, compile_onnx  # noqa: E402
from microlith.formats.tflite.flatbuffer import parse_model  # noqa: E402
from microlith.ir.core import Graph  # noqa: E402
from tools.digits import load_digits_split  # noqa: E402
from tools.runtimes import (  # noqa: E402
    input_perm,
    ort_outputs,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    tflm_interpreter,
    tflm_invoke,
    to_physical,
    top1,
)

ZOO = os.path.join(ROOT, "tests", "zoo")
TRAINED = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
N_CALIBRATION = 300  # training images used as calibration data (ours and the peers')
SIZE_TARGET = 0.3  # int8 .tflite <= 0.3x float for models over 10k parameters
BIG_MODEL_PARAMS = 10_000
TFLM_ARENA = 1 << 22  # arena of the TFLite-Micro runs that compare outputs (not the bisection)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_inputs(path: str, shape: tuple[int, ...], samples: int) -> np.ndarray:
    """Real digits for the trained models (by input shape), seeded noise otherwise."""
    name = os.path.basename(path)
    if not name.startswith("helper"):
        _, _, x_test, _ = load_digits_split(16, "NCHW") if len(shape) == 4 else \
            load_digits_split(8, "flat")
        return x_test[:samples].reshape(-1, *shape[1:])
    return np.random.default_rng(0).standard_normal((samples, *shape[1:])).astype(np.float32)


def bench_model(path: str, samples: int) -> dict:
    import onnx

    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        result = compile_onnx(path, CompileOptions(warn=lambda message: None))
        seconds.append(time.perf_counter() - start)
    data = result.output
    tfl = parse_model(data)
    ops = Counter(op.op for op in tfl.operators)
    session = ort_session(path, single_thread=False)
    shape = tuple(session.get_inputs()[0].shape)
    xs = model_inputs(path, shape, samples)
    reference = ort_outputs(session, xs)
    xs_t = to_physical(xs, input_perm(result.graph))
    litert, tflm = run_litert(data, xs_t), run_tflm(data, xs_t, TFLM_ARENA)
    return {
        "model": os.path.splitext(os.path.basename(path))[0],
        "onnx_nodes": len(onnx.load(path).graph.node),
        "tflite_ops": len(tfl.operators),
        "pad": ops.get("PAD", 0) + ops.get("PADV2", 0),
        "transpose": ops.get("TRANSPOSE", 0),
        "tflite_bytes": len(data),
        "compile_s": round(min(seconds), 4),
        "max_abs_litert": float(np.abs(litert - reference).max()),
        "max_abs_tflm": float(np.abs(tflm - reference).max()),
        "samples": len(xs),
    }


# --------------------------------------------------------------------------- int8


def digits_for(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(300 calibration images, 450 test images, test labels) in the model's ONNX layout."""
    x_train, _, x_test, y_test = (load_digits_split(8, "flat") if name == "mlp_sigmoid"
                                  else load_digits_split(16, "NCHW"))
    return x_train[:N_CALIBRATION], x_test, y_test


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Silence fds 1 and 2 (TFLite-Micro logs failed allocations from C++)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def tflm_allocates(data: bytes, arena_size: int) -> bool:
    """Whether TFLite-Micro allocates ``data`` in ``arena_size`` bytes.

    Tried in a forked child where ``fork`` exists: for some sizes just too small,
    TFLite-Micro's Python runtime crashes (a failed tail allocation leaves "available"
    negative and the next one segfaults) instead of raising, and a crash of the child
    counts as "does not allocate".
    """
    from tflite_micro.python.tflite_micro import runtime

    if not hasattr(os, "fork"):
        try:
            with silenced():
                runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            return True
        except RuntimeError:
            return False
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: no Python cleanup, just the verdict
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def tflm_arena_bytes(data: bytes, feed: np.ndarray) -> int:
    """The smallest ``arena_size`` TFLite-Micro allocates ``data`` in (bisection).

    The model is also invoked once at that size on ``feed`` (one sample, batch 1).
    """
    lo, hi = 0, 1024  # lo never allocates (nothing fits in 0 bytes), hi does
    while not tflm_allocates(data, hi):
        lo, hi = hi, hi * 2
        if hi > 1 << 28:
            raise RuntimeError("TFLite-Micro does not allocate the model even in 256 MiB")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if tflm_allocates(data, mid) else (mid, hi)
    tflm_invoke(tflm_interpreter(data, arena_size=hi), feed)
    return hi


def best_of(n: int, fn: Callable[[], object]) -> tuple[float, object]:
    """(best wall-clock seconds of ``n`` runs, the last result)."""
    seconds, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return min(seconds), result


def ort_quantize_peer(path: str, x_cal: np.ndarray, x_test: np.ndarray, labels: np.ndarray,
                      float_top1: np.ndarray) -> dict:
    """onnxruntime ``quantize_static``: QDQ, per-channel, QInt8/QInt8, MinMax; run by ORT.

    The model first goes through ``quant_pre_process`` (shape inference and ORT's graph
    optimizations, which fold BatchNormalization into the convolutions), as
    onnxruntime's quantization guide asks.
    """
    import logging

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = ort_session(path).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.samples = iter(x_cal)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.samples, None)
            return None if x is None else {input_name: x[None]}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static logs advice through the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared, qdq = os.path.join(tmp, "model_pre.onnx"), os.path.join(tmp, "model_qdq.onnx")
            start = time.perf_counter()
            quant_pre_process(path, prepared)
            quantize_static(prepared, qdq, Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
            seconds = time.perf_counter() - start
            got = top1(ort_outputs(ort_session(qdq), x_test))
            size = os.path.getsize(qdq)
    finally:
        root.setLevel(level)
    return {"top1": round(100 * float(np.mean(got == labels)), 2),
            "agreement": round(float(np.mean(got == float_top1)), 4),
            "onnx_bytes": size, "quantize_s": round(seconds, 3)}


def tflite_converter_peer(path: str, perm: list[int] | None, x_cal: np.ndarray,
                          x_test: np.ndarray, labels: np.ndarray, float_top1: np.ndarray
                          ) -> dict:
    """The TFLite converter's full-integer mode (ONNX -> onnx2tf -> TF), run by TFLite-Micro."""
    try:
        import tensorflow as tf
    except ImportError:
        return {"skipped": "tensorflow is not installed"}
    try:
        import onnx2tf
    except ImportError:
        return {"skipped": "onnx2tf is not installed (the TFLite converter needs a TF model)"}

    try:
        with tempfile.TemporaryDirectory() as tmp:
            onnx2tf.convert(input_onnx_file_path=path, output_folder_path=tmp,
                            non_verbose=True)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([to_physical(x[None], perm)]
                                                        for x in x_cal)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            data = converter.convert()
        from ai_edge_litert.interpreter import Interpreter

        scale, zero_point = Interpreter(model_content=data).get_input_details()[0]["quantization"]
        feeds = quantize_input(to_physical(x_test, perm), scale, zero_point, "int8")
        got = top1(run_tflm(data, feeds, TFLM_ARENA))
        return {"top1": round(100 * float(np.mean(got == labels)), 2),
                "agreement": round(float(np.mean(got == float_top1)), 4),
                "tflite_bytes": len(data), "arena_bytes": tflm_arena_bytes(data, feeds[:1])}
    except Exception as exc:  # a peer failing is a finding, not a crash of the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}


def bench_int8(name: str, method: str = "minmax") -> dict:
    import onnx

    path = os.path.join(ZOO, f"{name}.onnx")
    x_cal, x_test, labels = digits_for(name)
    options = CompileOptions(quantize="int8", calibration_data=x_cal, quiet=True,
                             calibration_method=method, warn=lambda message: None)
    progress(f"  {name}: compiling int8 (best of 3)")
    compile_s, result = best_of(3, lambda: compile_onnx(path, options))
    float_data = compile_onnx(path, CompileOptions(warn=lambda message: None)).output
    data, graph = result.output, result.graph
    perm = input_perm(graph)
    x_phys = to_physical(x_test, perm)
    quant = graph.inputs[0].quant
    feeds = quantize_input(x_phys, quant.scale[0], quant.zero_point[0], "int8")
    progress(f"  {name}: onnxruntime float and TFLite-Micro int8 on {len(x_test)} images")
    float_top1 = top1(ort_outputs(ort_session(path), x_test))
    int8_top1 = top1(run_tflm(data, feeds, TFLM_ARENA))
    progress(f"  {name}: TFLite-Micro arena bisection")
    arena_float = tflm_arena_bytes(float_data, x_phys[:1])
    arena_int8 = tflm_arena_bytes(data, feeds[:1])
    progress(f"  {name}: onnxruntime quantize_static")
    ort_peer = ort_quantize_peer(path, x_cal, x_test, labels, float_top1)
    progress(f"  {name}: TFLite converter")
    tf_peer = tflite_converter_peer(path, perm, x_cal, x_test, labels, float_top1)
    params = int(sum(np.prod(i.dims, dtype=np.int64)
                     for i in onnx.load(path).graph.initializer))
    return {
        "model": name,
        "params": params,
        "samples": len(x_test),
        "calibration_samples": len(x_cal),
        "calibration_method": method,
        "float_top1": round(100 * float(np.mean(float_top1 == labels)), 2),
        "int8_top1": round(100 * float(np.mean(int8_top1 == labels)), 2),
        "agreement": round(float(np.mean(int8_top1 == float_top1)), 4),
        "float_bytes": len(float_data),
        "int8_bytes": len(data),
        "size_ratio": round(len(data) / len(float_data), 4),
        "arena_float": arena_float,
        "arena_int8": arena_int8,
        "compile_s": round(compile_s, 4),
        "ort_qdq": ort_peer,
        "tflite_converter": tf_peer,
    }


def int8_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, per model: met (True/False) or not measurable (None, with why)."""
    out = []
    for row in rows:
        ort_peer, tf_peer = row["ort_qdq"], row["tflite_converter"]
        tf_why = tf_peer.get("skipped") or tf_peer.get("error")
        checks = {
            "accuracy >= onnxruntime QDQ": row["int8_top1"] >= ort_peer["top1"],
            "agreement >= onnxruntime QDQ": row["agreement"] >= ort_peer["agreement"],
            "accuracy >= TFLite converter":
                None if tf_why else row["int8_top1"] >= tf_peer["top1"],
            "agreement >= TFLite converter":
                None if tf_why else row["agreement"] >= tf_peer["agreement"],
            "arena <= TFLite converter":
                None if tf_why else row["arena_int8"] <= tf_peer["arena_bytes"],
        }
        if row["params"] > BIG_MODEL_PARAMS:
            checks[f"size <= {SIZE_TARGET}x float"] = row["size_ratio"] <= SIZE_TARGET
        for target, met in checks.items():
            out.append({"model": row["model"], "target": target, "met": met,
                        "note": f"not measured: {tf_why}" if met is None else ""})
    return out


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for cells in rows:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))


def print_int8(rows: list[dict], targets: list[dict]) -> None:
    def peer(row: dict, key: str, field: str, fmt: str) -> str:
        value = row[key].get(field)
        return "n/a" if value is None else format(value, fmt)

    header = ["model", "float_top1", "int8_top1", "agree", "ort_qdq_top1", "ort_qdq_agree",
              "tf_top1", "tf_agree", "float_bytes", "int8_bytes", "ratio", "arena_float",
              "arena_int8", "arena_tf", "compile_s"]
    table = [[r["model"], f"{r['float_top1']:.2f}", f"{r['int8_top1']:.2f}",
              f"{r['agreement']:.4f}", peer(r, "ort_qdq", "top1", ".2f"),
              peer(r, "ort_qdq", "agreement", ".4f"), peer(r, "tflite_converter", "top1", ".2f"),
              peer(r, "tflite_converter", "agreement", ".4f"), str(r["float_bytes"]),
              str(r["int8_bytes"]), f"{r['size_ratio']:.3f}", str(r["arena_float"]),
              str(r["arena_int8"]), peer(r, "tflite_converter", "arena_bytes", "d"),
              f"{r['compile_s']:.3f}"] for r in rows]
    print_table(header, table)
    notes = sorted({r["tflite_converter"].get("skipped") or r["tflite_converter"].get("error")
                    or "" for r in rows} - {""})
    for note in notes:
        print(f"note: TFLite converter columns n/a: {note}")
    print()
    print_table(["model", "target", "met"],
                [[t["model"], t["target"],
                  t["note"] if t["met"] is None else ("yes" if t["met"] else "NO")]
                 for t in targets])


# --------------------------------------------------------------------------- c

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


def print_c(rows: list[dict], targets: list[dict]) -> None:
    def board(row: dict, opt: str, field: str, fmt: str = "d") -> str:
        value = row["board"].get(opt, {}).get(field)
        return "n/a" if value is None else format(value, fmt)

    def host(row: dict, opt: str, field: str, fmt: str) -> str:
        value = row["host"].get(opt, {}).get(field)
        return "n/a" if value is None else format(value, fmt)

    header = ["model", "MACs", "arena", "tflm_arena", "ratio", "weights", "flash_O2",
              "flash_Os", "model_flash_O2", "model_flash_Os", "m4_instr_O2", "m4_instr_Os",
              "instr/MAC_O2", "instr/MAC_Os", "host_O2", "host_Os", "host_tflm",
              "host_ratio_O2", "host_ratio_Os"]
    table = [[r["model"], str(r["macs"]), str(r["arena"]), str(r["tflm_arena"]),
              f"{r['arena_ratio']:.3f}", str(r["weights_bytes"]),
              board(r, "-O2", "flash"), board(r, "-Os", "flash"),
              board(r, "-O2", "model_flash"), board(r, "-Os", "model_flash"),
              board(r, "-O2", "instructions", ".0f"), board(r, "-Os", "instructions", ".0f"),
              board(r, "-O2", "instructions_per_mac", ".2f"),
              board(r, "-Os", "instructions_per_mac", ".2f"),
              host(r, "-O2", "instructions", ".0f"), host(r, "-Os", "instructions", ".0f"),
              "n/a" if "tflm" not in r["host"] else f"{r['host']['tflm']:.0f}",
              host(r, "-O2", "ratio", ".3f"), host(r, "-Os", "ratio", ".3f")]
             for r in rows]
    print_table(header, table)
    print("flash = text + data of the Cortex-M4 ELF (model, harness with "
          f"{C_BOARD_INPUTS} embedded inputs, startup, newlib); model_flash = text + data of "
          "model.o alone; m4_instr = instructions per model_invoke under qemu (mean); host = "
          "x86-64 instructions per inference under callgrind (model_invoke vs TFLite-Micro's "
          "MicroInterpreter::Invoke, same inputs)")
    print()
    print_table(["model", "target", "met"],
                [[t["model"], t["target"],
                  t["note"] if t["met"] is None else ("yes" if t["met"] else "NO")]
                 for t in targets])


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join("out", "bench.json"))
    parser.add_argument("--only", help="benchmark one zoo model by name")
    parser.add_argument("--samples", type=int, default=200,
                        help="inputs compared with onnxruntime in the float section")
    parser.add_argument("--skip-float", action="store_true", help="skip the float section")
    parser.add_argument("--skip-int8", action="store_true", help="skip the int8 section")
    parser.add_argument("--skip-c", action="store_true", help="skip the C section")
    parser.add_argument("--calibration-method", default="minmax",
                        choices=["minmax", "percentile", "entropy", "mse"],
                        help="our calibration method in the int8 section (the onnxruntime "
                        "peer always uses MinMax)")
    args = parser.parse_args()
    names = sorted(f for f in os.listdir(ZOO) if f.endswith(".onnx"))
    if args.only:
        names = [n for n in names if n == args.only + ".onnx"]
        if not names:
            parser.error(f"--only {args.only}: no such zoo model")
    report: dict = {}
    if not args.skip_float:
        rows = []
        for name in names:
            progress(f"float: benchmarking {name} ...")
            rows.append(bench_model(os.path.join(ZOO, name), args.samples))
        header = ["model", "onnx_nodes", "tflite_ops", "pad", "transpose", "tflite_bytes",
                  "compile_s", "max_abs_litert", "max_abs_tflm"]
        print("float")
        print_table(header, [[f"{row[h]:.2e}" if h.startswith("max_abs") else str(row[h])
                              for h in header] for row in rows])
        report["float"] = rows
    if not args.skip_int8:
        int8_names = [n for n in TRAINED if n + ".onnx" in names]
        rows = []
        for name in int8_names:
            progress(f"int8: benchmarking {name} ...")
            rows.append(bench_int8(name, args.calibration_method))
        if rows:
            targets = int8_targets(rows)
            if "float" in report:
                print()
            print(f"int8 (top-1 % on {rows[0]['samples']} held-out digits; calibration: "
                  f"{args.calibration_method} on {N_CALIBRATION} training images; agreement = "
                  "argmax equal to the float model's)")
            print_int8(rows, targets)
            report["int8"] = rows
            report["int8_targets"] = targets
    if not args.skip_c:
        c_names = [n for n in TRAINED if n + ".onnx" in names]
        tools = c_tools()
        rows = []
        for name in c_names:
            progress(f"c: benchmarking {name} ...")
            rows.append(bench_c(name, tools))
        if rows:
            targets = c_targets(rows)
            if "float" in report or "int8" in report:
                print()
            print("c (our C from --target c vs TFLite-Micro running our int8 .tflite; "
                  f"targets: arena <= {C_ARENA_TARGET}x, host instructions <= "
                  f"{C_HOST_TARGET}x)")
            print_c(rows, targets)
            report["c"] = rows
            report["c_targets"] = targets
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    if os.path.isfile(args.json):  # keep the sections not run this time
        with open(args.json) as handle:
            try:
                report = {**json.load(handle), **report}
            except ValueError:
                pass
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
    progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
