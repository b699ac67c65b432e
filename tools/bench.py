"""Benchmark the zoo: compile each model and measure it against real runtimes.

    python tools/bench.py [--json out/bench.json] [--only NAME] [--samples N]

For every ``tests/zoo/*.onnx``: ONNX node count, TFLite op count (and PAD /
TRANSPOSE counts), ``.tflite`` bytes, compile seconds (best of 3), and the max
abs difference against onnxruntime of LiteRT (reference kernels) and
TFLite-Micro on real inputs (held-out digits for the trained models, seeded
random data for the helper models). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from backends.tflite.flatbuffer import parse_model  # noqa: E402
from compiler.driver import CompileOptions, compile_onnx  # noqa: E402
from tools.digits import load_digits_split  # noqa: E402

ZOO = os.path.join(ROOT, "tests", "zoo")


def model_inputs(path: str, shape: tuple[int, ...], samples: int) -> np.ndarray:
    """Real digits for the trained models (by input shape), seeded noise otherwise."""
    name = os.path.basename(path)
    if not name.startswith("helper"):
        _, _, x_test, _ = load_digits_split(16, "NCHW") if len(shape) == 4 else \
            load_digits_split(8, "flat")
        return x_test[:samples].reshape(-1, *shape[1:])
    return np.random.default_rng(0).standard_normal((samples, *shape[1:])).astype(np.float32)


def run_litert(data: bytes, xs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=data,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    results = []
    for x in xs:
        interp.set_tensor(inp, x[None])
        interp.invoke()
        results.append(interp.get_tensor(out)[0].copy())
    return np.stack(results)


def run_tflm(data: bytes, xs: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 22)
    results = []
    for x in xs:
        interp.set_input(x[None], 0)
        interp.invoke()
        results.append(interp.get_output(0)[0].copy())
    return np.stack(results)


def bench_model(path: str, samples: int) -> dict:
    import onnx
    import onnxruntime as ort

    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        result = compile_onnx(path, CompileOptions(warn=lambda message: None))
        seconds.append(time.perf_counter() - start)
    data = result.output
    tfl = parse_model(data)
    ops = Counter(op.op for op in tfl.operators)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    in_name = session.get_inputs()[0].name
    shape = tuple(session.get_inputs()[0].shape)
    xs = model_inputs(path, shape, samples)
    reference = np.concatenate([session.run(None, {in_name: x[None]})[0] for x in xs])
    perm = result.graph.meta.get("io_perms", {}).get(result.graph.inputs[0].name)
    xs_t = xs.transpose(0, *[p for p in perm[1:]]) if perm else xs
    litert, tflm = run_litert(data, xs_t), run_tflm(data, xs_t)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join("out", "bench.json"))
    parser.add_argument("--only", help="benchmark one zoo model by name")
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    names = sorted(f for f in os.listdir(ZOO) if f.endswith(".onnx"))
    if args.only:
        names = [n for n in names if n == args.only + ".onnx"]
    rows = []
    for name in names:
        print(f"benchmarking {name} ...", file=sys.stderr)
        rows.append(bench_model(os.path.join(ZOO, name), args.samples))
    header = ["model", "onnx_nodes", "tflite_ops", "pad", "transpose", "tflite_bytes",
              "compile_s", "max_abs_litert", "max_abs_tflm"]
    widths = [max(len(h), 14) if h == "model" else len(h) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        cells = [f"{row[h]:.2e}" if h.startswith("max_abs") else str(row[h]) for h in header]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump({"float": rows}, handle, indent=2, sort_keys=True)
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
