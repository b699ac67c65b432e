"""``microlith compile`` and ``microlith passes`` as a user runs them: the summary line,
``-q``, ``-v``, IR printing, ``--pipeline``, ``--remarks``, ``--verify-each``, and what
a failed or interrupted compile leaves behind (nothing new, the old output intact).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from microlith.formats.tflite.flatbuffer import parse_model
from microlith.passes.pipelines import PIPELINES
from tests.cli.clikit import (
    DEFAULT_PIPELINE,
    IR_HEADER,
    NO_BN_FOLD,
    SUMMARY,
    ZOO,
    assert_clean_failure,
    fail_in,
    module_cmd,
    run,
    snapshot,
)
from tools.runtimes import litert_interpreter, litert_invoke

# --------------------------------------------------------------------------- compile: success


def test_compile_writes_file_and_one_summary_line(work: Path) -> None:
    proc = run("compile", ZOO / "dscnn.onnx", "-o", "dscnn.tflite", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    data = (work / "dscnn.tflite").read_bytes()
    assert match["path"] == "dscnn.tflite"
    assert int(match["bytes"].replace(",", "")) == len(data)
    # The op count is the written file's (dscnn needs a PAD the IR does not have as a node).
    assert int(match["ops"]) == len(parse_model(data).operators) == 10  # no RESHAPE before FC
    assert data[4:8] == b"TFL3"
    assert snapshot(work.parent) == {"work", os.path.join("work", "dscnn.tflite")}


def test_output_file_has_normal_permissions(work: Path) -> None:
    """The atomic write's temporary file is 0600; the result must not be."""
    proc = run("compile", ZOO / "lenet.onnx", "-o", "lenet.tflite", cwd=work)
    assert proc.returncode == 0, proc.stderr
    reference = work / "reference"
    reference.write_bytes(b"")  # what a plain open() gives under the same umask
    assert (work / "lenet.tflite").stat().st_mode & 0o777 == reference.stat().st_mode & 0o777


def test_console_script_and_module_agree(work: Path) -> None:
    a = run("compile", ZOO / "lenet.onnx", "-o", "a.tflite", "-q", cwd=work)
    b = run("compile", ZOO / "lenet.onnx", "-o", "b.tflite", "-q", cwd=work, cmd=module_cmd())
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    assert (work / "a.tflite").read_bytes() == (work / "b.tflite").read_bytes()


