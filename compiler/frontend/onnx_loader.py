"""Read an ONNX file into a checked ``onnx.ModelProto`` with every shape pinned.

Order of checks (each failing with one ``FrontendError`` line naming the file,
node or tensor): the path is a regular file of at most ``MAX_ONNX_BYTES`` (a FIFO
or device is refused before it is opened) and parses; external data is checked
and read (``onnx_external``); the opset is one onnx knows and 13 or newer (older
models are converted with ``onnx.version_converter``); every op is supported (all
unsupported ops listed at once); every tensor is defined once (SSA) and before it
is used; the graph is acyclic; every graph input has a static shape (batch pinned
to 1, other dims from ``input_shapes``); constant tensors hold as much data as
their dims need; onnx's checker passes (``onnx_checks``); ONNX shape inference
(with data propagation) succeeds and every shape is within the size limits.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable

import networkx as nx
import onnx
from google.protobuf.message import DecodeError

from microlith.diagnostics import FrontendError, capped
from microlith.frontend.input_files import read_bounded
from microlith.frontend.onnx_checks import MAX_DIM, check_shape
from microlith.frontend.onnx_external import ITEMSIZE, MAX_ONNX_BYTES, load_external_data

MIN_OPSET = 13
ONNX_DOMAINS = ("", "ai.onnx")


def read_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Parse ``path`` as an ONNX protobuf; external data beside it is read and checked."""
    path = os.fspath(path)
    blob = read_bounded(path, "an .onnx file", MAX_ONNX_BYTES)
    model = parse_model_bytes(blob, path)
    load_external_data(model, path, len(blob))
    return model


