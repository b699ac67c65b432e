"""Peak memory of a compile: each (model, mode) compiled in a fresh child process.

The goal (issue 9, item 6): the peak resident set of any compile stays within
``3 * float weight bytes + 200 MB``. The peak is the child's own ``VmHWM`` (read from
``/proc/self/status`` after the output is written), not ``ru_maxrss`` of the children,
which would include the parent's resident set copied at ``fork``.

Modes: ``float`` and ``int8`` ``.tflite``, ``c`` and ``c-int8`` (the C target, float
and int8). int8 calibrates on a few random samples in ``[-1, 1]`` (seeded). The float
weight bytes are the model's constant tensors (initializers, ``Constant`` and
``ConstantOfShape`` outputs) as float32.

    nice python tools/bench_memory.py                 # VGG-19 and two small light models
    nice python tools/bench_memory.py --models light_squeezenet --modes float,c
    python tools/bench_memory.py --json bench_memory.json

Prints a table and writes JSON (a list of rows: model, mode, weight_bytes, peak_bytes,
goal_bytes, ratio = peak / goal, seconds, error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MB = 1 << 20
MODES = ("float", "int8", "c", "c-int8")
DEFAULT_MODELS = ("light_vgg19", "light_squeezenet", "light_resnet50")
GOAL_FACTOR, GOAL_EXTRA = 3, 200 * MB


def goal_bytes(weight_bytes: int) -> int:
    """The bound of issue 9: three times the float weights plus 200 MB."""
    return GOAL_FACTOR * weight_bytes + GOAL_EXTRA


def light_model(name: str) -> str:
    """The path of an ``onnx`` package light model (``light_vgg19``, ...) or a file path."""
    if os.path.exists(name):
        return name
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light",
                        name + ".onnx")


def float_weight_bytes(path: str) -> int:
    """Bytes of the model's constants as float32 (initializers and constant nodes)."""
    import math

    import onnx
    from onnx import numpy_helper

    model = onnx.load(path, load_external_data=False)
    shapes = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = numpy_helper.to_array(attr.t)
    used_as_shape = set()
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            used_as_shape.add(node.input[0])
            total += 4 * math.prod(int(d) for d in shapes[node.input[0]].reshape(-1))
    total += sum(4 * a.size for name, a in shapes.items() if name not in used_as_shape)
    return total


def vm_hwm() -> int:
    """This process's peak resident set in bytes (``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(path: str, mode: str, out: str) -> None:
    """Compile ``path`` in ``mode``, write the result under ``out``, print JSON stats."""
    import numpy as np

    from microlith.app.driver import CompileOptions, compile_onnx, write_atomic, write_directory

    target = "c" if mode.startswith("c") else "tflite"
    quantize = "int8" if mode.endswith("int8") else None
    data = None
    if quantize:
        # the input's shape comes from a file the parent wrote: loading the model here
        # would put a protobuf copy of its initializers into this process's peak
        with open(os.path.join(out, "input_shape.json"), encoding="utf-8") as handle:
            shape = json.load(handle)
        rng = np.random.default_rng(0)
        data = [rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(4)]
    start = time.perf_counter()
    result = compile_onnx(path, CompileOptions(target=target, quantize=quantize,
                                               calibration_data=data, quiet=True))
    if target == "c":
        write_directory(os.path.join(out, "c"), result.files)
    else:
        write_atomic(os.path.join(out, "model.tflite"), result.output)
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_bytes": vm_hwm(), "seconds": seconds}))


def write_input_shape(path: str, out: str) -> None:
    """``out/input_shape.json``: the model's one graph input's shape (dynamic dims as 1)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in inits]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    with open(os.path.join(out, "input_shape.json"), "w", encoding="utf-8") as handle:
        json.dump(shape, handle)


def measure(path: str, mode: str) -> dict[str, object]:
    """One compile in a fresh interpreter; its peak RSS and seconds (or its error)."""
    with tempfile.TemporaryDirectory() as out:
        write_input_shape(path, out)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", path,
                               mode, out], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "failed").splitlines()
        return {"error": lines[-1][:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", default="bench_memory.json")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "MODE", "OUTDIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    rows = []
    print(f"{'model':<20} {'mode':<7} {'weights MB':>10} {'peak MB':>8} {'goal MB':>8} "
          f"{'ratio':>6} {'s':>7}")
    for name in args.models.split(","):
        path = light_model(name)
        weights = float_weight_bytes(path)
        for mode in args.modes.split(","):
            if mode not in MODES:
                parser.error(f"unknown mode {mode!r} (one of {', '.join(MODES)})")
            stats = measure(path, mode)
            goal = goal_bytes(weights)
            row = {"model": os.path.basename(path).removesuffix(".onnx"), "mode": mode,
                   "weight_bytes": weights, "goal_bytes": goal, **stats}
            if "peak_bytes" in stats:
                peak = int(stats["peak_bytes"])  # type: ignore[call-overload]
                row["ratio"] = round(peak / goal, 3)
                print(f"{row['model']:<20} {mode:<7} {weights / MB:>10.1f} {peak / MB:>8.0f} "
                      f"{goal / MB:>8.0f} {peak / goal:>6.2f} {stats['seconds']:>7.1f}",
                      flush=True)
            else:
                print(f"{row['model']:<20} {mode:<7} {weights / MB:>10.1f} error: "
                      f"{stats['error']}", flush=True)
            rows.append(row)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
