"""Progress lines of the long stages (import, each pass, emit), off a terminal.

A chain of 3,000 elementwise nodes takes tens of milliseconds per stage or more; with
``--progress-interval 0.002`` the import, the emitter and at least one pass print a line
(1,500 nodes at 0.01 s left every pass silent on an idle machine once). No timing is
asserted beyond "a line appeared" (and "no line with -q").
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from microlith.pipeline.progress import Heartbeat
from tests.cli.clikit import run

LINE = re.compile(r"^progress: (?P<stage>.+?)(?:, (?P<seconds>[\d.]+) s(?: \((?P<counts>.*)\))?"
                  r"| done in [\d.]+ s)$")


def _chain(path: Path, n: int = 3000) -> None:
    nodes, inits, prev = [], [], "x"
    for i in range(n):
        inits.append(numpy_helper.from_array(np.full((1, 64), 1e-3 * i, np.float32), f"c{i}"))
        out = f"t{i}" if i < n - 1 else "y"
        nodes.append(helper.make_node("Add" if i % 2 else "Mul", [prev, f"c{i}"], [out],
                                      name=f"n{i}"))
        prev = out
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
                              inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_long_stages_print_progress_lines(work: Path) -> None:
    _chain(work / "chain.onnx")
    proc = run("compile", "chain.onnx", "-o", "chain.tflite", "--progress-interval", "0.002",
               cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(LINE.match(line) for line in lines), lines
    stages = {LINE.match(line)["stage"] for line in lines}
    assert "import chain.onnx" in stages, stages
    assert "emit tflite" in stages, stages
    passes = [s for s in stages if re.fullmatch(r"pass \d+/\d+ [a-z-]+", s)]
    assert passes, stages
    counted = [LINE.match(line)["counts"] for line in lines if LINE.match(line)["counts"]]
    assert "3,000 nodes" in counted
    assert any(line.endswith(" s") and " done in " in line for line in lines)

    quiet = run("compile", "chain.onnx", "-o", "chain.tflite", "--progress-interval", "0.01",
                "-q", cwd=work)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == "", quiet.stderr


def test_progress_interval_is_checked(work: Path) -> None:
    proc = run("compile", "m.onnx", "-o", "m.tflite", "--progress-interval", "0", cwd=work)
    assert proc.returncode == 2 and "positive number of seconds" in proc.stderr


def test_heartbeat_prints_only_for_long_stages() -> None:
    stream = io.StringIO()
    with Heartbeat(stream, interval=0.02) as beat:
        beat.begin("short")
        beat.end()
        beat.begin("long", "3 items")
        time.sleep(0.2)
        beat.end()
        beat.begin("failed")
        time.sleep(0.2)
    lines = stream.getvalue().splitlines()
    assert not any("short" in line for line in lines), lines
    assert lines[0].startswith("progress: long, ") and lines[0].endswith(" s (3 items)")
    assert any(line.startswith("progress: long done in ") for line in lines)
    assert not any("failed done" in line for line in lines)
    stream = io.StringIO()
    with Heartbeat(stream, interval=0.02, enabled=False) as beat:
        beat.begin("long")
        time.sleep(0.1)
        beat.end()
    assert stream.getvalue() == ""
