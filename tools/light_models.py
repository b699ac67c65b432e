"""The ``onnx`` package's light models (``onnx/backend/test/data/light/light_*.onnx``):
compile them in the four modes and check each against its oracle.

Shared by ``tests/frontend/test_onnx_light_models.py`` (the small ones) and
``tools/bench_light.py`` (all nine). Modes and checks:

* ``float-tflite``: LiteRT on our ``.tflite`` vs onnxruntime on the model, max abs <= 1e-4;
* ``int8-tflite`` (random calibration in [-1, 1], ``--fallback float``): our integer
  interpreter == TFLite-Micro on every output of ``probe_model`` (the logits too); a
  model with LRN (TFLite-Micro has no LOCAL_RESPONSE_NORMALIZATION kernel, float or int8)
  is checked against LiteRT's reference kernels instead, within 1 LSB (the float LRN's
  ``pow`` rounds differently, and the QUANTIZE after it can move by one step);
* ``float-c``: the host build (gcc) vs our float interpreter on the same graph,
  ``max |c - ours| <= 1e-5 max |ours|`` on the logits (``probe_model``: the Softmax of
  these models' near-equal logits is ill-conditioned);
* ``int8-c`` (same calibration, ``--fallback float``): the host build's output bytes ==
  TFLite-Micro on the int8 ``.tflite`` (our interpreter, within 1 LSB, for the LRN
  models: the C LRN's ``exp(-beta ln b)`` is not numpy's ``pow``).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from microlith.app.driver import CompileOptions, CompileResult, compile_onnx
from microlith.interpreter.run import run_graph
from microlith.streamed_text import StreamedText
from tools.runtimes import (
    input_perm,
    litert_interpreter,
    ort_session,
    quantize_input,
    run_litert,
    tflm_interpreter,
    to_physical,
)

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
NAMES = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
         "shufflenet", "squeezenet", "vgg19", "zfnet512")
MODES = ("float-tflite", "int8-tflite", "float-c", "int8-c")
LRN_MODELS = ("bvlc_alexnet", "inception_v1", "zfnet512")  # TFLite-Micro cannot run them
CALIBRATION_SAMPLES = 2
FLOAT_TOLERANCE = 1e-4  # LiteRT vs onnxruntime, max abs
C_TOLERANCE = 1e-5  # float C vs our float interpreter, relative to the largest output
C_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion", "-O2")
TFLM_ARENA = 96 << 20  # VGG-19's largest activations are 12.8 MB (float 25.7 MB)


def model_path(name: str) -> Path:
    return LIGHT / f"light_{name}.onnx"


def input_of(name: str) -> tuple[str, list[int]]:
    """(name, shape) of the model's one non-initializer input."""
    model = onnx.load(str(model_path(name)), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    value = next(i for i in model.graph.input if i.name not in inits)
    return value.name, [d.dim_value for d in value.type.tensor_type.shape.dim]


def samples(name: str, count: int, seed: int = 9) -> np.ndarray:
    """``count`` inputs uniform in [-1, 1] (NCHW, as the ONNX model takes them)."""
    _, shape = input_of(name)
    return np.random.default_rng(seed).uniform(-1, 1, (count, *shape[1:])).astype(np.float32)


def compile_mode(name: str, mode: str) -> CompileResult:
    quantized = mode.startswith("int8")
    options = CompileOptions(
        target="c" if mode.endswith("-c") else "tflite", quiet=True,
        quantize="int8" if quantized else None, fallback="float" if quantized else None,
        calibration_data=samples(name, CALIBRATION_SAMPLES) if quantized else None,
        warn=lambda message: None)
    return compile_onnx(model_path(name), options)


HARNESS = """\
/* tools/light_models.py: run model_invoke on each input record, write every output. */
#include <stdio.h>
#include <string.h>

#include "model.h"

int main(int argc, char **argv)
{
    static unsigned char record[MODEL_INPUT0_BYTES];
    FILE *in;
    FILE *out;
    int k;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == NULL || (out = fopen(argv[2], "wb")) == NULL) {
        return 2;
    }
    while (fread(record, 1, sizeof record, in) == sizeof record) {
        memcpy(model_input(0), record, sizeof record);
        if (model_invoke() != 0) {
            return 3;
        }
        for (k = 0; k < MODEL_NUM_OUTPUTS; ++k) {
            fwrite(model_output(k), 1, model_output_bytes(k), out);
        }
    }
    fclose(in);
    return fclose(out) == 0 ? 0 : 4;
}
"""


def probe_model(name: str, workdir: Path) -> Path:
    """The model with the input of its final Softmax (the logits) as a second output.

    The light models' weights are one constant per tensor, so their 1000 logits are equal
    up to float32 rounding at magnitudes of 1e5..1e10: the Softmax of them is
    ill-conditioned (a summation order moves it by O(1)), the logits are not. The float
    C check compares both outputs' logits at 1e-5 relative."""
    model = onnx.load(str(model_path(name)))
    last = model.graph.node[-1]
    if last.op_type != "Softmax":
        return model_path(name)
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(last.input[0]))
    path = workdir / f"light_{name}_logits.onnx"
    onnx.save(model, str(path))
    return path


