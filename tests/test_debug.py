"""``microlith debug`` / ``microlith.app.quant_debug``: the per-layer float vs int8 error table.

Real data (scikit-learn digits) through the zoo's LeNet and sigmoid MLP. Checked: every
integer node is listed by its ONNX node name; the metrics equal a direct numpy
computation from our own runs of the two graphs (cumulative and, for the first layer
whose int8 inputs are exactly the quantized float inputs, per-layer); worst-first order;
a deliberately damaged layer (a 40x too wide calibration range) comes out on top; the CLI
prints the table and the summary with labels, writes the JSON, and refuses bad input
with one line and exit status 2.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microlith.app.cli import main
from microlith.app.integer_run import executable
from microlith.app.quant_debug import (
    DebugOptions,
    DebugReport,
    build_graphs,
    compare,
    debug_quantization,
    load_eval_data,
    quantize_copy,
)
from microlith.interpreter import run_graph
from microlith.ir.core import Graph
from microlith.quant.params import dequantize_array, quantize_array
from microlith.quant.registry import is_integer_node
from tools.digits import load_digits_split
from tools.runtimes import NCHW_TO_NHWC, to_physical

REPO = Path(__file__).resolve().parents[1]
LENET = REPO / "tests" / "zoo" / "lenet.onnx"
MLP = REPO / "tests" / "zoo" / "mlp_sigmoid.onnx"


@pytest.fixture(scope="module")
def lenet_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    x_train, _, x_test, y_test = load_digits_split(16, "NCHW")
    root = tmp_path_factory.mktemp("debug")
    files = {"calib": root / "calib.npz", "test": root / "test.npz", "root": root}
    np.savez(files["calib"], input=x_train[:200])
    np.savez(files["test"], input=x_test, labels=y_test)
    return files


@pytest.fixture(scope="module")
def lenet(lenet_files: dict[str, Path]) -> tuple[Graph, Graph, np.ndarray, np.ndarray]:
    """(float graph, int8 graph, test images, labels) built like ``microlith debug``."""
    options = DebugOptions(calibration_data=lenet_files["calib"], quiet=True)
    float_graph, int8_graph, _ = build_graphs(LENET, options)
    _, _, x_test, y_test = load_digits_split(16, "NCHW")
    return float_graph, int8_graph, x_test, y_test


@pytest.fixture(scope="module")
def lenet_report(lenet: tuple[Graph, Graph, np.ndarray, np.ndarray]) -> DebugReport:
    float_graph, int8_graph, x_test, y_test = lenet
    data, _ = load_eval_data({"input": x_test}, float_graph)
    return compare(float_graph, int8_graph, data, y_test, batch_size=len(data), quiet=True)


def integer_node_names(graph: Graph) -> set[str]:
    return {n.name for n in graph.nodes if is_integer_node(n) and n.op != "DequantizeLinear"}


def numpy_metrics(f: np.ndarray, q: np.ndarray, scale: float) -> tuple[float, float, float]:
    f, e = f.astype(np.float64), q.astype(np.float64) - f.astype(np.float64)
    sqnr = 10 * np.log10(np.sum(f ** 2) / np.sum(e ** 2))
    return sqnr, np.sqrt(np.mean(e ** 2)) / (f.max() - f.min()), np.abs(e).max() / scale


def both_runs(float_graph: Graph, int8_graph: Graph, x: np.ndarray
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Our own run of the two graphs on NCHW images: (float env, int8 env, int8 input)."""
    nhwc = to_physical(x, NCHW_TO_NHWC)
    q_in = quantize_array(nhwc, int8_graph.inputs[0].quant)
    fenv = run_graph(float_graph, {"input": nhwc}, keep_all=True)
    qenv = run_graph(executable(int8_graph), {"input": q_in}, keep_all=True)
    return fenv, qenv, q_in


