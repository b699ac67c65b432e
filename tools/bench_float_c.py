"""Benchmark the weight-only modes and the float C target (issue: dynamic range / float16).

    python tools/bench_float_c.py [--json out/bench_float_c.json] [--only NAME] [--skip-board]

modes: for every trained zoo model and each of float32 / ``--quantize dynamic`` /
``--quantize float16``: top-1 on the 450 held-out digits (LiteRT reference kernels on our
``.tflite``), argmax agreement with onnxruntime on the float model, max |logit difference|
from onnxruntime (and, for float16, what rounding the ONNX initializers to float16 alone
moves onnxruntime by), ``.tflite`` bytes and weight bytes with their ratio to float32, and
compile seconds (best of 3). The TF converter's figures need ``tensorflow`` and
``onnx2tf``; where either is missing the column says n/a.

c: for every trained zoo model and weight form (float32, float16, int8 per channel with
the weights dequantized in the kernel, ``--hybrid dequantize``, and int8 with the input
quantized per inference and an integer dot product, ``--hybrid integer``) the float C
target (``--target c``): weight table bytes, arena, the model object's flash
(``text + data``, ``arm-none-eabi-size``), instructions per inference on the Cortex-M4
under qemu (``-O2``, ``-mfloat-abi=hard -mfpu=fpv4-sp-d16``; mean of 3 held-out images)
and per MAC, and the largest difference from our float interpreter relative to the
largest output. Prints the tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from microlith.app.driver import CompileOptions, compile_onnx  # noqa: E402
from microlith.formats.tflite.flatbuffer import parse_model  # noqa: E402
from microlith.interpreter import run_graph  # noqa: E402
from tools.bench_c import model_macs, object_flash  # noqa: E402
from tools.bench_common import TRAINED, ZOO, digits_for, progress  # noqa: E402
from tools.runtimes import input_perm, ort_outputs, ort_session, run_litert, to_physical  # noqa: E402

MODES = (None, "dynamic", "float16")
#: float C weight forms: (label, --quantize, --hybrid)
C_FORMS = (("float32", None, None), ("float16", "float16", None),
           ("int8 dequant", "dynamic", "dequantize"), ("int8 integer-dot", "dynamic", "integer"))
BOARD_INPUTS = 3


def _label(mode: str | None) -> str:
    return mode or "float32"


def _weight_bytes(data: bytes) -> int:
    return sum(len(t.data) for t in parse_model(data).tensors if t.data)


def _rounded_reference(path: str, xs: np.ndarray) -> np.ndarray:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(path)
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(array.astype(np.float16).astype(np.float32),
                                                  init.name))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return ort_outputs(session, xs)


def tf_converter_available() -> str | None:
    try:
        import onnx2tf  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError as exc:
        return f"n/a ({exc.name} is not installed)"
    return None


def bench_modes(name: str) -> list[dict]:
    path = os.path.join(ZOO, f"{name}.onnx")
    _, x_test, y_test = digits_for(name)
    reference = ort_outputs(ort_session(path), x_test)
    rows, float_bytes, float_weights = [], 0, 0
    for mode in MODES:
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            result = compile_onnx(path, CompileOptions(quantize=mode, quiet=True,
                                                       warn=lambda message: None))
            seconds.append(time.perf_counter() - start)
        out = run_litert(result.output, to_physical(x_test, input_perm(result.graph)))
        out = out.reshape(reference.shape)
        weights = _weight_bytes(result.output)
        if mode is None:
            float_bytes, float_weights = len(result.output), weights
        row = {"model": name, "mode": _label(mode),
               "top1": round(float((out.argmax(1) == y_test).mean() * 100), 2),
               "agreement": round(float((out.argmax(1) == reference.argmax(1)).mean() * 100),
                                  2),
               "max_abs_vs_ort": float(np.abs(out - reference).max()),
               "bytes": len(result.output), "ratio": round(len(result.output) / float_bytes, 3),
               "weight_bytes": weights, "weight_ratio": round(weights / float_weights, 3),
               "compile_s": round(min(seconds), 4), "tf_converter": tf_converter_available()}
        if mode == "float16":
            row["max_abs_rounding_alone"] = float(
                np.abs(_rounded_reference(path, x_test) - reference).max())
        rows.append(row)
    return rows


def bench_float_c(name: str, board: bool) -> list[dict]:
    from tools.mcu.run import build_and_run

    path = os.path.join(ZOO, f"{name}.onnx")
    _, x_test, _ = digits_for(name)
    rows = []
    for label, mode, hybrid in C_FORMS:
        result = compile_onnx(path, CompileOptions(target="c", quantize=mode, hybrid=hybrid,
                                                   quiet=True, warn=lambda message: None))
        graph = result.graph
        feeds = to_physical(x_test[:BOARD_INPUTS], input_perm(graph)).astype(np.float32)
        ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
        macs = model_macs(graph)
        row: dict = {"model": name, "weights": label, "macs": macs,
                     "weight_bytes": result.sizes["weights"], "arena": result.sizes["arena"]}
        if board:
            with tempfile.TemporaryDirectory(prefix="microlith-bench-fc-") as tmp:
                model_dir = os.path.join(tmp, "model")
                os.makedirs(model_dir)
                for file_name, text in result.files.items():
                    with open(os.path.join(model_dir, file_name), "w") as handle:
                        handle.write(text)
                progress(f"  {name} {label}: Cortex-M4 -O2 under qemu")
                workdir = os.path.join(tmp, "board")
                run = build_and_run(model_dir, [f.tobytes() for f in feeds], workdir=workdir)
                got = np.stack([np.frombuffer(o, np.float32) for o in run.outputs])
                mean = sum(run.instructions) / len(run.instructions)
                row.update({
                    "model_flash": object_flash(os.path.join(workdir, "00_model.o")),
                    "m4_instructions": round(mean, 1),
                    "m4_per_mac": round(mean / macs, 3) if macs else None,
                    "max_rel_vs_interpreter": float(
                        np.abs(got - ours.reshape(got.shape)).max() / np.abs(ours).max())})
        rows.append(row)
    return rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for cells in rows:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))


def _print_modes(modes: list[dict]) -> None:
    print("## weight-only modes (.tflite in LiteRT)")
    print_table(["model", "mode", "top1", "agree", "max|d| ort", "rounding alone", "bytes",
                 "ratio", "weights", "w ratio", "compile s", "TF converter"],
                [[r["model"], r["mode"], f"{r['top1']:.2f}", f"{r['agreement']:.2f}",
                  f"{r['max_abs_vs_ort']:.3g}",
                  f"{r['max_abs_rounding_alone']:.3g}" if "max_abs_rounding_alone" in r
                  else "", str(r["bytes"]), f"{r['ratio']:.3f}", str(r["weight_bytes"]),
                  f"{r['weight_ratio']:.3f}", f"{r['compile_s']:.3f}",
                  r["tf_converter"] or "see JSON"] for r in modes])


def _print_float_c(c_rows: list[dict]) -> None:
    print("\n## float C target (Cortex-M4, qemu, -O2)")
    print_table(["model", "weights", "MACs", "weight bytes", "arena", "model.o flash",
                 "M4 instructions", "per MAC", "max rel vs interpreter"],
                [[r["model"], r["weights"], str(r["macs"]), str(r["weight_bytes"]),
                  str(r["arena"]), str(r.get("model_flash", "n/a")),
                  str(r.get("m4_instructions", "n/a")), str(r.get("m4_per_mac", "n/a")),
                  f"{r['max_rel_vs_interpreter']:.2g}" if "max_rel_vs_interpreter" in r
                  else "n/a"] for r in c_rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", default=os.path.join(ROOT, "out", "bench_float_c.json"))
    parser.add_argument("--only", action="append", default=None)
    parser.add_argument("--skip-board", action="store_true")
    parser.add_argument("--c-only", action="store_true", help="only the float C table")
    args = parser.parse_args(argv)
    names = args.only or list(TRAINED)
    modes = [] if args.c_only else [row for name in names for row in bench_modes(name)]
    if modes:
        _print_modes(modes)
    c_rows = [row for name in names for row in bench_float_c(name, not args.skip_board)]
    _print_float_c(c_rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump({"modes": modes, "float_c": c_rows}, handle, indent=1, sort_keys=True)
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
