"""Every bad input to the ``microlith`` command line: each must exit with status 2,
print exactly one ``error: ...`` line naming the file / node / tensor at fault, never a
traceback, and leave no output (or temporary) file behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from microlith.formats.tflite.flatbuffer import parse_model
from tests.cli.clikit import (
    SUMMARY,
    ZOO,
    ZOO_MODELS,
    cycle_model,
    dynamic_model,
    fail_in,
    nan_model,
    opset,
    run,
    save,
    unsupported_model,
)
from tools.runtimes import NCHW_TO_NHWC, litert_interpreter, litert_invoke, to_physical

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

    assert not {"Cos", "Sin"} & set(supported_ops())
    unsupported_model(work / "odd.onnx")
    line, _ = fail_in(work, "compile", "odd.onnx", "-o", "out.tflite")
    assert line.startswith("error: odd.onnx: unsupported ops")
    for needle in ("Cos", "Sin", "odd_cos", "odd_cos_2", "odd_sin"):
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
