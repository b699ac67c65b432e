"""The ``microlith`` command line, run as a user runs it: a subprocess.

Covers ``compile`` (summary line, ``-q``, ``-v``, IR printing, ``--pipeline``,
``--remarks``, ``--verify-each``), ``passes`` and ``inspect`` (numbers recomputed
from the files), and every bad input: each must exit with status 2, print exactly
one ``error: ...`` line naming the file / node / tensor at fault, never a
traceback, and leave no output (or temporary) file behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.formats.tflite.flatbuffer import TflModel, parse_model
from microlith.passes.pipelines import PIPELINES
from tools.runtimes import NCHW_TO_NHWC, litert_interpreter, litert_invoke, to_physical

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "tests" / "zoo"
ZOO_MODELS = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid", "helper_ops",
              "helper_matmul")
DEFAULT_PIPELINE = PIPELINES["float"]
NO_BN_FOLD = ",".join(name for name in DEFAULT_PIPELINE.split(",") if name != "fold-batchnorm")
SUMMARY = re.compile(r"^wrote (?P<path>\S+) \((?P<bytes>[\d,]+) bytes, (?P<ops>\d+) ops, "
                     r"[\d.]+ s\)$")
IR_HEADER = re.compile(r"^// ----- IR after (\S+) -----$", re.M)


# --------------------------------------------------------------------------- running


def microlith_cmd() -> list[str]:
    """The console script of this interpreter's environment, else ``python -m microlith``."""
    beside = Path(sys.executable).parent / "microlith"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("microlith")
    return [found] if found else [sys.executable, "-m", "microlith"]


def module_cmd() -> list[str]:
    return [sys.executable, "-m", "microlith"]


def run(*args: str | os.PathLike[str], cwd: Path, cmd: list[str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([*(cmd or microlith_cmd()), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> set[str]:
    """Every file and directory under ``root``, dot-files (temporaries) included."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, one ``error:`` line on stderr containing every needle, nothing else."""
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """A scratch working directory; bad-input tests check nothing new appears in it."""
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def fail_in(work: Path, *args: str | os.PathLike[str]) -> tuple[str, set[str]]:
    """Run a command expected to fail; return its error line; check it created nothing."""
    before = snapshot(work.parent)
    proc = run(*args, cwd=work)
    line = assert_clean_failure(proc)
    after = snapshot(work.parent)
    assert after == before, f"files created: {sorted(after - before)}"
    return line, after


# --------------------------------------------------------------------------- models


def save(model: onnx.ModelProto, path: Path, check: bool = True) -> Path:
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def opset(version: int = 13) -> list[onnx.OperatorSetIdProto]:
    return [helper.make_opsetid("", version)]


def cycle_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="loop_add"),
             helper.make_node("Relu", ["a"], ["b"], name="loop_relu"),
             helper.make_node("Relu", ["b"], ["y"], name="out_relu")]
    graph = helper.make_graph(nodes, "cycle", [x], [y])
    return save(helper.make_model(graph, opset_imports=opset()), path, check=False)


def unsupported_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="fine_relu"),
             helper.make_node("Cos", ["a"], ["b"], name="odd_cos"),
             helper.make_node("Erf", ["b"], ["c"], name="odd_erf"),
             helper.make_node("Cos", ["c"], ["y"], name="odd_cos_2")]
    graph = helper.make_graph(nodes, "unsupported", [x], [y])
    return save(helper.make_model(graph, opset_imports=opset()), path)


