"""Benchmark the zoo: compile each model and measure it against real runtimes.

    python tools/bench.py [--json out/bench.json] [--only NAME] [--samples N]
                          [--skip-float] [--skip-int8] [--skip-c]

float (``tools/bench_float.py``): for every ``tests/zoo/*.onnx``, size, op counts,
compile time and the difference of LiteRT and TFLite-Micro from onnxruntime.

int8 (``tools/bench_int8.py``): for every trained zoo model, our ``--quantize int8``
(accuracy, agreement with the float model, size, TFLite-Micro arena) side by side with
onnxruntime's ``quantize_static`` and the TFLite converter, against the issue's targets.

c (``tools/bench_c.py``): for every trained zoo model, our ``--target c``: arena vs
TFLite-Micro's, flash and instructions per inference on the Cortex-M4 (qemu) and, under
callgrind, on the host vs TFLite-Micro's ``MicroInterpreter::Invoke``, against the
issue's targets.

Prints the tables (progress goes to stderr) and writes everything to the JSON; sections
not run keep their previous contents of an existing JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.bench_c import (  # noqa: E402
    C_ARENA_TARGET,
    C_BOARD_INPUTS,
    C_HOST_TARGET,
    bench_c,
    c_targets,
    c_tools,
)
from tools.bench_common import N_CALIBRATION, TRAINED, ZOO, progress  # noqa: E402
from tools.bench_float import bench_model  # noqa: E402
from tools.bench_int8 import bench_int8, int8_targets  # noqa: E402


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
