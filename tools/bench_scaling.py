"""Scaling benchmark: compile time per pass and peak RSS against model size.

    python tools/bench_scaling.py [--json out/bench_scaling.json] [--quick]
                                  [--nodes 1000,4000,16000] [--params 1e4,1e5,1e6,1e7]
                                  [--targets float,int8,c]

Two families of generated ONNX models (``onnx.helper``, deterministic weights):

* chains of N nodes (``Conv -> Relu -> Add(residual)`` repeated, 1x1 convs on
  [1, 4, 4, 4] tensors, so the work per node is tiny and the time is the compiler's);
* two-layer MLPs (``Gemm -> Relu -> Gemm``) of about P parameters.

Each model is compiled for every target (``float``: ``--target tflite``; ``int8``:
``--quantize int8`` to ``.tflite``; ``c``: ``--quantize int8 --target c``) in a fresh
subprocess, so the peak RSS (``ru_maxrss`` of that child, from ``os.wait4``) is the
compile's own. The child first compiles a 3-node chain (so module loading is not
timed), then runs ``compile_onnx`` on the model with pass timing on and writes the
output; it reports import, passes (each pass's own time, summed by pass name), emit and
write seconds, all CPU time of the child (``time.process_time``: on a shared machine wall
time mostly measures the neighbours), and the wall time of the same span. For the float
``.tflite`` the ``microlith inspect`` report is timed too.
The tables give, per 4x nodes (or 10x parameters), the growth ratio of the total, and for
chains the ratio of the largest to the smallest size (the goal: 16k nodes <= 20x 1k).

Progress goes to stderr; the tables to stdout; everything to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.bench_common import progress  # noqa: E402

TARGETS = ("float", "int8", "c")
CHAIN_NODES = (1000, 4000, 16000)
QUICK_NODES = (250, 1000)
MODEL_PARAMS = (10**4, 10**5, 10**6, 10**7)
QUICK_PARAMS = (10**4, 10**5)
CHANNELS, SIDE = 4, 4  # chain tensors are [1, CHANNELS, SIDE, SIDE]
GOAL = 20.0  # 16k nodes <= 20x the 1k time


# ---- models ------------------------------------------------------------------------------
def chain_model(nodes: int, path: str) -> None:
    """``nodes`` ONNX nodes: Conv, Relu, Add(relu, conv), repeated and cut to length.

    The conv output has two readers (no activation fusion, a real lifetime); weights
    of norm well below 1/2 keep the values bounded over any length."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(nodes)
    inits, graph_nodes = [], []
    x = "input"
    conv_out = x
    for i in range(nodes):
        kind = i % 3
        out = f"t{i}"
        if kind == 0:
            conv_out = out
            w = (rng.standard_normal((CHANNELS, CHANNELS, 1, 1)) * 0.1).astype(np.float32)
            b = (rng.standard_normal(CHANNELS) * 0.1).astype(np.float32)
            inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
            graph_nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [out],
                                                name=f"conv{i}"))
        elif kind == 1:
            graph_nodes.append(helper.make_node("Relu", [x], [out], name=f"relu{i}"))
        else:
            graph_nodes.append(helper.make_node("Add", [x, conv_out], [out], name=f"add{i}"))
        x = out
    graph_nodes[-1].output[0] = "output"
    shape = [1, CHANNELS, SIDE, SIDE]
    graph = helper.make_graph(
        graph_nodes, f"chain{nodes}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def mlp_width(params: int) -> int:
    """Hidden width H of ``[1, H] -> Gemm(H x H) -> Relu -> Gemm(H x 10)`` with ~params."""
    return max(int((-11 + (121 + 4 * params) ** 0.5) / 2), 1)


def mlp_model(params: int, path: str) -> int:
    """A two-layer MLP with about ``params`` parameters; returns the exact count."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h = mlp_width(params)
    rng = np.random.default_rng(params)
    w1 = (rng.standard_normal((h, h)) / np.sqrt(h)).astype(np.float32)
    b1 = (rng.standard_normal(h) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((10, h)) / np.sqrt(h)).astype(np.float32)
    b2 = (rng.standard_normal(10) * 0.1).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["output"], transB=1, name="fc2")]
    graph = helper.make_graph(
        nodes, f"mlp{params}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, h])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return sum(a.size for a in (w1, b1, w2, b2))


def calibration_file(shape: tuple[int, ...], path: str, samples: int = 4) -> None:
    rng = np.random.default_rng(0)
    np.save(path, rng.standard_normal((samples, *shape[1:])).astype(np.float32))


# ---- the child: one compile --------------------------------------------------------------
def compile_options(target: str, calibration: str):  # noqa: ANN201
    from microlith.app.driver import CompileOptions

    options = CompileOptions(target="c" if target == "c" else "tflite", timing=True, quiet=True,
                             warn=lambda message: None)
    if target in ("int8", "c"):
        options.quantize, options.calibration_data = "int8", calibration
    return options


def worker(model: str, target: str, calibration: str, out: str, report: str) -> None:
    from microlith.app import driver
    from microlith.app.driver import compile_onnx, write_atomic, write_directory
    from microlith.pipeline import manager

    # every second reported is CPU time of this process: on a shared machine wall time
    # mostly measures the neighbours (the driver's and the pass manager's clocks)
    cpu_clock = types.SimpleNamespace(perf_counter=time.process_time)
    driver.time = manager.time = cpu_clock  # type: ignore[attr-defined]

    # warm-up: a 3-node chain loads every module the measured compile needs
    warm = os.path.join(os.path.dirname(report), "warmup.onnx")
    warm_cal = os.path.join(os.path.dirname(report), "warmup_cal.npy")
    chain_model(3, warm)
    calibration_file((1, CHANNELS, SIDE, SIDE), warm_cal)
    compile_onnx(warm, compile_options(target, warm_cal))
    start, wall = time.process_time(), time.perf_counter()
    result = compile_onnx(model, compile_options(target, calibration))
    compiled = time.process_time()
    if result.files:
        write_directory(out, result.files)
    else:
        write_atomic(out, result.output)
    written = time.process_time()
    passes: dict[str, float] = {}
    assert result.timing is not None
    for spec, seconds, _ in result.timing.records:
        name = spec.split("{", 1)[0]
        passes[name] = passes.get(name, 0.0) + seconds
    data = {"import": result.seconds["import"], "passes": result.seconds["passes"],
            "emit": result.seconds["emit"], "write": written - compiled,
            "total": written - start, "total_wall": time.perf_counter() - wall,
            "per_pass": passes,
            "nodes_out": len(result.graph.nodes)}
    if target == "float":
        from microlith.app.inspect_model import inspect_file

        begin = time.process_time()
        inspect_file(out)
        data["inspect"] = time.process_time() - begin
    with open(report, "w") as handle:
        json.dump(data, handle)


def run_child(model: str, target: str, calibration: str, workdir: str) -> dict:
    """Compile in a fresh interpreter; the result plus its wall time and peak RSS."""
    out = os.path.join(workdir, f"out_{target}" + ("" if target == "c" else ".tflite"))
    report = os.path.join(workdir, f"report_{target}.json")
    argv = [sys.executable, os.path.abspath(__file__), "--worker", model, target, calibration,
            out, report]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{model} ({target}) failed: {stderr.decode(errors='replace')}")
    with open(report) as handle:
        data = json.load(handle)
    data["wall"] = wall
    data["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    return data


# ---- tables ----------------------------------------------------------------------------
def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for cells in rows:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))


def top_passes(per_pass: dict[str, float], count: int = 3) -> str:
    ranked = sorted(per_pass.items(), key=lambda kv: -kv[1])[:count]
    return " ".join(f"{name}={seconds:.2f}" for name, seconds in ranked)


def print_family(title: str, size_key: str, rows: list[dict]) -> dict[str, float]:
    """One table per family; the growth of ``total`` between consecutive sizes."""
    print(f"## {title}")
    table, ratios = [], {}
    for row in rows:
        prev = next((r for r in reversed(rows) if r["target"] == row["target"]
                     and r[size_key] < row[size_key]), None)
        growth = "-" if prev is None else f"{row['total'] / max(prev['total'], 1e-9):.2f}"
        table.append([row["target"], str(row[size_key]), str(row["nodes_out"]),
                      f"{row['import']:.3f}", f"{row['passes']:.3f}", f"{row['emit']:.3f}",
                      f"{row['write']:.3f}", f"{row['total']:.3f}", growth,
                      f"{row['total_wall']:.2f}",
                      f"{row['peak_rss_mib']:.0f}",
                      f"{row['inspect']:.3f}" if "inspect" in row else "-",
                      top_passes(row["per_pass"])])
    print_table(["target", size_key, "ir_nodes", "import_s", "passes_s", "emit_s", "write_s",
                 "total_s", "growth", "wall_s", "rss_MiB", "inspect_s", "slowest passes (s)"],
                table)
    for target in TARGETS:
        mine = [r for r in rows if r["target"] == target]
        if len(mine) >= 2:
            ratios[target] = mine[-1]["total"] / max(mine[0]["total"], 1e-9)
    print()
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join("out", "bench_scaling.json"))
    parser.add_argument("--quick", action="store_true",
                        help=f"small run: chains of {QUICK_NODES}, MLPs of {QUICK_PARAMS}")
    parser.add_argument("--nodes", help="comma-separated chain lengths")
    parser.add_argument("--params", help="comma-separated MLP sizes (e.g. 1e4,1e6)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    targets = [t for t in args.targets.split(",") if t]
    if any(t not in TARGETS for t in targets):
        parser.error(f"--targets: choose from {', '.join(TARGETS)}")
    nodes = [int(n) for n in args.nodes.split(",") if n] if args.nodes is not None else \
        list(QUICK_NODES if args.quick else CHAIN_NODES)
    params = [int(float(p)) for p in args.params.split(",") if p] if args.params is not None \
        else list(QUICK_PARAMS if args.quick else MODEL_PARAMS)
    report: dict = {"chains": [], "mlps": [], "targets": targets}
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        for n in nodes:
            model = os.path.join(tmp, f"chain{n}.onnx")
            chain_model(n, model)
            cal = os.path.join(tmp, f"chain{n}_cal.npy")
            calibration_file((1, CHANNELS, SIDE, SIDE), cal)
            for target in targets:
                progress(f"chain {n} nodes, {target} ...")
                row = run_child(model, target, cal, tmp)
                report["chains"].append({"nodes": n, "target": target, **row})
        for p in params:
            model = os.path.join(tmp, f"mlp{p}.onnx")
            exact = mlp_model(p, model)
            cal = os.path.join(tmp, f"mlp{p}_cal.npy")
            calibration_file((1, mlp_width(p)), cal)
            for target in targets:
                progress(f"mlp {exact} parameters, {target} ...")
                row = run_child(model, target, cal, tmp)
                report["mlps"].append({"params": exact, "target": target, **row})
    key = lambda r: (TARGETS.index(r["target"]), r.get("nodes", r.get("params")))  # noqa: E731
    report["chains"].sort(key=key)
    report["mlps"].sort(key=key)
    if report["chains"]:
        ratios = print_family("chains (growth: per 4x nodes)", "nodes", report["chains"])
        report["chain_ratio"] = ratios
        lo, hi = min(nodes), max(nodes)
        for target, ratio in ratios.items():
            verdict = "" if (lo, hi) != (1000, 16000) else \
                f" (goal <= {GOAL:.0f}x: {'met' if ratio <= GOAL else 'NOT met'})"
            print(f"{target}: {hi} nodes take {ratio:.1f}x the time of {lo}{verdict}")
        print()
    if report["mlps"]:
        print_family("MLPs (growth: per 10x parameters)", "params", report["mlps"])
    print("seconds are CPU seconds of the compiling child (time.process_time), after a "
          "warm-up compile (no interpreter start-up or module loading); total_s = import + "
          "passes + emit + write; growth = total_s over the previous size; wall_s = the same "
          "span in wall-clock time; rss = the child's peak resident set")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=1, sort_keys=True)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
