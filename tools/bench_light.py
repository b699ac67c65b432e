"""The ``onnx`` package's nine light models in four modes: compile seconds, peak RSS, ops,
and the output check (``tools/light_models.py``).

    python tools/bench_light.py [--json out/bench_light.json] [--models a,b] [--modes ...]
                                [--no-check]

Models: ``onnx/backend/test/data/light/light_*.onnx`` (weights as ``ConstantOfShape``,
compiled unmodified). Modes: ``float-tflite``; ``int8-tflite`` (2 random calibration
inputs in [-1, 1], ``--fallback float``); ``float-c`` (``--target c``); ``int8-c`` (the
same calibration, ``--fallback float``). Each compile runs in a fresh interpreter (a
child process) that imports microlith, warms up on a 1-node model, then times
``compile_onnx`` (wall and CPU seconds) and reads its own peak resident set from
``/proc/self/status`` (``VmHWM``; the child's alone, where ``ru_maxrss`` of a forked
child can report the parent's). "ops": the operators of the ``.tflite`` / the kernel
nodes of the C graph; "float": the nodes ``--fallback float`` kept in float.

The checks run in another child after the measurement (2 inputs uniform in [-1, 1]):
float ``.tflite``: LiteRT vs onnxruntime (<= 1e-4); float C: the gcc host build vs our
float interpreter on the logits (<= 1e-5 relative); int8: our interpreter and the C host
build vs TFLite-Micro on every output (identical), for the LRN models (AlexNet,
Inception v1, ZFNet: TFLite-Micro has no LOCAL_RESPONSE_NORMALIZATION kernel) vs LiteRT
and our interpreter (1 LSB). Progress to stderr, the table to stdout, all to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tools.light_models import MODES, NAMES  # noqa: E402


def peak_rss_mib() -> float:
    """This process's peak resident set (``VmHWM`` of ``/proc/self/status``), MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _warm_up() -> None:
    import onnx
    from onnx import TensorProto, helper

    from microlith.app.driver import CompileOptions, compile_onnx

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "warm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "warm.onnx")
        onnx.save(helper.make_model(graph), path)
        compile_onnx(path, CompileOptions(quiet=True))


def measure(name: str, mode: str) -> dict:
    """(in the child) one compile: seconds, peak RSS, op count, fallback nodes."""
    from tools.light_models import compile_mode

    _warm_up()
    wall, cpu = time.perf_counter(), time.process_time()
    result = compile_mode(name, mode)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = peak_rss_mib()
    return {"seconds": wall, "cpu_seconds": cpu, "peak_rss_mib": rss,
            "ops": len(result.graph.nodes),
            "float_nodes": list(result.graph.meta.get("float_fallback") or []),
            "output_bytes": len(result.output) if mode.endswith("tflite") else
            sum(len(t) for t in result.files.values())}


def check(name: str, mode: str) -> dict:
    """(in the child) the output checks of one model and mode (int8: both targets)."""
    from tools.light_models import (
        check_float_c,
        check_float_tflite,
        check_int8,
        compile_mode,
        samples,
    )

    x = samples(name, 2, seed=1)
    if mode == "float-tflite":
        result = check_float_tflite(name, compile_mode(name, mode), x)
        return {mode: [result.ok, result.detail]}
    if mode == "float-c":
        result = check_float_c(name, x)
        return {mode: [result.ok, result.detail]}
    tflite, c = check_int8(name, x, with_c=True)
    assert c is not None
    return {"int8-tflite": [tflite.ok, tflite.detail], "int8-c": [c.ok, c.detail]}


def child(kind: str, name: str, mode: str, workdir: str) -> dict:
    report = os.path.join(workdir, f"{kind}_{name}_{mode}.json")
    argv = [sys.executable, os.path.abspath(__file__), f"--{kind}", name, mode, report]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:300]}"}
    with open(report) as handle:
        return json.load(handle)


def write_json(path: str, rows: list[dict]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump({"rows": rows}, handle, indent=1, sort_keys=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join("out", "bench_light.json"))
    parser.add_argument("--models", default=",".join(NAMES))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-check", action="store_true", help="measure only")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for kind, fn in (("measure", measure), ("check", check)):
        job = getattr(args, kind)
        if job:
            data = fn(job[0], job[1])
            with open(job[2], "w") as handle:
                json.dump(data, handle)
            return 0
    modes = [m for m in MODES if m in args.modes.split(",")]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            checks: dict = {}
            for mode in modes:
                print(f"{name} {mode} ...", file=sys.stderr, flush=True)
                row = {"model": name, "mode": mode, **child("measure", name, mode, workdir)}
                if not args.no_check and "error" not in row and mode not in checks:
                    checks.update(child("check", name, mode, workdir))
                    if "error" in checks:
                        checks = {mode: [False, checks.pop("error")]}
                row["check"] = checks.get(mode)
                rows.append(row)
                print(f"  {row}", file=sys.stderr, flush=True)
                write_json(args.json, rows)  # so far (a long run can be read as it goes)
    print("| model | mode | seconds | peak RSS MiB | ops | float nodes | check |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['model']} | {row['mode']} | failed | | | | {row['error']} |")
            continue
        result = row["check"]
        verdict = "not run" if result is None else ("ok: " if result[0] else "FAIL: ") + \
            result[1]
        print(f"| {row['model']} | {row['mode']} | {row['seconds']:.1f} | "
              f"{row['peak_rss_mib']:.0f} | {row['ops']} | {len(row['float_nodes'])} | "
              f"{verdict} |")
    write_json(args.json, rows)
    failed = [r for r in rows if "error" in r or (r["check"] is not None and not r["check"][0])]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
