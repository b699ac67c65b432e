"""Structural checks of an ONNX model before import: onnx's checker, plus what it misses.

``run_checker`` calls ``onnx.checker.check_model(model, full_check=False)``: node
arity and attribute types against the op schemas, SSA form, topological order, IR
version, tensor data sizes (too short only). ``full_check=True`` would add strict
shape inference, which ``onnx_loader.infer_onnx_shapes`` runs next anyway (with data
propagation), so it would only do that work twice. The checker runs on the in-memory
model after external data is inline: on a model with external references it resolves
their locations against the working directory, not the model's. Graph inputs and
outputs without a shape (accepted by onnxruntime; the checker requires the field) get
an empty one for the duration of the check.

Own checks, each a one-line ``FrontendError`` naming the file and the tensor or node:

* ``check_versions``: the default-domain opset is one this onnx package knows;
* ``check_graph_io``: at least one graph output;
* ``check_defined_inputs``: every node input is a graph input, initializer or output;
* ``check_tensor_data``: initializer and ``Constant`` tensors have non-negative dims
  within the size limits and exactly as much data as dims and element type need;
* ``check_shape``: a tensor's dims are in ``[0, MAX_DIM]`` and its size is at most
  ``MAX_TENSOR_BYTES`` (TFLite stores dims and sizes as int32).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import onnx

from microlith.diagnostics import FrontendError
from microlith.frontend.onnx_external import ITEMSIZE, main_graph_tensors

MAX_DIM = 2**31 - 1
MAX_TENSOR_BYTES = 2**31 - 1
ONNX_DOMAINS = ("", "ai.onnx")

# which repeated field of TensorProto holds the values of each element type
_TYPED_FIELD: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float_data", onnx.TensorProto.DOUBLE: "double_data",
    onnx.TensorProto.INT64: "int64_data", onnx.TensorProto.UINT32: "uint64_data",
    onnx.TensorProto.UINT64: "uint64_data"}
for _code in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16,
              onnx.TensorProto.UINT16, onnx.TensorProto.INT32, onnx.TensorProto.BOOL,
              onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
    _TYPED_FIELD[_code] = "int32_data"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def check_versions(model: onnx.ModelProto, path: str) -> None:
    """The default-domain opset is known to this onnx (the checker bounds the IR version)."""
    newest = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in ONNX_DOMAINS and not 1 <= entry.version <= newest:
            raise FrontendError(f"{path}: opset {entry.version} of the ONNX domain is not one "
                                f"this onnx package knows (1..{newest})")


def check_graph_io(model: onnx.ModelProto, path: str) -> None:
    if not model.graph.output:
        raise FrontendError(f"{path}: the graph has no outputs (nothing to compute)")
    seen: set[str] = set()
    for output in model.graph.output:
        if output.name in seen:  # a .tflite signature maps each output name to one tensor
            raise FrontendError(f"{path}: graph output {output.name!r} is listed twice")
        seen.add(output.name)


def check_defined_inputs(model: onnx.ModelProto, path: str) -> None:
    """Every node input names a graph input, an initializer or some node's output."""
    defined = {v.name for v in model.graph.input} | {t.name for t in model.graph.initializer}
    defined.update(out for node in model.graph.node for out in node.output)
    for index, node in enumerate(model.graph.node):
        for name in node.input:
            if name and name not in defined:
                raise FrontendError(f"{path}: node {node.name or f'#{index}'!r} "
                                    f"({node.op_type}): input {name!r} is never defined")


def check_shape(path: str, what: str, dims: Sequence[int | None], itemsize: int) -> None:
    """Dims in ``[0, MAX_DIM]`` and at most ``MAX_TENSOR_BYTES`` bytes in all (None: a dim
    not known yet, not checked)."""
    for axis, dim in enumerate(dims):
        if dim is not None and (dim < 0 or dim > MAX_DIM):
            raise FrontendError(f"{path}: {what} has dimension {dim} at axis {axis} (dims "
                                f"must be 0..{MAX_DIM:,})")
    if any(dim is None for dim in dims):
        return
    nbytes = math.prod(dims) * itemsize  # type: ignore[arg-type]
    if nbytes > MAX_TENSOR_BYTES:
        raise FrontendError(f"{path}: {what} of shape {list(dims)} needs {nbytes:,} bytes, "
                            f"more than the {MAX_TENSOR_BYTES:,}-byte limit")