@dataclass
class Check:
    ok: bool
    detail: str


def host_exe(files: Mapping[str, str | StreamedText], workdir: Path) -> Path:
    """Write the C files (a large ``model.c`` streamed) and the record harness, build with
    gcc (``C_FLAGS``: single precision only, warnings are errors); the executable."""
    for file_name, text in files.items():
        with open(workdir / file_name, "w", encoding="utf-8") as handle:
            if isinstance(text, StreamedText):
                text.write_to(handle)
            else:
                handle.write(text)
    (workdir / "main.c").write_text(HARNESS)
    exe = workdir / "model_host"
    subprocess.run(["gcc", *C_FLAGS, "-I", str(workdir), str(workdir / "model.c"),
                    str(workdir / "main.c"), "-o", str(exe)], check=True,
                   capture_output=True, text=True)
    return exe


def run_host(exe: Path, feeds: np.ndarray, dtype: type) -> np.ndarray:
    in_file, out_file = exe.with_suffix(".in"), exe.with_suffix(".out")
    np.ascontiguousarray(feeds).tofile(in_file)
    subprocess.run([str(exe), str(in_file), str(out_file)], check=True, timeout=1200)
    return np.fromfile(out_file, dtype).reshape(len(feeds), -1)


def int8_feeds(result: CompileResult, x: np.ndarray) -> np.ndarray:
    graph = result.graph
    q = graph.inputs[0].quant
    assert q is not None
    return quantize_input(to_physical(x, input_perm(graph)), float(q.scale[0]),
                          int(q.zero_point[0]))


Outputs = list[np.ndarray]  # one [samples, elements] array per graph output


def interpreter_outputs(result: CompileResult, feeds: np.ndarray) -> Outputs:
    graph = result.graph
    outs = run_graph(graph, {graph.inputs[0].name: feeds})
    return [np.asarray(outs[v.name]).reshape(len(feeds), -1) for v in graph.outputs]


def oracle_outputs(name: str, tflite: bytes, feeds: np.ndarray, outputs: int
                   ) -> tuple[str, Outputs]:
    """Every output of TFLite-Micro, or for an LRN model of LiteRT (reference kernels)."""
    rows: list[list[np.ndarray]] = []
    if name in LRN_MODELS:
        interp = litert_interpreter(tflite)
        details = interp.get_output_details()
        for x in feeds:
            interp.set_tensor(interp.get_input_details()[0]["index"], x[None])
            interp.invoke()
            rows.append([interp.get_tensor(d["index"]).reshape(-1).copy() for d in details])
        oracle = "LiteRT"
    else:
        tflm = tflm_interpreter(tflite, TFLM_ARENA)
        count = outputs
        for x in feeds:
            tflm.set_input(x[None], 0)
            tflm.invoke()
            rows.append([tflm.get_output(k).reshape(-1).copy() for k in range(count)])
        oracle = "TFLite-Micro"
    return oracle, [np.stack([r[k] for r in rows]) for k in range(len(rows[0]))]