# ---- the table ------------------------------------------------------------------------------
def test_every_integer_node_is_listed_by_onnx_name(lenet_report: DebugReport,
                                                    lenet: tuple) -> None:
    _, int8_graph, _, _ = lenet
    names = integer_node_names(int8_graph)
    assert names == {"/0/Conv", "/3/MaxPool", "/4/Conv", "/7/AveragePool", "/8/Flatten",
                     "/9/Gemm", "/11/Gemm"}
    rows = {r.node: r for r in lenet_report.rows}
    assert set(rows) == names | {"input"}
    assert rows["input"].op == "Input"
    for name in names:
        node = int8_graph.node(name)
        assert rows[name].op == node.op and rows[name].tensor == node.output.name
        assert rows[name].shape == node.output.shape
        assert (rows[name].scale, rows[name].zero_point) == (node.output.quant.scale[0],
                                                             node.output.quant.zero_point[0])
    table = lenet_report.table()
    for name in names:
        assert name in table


def test_mlp_lists_every_integer_node(tmp_path: Path) -> None:
    x_train, _, x_test, y_test = load_digits_split(8, "flat")
    np.savez(tmp_path / "calib.npz", input=x_train[:100])
    options = DebugOptions(calibration_data=tmp_path / "calib.npz", data={"input": x_test},
                           labels=y_test, quiet=True)
    report = debug_quantization(MLP, options)
    assert report.samples == len(x_test)
    assert debug_quantization(MLP, DebugOptions(calibration_data=tmp_path / "calib.npz",
                                                samples=100, quiet=True)).samples == 100
    _, int8_graph, _ = build_graphs(MLP, options)
    assert {r.node for r in report.rows} == integer_node_names(int8_graph) | {"input"}
    assert {"/2/Sigmoid", "/4/Tanh"} <= {r.node for r in report.rows}
    assert report.float_accuracy is not None and report.float_accuracy > 0.9
    assert abs(report.float_accuracy - report.int8_accuracy) < 0.03


def test_worst_first(lenet_report: DebugReport) -> None:
    layer = [r.layer.sqnr_db for r in lenet_report.rows]
    assert layer == sorted(layer)
    lines = lenet_report.table().splitlines()[3:]
    assert [line.split()[2] for line in lines] == [r.node for r in lenet_report.rows]
    assert lenet_report.table(top=3).count("\n") == 3 + 3
    assert "3 of 8 tensors" in lenet_report.table(top=3)
    # pools and reshapes that keep their input's grid add no error of their own
    exact = {r.node for r in lenet_report.rows if r.layer.sqnr_db == math.inf}
    assert exact == {"/3/MaxPool", "/8/Flatten"}
    assert lenet_report.rows[-1].node in exact


# ---- the numbers, recomputed -----------------------------------------------------------------
def test_cumulative_metrics_match_numpy(lenet: tuple, lenet_report: DebugReport) -> None:
    float_graph, int8_graph, x_test, _ = lenet
    fenv, qenv, _ = both_runs(float_graph, int8_graph, x_test)
    rows = {r.node: r for r in lenet_report.rows}
    for name in ("/4/Conv", "/11/Gemm", "/7/AveragePool"):
        value = int8_graph.node(name).output
        f = fenv[float_graph.node(name).output.name]
        dq = dequantize_array(qenv[value.name], value.quant)
        sqnr, rel, lsb = numpy_metrics(f, dq, value.quant.scale[0])
        got = rows[name].cumulative
        assert got.sqnr_db == pytest.approx(sqnr, rel=1e-9)
        assert got.rel_rmse == pytest.approx(rel, rel=1e-9)
        assert got.max_lsb == pytest.approx(lsb, rel=1e-9)
    # the model output is the last FC's tensor
    assert lenet_report.outputs["logits"] == rows["/11/Gemm"].cumulative


def test_first_layer_per_layer_metrics_match_numpy(lenet: tuple,
                                                   lenet_report: DebugReport) -> None:
    """The int8 graph's first conv reads exactly quantize(input): its own error is the whole
    difference to the float conv on the dequantized input, which the float graph computes."""
    float_graph, int8_graph, x_test, _ = lenet
    _, qenv, q_in = both_runs(float_graph, int8_graph, x_test)
    rounded = dequantize_array(q_in, int8_graph.inputs[0].quant)
    fenv_rounded = run_graph(float_graph, {"input": rounded}, keep_all=True)
    value = int8_graph.node("/0/Conv").output
    f = fenv_rounded[value.name]
    dq = dequantize_array(qenv[value.name], value.quant)
    sqnr, rel, lsb = numpy_metrics(f, dq, value.quant.scale[0])
    got = next(r for r in lenet_report.rows if r.node == "/0/Conv").layer
    assert got.sqnr_db == pytest.approx(sqnr, rel=1e-9)
    assert got.rel_rmse == pytest.approx(rel, rel=1e-9)
    assert got.max_lsb == pytest.approx(lsb, rel=1e-9)
    # the input row: pure rounding, at most half a step (inputs lie inside [0, 1])
    x_row = next(r for r in lenet_report.rows if r.node == "input")
    assert x_row.layer == x_row.cumulative and x_row.layer.max_lsb <= 0.5 + 1e-6
    sqnr_in, _, _ = numpy_metrics(to_physical(x_test, NCHW_TO_NHWC), rounded, 1.0)
    assert x_row.layer.sqnr_db == pytest.approx(sqnr_in, rel=1e-9)


