"""Helpers shared by the pass tests: build ONNX models, run pipelines, compare runtimes.

Every pass is tested three ways (see DESIGN.md): IR text (``tools.filecheck`` and the
golden files in ``golden/``), numerics against onnxruntime on the original ONNX
model, and must-not-fire / bad-input cases. Models are written with ``onnx.helper``
to a temporary directory and read back with ``load_onnx``, so the frontend is part
of every test.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from microlith.frontend.onnx_import import load_onnx
from microlith.interpreter import run_graph
from microlith.ir.core import Graph
from microlith.ir.printer import print_graph
from microlith.pipeline import PassContext, PassManager, parse_pipeline
from tools.digits import load_digits_split

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "tests" / "zoo"
GOLDEN = Path(__file__).resolve().parent / "golden"
CONV_MODELS = ("lenet", "dscnn", "resnet8", "mobilenet_v1")
ZOO_MODELS = (*CONV_MODELS, "mlp_sigmoid", "helper_ops", "helper_matmul")
ATOL = 1e-4

TensorSpec = tuple[str, Sequence[int | str]]


def make_model(path: Path, nodes: Sequence[onnx.NodeProto], inputs: Sequence[TensorSpec],
               outputs: Sequence[TensorSpec], initializers: Mapping[str, np.ndarray] | None = None,
               opset: int = 13) -> Path:
    """Write a float32 ONNX model (checked by ``onnx.checker``) and return its path."""
    inits = []
    for name, array in (initializers or {}).items():
        array = np.asarray(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        inits.append(numpy_helper.from_array(array, name))
    graph = helper.make_graph(
        list(nodes), path.stem,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in outputs],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def run_pipeline(graph: Graph, spec: str, ctx: PassContext | None = None) -> PassContext:
    """Run ``spec`` on ``graph`` with the verifier after every pass; return the context."""
    ctx = ctx or PassContext(warn=lambda message: None)
    PassManager(parse_pipeline(spec), verify_each=True).run(graph, ctx)
    return ctx


def compile_model(path: Path, spec: str) -> tuple[Graph, PassContext]:
    graph = load_onnx(path, warn=lambda message: None)
    return graph, run_pipeline(graph, spec)


def ops(graph: Graph) -> list[str]:
    return [node.op for node in graph.nodes]


def remarks_for(ctx: PassContext, node_name: str) -> list[str]:
    return [message for _, name, message in ctx.remarks if name == node_name]


@functools.cache
def _session(path: str, mtime: float) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnxruntime_run(path: Path, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    session = _session(str(path), os.path.getmtime(path))
    return session.run(None, dict(feeds))


def interpreter_run(graph: Graph, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run the compiled graph on logical (ONNX-layout) feeds; outputs in ONNX layout too."""
    perms = graph.meta.get("io_perms", {})
    physical = {name: np.ascontiguousarray(x.transpose(perms[name])) if name in perms else x
                for name, x in feeds.items()}
    results = run_graph(graph, physical)
    outs = []
    for value in graph.outputs:
        y = results[value.name]
        if value.name in perms:
            y = y.transpose(np.argsort(perms[value.name]))
        outs.append(y)
    return outs


def random_feeds(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal data for every graph input of the ONNX model."""
    rng = np.random.default_rng(seed)
    model = onnx.load(str(path), load_external_data=False)
    inits = {init.name for init in model.graph.initializer}
    feeds = {}
    for proto in model.graph.input:
        if proto.name in inits:
            continue
        shape = [d.dim_value if d.HasField("dim_value") else 1
                 for d in proto.type.tensor_type.shape.dim]
        feeds[proto.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def assert_matches_onnxruntime(graph: Graph, path: Path,
                               feeds: Iterable[Mapping[str, np.ndarray]] | None = None,
                               atol: float = ATOL) -> None:
    """Our interpreter on ``graph`` equals onnxruntime on the ONNX file, for each feed."""
    for feed in feeds if feeds is not None else [random_feeds(path)]:
        expected = onnxruntime_run(path, feed)
        actual = interpreter_run(graph, feed)
        assert len(actual) == len(expected)
        for value, ours, ref in zip(graph.outputs, actual, expected, strict=True):
            assert ours.shape == ref.shape, f"{value.name}: {ours.shape} vs {ref.shape}"
            np.testing.assert_allclose(ours, ref, rtol=0, atol=atol, err_msg=value.name)


@functools.cache
def digits_images(flat: bool, count: int) -> np.ndarray:
    """The first ``count`` held-out digits: [count, 64] (flat) or [count, 1, 16, 16]."""
    if flat:
        x_test = load_digits_split(size=8, layout="flat")[2]
    else:
        x_test = load_digits_split(size=16, layout="NCHW")[2]
    return x_test[:count]


def zoo_feeds(name: str, count: int) -> list[dict[str, np.ndarray]]:
    """Real inputs for a zoo model: digits for the trained ones, seeded noise for helpers."""
    path = ZOO / f"{name}.onnx"
    if name.startswith("helper"):
        return [random_feeds(path, seed) for seed in range(count)]
    images = digits_images(name == "mlp_sigmoid", count)
    return [{"input": images[i:i + 1]} for i in range(count)]


def check_golden(name: str, text: str) -> None:
    """Compare ``text`` with ``golden/<name>``; ``UPDATE_GOLDEN=1`` rewrites the file."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path.name} missing: run with UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (f"IR differs from golden/{name} (UPDATE_GOLDEN=1 rewrites it)\n"
                              f"--- got ---\n{text}")


__all__ = ["ATOL", "CONV_MODELS", "ZOO", "ZOO_MODELS", "assert_matches_onnxruntime",
           "check_golden", "compile_model", "digits_images", "helper", "interpreter_run",
           "make_model", "onnxruntime_run", "ops", "print_graph", "random_feeds",
           "remarks_for", "run_pipeline", "zoo_feeds"]
