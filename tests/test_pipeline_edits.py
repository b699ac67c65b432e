"""The pipeline is the single source of truth; flags edit it; facts guard its order.

* ``--calibration-method`` edits ``calibrate`` in the default pipeline and in an explicit
  ``--pipeline`` (it used to be dropped silently there); contradicting an option the
  pipeline writes, or editing a pass the pipeline lacks, is an error;
* bad option values fail when the pipeline is parsed, before any work;
* ``plan-memory`` before ``fuse-requantize`` (a stale memory plan) is refused before
  anything runs, naming the pass that invalidated the plan; a graph changed behind the
  manager's back after planning is refused by the C emitter;
* the CLI: one ``error:`` line and exit 2 for these; ``-v`` adds the IR around a failing
  node with a caret; a crash inside a pass is an internal error, exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.diagnostics import BackendError, UsageError
from microlith.passes.pipelines import PIPELINES, int8_pipeline

REPO = Path(__file__).resolve().parents[1]
LENET = REPO / "tests" / "zoo" / "lenet.onnx"
CALIB = np.random.default_rng(0).uniform(0, 1, (16, 1, 16, 16)).astype(np.float32)


def _int8(**options: object):  # noqa: ANN202
    return compile_onnx(LENET, CompileOptions(quantize="int8", calibration_data=CALIB,
                                              quiet=True, warn=lambda m: None,
                                              **options))  # type: ignore[arg-type]


def test_calibration_method_edits_an_explicit_pipeline() -> None:
    default = _int8(calibration_method="mse")
    assert "calibrate{method=mse}" in default.pipeline
    explicit = _int8(pipeline=int8_pipeline(), calibration_method="mse")
    assert "calibrate{method=mse}" in explicit.pipeline
    assert explicit.graph.meta["calibration"]["method"] == "mse"
    assert explicit.output == default.output


def test_a_contradicting_flag_is_an_error() -> None:
    with pytest.raises(UsageError, match=r"--calibration-method minmax contradicts "
                                         r"--pipeline, which sets calibrate\{method=entropy\}"):
        _int8(pipeline=int8_pipeline("entropy"), calibration_method="minmax")
    with pytest.raises(UsageError, match="--io-dtype edits the 'insert-qdq' pass, which the "
                                         "pipeline does not contain"):
        compile_onnx(LENET, CompileOptions(pipeline=PIPELINES["float"], io_dtype="float32",
                                           quiet=True))


@pytest.mark.parametrize("spec, message", [
    ("calibrate{p=500}", r"calibrate: option p=500.0 must be in \(0, 100\]"),
    ("plan-memory{alignment=3}", "plan-memory: option alignment=3 must be a power of two"),
    ("plan-memory{alignment=1073741824}", "from 1 to 4096"),
])
def test_bad_options_fail_at_parse_time(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        compile_onnx(REPO / "no-such-model.onnx", CompileOptions(pipeline=spec))


def test_plan_memory_before_fuse_requantize_is_refused_before_running() -> None:
    spec = int8_pipeline(target="c").replace("fuse-requantize,eliminate-dead,legalize-c,"
                                             "prepare,select-kernels,plan-memory",
                                             "legalize-c,prepare,plan-memory,fuse-requantize")
    with pytest.raises(Exception, match="legalize-c") as info:
        _int8(target="c", pipeline=spec)
    assert "run" not in str(info.value).split("pipeline")[0]  # refused, not crashed
    late = int8_pipeline(target="c") + ",eliminate-dead"
    with pytest.raises(UsageError, match="--target c needs the pipeline to end with "
                                         "legalize-c,prepare,select-kernels,plan-memory: "
                                         ".*'eliminate-dead' "
                                         "invalidated 'memory-planned' after plan-memory"):
        _int8(target="c", pipeline=late)


def test_the_c_emitter_refuses_a_stale_plan() -> None:
    from microlith.backends.c.emitter import emit_c

    graph = _int8(target="c").graph
    node = graph.nodes[-1]
    graph.rename_value(node.output, node.output.name + "_renamed")  # behind the manager
    with pytest.raises(BackendError, match="stale memory plan: the graph changed after "
                                           "plan-memory"):
        emit_c(graph)


def _cli(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microlith", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_refusals_are_one_line_and_exit_2(tmp_path: Path) -> None:
    np.savez(tmp_path / "calib.npz", input=CALIB)
    spec = int8_pipeline(target="c") + ",fold-constants"
    proc = _cli("compile", LENET, "--target", "c", "-o", tmp_path / "out", "--quantize", "int8",
                "--calibration-data", tmp_path / "calib.npz", "--pipeline", spec, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("progress: ")]
    assert len(lines) == 1 and "invalidated 'memory-planned'" in lines[0]
    assert not (tmp_path / "out").exists()


def test_verbose_errors_show_the_ir_with_a_caret(tmp_path: Path) -> None:
    """A node the TFLite lowering refuses: -v shows the IR around it, caret underneath."""
    np.savez(tmp_path / "calib.npz", input=CALIB)
    proc = _cli("compile", LENET, "-o", tmp_path / "m.tflite", "-v", "--pipeline",
                "infer-shapes,fold-constants,eliminate-dead,lower-fc,to-nhwc,legalize-tflite",
                cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: ") and "BatchNormalization" in lines[0]
    carets = [i for i, line in enumerate(lines) if set(line.strip()) == {"^"}]
    assert carets and "BatchNormalization(" in lines[carets[0] - 1]
    quiet = _cli("compile", LENET, "-o", tmp_path / "m.tflite", "--pipeline",
                 "infer-shapes,fold-constants,eliminate-dead,lower-fc,to-nhwc,legalize-tflite",
                 cwd=tmp_path)
    assert len(quiet.stderr.strip().splitlines()) == 1


def test_a_crash_inside_a_pass_is_an_internal_error(tmp_path: Path) -> None:
    """Exit 1 and 'internal error', never the exit 2 of a user mistake."""
    plugin = tmp_path / "crashing_plugin.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from microlith.pipeline import Pass, register_pass\n"
        "@register_pass\n@dataclass(frozen=True)\nclass Crash(Pass):\n"
        "    name = 'crash'\n    summary = 'raises'\n"
        "    def run(self, graph, ctx):\n        raise ValueError('oops')\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import crashing_plugin; "
            "from microlith.app.cli import main; "
            "sys.exit(main(['compile', sys.argv[2], '-o', sys.argv[3], '--pipeline', "
            "'infer-shapes,crash,legalize-tflite']))")
    proc = subprocess.run([sys.executable, "-c", code, tmp_path, LENET, tmp_path / "m.tflite"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "internal error" in proc.stderr and "pass 'crash' crashed: ValueError: oops" in \
        proc.stderr
    assert not (tmp_path / "m.tflite").exists()
