"""Cortex-M4 benchmark of the C target: portable vs DSP kernels, -O2 vs -Os, per model and layer.

Usage::

    python tools/bench_mcu.py [--models NAME ...] [--layers] [--json FILE] [--inputs N]
        [--cpu cortex-m4|cortex-m7|cortex-m33|cortex-m55|cortex-m3] [--cflags=-DFLAG ...]
        [--quantize int8|int16x8]

For every model -- the trained zoo (``tests/zoo``: lenet, dscnn, resnet8, mobilenet_v1,
mlp_sigmoid; 300 digits to calibrate, held-out digits as inputs) and the MLPerf-Tiny-sized
networks of ``tools/make_mlperf.py`` (random weights, random calibration and inputs) -- the
int8 C is built for the Cortex-M4 (mps2-an386 under qemu ``-icount``, ``tools/mcu/run.py``)
six ways: ``--optimize speed`` with the DSP kernels and with ``-DMLK_PORTABLE``, each at
``-O2`` and ``-Os``, and ``--optimize size`` (the portable kernels everywhere, no scratch)
at ``-O2`` and ``-Os``. Reported: instructions per inference (mean
over the inputs) and per MAC, flash of the model object (``text + data`` of ``model.o``:
code, weights, tables), arena bytes (and the kernel scratch inside it), and whether every
output equals TFLite-Micro's bytes on the same int8 ``.tflite``. The reference column is
TFLite-Micro + CMSIS-NN measured in this harness (issue 14's tables; fixed numbers, not
rebuilt here). ``--layers`` adds per-layer counts (``tools/bench_mcu_layers.py``) for the
DSP and portable builds at ``-O2``. ``--cflags`` adds C flags to every build (e.g.
``--cflags=-DMLK_NO_MVE`` measures the DSP kernels on the Cortex-M55, whose default build
runs the Helium kernels). ``--quantize int16x8`` measures the 16x8 C instead (int16
activations, int8 weights; outputs against TFLite-Micro on the same 16x8 ``.tflite``; no
CMSIS-NN reference column).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running as ``python tools/bench_mcu.py``
    sys.path.insert(0, str(REPO_ROOT))

from microlith.app.board.cpus import CPUS  # noqa: E402
from microlith.app.driver import CompileOptions, compile_onnx  # noqa: E402
from microlith.ir.ops import node_macs  # noqa: E402
from tools import make_mlperf  # noqa: E402
from tools.bench_c import object_flash  # noqa: E402
from tools.bench_common import ZOO, digits_for, progress  # noqa: E402
from tools.bench_mcu_layers import layer_counts  # noqa: E402
from tools.mcu import run as board  # noqa: E402
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical  # noqa: E402

ZOO_MODELS = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
MLPERF_MODELS = ("ic_resnet8", "kws_dscnn", "ad_autoencoder", "vww_mobilenet")
# Issue 14: TFLite-Micro + CMSIS-NN in this harness, -O2, instructions per inference.
CMSIS_NN = {"lenet": 573_314, "dscnn": 1_046_802, "resnet8": 2_767_968,
            "mobilenet_v1": 315_519, "mlp_sigmoid": 35_895, "ic_resnet8": 29_863_038,
            "kws_dscnn": 7_696_672, "ad_autoencoder": 582_956, "vww_mobilenet": 24_101_942}
# (optimize, opt, cflags)
BUILDS = (("speed", "-O2", ()), ("speed", "-O2", ("-DMLK_PORTABLE",)),
          ("speed", "-Os", ()), ("speed", "-Os", ("-DMLK_PORTABLE",)),
          ("size", "-O2", ()), ("size", "-Os", ()))


def build_label(optimize: str, opt: str, cflags: Sequence[str]) -> str:
    kind = "portable" if "-DMLK_PORTABLE" in cflags else "dsp"
    return f"{kind}{opt}" if optimize == "speed" else f"size-mode{opt}"


def _inputs(name: str, n: int) -> tuple[Path, np.ndarray, np.ndarray]:
    """(ONNX path, calibration inputs, benchmark inputs) in the ONNX layout."""
    if name in ZOO_MODELS:
        x_cal, x_test, _ = digits_for(name)
        return Path(ZOO) / f"{name}.onnx", x_cal, x_test[:n]
    path = make_mlperf.build(name)
    return path, make_mlperf.calibration(name, 64), make_mlperf.calibration(name, n, seed=99)


def bench_model(name: str, n_inputs: int, layers: bool, cpu: str = "cortex-m4",
                extra_cflags: Sequence[str] = (), quantize: str = "int8") -> dict:
    path, x_cal, x_run = _inputs(name, n_inputs)
    common = {"quantize": quantize, "calibration_data": x_cal, "quiet": True,
              "warn": lambda message: None}
    progress(f"{name}: compiling (.tflite, C speed, C size)")
    tflite = compile_onnx(path, CompileOptions(**common))
    results = {mode: compile_onnx(path, CompileOptions(target="c", optimize=mode, **common))
               for mode in ("speed", "size")}
    graph = results["speed"].graph
    quant = graph.inputs[0].quant
    feeds = quantize_input(to_physical(x_run, input_perm(graph)), quant.scale[0],
                           quant.zero_point[0], "int8" if quantize == "int8" else "int16")
    want = run_tflm(tflite.output, feeds, flatten=True)
    macs = sum(node_macs(node) for node in graph.nodes)
    row: dict = {"model": name, "cpu": cpu, "quantize": quantize, "macs": macs,
                 "cmsis_nn": CMSIS_NN.get(name) if quantize == "int8" else None,
                 "builds": {},
                 "arena": {m: r.sizes["arena"] for m, r in results.items()},
                 "scratch": {m: r.sizes.get("scratch", 0) for m, r in results.items()}}
    with tempfile.TemporaryDirectory(prefix="microlith-bench-mcu-") as tmp:
        dirs = {}
        for mode, result in results.items():
            dirs[mode] = Path(tmp) / mode
            dirs[mode].mkdir()
            for file_name, text in result.files.items():
                (dirs[mode] / file_name).write_text(text)
        for optimize, opt, cflags in BUILDS:
            label = build_label(optimize, opt, cflags)
            progress(f"{name}: {label} on the {cpu}")
            work = Path(tmp) / f"build-{label}"
            run = board.build_and_run(dirs[optimize], [x.tobytes() for x in feeds], opt=opt,
                                      cflags=(*cflags, *extra_cflags), workdir=work,
                                      timeout=1200, cpu=cpu)
            mean = sum(run.instructions) / len(run.instructions)
            row["builds"][label] = {
                "instructions": round(mean, 1),
                "per_mac": round(mean / macs, 3) if macs else None,
                "model_flash": object_flash(str(work / "00_model.o")),
                "byte_exact": all(out == want[k].tobytes()
                                  for k, out in enumerate(run.outputs))}
        if layers:
            row["layers"] = _layers(graph, dirs["speed"], feeds[0].tobytes(), name, cpu,
                                    extra_cflags)
    return row


def _layers(graph: object, model_dir: Path, feed: bytes, name: str,
            cpu: str = "cortex-m4", extra_cflags: Sequence[str] = ()) -> list[dict]:
    macs = {node.name: node_macs(node) for node in graph.nodes}  # type: ignore[attr-defined]
    progress(f"{name}: per-layer counts (DSP and portable, -O2)")
    dsp = layer_counts(model_dir, feed, cflags=list(extra_cflags), cpu=cpu)
    portable = layer_counts(model_dir, feed, cflags=["-DMLK_PORTABLE", *extra_cflags], cpu=cpu)
    rows = []
    for (layer, d), (_, p) in zip(dsp, portable, strict=True):
        if not layer.calls:
            continue
        m = macs.get(layer.name, 0)
        rows.append({"layer": layer.name, "op": layer.op, "text": layer.text, "macs": m,
                     "dsp": d, "portable": p,
                     "dsp_per_mac": round(d / m, 3) if m else None,
                     "portable_per_mac": round(p / m, 3) if m else None})
    return rows


def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def print_tables(rows: list[dict]) -> None:
    print("| model | MACs | TFLM+CMSIS-NN | portable -O2 | DSP -O2 | DSP/CMSIS | DSP instr/MAC "
          "| portable -Os | DSP -Os | size-mode -O2 | size-mode -Os | exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = r["builds"]
        ref = r["cmsis_nn"]
        dsp = b["dsp-O2"]["instructions"]
        exact = all(v["byte_exact"] for v in b.values())
        print(f"| {r['model']} | {r['macs']:,} | {'n/a' if ref is None else f'{ref:,}'} "
              f"| {b['portable-O2']['instructions']:,.0f}"
              f" | {dsp:,.0f} | {_fmt(dsp / ref if ref else None)} | "
              f"{_fmt(b['dsp-O2']['per_mac'])} | {b['portable-Os']['instructions']:,.0f} | "
              f"{b['dsp-Os']['instructions']:,.0f} | {b['size-mode-O2']['instructions']:,.0f} | "
              f"{b['size-mode-Os']['instructions']:,.0f} | {'yes' if exact else 'NO'} |")
    print()
    print("| model | flash portable -O2 | flash DSP -O2 | ratio | flash portable -Os | "
          "flash size-mode -Os | ratio | arena speed (scratch) | arena size |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = r["builds"]
        f = {k: v["model_flash"] for k, v in b.items()}
        print(f"| {r['model']} | {f['portable-O2']:,} | {f['dsp-O2']:,} | "
              f"{f['dsp-O2'] / f['portable-O2']:.2f} | {f['portable-Os']:,} | "
              f"{f['size-mode-Os']:,} | {f['size-mode-Os'] / f['portable-Os']:.2f} | "
              f"{r['arena']['speed']:,} ({r['scratch']['speed']:,}) | {r['arena']['size']:,} |")
    for r in rows:
        if "layers" not in r:
            continue
        print(f"\n{r['model']} per layer (-O2):\n")
        print("| layer | op | MACs | portable | DSP | portable/MAC | DSP/MAC |")
        print("|---|---|---|---|---|---|---|")
        for layer in r["layers"]:
            print(f"| {layer['text'][:60]} | {layer['op']} | {layer['macs']:,} | "
                  f"{layer['portable']:,} | {layer['dsp']:,} | "
                  f"{_fmt(layer['portable_per_mac'])} | {_fmt(layer['dsp_per_mac'])} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=None,
                        choices=[*ZOO_MODELS, *MLPERF_MODELS])
    parser.add_argument("--layers", action="store_true", help="per-layer counts too")
    parser.add_argument("--inputs", type=int, default=2, help="inferences per build")
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON")
    parser.add_argument("--cpu", default="cortex-m4", choices=sorted(CPUS),
                        help="the core and its qemu board (default cortex-m4; the CMSIS-NN "
                        "column is always the M4's)")
    parser.add_argument("--cflags", action="append", default=[], metavar="FLAG",
                        help="a C flag added to every build (repeatable; write --cflags=-DX)")
    parser.add_argument("--quantize", default="int8", choices=("int8", "int16x8"),
                        help="the C's quantization (default int8; int16x8: no CMSIS-NN column)")
    args = parser.parse_args(argv)
    board.check_toolchain()
    rows = [bench_model(name, args.inputs, args.layers, args.cpu, args.cflags, args.quantize)
            for name in args.models or (*ZOO_MODELS, *MLPERF_MODELS)]
    print_tables(rows)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(v["byte_exact"] for r in rows for v in r["builds"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
