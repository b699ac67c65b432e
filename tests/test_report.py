"""The HTML report: self-contained, rendered by headless Chromium without console errors
and not blank, with the numbers of the compile (MACs, arena, lower bound, flash)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from microlith.formats.tflite.flatbuffer import parse_model
from tests.browser import render
from tests.cli.clikit import run

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "examples" / "lenet_digits.onnx"
CALIB = ROOT / "examples" / "digits_calibration.npz"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("report")
    quant = ["--quantize", "int8", "--calibration-data", str(CALIB)]
    quant16 = ["--quantize", "int16x8", "--calibration-data", str(CALIB)]
    for args in (["--target", "c", "-o", "c", *quant, "--report", "c.html"],
                 ["-o", "q.tflite", *quant, "--report", "q.html"],
                 ["-o", "q16.tflite", *quant16, "--report", "q16.html"],
                 ["-o", "f.tflite", "--report", "f.html"]):
        proc = run("compile", LENET, *args, "-q", cwd=work)
        assert proc.returncode == 0, proc.stderr
    proc = run("report", "q.tflite", "-o", "existing.html", cwd=work)
    assert proc.returncode == 0, proc.stderr
    proc = run("report", "c", "-o", "cdir.html", cwd=work)
    assert proc.returncode == 0, proc.stderr
    proc = run("report", LENET, "-o", "onnx.html", "--target", "c", *quant, "-q", cwd=work)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    return work


def _numbers(page: str, attribute: str, tag: str = "tr") -> list[int]:
    return [int(v) for v in re.findall(rf'<{tag} [^>]*{attribute}="(\d+)"', page)]


def test_report_is_self_contained(outputs):
    for name in ("c.html", "q.html", "q16.html", "f.html", "existing.html", "cdir.html",
                 "onnx.html"):
        page = (outputs / name).read_text()
        assert "<script" not in page and "http://" not in page.replace(
            'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
        assert "<svg" in page and "<style>" in page


def test_report_numbers_match_the_compile(outputs):
    page = (outputs / "c.html").read_text()
    plan = json.loads((outputs / "c" / "model_memory_plan.json").read_text())
    bound = int(re.search(r'id="lower-bound" data-bytes="(\d+)"', page)[1])
    assert bound == plan["lower_bound"]
    assert f"planned arena {plan['arena_size']:,} B" in page
    inspected = json.loads(run("inspect", "q.tflite", "--json", cwd=outputs).stdout)
    macs = _numbers(page, "data-macs")
    assert sum(macs) == inspected["macs"] > 0
    tflite_page = (outputs / "existing.html").read_text()
    assert _numbers(tflite_page, "data-macs") == [op["macs"] for op in inspected["ops"]]
    model = parse_model((outputs / "q.tflite").read_bytes())
    flash = int(re.search(r'id="flash-total" data-bytes="(\d+)"', tflite_page)[1])
    assert flash == sum(len(t.data) for t in model.tensors if t.data is not None)
    assert re.search(r'<td><code>calibrate[^<]*</code></td><td class=n>[\d.]+</td>', page)
    live = _numbers(page, "data-live", "rect")
    assert max(live) == bound and len(live) == len(macs)


def test_report_escapes_model_strings(tmp_path):
    from microlith.app.report import OpRow, ReportData, render_html

    data = ReportData("<b>x</b>", [("k", "<script>alert(1)</script>")],
                      [OpRow("<img src=x>", "op", [], [], 0, 0, 0)], [0], 0)
    page = render_html(data)
    assert "<script>" not in page and "<img" not in page and "&lt;img src=x&gt;" in page


@pytest.mark.slow
def test_report_renders_in_chromium(outputs, tmp_path):
    bad = tmp_path / "bad.html"  # the console check itself can fail
    bad.write_text('<!DOCTYPE html><p>x</p><script>console.error("boom")</script>')
    _, console, _ = render(bad, tmp_path / "profile-bad")
    assert any("boom" in line for line in console), console
    for name in ("c.html", "existing.html", "q16.html", "cdir.html"):
        dom, console, pixels = render(outputs / name, tmp_path / f"profile-{name}")
        assert console == [], console
        assert 'id="arena-chart"' in dom and "<table" in dom
        assert ('id="sqnr-chart"' in dom) == (name not in ("existing.html", "cdir.html"))
        assert pixels.shape[0] >= 600 and pixels.shape[1] >= 800
        rgb = pixels[..., :3].reshape(-1, 3)
        colors = np.unique(rgb, axis=0)
        white = np.all(rgb > 245, axis=1).mean()
        assert len(colors) > 20 and 0.2 < white < 0.98, (len(colors), white)


def test_report_bad_arguments(outputs):
    (outputs / "notes.txt").write_text("not a model\n")
    (outputs / "empty").mkdir()
    for args, message in (
            (["notes.txt"], "notes.txt: microlith report reads a .tflite, an .onnx or a "
             "--target c output directory"),
            (["missing.onnx"], "missing.onnx: no such file or directory"),
            (["empty"], "empty: not a microlith C output directory"),
            (["q.tflite", "--quantize", "int8"], "--quantize applies to an .onnx model")):
        proc = run("report", *args, "-o", "r.html", cwd=outputs)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert not (outputs / "r.html").exists()
    proc = run("compile", LENET, "-o", "m.tflite", "--report", "r.txt", cwd=outputs)
    assert proc.returncode == 2 and "give an .html file" in proc.stderr


def _points(page: str) -> str:
    return re.search(r'<polyline class="arena" points="([^"]*)"', page)[1]


def test_report_of_a_c_directory_is_the_compiles(outputs):
    """The C directory's page (memory plan, model.h, model.c) has the compile's op sequence,
    live bytes per op, lower bound, planned arena and its high-water line; flash is the
    emitter's weight bytes, by array."""
    page, compiled = (outputs / "cdir.html").read_text(), (outputs / "c.html").read_text()
    plan = json.loads((outputs / "c" / "model_memory_plan.json").read_text())
    assert _numbers(page, "data-live", "rect") == _numbers(compiled, "data-live", "rect")
    assert _points(page) == _points(compiled)
    names = re.findall(r"<tr data-index=[^>]*><td class=n>\d+</td><td>[^<]*</td><td><code>"
                       r"([^<]*)</code>", page)
    assert names == re.findall(r"<tr data-index=[^>]*><td class=n>\d+</td><td>[^<]*</td>"
                               r"<td><code>([^<]*)</code>", compiled) and names
    bound = int(re.search(r'id="lower-bound" data-bytes="(\d+)"', page)[1])
    assert bound == plan["lower_bound"] and f"planned arena {plan['arena_size']:,} B" in page
    flash = int(re.search(r'id="flash-total" data-bytes="(\d+)"', page)[1])
    assert flash == sum(plan["weight_bytes"].values())
    assert "t_4_weight_bn_nhwc_q" in page and 'data-bytes="2400"' in page