def dynamic_model(path: Path) -> Path:
    """Conv+Relu with input [N, 3, H, W]: N (batch) is fine, H and W must be pinned."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4, "H", "W"])
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv.w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "conv.b")
    nodes = [helper.make_node("Conv", ["image", "conv.w", "conv.b"], ["c"], name="conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["features"], name="relu")]
    graph = helper.make_graph(nodes, "dynamic", [x], [y], [w, b])
    return save(helper.make_model(graph, opset_imports=opset()), path)


def nan_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    weight = np.ones((4, 3), np.float32)
    weight[1, 2] = np.nan
    weight[3, 0] = np.inf
    inits = [numpy_helper.from_array(weight, "fc.poisoned_weight"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fc.bias")]
    nodes = [helper.make_node("MatMul", ["x", "fc.poisoned_weight"], ["m"], name="fc"),
             helper.make_node("Add", ["m", "fc.bias"], ["y"], name="fc_bias")]
    graph = helper.make_graph(nodes, "nan", [x], [y], inits)
    return save(helper.make_model(graph, opset_imports=opset()), path)


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
    assert int(match["ops"]) == len(parse_model(data).operators) == 11
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
    assert int(rows[-1].split()[3]) == 7  # lenet ends as 7 IR nodes
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


# --------------------------------------------------------------------------- inspect


def parse_inspect(text: str) -> dict[str, object]:
    lines = text.splitlines()
    head = re.match(r"^(.+): (onnx|tflite), (\d+) ops, (\d+) tensors$", lines[0])
    assert head, lines[0]
    ops: dict[str, int] = {}
    at = lines.index("ops:") + 1
    while lines[at].startswith("  "):
        op, count = lines[at].split()
        ops[op] = int(count)
        at += 1
    params = re.match(r"^parameter bytes: ([\d,]+)$", lines[at])
    peak = re.match(r"^peak activation bytes \(estimate\): ([\d,]+) at op (\d+) \((.+)\)$",
                    lines[at + 1])
    assert params and peak, lines[at:at + 2]
    tensors = []
    if "tensors:" in lines:
        tensors = [line.split() for line in lines[lines.index("tensors:") + 1:]]
    io = [line.strip() for line in lines[1:lines.index("ops:")]]
    return {"kind": head[2], "n_ops": int(head[3]), "n_tensors": int(head[4]), "ops": ops,
            "params": int(params[1].replace(",", "")),
            "peak": int(peak[1].replace(",", "")), "peak_at": int(peak[2]),
            "peak_op": peak[3], "tensors": tensors, "io": io}


def peak_activation(steps: list[tuple[list[str], list[str]]], sizes: dict[str, int],
                    inputs: list[str], outputs: list[str]) -> tuple[int, int]:
    """Largest sum of live activation bytes at one op (first such op), recomputed here."""
    born = {t: 0 for t in inputs}
    dies = {t: 0 for t in inputs}
    for index, (ins, outs) in enumerate(steps):
        for t in outs:
            born.setdefault(t, index)
            dies[t] = index
        for t in ins:
            dies[t] = max(dies.get(t, index), index)
    for t in outputs:
        dies[t] = len(steps) - 1
    totals = [sum(sizes[t] for t in born if born[t] <= i <= dies[t]) for i in range(len(steps))]
    best = max(totals)
    return best, totals.index(best)


def tflite_peak(model: TflModel) -> tuple[int, int]:
    const = {i for i, t in enumerate(model.tensors) if t.data is not None}
    sizes = {str(i): int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
             for i, t in enumerate(model.tensors)}
    steps = [([str(i) for i in op.inputs if i >= 0 and i not in const],
              [str(o) for o in op.outputs]) for op in model.operators]
    return peak_activation(steps, sizes, [str(i) for i in model.inputs],
                           [str(o) for o in model.outputs])


@pytest.mark.parametrize("name", ["lenet", "dscnn", "mobilenet_v1", "helper_ops"])
def test_inspect_tflite_numbers(work: Path, name: str) -> None:
    out = work / f"{name}.tflite"
    assert run("compile", ZOO / f"{name}.onnx", "-o", out.name, "-q", cwd=work).returncode == 0
    proc = run("inspect", out.name, "--tensors", cwd=work)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    report = parse_inspect(proc.stdout)
    model = parse_model(out.read_bytes())
    assert report["kind"] == "tflite"
    assert report["n_ops"] == len(model.operators)
    assert report["n_tensors"] == len(model.tensors)
    assert report["ops"] == dict(Counter(op.op for op in model.operators))
    assert report["params"] == sum(len(t.data) for t in model.tensors if t.data is not None)
    peak, at = tflite_peak(model)
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (
        peak, at, model.operators[at].op)
    tin, tout = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    assert report["io"] == [f"input  {tin.name}: {tin.dtype} {tin.shape}",
                            f"output {tout.name}: {tout.dtype} {tout.shape}"]
    rows = {row[0]: row for row in report["tensors"]}
    assert len(report["tensors"]) == len(model.tensors)
    for tensor in model.tensors:
        row = rows[tensor.name]
        assert row[1] == tensor.dtype
        assert row[2] == ("x".join(map(str, tensor.shape)) or "scalar")


def test_inspect_tflite_hand_computed_lenet(work: Path) -> None:
    """Anchors computed by hand, independent of any liveness code."""
    assert run("compile", ZOO / "lenet.onnx", "-o", "l.tflite", "-q", cwd=work).returncode == 0
    report = parse_inspect(run("inspect", "l.tflite", cwd=work).stdout)
    # conv 6x1x5x5+6, conv 16x6x5x5+16, fc 64x64+64, fc 10x64+10 floats, reshape shape int32[2]
    assert report["params"] == 4 * (156 + 2416 + 4160 + 650) + 8
    # MAX_POOL_2D reads the 16x16x6 conv output (6144 B) and writes 8x8x6 (1536 B).
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (7680, 1, "MAX_POOL_2D")
    assert report["io"] == ["input  input: float32 [1, 16, 16, 1]",
                            "output logits: float32 [1, 10]"]


@pytest.mark.parametrize("name", ["lenet", "dscnn", "mobilenet_v1", "resnet8"])
def test_inspect_onnx_numbers(work: Path, name: str) -> None:
    proc = run("inspect", ZOO / f"{name}.onnx", "--tensors", cwd=work)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    report = parse_inspect(proc.stdout)
    model = onnx.load(str(ZOO / f"{name}.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
              for n in model.graph.node if n.op_type == "Constant"}
    # Constant nodes and Identity-of-an-initializer are values, not ops, once imported.
    ops = [n for n in model.graph.node if n.op_type != "Constant"
           and not (n.op_type == "Identity" and n.input[0] in inits)]
    assert report["kind"] == "onnx"
    assert report["ops"] == dict(Counter(n.op_type for n in ops))
    assert report["n_ops"] == len(ops)
    assert report["params"] == sum(a.nbytes for a in [*inits.values(), *consts.values()])
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in
              [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    sizes = {k: 4 * int(np.prod(v)) for k, v in shapes.items()}
    steps = [([i for i in n.input if i in shapes], list(n.output)) for n in ops]
    peak, at = peak_activation(steps, sizes, [i.name for i in model.graph.input],
                               [o.name for o in model.graph.output])
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (peak, at, ops[at].name)
    rows = {row[0]: row for row in report["tensors"]}
    for init_name, array in inits.items():
        assert rows[init_name][1:3] == [str(array.dtype), "x".join(map(str, array.shape))]
    assert report["io"] == ["input  input: float32 [1, 1, 16, 16]",
                            "output logits: float32 [1, 10]"]


def test_inspect_onnx_hand_computed_lenet(work: Path) -> None:
    report = parse_inspect(run("inspect", ZOO / "lenet.onnx", cwd=work).stdout)
    # BN after the first conv: 6x16x16 float in + 6x16x16 float out.
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (
        12288, 1, "/1/BatchNormalization")
    assert report["ops"] == {"AveragePool": 1, "BatchNormalization": 2, "Conv": 2,
                             "Flatten": 1, "Gemm": 2, "MaxPool": 1, "Relu": 3}


def test_inspect_dynamic_onnx_follows_its_own_advice(work: Path) -> None:
    """The error tells the user to pass --input-shape; inspect must accept it."""
    dynamic_model(work / "dyn.onnx")
    line, _ = fail_in(work, "inspect", "dyn.onnx")
    assert "'image'" in line and "--input-shape image=" in line
    proc = run("inspect", "dyn.onnx", "--input-shape", "image=1,3,10,12", cwd=work)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    report = parse_inspect(proc.stdout)
    assert report["io"] == ["input  image: float32 [1, 3, 10, 12]",
                            "output features: float32 [1, 4, 10, 12]"]
    assert report["params"] == 4 * (4 * 3 * 3 * 3 + 4)
    # Conv: 3x10x12 in + 4x10x12 out; Relu: 4x10x12 in and out.
    assert (report["peak"], report["peak_at"]) == (4 * 10 * 12 * 4 * 2, 1)


# --------------------------------------------------------------------------- bad inputs


def test_missing_model_file(work: Path) -> None:
    line, _ = fail_in(work, "compile", "missing.onnx", "-o", "out.tflite")
    assert line == "error: missing.onnx: no such file"


@pytest.mark.parametrize("content", [
    b"this is a plain text file, not a model\n" * 3,
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00",
], ids=["text", "png"])
def test_not_an_onnx_file(work: Path, content: bytes) -> None:
    (work / "model.onnx").write_bytes(content)
    line, _ = fail_in(work, "compile", "model.onnx", "-o", "out.tflite")
    assert line.startswith("error: model.onnx: not a")
    assert "ONNX" in line


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_truncated_protobuf(work: Path, name: str) -> None:
    blob = (ZOO / f"{name}.onnx").read_bytes()
    (work / "half.onnx").write_bytes(blob[:len(blob) // 2])
    line, _ = fail_in(work, "compile", "half.onnx", "-o", "out.tflite")
    assert line.startswith("error: half.onnx: ")
    assert "ONNX" in line


def test_empty_file(work: Path) -> None:
    (work / "empty.onnx").write_bytes(b"")
    line, _ = fail_in(work, "compile", "empty.onnx", "-o", "out.tflite")
    assert line.startswith("error: empty.onnx: ") and "empty" in line


def test_model_path_is_a_directory(work: Path) -> None:
    (work / "dir.onnx").mkdir()
    line, _ = fail_in(work, "compile", "dir.onnx", "-o", "out.tflite")
    assert line.startswith("error: dir.onnx: ") and "directory" in line


def test_graph_with_cycle(work: Path) -> None:
    cycle_model(work / "cycle.onnx")
    line, _ = fail_in(work, "compile", "cycle.onnx", "-o", "out.tflite")
    assert line.startswith("error: cycle.onnx: ") and "cycle" in line
    assert "loop_add" in line and "loop_relu" in line and "out_relu" not in line


def test_unsupported_ops_all_listed_in_one_line(work: Path) -> None:
    import microlith.frontend.onnx_import  # noqa: F401  (registers the importers)
    from microlith.frontend.context import supported_ops

    assert not {"Cos", "Erf"} & set(supported_ops())
    unsupported_model(work / "odd.onnx")
    line, _ = fail_in(work, "compile", "odd.onnx", "-o", "out.tflite")
    assert line.startswith("error: odd.onnx: unsupported ops")
    for needle in ("Cos", "Erf", "odd_cos", "odd_cos_2", "odd_erf"):
        assert needle in line
    assert "fine_relu" not in line


def test_dynamic_dimension_needs_input_shape(work: Path) -> None:
    dynamic_model(work / "dyn.onnx")
    line, _ = fail_in(work, "compile", "dyn.onnx", "-o", "out.tflite")
    assert line.startswith("error: dyn.onnx: ")
    assert "'image'" in line and "'H'" in line and "--input-shape" in line

    proc = run("compile", "dyn.onnx", "-o", "out.tflite", "--input-shape", "image=1,3,10,12",
               cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    model = parse_model((work / "out.tflite").read_bytes())
    assert model.tensors[model.inputs[0]].shape == [1, 10, 12, 3]
    assert model.tensors[model.outputs[0]].shape == [1, 10, 12, 4]
    assert model.tensors[model.inputs[0]].name == "image"
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert.interpreter")
    x = np.random.default_rng(2).standard_normal((1, 3, 10, 12)).astype(np.float32)
    session = ort.InferenceSession(str(work / "dyn.onnx"), providers=["CPUExecutionProvider"])
    expected = to_physical(session.run(None, {"image": x})[0], NCHW_TO_NHWC)
    got = litert_invoke(litert_interpreter((work / "out.tflite").read_bytes()),
                        to_physical(x, NCHW_TO_NHWC))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def _tiny_graph(path: Path, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
                outputs: list[onnx.ValueInfoProto]) -> Path:
    graph = helper.make_graph(nodes, "tiny", inputs, outputs)
    return save(helper.make_model(graph, opset_imports=opset()), path, check=False)


def _vi(name: str, shape: list[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


MALFORMED = {
    # name: (nodes, inputs, outputs, substrings the error line must contain)
    "dangling-input": ([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")],
                       [_vi("x", [1, 4])], [_vi("y", [1, 4])], ["'adder'", "'ghost'"]),
    "defined-twice": ([helper.make_node("Relu", ["x"], ["y"], name="first"),
                       helper.make_node("Neg", ["x"], ["y"], name="second")],
                      [_vi("x", [1, 4])], [_vi("y", [1, 4])],
                      ["'y'", "'first'", "'second'", "defined twice"]),
    "redefines-input": ([helper.make_node("Relu", ["x"], ["x"], name="loop")],
                        [_vi("x", [1, 4])], [_vi("x", [1, 4])], ["'x'", "'loop'"]),
    "undefined-output": ([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                         [_vi("x", [1, 4])], [_vi("nowhere", [1, 4])], ["'nowhere'"]),
    "no-input-shape": ([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                       [_vi("x", None)], [_vi("y", None)], ["'x'", "--input-shape"]),
    "zero-size-dim": ([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                      [_vi("x", [1, 0])], [_vi("y", [1, 0])], ["'x'", "'0'", "axis 1"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_graphs(work: Path, case: str) -> None:
    nodes, inputs, outputs, needles = MALFORMED[case]
    _tiny_graph(work / "bad.onnx", nodes, inputs, outputs)
    line, _ = fail_in(work, "compile", "bad.onnx", "-o", "out.tflite")
    assert line.startswith("error: bad.onnx: "), line
    for needle in needles:
        assert needle in line, (needle, line)


@pytest.mark.parametrize("spec", ["input", "input=", "=1,1,16,16", "input=1,x,16,16",
                                  "input=1,0,16,16", "input=1;1;16;16", "input=-1,1,16,16"])
def test_bad_input_shape_syntax(work: Path, spec: str) -> None:
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                      "--input-shape", spec)
    assert "--input-shape" in line and repr(spec) in line


def test_input_shape_unknown_name_or_rank(work: Path) -> None:
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                      "--input-shape", "imput=1,1,16,16")
    assert "'imput'" in line and "inputs: input" in line and "lenet.onnx" in line
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                      "--input-shape", "input=1,16,16")
    assert "'input'" in line and "rank 3" in line


def test_unknown_pass_in_pipeline(work: Path) -> None:
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                      "--pipeline", "infer-shapes,fold-batchnrm,to-nhwc")
    assert "unknown pass 'fold-batchnrm'" in line
    assert "did you mean 'fold-batchnorm'" in line


@pytest.mark.parametrize("spec", ["", " ", ",,"])
def test_empty_pipeline_is_refused_not_replaced_by_default(work: Path, spec: str) -> None:
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out.tflite", "--pipeline", spec)
    assert ("empty pipeline" if spec.strip() == "" else "bad pipeline syntax") in line


def test_unknown_pass_option(work: Path) -> None:
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                      "--pipeline", "to-nhwc{inputz=nchw}")
    assert "to-nhwc" in line and "'inputz'" in line


def test_nan_and_inf_weights_warn_but_compile(work: Path) -> None:
    nan_model(work / "nan.onnx")
    proc = run("compile", "nan.onnx", "-o", "out.tflite", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: "), proc.stderr
    assert "'fc.poisoned_weight'" in lines[0] and "2 NaN/Inf" in lines[0]
    assert SUMMARY.match(proc.stdout.strip())
    assert (work / "out.tflite").is_file()


def test_output_in_missing_directory_fails_before_compiling(work: Path) -> None:
    """No IR printed, no NaN warning, nothing created: the path check comes first."""
    nan_model(work / "nan.onnx")
    line, after = fail_in(work, "compile", "nan.onnx", "-o", "no/such/dir/out.tflite",
                          "--print-ir-after-all", "-v")
    assert line == "error: no/such/dir/out.tflite: output directory does not exist"
    assert not (work / "no").exists() and "work/no" not in {p.replace(os.sep, "/") for p in after}


def test_output_path_is_a_directory(work: Path) -> None:
    (work / "out").mkdir()
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out")
    assert line == "error: out: is a directory"


@pytest.mark.parametrize("content", [None, b"", b"hello", "half-tflite"],
                         ids=["missing", "empty", "text", "truncated-tflite"])
def test_inspect_bad_files(work: Path, content: bytes | str | None) -> None:
    target = work / "thing.tflite"
    if content == "half-tflite":
        assert run("compile", ZOO / "lenet.onnx", "-o", "full.tflite", "-q",
                   cwd=work).returncode == 0
        data = (work / "full.tflite").read_bytes()
        target.write_bytes(data[:len(data) // 2])
    elif isinstance(content, bytes):
        target.write_bytes(content)
    line, _ = fail_in(work, "inspect", target.name)
    assert line.startswith("error: thing.tflite: ")
