"""SIGTERM / SIGINT / SIGHUP during a write (issue class 6): no ``.microlith-*`` temporary
is left behind, an existing output is untouched, and the exit is one line with status
128 + signal number (130 for Ctrl-C).

A child process runs the CLI with the write made slow at the point where the temporary
exists (``_new_file_mode`` / ``_umask`` of ``microlith.app.driver`` sleep after announcing
themselves on stdout); the test sends the signal once the child is there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.badinput import ZOO, snapshot

CHILD = """
import signal, sys, time
# as started from a terminal: the test may itself run under nohup, which ignores SIGHUP
# (and an ignored signal rightly stays ignored in the CLI)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
import microlith.app.driver as driver
from microlith.app import cli

hook, calls = sys.argv[1], [0]
real = getattr(driver, hook)

def slow():
    calls[0] += 1
    if calls[0] == int(sys.argv[2]):
        print("writing", flush=True)
        time.sleep(60)
    return real()

setattr(driver, hook, slow)
sys.exit(cli.main(sys.argv[3:]))
"""


def _interrupt(cwd: Path, hook: str, nth: int, argv: list[str], signum: int
               ) -> subprocess.CompletedProcess[str]:
    child = subprocess.Popen([sys.executable, "-c", CHILD, hook, str(nth), *argv], cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "writing\n", (line, child.stderr.read() if child.stderr else "")
        child.send_signal(signum)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    return subprocess.CompletedProcess(child.args, child.returncode, line + out, err)


def _check(proc: subprocess.CompletedProcess[str], signum: int) -> None:
    status = 130 if signum == signal.SIGINT else 128 + signum
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    expected = "interrupted" if signum == signal.SIGINT else \
        f"terminated by {signal.Signals(signum).name}"
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("progress: ")]
    assert lines == [f"error: {expected}"], proc.stderr


SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_signal_during_tflite_write_leaves_no_temporary(tmp_path: Path, signum: int) -> None:
    (tmp_path / "out.tflite").write_bytes(b"previous output")
    before = snapshot(tmp_path)
    proc = _interrupt(tmp_path, "_new_file_mode", 1,
                      ["compile", str(ZOO / "lenet.onnx"), "-o", "out.tflite"], signum)
    _check(proc, signum)
    assert snapshot(tmp_path) == before, sorted(snapshot(tmp_path) - before)
    assert (tmp_path / "out.tflite").read_bytes() == b"previous output"


def _c_args(tmp_path: Path) -> list[str]:
    np.savez(tmp_path / "calib.npz", input=np.random.default_rng(0).standard_normal(
        (4, 1, 16, 16)).astype(np.float32))
    return ["compile", str(ZOO / "lenet.onnx"), "--target", "c", "-o", "out", "--quantize",
            "int8", "--calibration-data", "calib.npz"]


def test_sigterm_during_new_c_directory_leaves_nothing(tmp_path: Path) -> None:
    args = _c_args(tmp_path)
    before = snapshot(tmp_path)
    proc = _interrupt(tmp_path, "_umask", 1, args, signal.SIGTERM)
    _check(proc, signal.SIGTERM)
    assert snapshot(tmp_path) == before, sorted(snapshot(tmp_path) - before)


def test_sigterm_in_existing_c_directory_replaces_no_file(tmp_path: Path) -> None:
    """The second of the C files is being written: the first must not be replaced yet."""
    args = _c_args(tmp_path)
    (tmp_path / "out").mkdir()
    for name in ("microlith_kernels.h", "model.c", "model.h", "model_memory_plan.json"):
        (tmp_path / "out" / name).write_text("old")
    before = snapshot(tmp_path)
    proc = _interrupt(tmp_path, "_new_file_mode", 2, args, signal.SIGTERM)
    _check(proc, signal.SIGTERM)
    assert snapshot(tmp_path) == before, sorted(snapshot(tmp_path) - before)
    assert all(p.read_text() == "old" for p in (tmp_path / "out").iterdir())


def test_handlers_are_restored_and_ignored_signals_stay_ignored(tmp_path: Path) -> None:
    from microlith.app import cli

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    term = signal.getsignal(signal.SIGTERM)
    try:
        seen = []
        with cli.signals_as_exceptions():
            seen = [signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGTERM)]
        assert seen[0] is signal.SIG_IGN and seen[1] is not term
        assert signal.getsignal(signal.SIGTERM) is term
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        with pytest.raises(cli.Terminated), cli.signals_as_exceptions():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert signal.getsignal(signal.SIGTERM) is term
