"""The default float pipeline over the whole zoo: canonical form and onnxruntime numerics."""

from __future__ import annotations

import pytest

from microlith.ir.verifier import verify
from microlith.passes.fuse_activation import FuseIntoProducer
from microlith.passes.pipelines import default_pipeline
from microlith.rewriter import Reject
from tests.passes.passkit import (
    CONV_MODELS,
    ZOO,
    ZOO_MODELS,
    assert_matches_onnxruntime,
    compile_model,
    ops,
    print_graph,
    run_pipeline,
    zoo_feeds,
)

TEST_IMAGES = 50


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_default_pipeline_on_the_zoo(name: str) -> None:
    path = ZOO / f"{name}.onnx"
    graph, ctx = compile_model(path, default_pipeline())
    verify(graph)
    assert "BatchNormalization" not in ops(graph)
    assert not {"Gemm", "MatMul", "Identity", "Shape", "Pad"} & set(ops(graph))
    for node in graph.nodes:
        if node.op in ("Relu", "Clip"):  # whatever is left must be unfusable, with a reason
            assert isinstance(FuseIntoProducer().match(node), Reject), node.name
    if name in CONV_MODELS:
        assert "Transpose" not in ops(graph)
        assert not graph.find("Relu") and not graph.find("Clip")
        assert graph.meta["io_perms"] == {"input": [0, 2, 3, 1]}
    count = TEST_IMAGES if not name.startswith("helper") else 5
    assert_matches_onnxruntime(graph, path, zoo_feeds(name, count))


@pytest.mark.parametrize("name", ["lenet", "helper_ops"])
def test_default_pipeline_is_a_fixed_point(name: str) -> None:
    graph, _ = compile_model(ZOO / f"{name}.onnx", default_pipeline())
    once = print_graph(graph)
    run_pipeline(graph, "infer-shapes,fold-constants,eliminate-dead,lower-fc,fold-batchnorm,"
                        "fuse-activation,fold-pad,eliminate-dead")
    assert print_graph(graph) == once
