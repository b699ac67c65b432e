"""The ONNX frontend: the zoo imports, constants, shapes, and every bad-input error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.diagnostics import FrontendError
from microlith.frontend.onnx_import import load_onnx
from microlith.interpreter import run_graph
from microlith.ir.printer import print_graph
from microlith.ir.verifier import verify

ZOO = Path(__file__).resolve().parents[1] / "zoo"
ZOO_MODELS = sorted(p.stem for p in ZOO.glob("*.onnx"))
F = TensorProto.FLOAT


def save(path: Path, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
         outputs: list[onnx.ValueInfoProto], inits: dict[str, np.ndarray] | None = None,
         opset: int = 13) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(a), n)
                               for n, a in (inits or {}).items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return path


def vi(name: str, shape: list[int | str] | None, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def onnxruntime(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def quiet(message: str) -> None:
    pass


# ---- the zoo --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_model_imports_and_verifies(name: str) -> None:
    warnings: list[str] = []
    graph = load_onnx(ZOO / f"{name}.onnx", warn=warnings.append)
    verify(graph)
    assert warnings == []
    assert [v.name for v in graph.inputs] == ["input"]
    assert all(all(d > 0 for d in v.shape) for v in graph.values.values() if not v.is_constant)
    assert graph.meta["source"] == f"{name}.onnx" and graph.meta["opset"] >= 13
    assert not graph.find("Constant") and not graph.find("Dropout")
    assert all(v.name == n for n, v in graph.values.items())


def test_zoo_import_runs_like_onnxruntime() -> None:
    path = ZOO / "helper_ops.onnx"
    graph = load_onnx(path)
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 12)).astype(np.float32)
    (expected,) = onnxruntime(path, {"input": x})
    np.testing.assert_allclose(run_graph(graph, {"input": x})["output"], expected, atol=1e-5)


def test_constant_nodes_become_constants() -> None:
    graph = load_onnx(ZOO / "mobilenet_v1.onnx")
    clips = graph.find("Clip")
    assert len(clips) == 7
    assert all((c.attr("min"), c.attr("max")) == (0.0, 6.0) for c in clips)
    assert all(len(c.inputs) == 1 for c in clips)  # bounds are attributes, not operands


def test_identity_of_initializer_becomes_the_constant() -> None:
    onnx_model = onnx.load(str(ZOO / "resnet8.onnx"))
    identities = [n for n in onnx_model.graph.node if n.op_type == "Identity"]
    assert len(identities) == 2
    graph = load_onnx(ZOO / "resnet8.onnx")
    assert not graph.find("Identity")
    inits = {t.name: numpy_helper.to_array(t) for t in onnx_model.graph.initializer}
    for node in identities:
        source = graph.values[node.input[0]]
        assert source.is_constant and np.array_equal(source.data, inits[node.input[0]])
        users = [n for n in graph.nodes if source in n.inputs]
        assert users and all(n.op == "BatchNormalization" for n in users)


def test_constant_output_keeps_its_name(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [
        helper.make_node("Identity", ["w"], ["w_out"]),
        helper.make_node("Constant", [], ["k"], value_floats=[1.0, 2.0]),
        helper.make_node("Identity", ["k"], ["k_out"]),
        helper.make_node("Relu", ["x"], ["y"])],
        [vi("x", [1, 2])], [vi("w_out", [2]), vi("k_out", [2]), vi("y", [1, 2])],
        {"w": np.array([3.0, 4.0], np.float32)})
    graph = load_onnx(path)
    verify(graph)
    assert [v.name for v in graph.outputs] == ["w_out", "k_out", "y"]
    outputs = run_graph(graph, {"x": np.ones((1, 2), np.float32)})
    np.testing.assert_array_equal(outputs["k_out"], [1.0, 2.0])
    np.testing.assert_array_equal(outputs["w_out"], [3.0, 4.0])


def test_constant_node_attribute_kinds(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [
        helper.make_node("Constant", [], ["a"], value_float=2.0),
        helper.make_node("Constant", [], ["shape"], value_ints=[1, 4]),
        helper.make_node("Mul", ["x", "a"], ["m"]),
        helper.make_node("Reshape", ["m", "shape"], ["y"])],
        [vi("x", [2, 2])], [vi("y", [1, 4])])
    graph = load_onnx(path)
    assert graph.values["a"].data.dtype == np.float32 and graph.values["a"].shape == ()
    assert graph.values["shape"].data.tolist() == [1, 4]
    assert [n.op for n in graph.nodes] == ["Mul", "Reshape"]


# ---- shapes -----------------------------------------------------------------------------------

def test_dynamic_batch_is_pinned_to_one(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                [vi("x", ["N", 3, 4])], [vi("y", ["N", 3, 4])])
    graph = load_onnx(path)
    assert graph.inputs[0].shape == (1, 3, 4) and graph.outputs[0].shape == (1, 3, 4)


def test_dynamic_non_batch_dim_needs_input_shape(tmp_path: Path) -> None:
    path = save(tmp_path / "seq.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                [vi("x", ["N", "T", 8])], [vi("y", ["N", "T", 8])])
    with pytest.raises(FrontendError) as info:
        load_onnx(path)
    message = str(info.value)
    assert message.startswith(f"{path}: input 'x' has dynamic dimension 'T' at axis 1")
    assert "--input-shape x=1,N,8" in message
    graph = load_onnx(path, input_shapes={"x": (1, 5, 8)})
    assert graph.inputs[0].shape == (1, 5, 8) and graph.outputs[0].shape == (1, 5, 8)
    verify(graph)


def test_input_shapes_are_checked(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                [vi("x", ["N", 3])], [vi("y", ["N", 3])])
    with pytest.raises(FrontendError, match="unknown input 'z' \\(inputs: x\\)"):
        load_onnx(path, input_shapes={"z": (1, 3)})
    with pytest.raises(FrontendError, match="has rank 3, the model says 2"):
        load_onnx(path, input_shapes={"x": (1, 3, 1)})
    assert load_onnx(path, input_shapes={"x": (4, 3)}).inputs[0].shape == (4, 3)


def test_input_without_shape_needs_input_shape(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                [vi("x", None)], [vi("y", None)])
    with pytest.raises(FrontendError, match="input 'x' has no shape; pin it with --input-shape"):
        load_onnx(path)
    assert load_onnx(path, input_shapes={"x": (2, 3)}).outputs[0].shape == (2, 3)


# ---- unsupported content -----------------------------------------------------------------------

def test_all_unsupported_ops_are_listed_in_one_error(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [
        helper.make_node("Relu", ["x"], ["a"], name="ok"),
        helper.make_node("Sin", ["a"], ["b"], name="sin1"),
        helper.make_node("Round", ["b"], ["c"], name="round1"),
        helper.make_node("Sin", ["c"], ["y"], name="sin2")],
        [vi("x", [1, 4])], [vi("y", [1, 4])])
    with pytest.raises(FrontendError) as info:
        load_onnx(path)
    assert str(info.value) == (f"{path}: unsupported ops: Round (node round1); "
                               f"Sin (node sin1, sin2)")


def test_custom_domain_op_is_unsupported(tmp_path: Path) -> None:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], domain="com.acme")],
                              "g", [vi("x", [1, 4])], [vi("y", [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("com.acme", 1)])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with pytest.raises(FrontendError, match="unsupported ops: com.acme::Relu"):
        load_onnx(path)


def test_a_cycle_is_reported(tmp_path: Path) -> None:
    path = save(tmp_path / "loop.onnx", [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Neg", ["a"], ["y"], name="third")],
        [vi("x", [1, 4])], [vi("y", [1, 4])])
    with pytest.raises(FrontendError, match=f"{path}: graph has a cycle through nodes "
                                            "(first -> second|second -> first)"):
        load_onnx(path)


def test_nodes_out_of_order_are_sorted(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [
        helper.make_node("Neg", ["a"], ["y"], name="late"),
        helper.make_node("Relu", ["x"], ["a"], name="early")],
        [vi("x", [1, 4])], [vi("y", [1, 4])])
    graph = load_onnx(path)
    assert [n.name for n in graph.nodes] == ["early", "late"]
    verify(graph)


def test_unsupported_element_type(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [helper.make_node("Relu", ["x"], ["y"])],
                [vi("x", [1, 4], TensorProto.DOUBLE)], [vi("y", [1, 4], TensorProto.DOUBLE)])
    with pytest.raises(FrontendError, match="tensor 'x' has unsupported element type DOUBLE"):
        load_onnx(path)


def test_unsupported_attribute_names_the_node(tmp_path: Path) -> None:
    path = save(tmp_path / "m.onnx", [
        helper.make_node("Pad", ["x", "pads"], ["y"], name="reflect_pad", mode="reflect")],
        [vi("x", [1, 4])], [vi("y", [1, 6])], {"pads": np.array([0, 1, 0, 1], np.int64)})
    with pytest.raises(FrontendError, match=r"node 'reflect_pad' \(Pad\): pad mode 'reflect'"):
        load_onnx(path)


# ---- unreadable files ---------------------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.onnx"
    with pytest.raises(FrontendError, match=f"^{path}: no such file$"):
        load_onnx(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="is a directory"):
        load_onnx(tmp_path)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"name,age\nada,36\n", "not a valid ONNX model"),
    (b"\x08\x07", "not an ONNX model"),
    (bytes(range(256)) * 4, "not a"),
])
def test_non_onnx_files(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(FrontendError, match=reason) as info:
        load_onnx(path)
    assert str(info.value).startswith(f"{path}: ")


def test_truncated_protobuf(tmp_path: Path) -> None:
    blob = (ZOO / "lenet.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    for cut in [10, 100, 1000, len(blob) // 2, len(blob) - 1]:
        path.write_bytes(blob[:cut])
        with pytest.raises(FrontendError) as info:
            load_onnx(path, warn=quiet)
        assert str(info.value).startswith(f"{path}: "), cut


def test_every_truncation_is_a_frontend_error(tmp_path: Path) -> None:
    blob = (ZOO / "helper_matmul.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    for cut in range(1, len(blob), 97):
        path.write_bytes(blob[:cut])
        try:
            load_onnx(path, warn=quiet)
        except FrontendError as exc:
            assert str(exc).startswith(f"{path}: "), cut


# ---- warnings and conversions --------------------------------------------------------------------

def test_nan_in_an_initializer_is_a_warning(tmp_path: Path) -> None:
    weights = np.array([[1.0, np.nan], [np.inf, 2.0]], np.float32)
    path = save(tmp_path / "nan.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])],
                [vi("x", [1, 2])], [vi("y", [1, 2])], {"w": weights})
    warnings: list[str] = []
    graph = load_onnx(path, warn=warnings.append)
    assert warnings == [f"{path}: constant 'w' contains 2 NaN/Inf value(s)"]
    assert np.array_equal(graph.values["w"].data, weights, equal_nan=True)


def test_float64_initializers_become_float32(tmp_path: Path) -> None:
    graph_proto = helper.make_graph(
        [helper.make_node("Cast", ["w"], ["wf"], to=F), helper.make_node("Add", ["x", "wf"],
                                                                         ["y"])],
        "g", [vi("x", [2])], [vi("y", [2])],
        [numpy_helper.from_array(np.array([1.5, 2.5]), "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 13)]),
              str(path))
    graph = load_onnx(path)
    assert graph.values["w"].data.dtype == np.float32


@pytest.mark.parametrize("opset", [9, 11])
def test_old_opset_is_converted(tmp_path: Path, opset: int) -> None:
    rng = np.random.default_rng(opset)
    if opset == 9:
        nodes = [helper.make_node("Clip", ["x"], ["c"], min=0.0, max=6.0),
                 helper.make_node("Unsqueeze", ["c"], ["u"], axes=[0]),
                 helper.make_node("Softmax", ["u"], ["y"], axis=2)]
        inputs, outputs, inits = [vi("x", [2, 3, 4])], [vi("y", [1, 2, 3, 4])], {}
    else:
        nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]),
                 helper.make_node("Conv", ["p", "w"], ["c"]),
                 helper.make_node("Squeeze", ["c"], ["y"], axes=[0])]
        inputs, outputs = [vi("x", [1, 2, 5, 5])], [vi("y", [3, 7, 7])]
        inits = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
                 "w": rng.standard_normal((3, 2, 1, 1)).astype(np.float32)}
    path = save(tmp_path / f"opset{opset}.onnx", nodes, inputs, outputs, inits, opset=opset)
    graph = load_onnx(path)
    verify(graph)
    assert graph.meta["opset"] >= 13
    x = rng.standard_normal(graph.inputs[0].shape).astype(np.float32)
    (expected,) = onnxruntime(path, {"x": x})
    (actual,) = run_graph(graph, {"x": x}).values()
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_import_is_deterministic() -> None:
    texts = {print_graph(load_onnx(ZOO / "dscnn.onnx")) for _ in range(2)}
    assert len(texts) == 1
