"""ONNX model -> IR graph.

``load_onnx`` runs every check of ``onnx_loader`` before building anything, then
turns initializers and ``Constant`` nodes into constants (warning on NaN/Inf),
and each node into an IR node through the importer table. Output types come from
our own shape inference; where an operand is not constant yet (a Shape chain that
``fold-constants`` will fold) the ONNX-inferred type is used instead.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

import microlith.frontend.importers_extra  # noqa: F401  (registers importers)
import microlith.frontend.importers_nn  # noqa: F401
import microlith.frontend.importers_tensor  # noqa: F401
from microlith.diagnostics import FrontendError, WarningSink, stderr_warning
from microlith.frontend import onnx_checks, onnx_loader, onnx_rewrite, onnx_set_aside
from microlith.frontend.context import IMPORTERS, ONNX_DTYPES, ImportContext, supported_ops
from microlith.frontend.importers_qdq import VALUE_IMPORTERS, cast_alias
from microlith.frontend.importers_qoperator import (
    PASSTHROUGH,
    QOPERATOR_OPS,
    import_on_integers,
    integer_inputs,
)
from microlith.frontend.shape_arithmetic import static_value
from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import NeedsConstant, ShapeError, infer_types
from microlith.ir.types import TensorType

ModelSource = str | os.PathLike[str] | bytes | onnx.ModelProto


def source_name(source: ModelSource) -> str:
    """How errors name a model: its path, ``<onnx bytes>`` or ``<onnx ModelProto>``."""
    if isinstance(source, bytes | bytearray | memoryview):
        return "<onnx bytes>"
    if isinstance(source, onnx.ModelProto):
        return "<onnx ModelProto>"
    if not isinstance(source, str | os.PathLike):
        raise FrontendError(f"expected a path, bytes or an onnx.ModelProto, not "
                            f"{type(source).__name__}")
    return os.fspath(source)


def read_source(source: ModelSource) -> onnx.ModelProto:
    """A private, parsed copy of ``source`` (a path, serialized bytes or a ModelProto)."""
    name = source_name(source)
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)  # the caller's proto is never modified
        if not model.HasField("graph") or model.ir_version <= 0 or not model.graph.node:
            raise FrontendError(f"{name}: not an ONNX model (no graph or IR version)")
    elif isinstance(source, bytes | bytearray | memoryview):
        model = onnx_loader.parse_model_bytes(bytes(source), name)
    else:
        return onnx_loader.read_model(name)
    onnx_loader.check_in_memory(model, name)
    return model


def load_onnx(source: ModelSource, input_shapes: dict[str, tuple[int, ...]] | None = None,
              warn: WarningSink = stderr_warning) -> Graph:
    """Read, check and import ``source`` (path, bytes or ModelProto); dims end up static."""
    path = source_name(source)
    model = read_source(source)
    onnx_checks.check_versions(model, path)
    model = onnx_loader.upgrade_opset(model, path)
    onnx_rewrite.rewrite_model(model)
    onnx_loader.check_supported(model, path, [*supported_ops(), "QuantizeLinear",
                                              "DequantizeLinear", "ConstantOfShape",
                                              *QOPERATOR_OPS])
    onnx_checks.check_graph_io(model, path)
    onnx_loader.check_single_assignment(model, path)
    onnx_checks.check_defined_inputs(model, path)
    ordered = onnx_loader.check_acyclic(model, path)
    onnx_loader.pin_input_shapes(model, path, dict(input_shapes or {}))
    onnx_checks.check_tensor_data(model, path)
    model = onnx_set_aside.check_and_infer(
        model, lambda m: onnx_checks.run_checker(m, path),
        lambda m: onnx_loader.infer_onnx_shapes(m, path))
    onnx_checks.check_inferred_shapes(model, path)
    return build_graph(model, ordered, path, warn)


def _type_of(proto: onnx.TypeProto, name: str, path: str) -> TensorType | None:
    tensor = proto.tensor_type
    if tensor.elem_type not in ONNX_DTYPES:
        raise FrontendError(f"{path}: tensor {name!r} has unsupported element type "
                            f"{onnx.TensorProto.DataType.Name(tensor.elem_type)}")
    if not tensor.HasField("shape"):
        return None
    dims = []
    for dim in tensor.shape.dim:
        if not dim.HasField("dim_value"):
            return None
        dims.append(int(dim.dim_value))
    return TensorType(ONNX_DTYPES[tensor.elem_type], tuple(dims))


def _add_constant(ctx: ImportContext, name: str, array: np.ndarray) -> None:
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    if array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            ctx.warn(f"{ctx.path}: constant {name!r} contains {bad} NaN/Inf value(s)")
    if array.dtype.kind not in "fiub":
        raise FrontendError(f"{ctx.path}: constant {name!r} has unsupported type {array.dtype}")
    ctx.values[name] = ctx.graph.add_constant(array, name)


def _constant_node_value(ctx: ImportContext, node: onnx.NodeProto) -> np.ndarray:
    attr = node.attribute[0] if len(node.attribute) == 1 else None
    if attr is None:
        raise ctx.fail(node, "expects exactly one value attribute")
    if attr.name == "value":
        return numpy_helper.to_array(attr.t)
    if attr.name == "value_float":
        return np.array(attr.f, dtype=np.float32)
    if attr.name == "value_floats":
        return np.array(list(attr.floats), dtype=np.float32)
    if attr.name == "value_int":
        return np.array(attr.i, dtype=np.int64)
    if attr.name == "value_ints":
        return np.array(list(attr.ints), dtype=np.int64)
    raise ctx.fail(node, f"constant attribute {attr.name!r} is not supported")


def build_graph(model: onnx.ModelProto, ordered: list[onnx.NodeProto], path: str,
                warn: WarningSink) -> Graph:
    name = model.graph.name or os.path.splitext(os.path.basename(path))[0]
    graph = Graph("".join(c if c.isalnum() or c == "_" else "_" for c in name) or "main")
    onnx_types = {vi.name: vi.type for vi in
                  [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    ctx = ImportContext(path, graph, onnx_types, warn)
    ctx.import_node = import_node
    for init in model.graph.initializer:
        _add_constant(ctx, init.name, numpy_helper.to_array(init))
    initializers = {init.name for init in model.graph.initializer}
    output_names = {proto.name for proto in model.graph.output}
    for proto in model.graph.input:
        if proto.name in initializers:
            continue
        type = _type_of(proto.type, proto.name, path)
        assert type is not None, "pin_input_shapes guarantees a static shape"
        ctx.values[proto.name] = graph.add_input(proto.name, type)
    for index, node in enumerate(ordered):
        if not node.name:
            node.name = f"{node.op_type}_{index}"
        if node.op_type == "Constant":
            _add_constant(ctx, node.output[0], _constant_node_value(ctx, node))
            continue
        if node.op_type == "Identity" and ctx.values.get(node.input[0]) is not None and \
                ctx.values[node.input[0]].is_constant:
            source = ctx.values[node.input[0]]
            if node.output[0] in output_names:  # a graph output keeps its own name
                ctx.values[node.output[0]] = graph.add_constant(source.constant, node.output[0])
            else:
                ctx.values[node.output[0]] = source  # alias, no node
            continue
        for input_name in node.input:
            if input_name and input_name not in ctx.values:
                raise ctx.fail(node, f"input {input_name!r} is never defined")
        if node.op_type == "Cast" and (alias := cast_alias(ctx, node)) is not None:
            ctx.values[node.output[0]] = alias  # a no-op on quantized data
            continue
        if node.op_type in VALUE_IMPORTERS:  # builds its typed value itself (Q/DQ)
            ctx.values[node.output[0]] = VALUE_IMPORTERS[node.op_type](ctx, node)
            continue
        if node.op_type in PASSTHROUGH and integer_inputs(ctx, node):
            ctx.values[node.output[0]] = import_on_integers(ctx, node)  # QOperator models
            continue
        ctx.values[node.output[0]] = import_node(ctx, node)
    graph.outputs = [_graph_output(ctx, proto.name) for proto in model.graph.output]
    graph.meta["source"] = os.path.basename(path)
    graph.meta["opset"] = onnx_loader.default_opset(model)
    return graph


def import_node(ctx: ImportContext, node: onnx.NodeProto) -> Value:
    """One node through the importer table: an IR node whose output types come from our own
    inference (ONNX's where an operand is not constant yet); its first output."""
    op, inputs, attrs = IMPORTERS[node.op_type](ctx, node)
    try:
        probe = Node(op, node.name, attrs)  # detached: inference before creation
        probe.inputs = list(inputs)
        types = infer_types(probe)
    except NeedsConstant as exc:  # e.g. a Reshape target that fold-constants will fold
        fallback = ctx.onnx_types.get(node.output[0])
        types_or_none = None if fallback is None else _type_of(fallback, node.output[0], ctx.path)
        if types_or_none is not None:
            types = [types_or_none]
        else:  # ONNX could not infer it either: shape arithmetic it does not propagate
            inputs = _with_static_inputs(ctx, inputs)
            probe.inputs = list(inputs)
            try:
                types = infer_types(probe)
            except (NeedsConstant, ShapeError, ValueError):
                raise ctx.fail(node, str(exc)) from None
    except (ShapeError, ValueError) as exc:  # the node's inputs do not fit its attributes
        raise ctx.fail(node, str(exc)) from None
    for value_type, name in zip(types, node.output, strict=False):
        onnx_checks.check_shape(ctx.path, f"tensor {name!r} (output of node {node.name!r}, "
                                f"{node.op_type})", value_type.shape, value_type.dtype.itemsize)
    outputs = [o for o in node.output if o]
    created = ctx.graph.add_node(op, inputs, attrs, name=node.name, output_types=types[:1],
                             output_names=outputs[:1])
    created.meta["onnx_op"] = node.op_type
    return created.output


def _with_static_inputs(ctx: ImportContext, inputs: list[Value | None]) -> list[Value | None]:
    """``inputs`` with each non-constant one whose value is static shape arithmetic
    (``shape_arithmetic.static_value``) replaced by that constant."""
    out: list[Value | None] = []
    for value in inputs:
        data = None if value is None or value.is_constant else static_value(value)
        if value is not None and data is not None:
            value = ctx.graph.add_constant(data, f"{value.name}_static")
        out.append(value)
    return out


def _graph_output(ctx: ImportContext, name: str) -> Value:
    if name not in ctx.values:
        raise FrontendError(f"{ctx.path}: graph output {name!r} is never defined")
    return ctx.values[name]