def compare(got: Outputs, want: Outputs, oracle: str, lsb: int = 0) -> Check:
    """Integer outputs: at most ``lsb`` apart (0: the same bytes); float outputs (the
    dequantized logits -- exact -- or a --fallback float op's) within 1e-5 relative."""
    ok, parts = True, []
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        if a.dtype.kind == "f":
            b = b.astype(a.dtype)
            rel = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30))
            ok &= rel <= C_TOLERANCE
            parts.append(f"out{k} float {rel:.1e}")
        else:
            diff = int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())
            ok &= diff <= lsb
            parts.append(f"out{k} {'identical' if diff == 0 else f'max diff {diff}'}")
    return Check(bool(ok), f"vs {oracle}: " + ", ".join(parts))


def check_int8(name: str, x: np.ndarray, with_c: bool = True) -> tuple[Check, Check | None]:
    """int8 ``.tflite`` and C of ``probe_model`` (same calibration, --fallback float): our
    interpreter vs TFLite-Micro (LiteRT within 1 LSB for an LRN model) on every output,
    and the host C build vs TFLite-Micro (our interpreter for an LRN model)."""
    options = {"quantize": "int8", "fallback": "float", "quiet": True,
               "calibration_data": samples(name, CALIBRATION_SAMPLES),
               "warn": lambda message: None}
    with tempfile.TemporaryDirectory() as tmp:
        probe = probe_model(name, Path(tmp))
        tfl = compile_onnx(probe, CompileOptions(**options))  # type: ignore[arg-type]
        feeds = int8_feeds(tfl, x)
        ours = interpreter_outputs(tfl, feeds)
        oracle, theirs = oracle_outputs(name, tfl.output, feeds, len(ours))
        lrn = name in LRN_MODELS
        tflite_check = compare(ours, theirs, f"interpreter {oracle}", 1 if lrn else 0)
        if not with_c:
            return tflite_check, None
        c = compile_onnx(probe, CompileOptions(target="c", **options))  # type: ignore[arg-type]
        flat = run_host(host_exe(c.files, Path(tmp)), feeds, np.uint8)
    got, offset = [], 0
    for value in c.graph.outputs:
        width = value.type.nbytes
        got.append(np.ascontiguousarray(flat[:, offset:offset + width]).view(
            value.dtype.numpy))
        offset += width
    c_check = compare(got, ours if lrn else theirs, "interpreter" if lrn else oracle,
                      1 if lrn else 0)
    return tflite_check, c_check


def check_float_c(name: str, x: np.ndarray) -> Check:
    """Float C (host gcc -O2) vs our float interpreter, on the last output (the logits of
    ``probe_model``), ``max |c - ours| <= 1e-5 max |ours|``."""
    with tempfile.TemporaryDirectory() as tmp:
        result = compile_onnx(probe_model(name, Path(tmp)), CompileOptions(
            target="c", quiet=True, warn=lambda message: None))
        graph = result.graph
        feeds = to_physical(x, input_perm(graph)).astype(np.float32)
        got = run_host(host_exe(result.files, Path(tmp)), feeds, np.float32)
    outs = run_graph(graph, {graph.inputs[0].name: feeds})
    sizes = [v.type.numel for v in graph.outputs]
    last = np.asarray(outs[graph.outputs[-1].name]).reshape(len(feeds), -1)
    got_last = got[:, sum(sizes[:-1]):]
    rel = float(np.abs(got_last - last).max() / max(float(np.abs(last).max()), 1e-30))
    what = "logits" if len(sizes) > 1 else "output"
    return Check(rel <= C_TOLERANCE, f"C vs float interpreter ({what}) {rel:.1e} relative")


def check_float_tflite(name: str, result: CompileResult, x: np.ndarray) -> Check:
    """LiteRT on our float ``.tflite`` vs onnxruntime on the model, max abs <= 1e-4."""
    session = ort_session(model_path(name))
    reference = np.stack([session.run(None, {input_of(name)[0]: row[None]})[0][0] for row in x])
    got = run_litert(result.output, to_physical(x, input_perm(result.graph)))
    err = float(np.abs(got.reshape(reference.shape) - reference).max())
    return Check(err <= FLOAT_TOLERANCE, f"LiteRT vs onnxruntime max abs {err:.1e}")