def test_summary_accuracy_matches_our_runs(lenet: tuple, lenet_report: DebugReport) -> None:
    float_graph, int8_graph, x_test, y_test = lenet
    fenv, qenv, _ = both_runs(float_graph, int8_graph, x_test)
    f_top, q_top = fenv["logits"].argmax(1), qenv["logits"].argmax(1)
    assert lenet_report.float_accuracy == pytest.approx(np.mean(f_top == y_test))
    assert lenet_report.int8_accuracy == pytest.approx(np.mean(q_top == y_test))
    assert lenet_report.agreement == pytest.approx(np.mean(f_top == q_top))
    assert lenet_report.float_accuracy > 0.95 and lenet_report.samples == 450
    summary = lenet_report.summary()
    assert "output 'logits': SQNR" in summary and "top-1 accuracy (450 labelled" in summary


# ---- a damaged layer ------------------------------------------------------------------------
@pytest.mark.parametrize("model, layout, victim", [(LENET, (16, "NCHW"), "/0/Conv"),
                                                   (MLP, (8, "flat"), "/3/Gemm")])
def test_damaged_layer_comes_out_on_top(tmp_path: Path, model: Path, layout: tuple,
                                        victim: str) -> None:
    x_train, _, x_test, _ = load_digits_split(*layout)
    options = DebugOptions(calibration_data={"input": x_train[:100]}, quiet=True)
    float_graph, int8_graph, _ = build_graphs(model, options)
    data, _ = load_eval_data({"input": x_test[:120]}, float_graph)
    healthy = compare(float_graph, int8_graph, data, quiet=True)
    assert healthy.rows[0].node != victim or healthy.rows[0].layer.sqnr_db > 35
    value = float_graph.node(victim).output
    lo, hi = value.meta["calibration_range"]
    value.meta["calibration_range"] = (40 * lo, 40 * hi)  # a 40x too coarse output scale
    damaged = compare(float_graph, quantize_copy(float_graph), data, quiet=True)
    top = damaged.rows[0]
    assert top.node == victim
    before = next(r for r in healthy.rows if r.node == victim)
    assert top.layer.sqnr_db < before.layer.sqnr_db - 20  # 40x coarser: about -32 dB
    assert top.scale == pytest.approx(40 * before.scale, rel=0.02)


# ---- options and progress -------------------------------------------------------------------
def test_float_fallback_lists_the_quantize_ops(capsys: pytest.CaptureFixture[str]) -> None:
    """helper_ops keeps HardSigmoid in float (its Div by a constant is an int8 MUL): the
    QuantizeLinear row compares the float graph's tensor with its quantization (per layer:
    rounding only, at most 0.5 LSB)."""
    model = REPO / "tests" / "zoo" / "helper_ops.onnx"
    x = np.random.default_rng(0).random((24, 3, 12, 12), dtype=np.float32)
    report = debug_quantization(model, DebugOptions(calibration_data={"input": x},
                                                    fallback="float", quiet=True))
    _, int8_graph, _ = build_graphs(model, DebugOptions(calibration_data={"input": x},
                                                        fallback="float", quiet=True))
    assert {r.node for r in report.rows} == integer_node_names(int8_graph) | {"input"}
    quantize = [r for r in report.rows if r.op == "QuantizeLinear"]
    assert {r.node for r in quantize} == {"hardsigmoid_quantize"}
    assert all(r.layer.max_lsb <= 0.5 + 1e-6 for r in quantize)
    assert "warning" not in capsys.readouterr().err


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_and_samples(lenet: tuple) -> None:
    float_graph, int8_graph, x_test, y_test = lenet
    data, _ = load_eval_data({"input": x_test[:40]}, float_graph)
    stream = FakeTerminal()
    report = compare(float_graph, int8_graph, data, y_test[:40], batch_size=16, stream=stream)
    assert "comparing [" in stream.getvalue() and "40/40 samples" in stream.getvalue()
    assert report.samples == 40
    quiet = FakeTerminal()
    compare(float_graph, int8_graph, data, batch_size=16, stream=quiet, quiet=True)
    assert quiet.getvalue() == ""


