"""``microlith run`` on a two-input model: ``--input a.npy --input b.npy`` (model order),
``--input NAME=x.npy`` (any order) and one ``.npz`` keyed by input name, for the host C, the
Cortex-M4 and the ``.tflite``, all giving TFLite-Micro's bytes on the same .tflite (fed by
hand here); a missing, extra or unknown input is one error line naming it."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith import CompileOptions, compile_onnx
from microlith.app.driver import write_atomic, write_directory
from microlith.app.run_model import run_c_directory
from microlith.formats.tflite.flatbuffer import parse_model
from tests.cli.clikit import run


def _two_inputs() -> onnx.ModelProto:
    """y = Gemm(a, W1) + Gemm(b, W2): the inputs play different roles (a swap shows)."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in (("w1", (8, 6)), ("c1", (6,)), ("w2", (8, 6)), ("c2", (6,)))]
    nodes = [helper.make_node("Gemm", ["a", "w1", "c1"], ["h1"], name="g1"),
             helper.make_node("Gemm", ["b", "w2", "c2"], ["h2"], name="g2"),
             helper.make_node("Add", ["h1", "h2"], ["y"], name="add")]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8])
                       for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> dict:
    from tools.runtimes import quantize_input, tflm_interpreter

    work = tmp_path_factory.mktemp("two")
    onnx.save(_two_inputs(), work / "two.onnx")
    rng = np.random.default_rng(0)
    calib = {"a": rng.standard_normal((64, 8)).astype(np.float32),
             "b": 3 * rng.standard_normal((64, 8)).astype(np.float32)}
    np.savez(work / "calib.npz", **calib)
    opts = dict(quantize="int8", calibration_data=str(work / "calib.npz"), quiet=True)
    write_directory(work / "c", compile_onnx(work / "two.onnx",
                                             CompileOptions(target="c", **opts)).files)
    data = compile_onnx(work / "two.onnx", CompileOptions(**opts)).output
    write_atomic(work / "m.tflite", data)
    xa, xb = calib["a"][:5], calib["b"][:5]
    np.save(work / "a.npy", xa)
    np.save(work / "b.npy", xb)
    np.savez(work / "ab.npz", a=xa, b=xb)
    model = parse_model(data)
    interp = tflm_interpreter(data)
    names = [model.tensors[i].name for i in model.inputs]
    assert sorted(names) == ["a", "b"]
    outs = []
    for k in range(len(xa)):
        for slot, index in enumerate(model.inputs):
            t = model.tensors[index]
            x = {"a": xa, "b": xb}[t.name][k:k + 1]
            interp.set_input(quantize_input(x, t.quant.scale[0], int(t.quant.zero_point[0])),
                             slot)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
    return {"work": work, "ref": np.concatenate(outs), "order": names, "xa": xa, "xb": xb}


def _ok(two, *args) -> np.ndarray:
    proc = run("run", *args, "-o", "y.npy", cwd=two["work"])
    assert proc.returncode == 0, proc.stderr
    return np.load(two["work"] / "y.npy")


@pytest.mark.parametrize("model", ["c", "m.tflite"])
def test_several_inputs_give_tflite_micros_bytes(two, model):
    ref = two["ref"]
    assert len({tuple(r) for r in ref}) == len(ref)
    in_order = [f"{n}.npy" for n in two["order"]]
    runs = [["--input", in_order[0], "--input", in_order[1]],
            ["--input", "b=b.npy", "--input", "a=a.npy"],
            ["--input", "ab.npz"]]
    for args in runs:
        np.testing.assert_array_equal(_ok(two, model, *args), ref, err_msg=str(args))
    swapped = _ok(two, model, "--input", "a=b.npy", "--input", "b=a.npy")
    assert not np.array_equal(swapped, ref)  # the names are what binds the arrays


@pytest.mark.parametrize("args, message", [
    (["--input", "a=a.npy"], "no data for the model input 'b'"),
    (["--input", "a=a.npy", "--input", "b=b.npy", "--input", "c=a.npy"],
     "the model has no input named 'c'"),
    (["--input", "a.npy"], "the model has 2 input(s) ('a', 'b') but 1 were given (missing: "),
    (["--input", "a.npy", "--input", "b.npy", "--input", "a.npy"], "(extra: a.npy"),
    (["--input", "a=a.npy", "--input", "b.npy"], "give every input as NAME=X.npy, or none"),
    (["--input", "a=a.npy", "--input", "a=b.npy"], "--input a=...: given twice"),
    (["--input", "ab.npz", "--input", "a.npy"], "an .npz (keyed by input name) is the only"),
    (["--input", "bad.npz"], "the model has no input named 'x'"),
    (["--input", "a=a.npy", "--input", "b=short.npy"],
     "every input must give the same number of samples (a.npy: 5, short.npy: 2)"),
])
def test_input_errors_name_the_input(two, args, message, capsys, monkeypatch):
    _fails(two, "c", args, message, capsys, monkeypatch)


def test_tflite_input_errors_name_the_input(two, capsys, monkeypatch):
    _fails(two, "m.tflite", ["--input", "b=b.npy"], "no data for the model input 'a'", capsys,
           monkeypatch)
    _fails(two, "m.tflite", ["--input", "ab.npz", "--input", "a.npy"], "is the only", capsys,
           monkeypatch)


def _fails(two, model, args, message, capsys, monkeypatch):
    """The CLI's ``main`` in this process (the subprocess path is covered above)."""
    from microlith.app.cli import main

    work = two["work"]
    np.savez(work / "bad.npz", a=two["xa"], b=two["xb"], x=two["xa"])
    np.save(work / "short.npy", two["xb"][:2])
    monkeypatch.chdir(work)
    capsys.readouterr()
    assert main(["run", model, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err and "Traceback" not in err, err


@pytest.mark.slow
def test_several_inputs_on_the_cortex_m4(two):
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed "
                    "(tools/mcu/install_toolchain.sh)")
    board = run_c_directory(two["work"] / "c", {"b": two["xb"][:2], "a": two["xa"][:2]},
                            "cortex-m4")
    np.testing.assert_array_equal(board.outputs[0], two["ref"][:2])
    assert len(board.instructions) == 2
