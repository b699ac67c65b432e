"""Shared helpers of the bad-input tests: tiny ONNX models and the CLI run in-process.

``cli_run`` calls ``microlith.app.cli.main`` in this process (fast; ``subprocess`` runs
are kept for what needs a real process: signals, hangs) and records every Python
warning, so a raw numpy ``RuntimeWarning`` that would reach a user's terminal shows up.
``assert_one_error`` is the project's contract for a user mistake: exit status 2, one
``error:`` line naming the file and the culprit, no traceback; ``fails_cleanly`` adds:
nothing written.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "tests" / "zoo"
F = TensorProto.FLOAT


def vi(name: str, shape: Sequence[int | str] | None, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
          outputs: list[onnx.ValueInfoProto], inits: dict[str, np.ndarray] | None = None,
          opset: int = 13, ir_version: int = 8) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(a), n)
                               for n, a in (inits or {}).items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = ir_version
    return proto


def save(proto: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(proto.SerializeToString())
    return path


def snapshot(root: Path) -> set[str]:
    """Every path under ``root``, dot-files (temporaries) included."""
    return {os.path.relpath(os.path.join(d, n), root)
            for d, dirs, files in os.walk(root) for n in dirs + files}


@dataclass
class Run:
    status: int
    out: str
    err: str
    runtime_warnings: list[str]

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if not line.startswith("progress: ")]


def cli_run(*argv: str | os.PathLike[str], cwd: Path) -> Run:
    """``microlith ARGV`` in-process in ``cwd``; Python warnings are recorded, not shown."""
    from microlith.app import cli

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with warnings.catch_warnings(record=True) as caught, redirect_stdout(out), \
                redirect_stderr(err):
            warnings.simplefilter("always")
            status = cli.main([os.fspath(a) for a in argv])
    finally:
        os.chdir(old)
    return Run(status, out.getvalue(), err.getvalue(),
               [f"{w.category.__name__}: {w.message}" for w in caught
                if issubclass(w.category, RuntimeWarning)])


def assert_one_error(run: Run, *needles: str) -> str:
    """Exit 2, one ``error:`` line (the last; only ``warning:`` lines before it, e.g. for
    NaN in a constant) holding every needle, no traceback, no numpy warnings."""
    assert run.status == 2, (run.status, run.err)
    assert run.lines and all(line.startswith("warning: ") for line in run.lines[:-1]), run.err
    line = run.lines[-1]
    assert line.startswith("error: ") and "Traceback" not in run.err, line
    for needle in needles:
        assert needle in line, (needle, line)
    assert run.runtime_warnings == [], run.runtime_warnings
    return line


def fails_cleanly(work: Path, *argv: str | os.PathLike[str]) -> str:
    """Run a command that must fail; its one error line; nothing created in ``work``."""
    before = snapshot(work)
    line = assert_one_error(cli_run(*argv, cwd=work))
    assert snapshot(work) == before, sorted(snapshot(work) - before)
    return line


def microlith(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``microlith ARGS`` as a subprocess: for what could hang (a timeout fails the test)."""
    try:
        return subprocess.run([sys.executable, "-m", "microlith", *map(str, args)], cwd=cwd,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"microlith {' '.join(map(str, args))} hung")


def refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A subprocess run that failed with exit 2 and one error line holding the needles."""
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("progress: ")]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), \
        (proc.returncode, proc.stderr)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