def parse_model_bytes(blob: bytes, path: str) -> onnx.ModelProto:
    """Parse serialized ONNX ``blob``; ``path`` names it in errors (a file or ``<bytes>``)."""
    if not blob:
        raise FrontendError(f"{path}: empty file, not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(blob)
    except (DecodeError, RuntimeError, ValueError) as exc:
        reason = str(exc).strip().split("\n")[0] or type(exc).__name__
        raise FrontendError(f"{path}: not a valid ONNX model ({reason})") from None
    if not model.HasField("graph") or model.ir_version <= 0 or not model.graph.node:
        raise FrontendError(f"{path}: not an ONNX model (no graph or IR version)")
    return model


def check_in_memory(model: onnx.ModelProto, name: str) -> None:
    """An in-memory model (bytes or ModelProto) has no directory to read external data from."""
    from microlith.frontend.onnx_external import main_graph_tensors

    for tensor in main_graph_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise FrontendError(f"{name}: tensor {tensor.name!r} has external data; pass the "
                                ".onnx file's path instead (or onnx.load it with its data)")


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ONNX_DOMAINS:
            return int(entry.version)
    return 1


def upgrade_opset(model: onnx.ModelProto, path: str) -> onnx.ModelProto:
    opset = default_opset(model)
    if opset >= MIN_OPSET:
        return model
    try:
        from onnx import version_converter

        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:  # the converter raises many kinds
        raise FrontendError(f"{path}: opset {opset} is older than {MIN_OPSET} and could not "
                            f"be converted ({str(exc).splitlines()[0]})") from None


def check_supported(model: onnx.ModelProto, path: str, supported: Iterable[str]) -> None:
    """One error listing every unsupported (op type, node names), before any work."""
    known = set(supported)
    missing: dict[str, list[str]] = {}
    for index, node in enumerate(model.graph.node):
        op = node.op_type if node.domain in ONNX_DOMAINS else f"{node.domain}::{node.op_type}"
        if op not in known:
            missing.setdefault(op, []).append(node.name or f"#{index}")
    if missing:
        listing = capped([f"{op} (node {capped(names)})" for op, names in sorted(
            missing.items())], "; ")
        raise FrontendError(f"{path}: unsupported ops: {listing}")


def check_single_assignment(model: onnx.ModelProto, path: str) -> None:
    """Every tensor has one definition: a graph input, an initializer or one node output.

    ONNX requires SSA form; without this check a second producer silently wins.
    """
    defined = {value.name: "graph input" for value in model.graph.input}
    defined.update({init.name: "initializer" for init in model.graph.initializer})
    for index, node in enumerate(model.graph.node):
        for out in node.output:
            if not out:
                continue
            here = f"node {node.name or f'#{index}'!r}"
            if out in defined:
                raise FrontendError(f"{path}: tensor {out!r} is defined twice, by "
                                    f"{defined[out]} and by {here} (ONNX graphs are SSA)")
            defined[out] = here


def check_acyclic(model: onnx.ModelProto, path: str) -> list[onnx.NodeProto]:
    """Return the nodes in topological order; a cycle is an error naming its nodes.

    The model's own node list is put in that order too: ONNX shape inference reads
    the nodes in list order and fails on a graph that is not sorted.
    """
    producers: dict[str, int] = {}
    for index, node in enumerate(model.graph.node):
        for out in node.output:
            if out:
                producers[out] = index
    deps = nx.DiGraph()
    deps.add_nodes_from(range(len(model.graph.node)))
    for index, node in enumerate(model.graph.node):
        for name in node.input:
            if name in producers:
                deps.add_edge(producers[name], index)
    try:
        cycle = nx.find_cycle(deps)
    except nx.NetworkXNoCycle:
        order = list(nx.lexicographical_topological_sort(deps))
        if order != sorted(order):
            nodes = [copy.deepcopy(model.graph.node[i]) for i in order]
            del model.graph.node[:]
            model.graph.node.extend(nodes)
        return list(model.graph.node)
    names = [model.graph.node[a].name or f"#{a}" for a, _ in cycle]
    raise FrontendError(f"{path}: graph has a cycle through nodes {' -> '.join(names)}")


def pin_input_shapes(model: onnx.ModelProto, path: str,
                     input_shapes: dict[str, tuple[int, ...]]) -> None:
    """Make every graph input static: batch dim 1, others from ``input_shapes``."""
    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    unknown = set(input_shapes) - {i.name for i in graph_inputs}
    if unknown:
        names = ", ".join(i.name for i in graph_inputs)
        raise FrontendError(f"{path}: --input-shape names unknown input "
                            f"{sorted(unknown)[0]!r} (inputs: {names})")
    for value in graph_inputs:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            if value.name not in input_shapes:
                raise FrontendError(f"{path}: input {value.name!r} has no shape; pin it with "
                                    f"--input-shape {value.name}=1,...")
        dims = list(tensor_type.shape.dim)
        pinned = input_shapes.get(value.name)
        if pinned is not None and any(not 1 <= int(d) <= MAX_DIM for d in pinned):
            raise FrontendError(f"{path}: --input-shape for {value.name!r} has dims "
                                f"{list(pinned)}; each must be 1..{MAX_DIM:,}")
        if pinned is not None:
            if dims and len(pinned) != len(dims):
                raise FrontendError(f"{path}: --input-shape for {value.name!r} has rank "
                                    f"{len(pinned)}, the model says {len(dims)}")
            tensor_type.shape.ClearField("dim")
            for size in pinned:
                tensor_type.shape.dim.add().dim_value = int(size)
            continue
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if axis == 0:
                dim.Clear()
                dim.dim_value = 1
                continue
            label = dim.dim_param or "?"
            if dim.HasField("dim_value"):  # 0 or negative: an empty tensor, not a dynamic one
                label = str(dim.dim_value)
            example = ",".join(str(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0
                               else "N" for d in dims)
            kind = "invalid" if dim.HasField("dim_value") else "dynamic"
            raise FrontendError(f"{path}: input {value.name!r} has {kind} dimension {label!r} "
                                f"at axis {axis}; pin it with --input-shape "
                                f"{value.name}={example}")
    for value in graph_inputs:  # pinned or as the model says: within the size limits
        tensor_type = value.type.tensor_type
        check_shape(path, f"input {value.name!r}", [d.dim_value for d in tensor_type.shape.dim],
                    ITEMSIZE.get(tensor_type.elem_type, 1))


def infer_onnx_shapes(model: onnx.ModelProto, path: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                 data_prop=True)
    except Exception as exc:  # InferenceError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FrontendError(f"{path}: ONNX shape inference failed: {first}") from None