def test_quiet_prints_nothing(work: Path) -> None:
    proc = run("compile", ZOO / "lenet.onnx", "-o", "lenet.tflite", "-q", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert parse_model((work / "lenet.tflite").read_bytes()).operators


def test_verbose_prints_timing_table_on_stderr(work: Path) -> None:
    proc = run("compile", ZOO / "lenet.onnx", "-o", "lenet.tflite", "-v", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert SUMMARY.match(proc.stdout.strip())
    err = proc.stderr.splitlines()
    assert f"pipeline: {DEFAULT_PIPELINE}" in err
    header = [i for i, line in enumerate(err) if re.match(r"^pass\s+ms\s+%\s+nodes$", line)]
    assert len(header) == 1, proc.stderr
    rows = err[header[0] + 1:header[0] + 1 + len(DEFAULT_PIPELINE.split(","))]
    assert [row.split()[0] for row in rows] == DEFAULT_PIPELINE.split(",")
    for row in rows:
        name, ms, percent, nodes = row.split()
        assert float(ms) >= 0 and 0 <= float(percent) <= 100 and int(nodes) > 0
    assert int(rows[-1].split()[3]) == 6  # lenet ends as 6 IR nodes (FC flattens itself)
    assert any(line.startswith("total ") for line in err)
    assert any(line.startswith("seconds: import ") for line in err)


def test_print_ir_after_all(work: Path) -> None:
    proc = run("compile", ZOO / "lenet.onnx", "-o", "lenet.tflite", "--print-ir-after-all",
               cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert SUMMARY.match(proc.stdout.strip())  # IR goes to stderr only
    assert IR_HEADER.findall(proc.stderr) == DEFAULT_PIPELINE.split(",")
    assert "graph @" not in proc.stdout
    plain = run("compile", ZOO / "lenet.onnx", "-o", "plain.tflite", "-q", cwd=work)
    assert plain.returncode == 0
    assert (work / "plain.tflite").read_bytes() == (work / "lenet.tflite").read_bytes()


def test_print_ir_after_named_pass(work: Path) -> None:
    proc = run("compile", ZOO / "lenet.onnx", "-o", "lenet.tflite",
               "--print-ir-after=infer-shapes", "--print-ir-after=fold-batchnorm", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert IR_HEADER.findall(proc.stderr) == ["infer-shapes", "fold-batchnorm"]
    before, after = IR_HEADER.split(proc.stderr)[2::2]
    assert before.count("BatchNormalization(") == 2
    assert "BatchNormalization" not in after
    assert after.count("Conv(") == 2 and after.count("Relu(") == 3
    assert "graph @" not in proc.stdout


def test_print_ir_after_unknown_pass_is_an_error(work: Path) -> None:
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "lenet.tflite",
                      "--print-ir-after=fold-batchnrm")
    assert "--print-ir-after" in line and "'fold-batchnrm'" in line
    assert "did you mean 'fold-batchnorm'" in line


def test_remarks_and_verify_each(work: Path) -> None:
    proc = run("compile", ZOO / "lenet.onnx", "-o", "lenet.tflite", "--remarks", "--verify-each",
               cwd=work)
    assert proc.returncode == 0, proc.stderr
    remarks = proc.stderr.splitlines()
    assert remarks and all(line.startswith("remark: [") for line in remarks)
    assert "remark: [fold-batchnorm] /1/BatchNormalization: FoldIntoLinear: applied" in remarks
    assert sum("[fuse-activation]" in line and "applied" in line for line in remarks) == 3


def test_pipeline_override_keeps_nchw_input(work: Path) -> None:
    """``to-nhwc{inputs=nchw}``: the .tflite takes NCHW data and computes the same logits."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert.interpreter")
    pipeline = DEFAULT_PIPELINE.replace("to-nhwc", "to-nhwc{inputs=nchw}")
    proc = run("compile", ZOO / "lenet.onnx", "-o", "lenet.tflite", "--pipeline", pipeline,
               "-v", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert f"pipeline: {pipeline}" in proc.stderr.splitlines()
    model = parse_model((work / "lenet.tflite").read_bytes())
    assert model.tensors[model.inputs[0]].shape == [1, 1, 16, 16]
    assert [op.op for op in model.operators].count("TRANSPOSE") == 1
    x = np.random.default_rng(0).random((1, 1, 16, 16), dtype=np.float32)
    session = ort.InferenceSession(str(ZOO / "lenet.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": x})[0]
    got = litert_invoke(litert_interpreter((work / "lenet.tflite").read_bytes()), x)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_pipeline_without_fold_batchnorm_fails_in_backend(work: Path) -> None:
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "lenet.tflite",
                      "--pipeline", NO_BN_FOLD)
    assert "tflite" in line  # the backend (or legalize-tflite) refuses
    assert "/1/BatchNormalization (BatchNormalization)" in line
    assert "/5/BatchNormalization (BatchNormalization)" in line
    assert "fold-batchnorm" in line


def test_failed_compile_keeps_existing_output(work: Path) -> None:
    out = work / "model.tflite"
    out.write_bytes(b"previous contents")
    before = snapshot(work.parent)
    proc = run("compile", ZOO / "lenet.onnx", "-o", out.name, "--pipeline", NO_BN_FOLD,
               cwd=work)
    assert_clean_failure(proc, "BatchNormalization")
    assert out.read_bytes() == b"previous contents"
    assert snapshot(work.parent) == before


def test_write_failure_is_a_user_error_and_leaves_nothing(work: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """A full disk while writing (simulated in-process): one error line, no temp file."""
    import errno

    from microlith.app import cli

    def full_disk(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.chdir(work)
    monkeypatch.setattr(os, "replace", full_disk)
    before = snapshot(work.parent)
    status = cli.main(["compile", str(ZOO / "lenet.onnx"), "-o", "out.tflite"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"error: out.tflite: cannot write ({os.strerror(errno.ENOSPC)})"]
    assert snapshot(work.parent) == before


# --------------------------------------------------------------------------- passes


def test_passes_lists_every_pass_and_default_pipeline(work: Path) -> None:
    from microlith.pipeline.pass_base import all_passes

    proc = run("passes", cwd=work)
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    listed = [line.split()[0] for line in lines if line and not line[0].isspace()
              and not line.startswith("default pipeline")]
    registered = all_passes()
    assert listed == sorted(registered)
    for name, cls in registered.items():
        assert f"{name:<18} {cls.summary}" in lines
    assert "                     inputs: nhwc|nchw = nhwc" in lines  # to-nhwc's option
    for mode, spec in PIPELINES.items():
        index = lines.index(f"default pipeline ({mode}):")
        assert lines[index + 1].strip() == spec
        assert set(re.sub(r"\{[^}]*\}", "", spec).split(",")) <= set(listed)
    assert "float" in PIPELINES
