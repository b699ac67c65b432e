"""16x8 benchmark: ``--quantize int16x8`` against ``--quantize int8`` on the digits zoo.

    python tools/bench_int16.py [--json out/bench_int16.json] [--only NAME] [--board]

Per trained zoo model (300 training images as calibration data, 450 held-out images):
top-1 of the float model (onnxruntime) and of our int8 / 16x8 models (TFLite-Micro),
argmax agreement with float, output SQNR vs float (dB), ``.tflite`` bytes, the smallest
TFLite-Micro arena that allocates, the C arena (models whose ops all have integer
kernels; the others need ``--fallback float``) and, with ``--board``, Cortex-M4
instructions per inference under qemu (dscnn). Then the calibration methods at 16 bits vs
8, and a regression model where int8 loses and 16x8 recovers: an MLP (64-32-32-1, ReLU,
trained here with torch on the 1347 training digits, deterministic on one thread)
regressing an offset target, ``273.15 + 10 * mean pixel`` (a temperature in kelvin, say):
the output range must contain 0, so int8's step is about 1.1 units while the signal varies
by a few; scored by the RMSE against the target and against the float model's outputs.
(A 64-32-8-32-64 digits autoencoder, tried first, showed no int8 loss: 16.71 vs 16.73 dB
PSNR.) Prints the tables and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from microlith.app.driver import CompileOptions, compile_onnx  # noqa: E402
from microlith.formats.tflite.flatbuffer import parse_model  # noqa: E402
from tools.bench_common import TRAINED, ZOO, digits_for, progress, tflm_arena_bytes  # noqa: E402
from tools.runtimes import (  # noqa: E402
    input_perm,
    ort_outputs,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    to_physical,
    top1,
)

FALLBACK: set[str] = set()  # zoo models with an op without a 16x8 kernel (none since SOFTMAX
# / LOGISTIC / TANH have one)
METHODS = ("minmax", "percentile", "entropy", "mse")


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    return 10 * float(np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / max(noise, 1e-30)))


class Quantized:
    def __init__(self, path: str, mode: str, cal: np.ndarray, **options: object) -> None:
        self.result = compile_onnx(path, CompileOptions(quantize=mode, calibration_data=cal,
                                                        quiet=True, **options))
        self.data = self.result.output
        self.tfl = parse_model(self.data)
        self.perm = input_perm(self.result.graph)

    def feed(self, xs: np.ndarray) -> np.ndarray:
        q = self.tfl.tensors[self.tfl.inputs[0]]
        x = to_physical(xs, self.perm)
        return x.astype(np.float32) if q.quant is None else \
            quantize_input(x, q.quant.scale[0], q.quant.zero_point[0], q.dtype)

    def outputs(self, xs: np.ndarray) -> np.ndarray:
        out = run_tflm(self.data, self.feed(xs))
        q = self.tfl.tensors[self.tfl.outputs[0]].quant
        return out.astype(np.float64) if q is None else \
            (out.astype(np.float64) - q.zero_point[0]) * q.scale[0]


def c_arena(path: str, mode: str, cal: np.ndarray) -> int:
    return compile_onnx(path, CompileOptions(target="c", quantize=mode, calibration_data=cal,
                                             quiet=True)).sizes["arena"]


def litert_within_one_lsb(m: Quantized, xs: np.ndarray) -> float:
    """Share of the output elements where LiteRT's reference kernels are within 1 LSB of
    TFLite-Micro on the same ``.tflite`` (integer outputs)."""
    feeds = m.feed(xs)
    a = run_tflm(m.data, feeds).astype(np.int64)
    b = run_litert(m.data, feeds).astype(np.int64).reshape(a.shape)
    return float(np.mean(np.abs(a - b) <= 1))


def board_instructions(path: str, mode: str, cal: np.ndarray, feeds: np.ndarray) -> int:
    from tests.c_end_to_end.c_models import write_files
    from tools.mcu import run as board

    result = compile_onnx(path, CompileOptions(target="c", quantize=mode, calibration_data=cal,
                                               quiet=True))
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_files(Path(tmp) / "gen", result.files)
        run = board.build_and_run(directory, [feeds[0].tobytes()], opt="-O2")
    return int(min(run.instructions))


def zoo_rows(only: str | None, with_board: bool) -> list[dict]:
    rows = []
    for name in TRAINED:
        if only and name != only:
            continue
        progress(f"16x8: {name}")
        path = os.path.join(ZOO, f"{name}.onnx")
        cal, xs, labels = digits_for(name)
        ref = ort_outputs(ort_session(path), xs)
        row: dict = {"model": name, "float_top1": float(np.mean(top1(ref) == labels))}
        fallback = {"fallback": "float"} if name in FALLBACK else {}
        for mode, opts in (("int8", {}), ("int16x8", fallback)):
            m = Quantized(path, mode, cal, **opts)
            out = m.outputs(xs)
            key = "int8" if mode == "int8" else "16x8"
            row[f"{key}_top1"] = float(np.mean(top1(out) == labels))
            row[f"{key}_agreement"] = float(np.mean(top1(out) == top1(ref)))
            row[f"{key}_sqnr_db"] = sqnr_db(ref, out)
            row[f"{key}_bytes"] = len(m.data)
            row[f"{key}_tflm_arena"] = tflm_arena_bytes(m.data, m.feed(xs[:1]))
            if mode == "int16x8":
                row["16x8_litert_within_1lsb"] = litert_within_one_lsb(m, xs)
            if name not in FALLBACK:
                row[f"{key}_c_arena"] = c_arena(path, mode, cal)
                if with_board and name == "dscnn":
                    feeds = np.ascontiguousarray(m.feed(xs[:1]))
                    row[f"{key}_m4_instructions"] = board_instructions(path, mode, cal, feeds)
        rows.append(row)
    return rows


def calibration_rows(only: str | None) -> list[dict]:
    rows = []
    for name in TRAINED:
        if only and name != only:
            continue
        progress(f"calibration: {name}")
        path = os.path.join(ZOO, f"{name}.onnx")
        cal, xs, _ = digits_for(name)
        ref = ort_outputs(ort_session(path), xs)
        row: dict = {"model": name}
        for mode in ("int8", "int16x8"):
            opts = {"fallback": "float"} if mode == "int16x8" and name in FALLBACK else {}
            for method in METHODS:
                out = Quantized(path, mode, cal, calibration_method=method, **opts).outputs(xs)
                row[f"{mode}_{method}_sqnr_db"] = sqnr_db(ref, out)
        rows.append(row)
    return rows


def train_regressor(path: str, hidden: tuple[int, ...] = (32, 32)) -> None:
    """64-32-32-1 MLP (``hidden`` layers) regressing an offset target (kelvin-like: 273.15 +
    10 * mean ink)."""
    import torch

    from tools.digits import load_digits_split

    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.tensor(load_digits_split(8, "flat")[0], dtype=torch.float32)
    t = torch.tensor(regression_target(x.numpy()), dtype=torch.float32)[:, None]
    layers: list = []
    for a, b in zip((64, *hidden[:-1]), hidden, strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(hidden[-1], 1))
    with torch.no_grad():
        net[-1].bias.fill_(273.15)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            loss = torch.mean((net(x[i:i + 64]) - t[i:i + 64]) ** 2)
            loss.backward()
            opt.step()
    net.eval()
    torch.onnx.export(net, (x[:1],), path, input_names=["input"], output_names=["output"],
                      opset_version=13, dynamo=False)


def regression_target(x: np.ndarray) -> np.ndarray:
    return (273.15 + 10.0 * x.reshape(len(x), -1).mean(axis=1)).astype(np.float32)


def regression_row() -> dict:
    from tools.digits import load_digits_split

    progress("regression head: training")
    x_train, _, x_test, _ = load_digits_split(8, "flat")
    target = regression_target(x_test)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "regressor.onnx")
        train_regressor(path)
        ref = ort_outputs(ort_session(path), x_test).reshape(-1)
        row: dict = {"model": "offset regression (64-32-32-1, target 273.15 + 10 mean ink)",
                     "float_rmse": rmse(target, ref)}
        for mode in ("int8", "int16x8"):
            m = Quantized(path, mode, x_train[:300])
            out = m.outputs(x_test).reshape(-1)
            key = "int8" if mode == "int8" else "16x8"
            row[f"{key}_rmse"] = rmse(target, out)
            row[f"{key}_rmse_vs_float"] = rmse(ref, out)
            row[f"{key}_bytes"] = len(m.data)
    return row


def mixed_row(name: str, path: str, cal: np.ndarray, xs: np.ndarray, ref: np.ndarray
              ) -> dict:
    """``--int16 auto`` on one model (float interface: the output layer's precision is not
    rounded away by an int8 output): the advisor's choice, then int8 / auto / 16x8 output
    SQNR vs float on the held-out samples (TFLite-Micro) and the share of the gap."""
    from microlith.app.int16_advisor import advise

    advice = advise(path, cal)
    sqnr = {}
    for key, mode, opts in (("int8", "int8", {}), ("auto", "int8", {"int16": ("auto",)}),
                            ("16x8", "int16x8", {})):
        m = Quantized(path, mode, cal, io_dtype="float32", **opts)
        sqnr[key] = sqnr_db(ref, m.outputs(xs).reshape(ref.shape))
        if key == "auto":
            auto_bytes = len(m.data)
    gap = sqnr["16x8"] - sqnr["int8"]
    return {"model": name, "layers": advice.layers, "promoted_layers": advice.chosen_layers,
            "promoted_nodes": advice.chosen, "int8_sqnr_db": sqnr["int8"],
            "auto_sqnr_db": sqnr["auto"], "16x8_sqnr_db": sqnr["16x8"],
            "gap_recovered": (sqnr["auto"] - sqnr["int8"]) / gap if gap > 0 else 1.0,
            "advisor_gap_recovered": advice.gap_recovered, "auto_bytes": auto_bytes}


def mixed_rows(only: str | None) -> list[dict]:
    from tools.digits import load_digits_split

    rows = []
    for name in TRAINED:
        if only and name != only:
            continue
        progress(f"--int16 auto: {name}")
        path = os.path.join(ZOO, f"{name}.onnx")
        cal, xs, _ = digits_for(name)
        rows.append(mixed_row(name, path, cal, xs, ort_outputs(ort_session(path), xs)))
    if not only:
        progress("--int16 auto: deep offset regression")
        x_train, _, x_test, _ = load_digits_split(8, "flat")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "regressor5.onnx")
            train_regressor(path, (32, 32, 32, 32))
            ref = ort_outputs(ort_session(path), x_test)
            rows.append(mixed_row("offset regression 64-32-32-32-32-1", path, x_train[:300],
                                  x_test, ref))
    return rows


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def print_tables(zoo: list[dict], calibration: list[dict], ae: dict | None,
                 mixed: list[dict] | None = None) -> None:
    print("16x8 vs int8 (TFLite-Micro, 450 held-out digits)")
    head = ("model", "top1 f/8/16", "agree 8/16", "SQNR dB 8/16", "bytes 8/16",
            "TFLM arena 8/16", "C arena 8/16", "M4 instr 8/16", "LiteRT <=1 LSB")
    print(" | ".join(head))
    for r in zoo:
        c = (f"{r['int8_c_arena']}/{r['16x8_c_arena']}" if "16x8_c_arena" in r else "- (fallback)")
        m4 = (f"{r['int8_m4_instructions']}/{r['16x8_m4_instructions']}"
              if "16x8_m4_instructions" in r else "-")
        print(" | ".join([
            r["model"],
            f"{100 * r['float_top1']:.2f}/{100 * r['int8_top1']:.2f}/{100 * r['16x8_top1']:.2f}",
            f"{r['int8_agreement']:.4f}/{r['16x8_agreement']:.4f}",
            f"{r['int8_sqnr_db']:.1f}/{r['16x8_sqnr_db']:.1f}",
            f"{r['int8_bytes']}/{r['16x8_bytes']} ({r['16x8_bytes'] / r['int8_bytes']:.3f}x)",
            f"{r['int8_tflm_arena']}/{r['16x8_tflm_arena']}", c, m4,
            f"{100 * r['16x8_litert_within_1lsb']:.2f}%"]))
    if calibration:
        print("\noutput SQNR (dB) by calibration method, int8 | 16x8")
        print("model | " + " | ".join(METHODS))
        for r in calibration:
            cells = [f"{r[f'int8_{m}_sqnr_db']:.1f} | {r[f'int16x8_{m}_sqnr_db']:.1f}"
                     for m in METHODS]
            print(f"{r['model']} | " + " | ".join(cells))
    if mixed:
        print("\n--int16 auto (--io-dtype float32; held-out SQNR vs float, TFLite-Micro; "
              "advisor's: on its 64 calibration samples)")
        print("model | promoted layers | SQNR dB int8/auto/16x8 | gap recovered | advisor's")
        for r in mixed:
            print(f"{r['model']} | {r['promoted_layers']}/{r['layers']} "
                  f"({100 * r['promoted_layers'] / max(r['layers'], 1):.0f}%) | "
                  f"{r['int8_sqnr_db']:.1f}/{r['auto_sqnr_db']:.1f}/{r['16x8_sqnr_db']:.1f} | "
                  f"{100 * r['gap_recovered']:.0f}% | {100 * r['advisor_gap_recovered']:.0f}%")
    if ae:
        print(f"\n{ae['model']}: RMSE vs target float {ae['float_rmse']:.4f}, int8 "
              f"{ae['int8_rmse']:.4f}, 16x8 {ae['16x8_rmse']:.4f}; RMSE vs float int8 "
              f"{ae['int8_rmse_vs_float']:.4f}, 16x8 {ae['16x8_rmse_vs_float']:.4f}; bytes "
              f"{ae['int8_bytes']}/{ae['16x8_bytes']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=os.path.join("out", "bench_int16.json"))
    parser.add_argument("--only", help="one zoo model")
    parser.add_argument("--board", action="store_true", help="Cortex-M4 instructions (dscnn)")
    parser.add_argument("--skip-calibration", action="store_true")
    parser.add_argument("--skip-regression", action="store_true")
    parser.add_argument("--skip-mixed", action="store_true", help="no --int16 auto table")
    args = parser.parse_args()
    zoo = zoo_rows(args.only, args.board)
    calibration = [] if args.skip_calibration else calibration_rows(args.only)
    ae = None if args.skip_regression else regression_row()
    mixed = [] if args.skip_mixed else mixed_rows(args.only)
    print_tables(zoo, calibration, ae, mixed)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"zoo": zoo, "calibration": calibration, "regression": ae, "mixed": mixed},
                  f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