def check_tensor_data(model: onnx.ModelProto, path: str) -> None:
    """Constant tensors: sane dims, exactly as much data as the dims need."""
    for tensor in main_graph_tensors(model):
        what = f"tensor {tensor.name!r}"
        itemsize = ITEMSIZE.get(tensor.data_type)
        if itemsize is None:
            kind = onnx.TensorProto.DataType.Name(tensor.data_type) \
                if tensor.data_type in onnx.TensorProto.DataType.values() else tensor.data_type
            raise FrontendError(f"{path}: {what} has unsupported element type {kind}")
        check_shape(path, what, list(tensor.dims), itemsize)
        if tensor.HasField("segment"):
            raise FrontendError(f"{path}: {what} is segmented, which is not supported")
        count = math.prod(tensor.dims)
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise FrontendError(f"{path}: {what} still refers to external data")
        if tensor.HasField("raw_data"):
            have, need, unit = len(tensor.raw_data), count * itemsize, "bytes of raw data"
        else:
            have = len(getattr(tensor, _TYPED_FIELD[tensor.data_type]))
            need, unit = count, f"values in {_TYPED_FIELD[tensor.data_type]}"
        if have != need:
            name = onnx.TensorProto.DataType.Name(tensor.data_type)
            raise FrontendError(f"{path}: {what} has {have:,} {unit}, but dims "
                                f"{list(tensor.dims)} of {name} need {need:,}")


def run_checker(model: onnx.ModelProto, path: str) -> None:
    """``onnx.checker.check_model`` (see the module docstring); findings as one line."""
    filled = []
    for value in [*model.graph.input, *model.graph.output]:
        if value.type.HasField("tensor_type") and not value.type.tensor_type.HasField("shape"):
            value.type.tensor_type.shape.SetInParent()
            filled.append(value)
    try:
        onnx.checker.check_model(model, full_check=False)
    except (onnx.checker.ValidationError, ValueError) as exc:
        message = _first_line(exc)
        label, name = _culprit(model)
        if label and name not in message:
            message = f"{label}: {message}"
        raise FrontendError(f"{path}: invalid ONNX model: {message}") from None
    finally:
        for value in filled:
            value.type.tensor_type.ClearField("shape")


def _culprit(model: onnx.ModelProto) -> tuple[str, str]:
    """(label, name) of the first node or tensor failing its own check (the checker's
    message may not say which); ("", "") if none does."""
    ctx = onnx.checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = {entry.domain: entry.version for entry in model.opset_import}
    scope = onnx.checker.C.LexicalScopeContext()
    parts: list[tuple[str, str, Callable[[], None]]] = []
    for index, node in enumerate(model.graph.node):
        name = node.name or f"#{index}"
        parts.append((f"node {name!r} ({node.op_type})", name,
                      functools.partial(onnx.checker.check_node, node, ctx, scope)))
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        parts.append((f"tensor {value.name!r}", value.name,
                      functools.partial(onnx.checker.check_value_info, value, ctx)))
    for tensor in model.graph.initializer:
        parts.append((f"tensor {tensor.name!r}", tensor.name,
                      functools.partial(onnx.checker.check_tensor, tensor, ctx)))
    for label, name, check in parts:
        try:
            check()
        except (onnx.checker.ValidationError, ValueError):
            return label, name
    return "", ""


def check_inferred_shapes(model: onnx.ModelProto, path: str) -> None:
    """Every shape ONNX inference found (or the model declares) is within the limits."""
    producers = {out: node for node in model.graph.node for out in node.output}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type") or not tensor.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        node = producers.get(value.name)
        what = f"tensor {value.name!r}" + (f" (output of node {node.name!r}, {node.op_type})"
                                           if node is not None else "")
        check_shape(path, what, dims, ITEMSIZE.get(tensor.elem_type, 1))
