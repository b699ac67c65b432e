"""The HTML report: self-contained, rendered by headless Chromium without console errors
and not blank, with the numbers of the compile (MACs, arena, lower bound, flash)."""

from __future__ import annotations

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
    for args in (["--target", "c", "-o", "c", *quant, "--report", "c.html"],
                 ["-o", "q.tflite", *quant, "--report", "q.html"]):
        proc = run("compile", LENET, *args, "-q", cwd=work)
        assert proc.returncode == 0, proc.stderr
    proc = run("report", "q.tflite", "-o", "existing.html", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work


def _numbers(page: str, attribute: str, tag: str = "tr") -> list[int]:
    return [int(v) for v in re.findall(rf'<{tag} [^>]*{attribute}="(\d+)"', page)]


def test_report_is_self_contained(outputs):
    for name in ("c.html", "q.html", "existing.html"):
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
    for name in ("c.html", "existing.html"):
        dom, console, pixels = render(outputs / name, tmp_path / f"profile-{name}")
        assert console == [], console
        assert 'id="arena-chart"' in dom and "<table" in dom
        assert pixels.shape[0] >= 600 and pixels.shape[1] >= 800
        rgb = pixels[..., :3].reshape(-1, 3)
        colors = np.unique(rgb, axis=0)
        white = np.all(rgb > 245, axis=1).mean()
        assert len(colors) > 20 and 0.2 < white < 0.98, (len(colors), white)


def test_report_bad_arguments(outputs):
    proc = run("report", LENET, "-o", "r.html", cwd=outputs)
    assert proc.returncode == 2 and "compile ... --report" in proc.stderr
    proc = run("compile", LENET, "-o", "m.tflite", "--report", "r.txt", cwd=outputs)
    assert proc.returncode == 2 and "give an .html file" in proc.stderr