# ---- the command line -----------------------------------------------------------------------
def run_cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "microlith", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


def test_cli_prints_table_and_summary_and_writes_json(lenet_files: dict[str, Path],
                                                      lenet_report: DebugReport) -> None:
    out = lenet_files["root"] / "debug.json"
    result = run_cli("debug", LENET, "--calibration-data", lenet_files["calib"], "--data",
                     lenet_files["test"], "--json", out, "--top", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("int8 error per layer, worst first (5 of 8 tensors; 450 samples;"
                               " calibration: minmax on 200 samples)")
    assert "layer" in lines[1] and "cumulative" in lines[1]
    assert lines[2].split()[:6] == ["#", "op", "node", "shape", "scale", "zp"]
    assert [line.split()[2] for line in lines[3:8]] == [r.node for r in lenet_report.rows[:5]]
    text = result.stdout
    assert "output 'logits': SQNR" in text
    assert f"float {100 * lenet_report.float_accuracy:.2f}%" in text
    assert f"int8 {100 * lenet_report.int8_accuracy:.2f}%" in text
    assert "argmax agreement float vs int8:" in text
    assert "Traceback" not in result.stderr

    payload = json.loads(out.read_text())
    assert payload["samples"] == 450 and payload["calibration"] == {"method": "minmax",
                                                                    "samples": 200}
    assert [row["node"] for row in payload["layers"]] == [r.node for r in lenet_report.rows]
    first = payload["layers"][0]
    assert set(first) >= {"op", "node", "tensor", "shape", "scale", "zero_point", "layer",
                          "cumulative"}
    assert first["layer"]["sqnr_db"] == pytest.approx(lenet_report.rows[0].layer.sqnr_db)
    pool = next(row for row in payload["layers"] if row["node"] == "/3/MaxPool")
    assert pool["layer"]["sqnr_db"] == "inf" and pool["shape"] == [1, 8, 8, 6]
    assert payload["float_accuracy"] == pytest.approx(lenet_report.float_accuracy)
    assert payload["outputs"]["logits"]["sqnr_db"] == pytest.approx(
        lenet_report.outputs["logits"].sqnr_db)


@pytest.mark.parametrize("case, expected", [
    ("missing", "evaluation data"),
    ("shape", "has shape [450, 1, 8, 16]"),
    ("labels", "449 labels for 450 samples"),
    ("calib", "no such file"),
    ("top", "--top and --samples must be >= 0"),
    ("json", "output directory does not exist"),
])
def test_bad_input_is_one_line_exit_2(lenet_files: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str], case: str,
                                      expected: str) -> None:
    _, _, x_test, y_test = load_digits_split(16, "NCHW")
    np.savez(tmp_path / "shape.npz", input=x_test[:, :, :8])
    np.savez(tmp_path / "labels.npz", input=x_test, labels=y_test[:-1])
    args = {"missing": ["--data", tmp_path / "nope.npz"],
            "shape": ["--data", tmp_path / "shape.npz"],
            "labels": ["--data", tmp_path / "labels.npz"],
            "calib": [],
            "top": ["--top", "-1"],
            "json": ["--json", tmp_path / "no" / "dir.json"]}[case]
    calib = tmp_path / "nope.npz" if case == "calib" else lenet_files["calib"]
    code = main(["debug", str(LENET), "--calibration-data", str(calib), "-q",
                 *map(str, args)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert expected in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
    assert not (tmp_path / "no").exists()


def test_cli_subprocess_bad_data_has_no_traceback(lenet_files: dict[str, Path]) -> None:
    result = run_cli("debug", LENET, "--calibration-data", lenet_files["calib"], "--data",
                     lenet_files["root"] / "missing.npz")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "missing.npz" in result.stderr