def test_report_of_an_onnx_compiles_it(outputs):
    """``report model.onnx`` with compile options gives the page ``compile --report`` does:
    same ops, MACs, live bytes, arena and per-layer errors."""
    page, compiled = (outputs / "onnx.html").read_text(), (outputs / "c.html").read_text()
    for attribute, tag in (("data-macs", "tr"), ("data-live", "rect")):
        assert _numbers(page, attribute, tag) == _numbers(compiled, attribute, tag)
    assert _points(page) == _points(compiled)
    assert _sqnr_rows(page) == _sqnr_rows(compiled) and _sqnr_rows(page)


def _sqnr_rows(page: str) -> dict[str, tuple[float, float]]:
    rows = re.findall(r'<tr data-tensor="([^"]*)" data-sqnr="([^"]*)" '
                      r'data-cumulative="([^"]*)"', page)
    return {html.unescape(t): (float(a), float(b)) for t, a, b in rows}


def test_report_sqnr_is_debugs(outputs):
    """int8: the page's per-layer and cumulative SQNR are ``microlith debug``'s, per tensor."""
    proc = run("debug", LENET, "--calibration-data", CALIB, "--json", "d.json", "-q",
               cwd=outputs)
    assert proc.returncode == 0, proc.stderr
    layers = json.loads((outputs / "d.json").read_text())["layers"]
    for name in ("q.html", "c.html"):
        rows = _sqnr_rows((outputs / name).read_text())
        assert sorted(rows) == sorted(r["tensor"] for r in layers)
        for r in layers:
            want = [float(r[k]["sqnr_db"]) for k in ("layer", "cumulative")]
            assert rows[r["tensor"]] == pytest.approx(want, abs=1e-4), r["tensor"]
        bars = re.findall(r'<rect class="sqnr" [^>]*data-tensor="([^"]*)" '
                          r'data-sqnr="([^"]*)"', (outputs / name).read_text())
        assert {html.unescape(t): float(v) for t, v in bars} == {
            t: v[0] for t, v in rows.items()}
    assert "Per-layer error" not in (outputs / "f.html").read_text()  # float: no table
    assert 'id="sqnr"' not in (outputs / "existing.html").read_text()


def _sqnr(reference: np.ndarray, approx: np.ndarray) -> float:
    f = reference.astype(np.float64)
    return float(10 * np.log10(np.sum(f * f) / np.sum((approx - f) ** 2)))


@pytest.mark.parametrize("mode", ["q", "q16"])
def test_report_output_sqnr_is_tflite_micros(outputs, mode):
    """The logits' cumulative SQNR on the page is that of TFLite-Micro running the written
    .tflite against onnxruntime's float model (int8 and 16x8); 16x8 is >= 5 dB better
    (its int8 weights bound the gain)."""
    from tools.runtimes import ort_outputs, ort_session, quantize_input, run_tflm

    model = parse_model((outputs / f"{mode}.tflite").read_bytes())
    inp, out = (model.tensors[model.inputs[0]], model.tensors[model.outputs[0]])
    xs = np.load(CALIB)["input"]
    feeds = quantize_input(xs.transpose(0, 2, 3, 1), inp.quant.scale[0],
                           int(inp.quant.zero_point[0]), inp.dtype)
    q = run_tflm((outputs / f"{mode}.tflite").read_bytes(), feeds).astype(np.float64)
    q = (q - out.quant.zero_point[0]) * out.quant.scale[0]
    f = ort_outputs(ort_session(LENET), xs)
    rows = _sqnr_rows((outputs / f"{mode}.html").read_text())
    assert rows["logits"][1] == pytest.approx(_sqnr(f, q), abs=0.05)
    if mode == "q16":
        assert rows["logits"][1] > _sqnr_rows((outputs / "q.html").read_text())["logits"][1] + 5
