"""Mutators for ``tools/fuzz.py``: byte-level and field-level changes to ONNX models,
``.tflite`` files and ``*_memory_plan.json`` files of C output folders.

Every mutator takes a ``random.Random`` and returns the mutant and a short description
of what it changed (printed with a bad outcome, so it can be reproduced by hand). The
same generator state gives the same mutant: the fuzzer is deterministic per seed.
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 255, 2**15, 2**31 - 1, -(2**31), 2**31, 2**32 - 1,
                    2**40, 2**62, -(2**40)]
INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 1e-45, 1e-38, 3.4e38, -3.4e38, 1e30, math.inf,
                      -math.inf, math.nan]
EXTERNAL_LOCATIONS = ["weights.bin", "missing.bin", "../weights.bin", "/dev/zero",
                      "sub/../../weights.bin", "link.bin", "fifo.bin", ""]


# --------------------------------------------------------------------------- bytes


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """1-4 of: bit flip, interesting byte/int32, truncation, deletion, duplication."""
    buf = bytearray(data)
    steps = []
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        kind = rng.choice(["flip", "byte", "int32", "truncate", "delete", "dup", "insert"])
        at = rng.randrange(len(buf))
        if kind == "flip":
            buf[at] ^= 1 << rng.randrange(8)
        elif kind == "byte":
            buf[at] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
        elif kind == "int32" and at + 4 <= len(buf):
            value = rng.choice(INTERESTING_INTS) & 0xFFFFFFFF
            buf[at:at + 4] = struct.pack("<I", value)
        elif kind == "truncate":
            del buf[at:]
        elif kind == "delete":
            del buf[at:at + rng.randint(1, 64)]
        elif kind == "dup":
            chunk = buf[at:at + rng.randint(1, 64)]
            buf[at:at] = chunk
        else:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        steps.append(f"{kind}@{at}")
    return bytes(buf), "bytes " + ",".join(steps)


# --------------------------------------------------------------------------- ONNX fields


def _pick(rng: random.Random, items: Any) -> Any:
    items = list(items)
    return rng.choice(items) if items else None


def _mutate_dims(rng: random.Random, model: onnx.ModelProto) -> str:
    values = [*model.graph.input, *model.graph.output]
    if rng.random() < 0.5 and model.graph.initializer:
        tensor = _pick(rng, model.graph.initializer)
        if tensor.dims:
            axis = rng.randrange(len(tensor.dims))
            tensor.dims[axis] = rng.choice([0, -1, 1, tensor.dims[axis] + 1, 2**31, 2**40])
            return f"initializer {tensor.name!r} dims -> {list(tensor.dims)}"
    value = _pick(rng, values)
    dims = value.type.tensor_type.shape.dim
    if not dims:
        return "dims: nothing"
    dim = dims[rng.randrange(len(dims))]
    choice = rng.choice([0, -1, 1, 2, 3, 2**31, 2**40, "sym"])
    if choice == "sym":
        dim.dim_param = "N"
    else:
        dim.dim_value = int(choice)
    return f"value {value.name!r} shape -> {[d.dim_value or d.dim_param for d in dims]}"


def _mutate_initializer(rng: random.Random, model: onnx.ModelProto) -> str:
    tensor = _pick(rng, model.graph.initializer)
    if tensor is None:
        return "initializer: none"
    kind = rng.choice(["values", "values", "truncate", "dtype", "grow"])
    if kind == "values" and tensor.data_type in (TensorProto.INT64, TensorProto.INT32):
        array = numpy_helper.to_array(tensor).copy()  # shapes, axes, pads, indices
        if array.size:
            array.reshape(-1)[rng.randrange(array.size)] = rng.choice(
                [v for v in INTERESTING_INTS if abs(v) < 2**62] + [-2, 0, 4])
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
        return f"initializer {tensor.name!r} integer values"
    if kind == "values" and tensor.data_type == TensorProto.FLOAT:
        array = numpy_helper.to_array(tensor).copy()
        if array.size:
            flat = array.reshape(-1)
            for _ in range(rng.randint(1, 3)):
                flat[rng.randrange(flat.size)] = rng.choice(INTERESTING_FLOATS)
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
        return f"initializer {tensor.name!r} values"
    if kind == "truncate" and tensor.raw_data:
        tensor.raw_data = tensor.raw_data[:rng.randrange(len(tensor.raw_data))]
        return f"initializer {tensor.name!r} raw_data truncated"
    if kind == "grow" and tensor.raw_data:
        tensor.raw_data = tensor.raw_data + bytes(rng.choice([1, 4, 64]))
        return f"initializer {tensor.name!r} raw_data grown"
    tensor.data_type = rng.choice([TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT8,
                                   TensorProto.STRING, TensorProto.FLOAT16, 0, 99])
    return f"initializer {tensor.name!r} data_type -> {tensor.data_type}"


def _mutate_attribute(rng: random.Random, model: onnx.ModelProto) -> str:
    node = _pick(rng, [n for n in model.graph.node if n.attribute])
    if node is None:
        return "attribute: none"
    attr = _pick(rng, node.attribute)
    kind = rng.choice(["value", "value", "delete", "retype", "add"])
    if kind == "add":
        name = rng.choice(["axis", "pads", "alpha", "group", "auto_pad", "ceil_mode",
                           "kernel_shape", "perm", "keepdims", "to", "epsilon", "transA"])
        value = rng.choice([rng.choice(INTERESTING_INTS), rng.choice(INTERESTING_FLOATS),
                            [rng.choice(INTERESTING_INTS)] * rng.randint(1, 4), "SAME_LOWER"])
        node.attribute.append(onnx.helper.make_attribute(name, value))
        return f"node {node.name!r} attribute {name} added ({value!r})"
    if kind == "delete":
        node.attribute.remove(attr)
        return f"node {node.name!r} attribute {attr.name} deleted"
    if kind == "retype":
        attr.type = rng.choice([onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT,
                                onnx.AttributeProto.INTS, onnx.AttributeProto.STRING])
        return f"node {node.name!r} attribute {attr.name} type -> {attr.type}"
    if attr.type == onnx.AttributeProto.INT:
        attr.i = rng.choice(INTERESTING_INTS)
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = rng.choice(INTERESTING_FLOATS)
    elif attr.type == onnx.AttributeProto.INTS and attr.ints:
        attr.ints[rng.randrange(len(attr.ints))] = rng.choice(INTERESTING_INTS)
        if rng.random() < 0.3:
            attr.ints.append(rng.choice(INTERESTING_INTS))
    elif attr.type == onnx.AttributeProto.STRING:
        attr.s = rng.choice([b"", b"SAME_UPPER", b"VALID", b"bogus", b"\xff"])
    elif attr.type == onnx.AttributeProto.TENSOR:
        array = numpy_helper.to_array(attr.t).copy()
        if array.size and array.dtype.kind in "fi":
            array.reshape(-1)[0] = rng.choice(INTERESTING_INTS if array.dtype.kind == "i"
                                              else INTERESTING_FLOATS)
            attr.t.CopyFrom(numpy_helper.from_array(array, attr.t.name))
    return f"node {node.name!r} attribute {attr.name} value"


def _mutate_node(rng: random.Random, model: onnx.ModelProto) -> str:
    graph = model.graph
    index = rng.randrange(len(graph.node))
    node = graph.node[index]
    names = [v.name for v in graph.input] + [t.name for t in graph.initializer] + \
        [o for n in graph.node for o in n.output]
    kind = rng.choice(["drop-input", "add-input", "empty-input", "ghost-input", "rewire",
                       "op-type", "delete-node", "dup-node", "move-node", "rename-output"])
    if kind == "drop-input" and node.input:
        del node.input[rng.randrange(len(node.input))]
    elif kind == "add-input":
        node.input.append(rng.choice(names))
    elif kind == "empty-input" and node.input:
        node.input[rng.randrange(len(node.input))] = ""
    elif kind == "ghost-input" and node.input:
        node.input[rng.randrange(len(node.input))] = "ghost"
    elif kind == "rewire" and node.input:
        node.input[rng.randrange(len(node.input))] = rng.choice(names)
    elif kind == "op-type":
        from microlith.frontend.context import supported_ops

        node.op_type = rng.choice(supported_ops())
    elif kind == "delete-node":
        del graph.node[index]
    elif kind == "dup-node":
        graph.node.add().CopyFrom(node)
    elif kind == "move-node":  # the node list out of topological order
        moved = onnx.NodeProto()
        moved.CopyFrom(node)
        del graph.node[index]
        graph.node.insert(rng.randrange(len(graph.node) + 1), moved)
    elif kind == "rename-output" and node.output:
        node.output[0] = rng.choice(["renamed", "", *names])
    return f"node #{index} {kind}"


def _mutate_graph(rng: random.Random, model: onnx.ModelProto) -> str:
    graph = model.graph
    kind = rng.choice(["no-outputs", "dup-output", "dup-input", "output-intermediate",
                       "opset", "ir", "elem-type", "no-input-shape"])
    if kind == "no-outputs":
        del graph.output[:]
    elif kind == "dup-output":
        graph.output.append(graph.output[0])
    elif kind == "dup-input":
        graph.input.append(graph.input[0])
    elif kind == "output-intermediate":
        produced = [o for n in graph.node for o in n.output]
        graph.output[0].name = rng.choice(produced)
    elif kind == "opset":
        model.opset_import[0].version = rng.choice([1, 7, 11, 12, 14, 18, 21, 99, -1])
    elif kind == "ir":
        model.ir_version = rng.choice([1, 3, 7, 10, 99])
    elif kind == "elem-type":
        graph.input[0].type.tensor_type.elem_type = rng.choice(
            [TensorProto.DOUBLE, TensorProto.INT64, TensorProto.UINT8, TensorProto.STRING, 0])
    else:
        graph.input[0].type.tensor_type.ClearField("shape")
    return f"graph {kind}"


def _mutate_external(rng: random.Random, model: onnx.ModelProto) -> str:
    tensor = _pick(rng, [t for t in model.graph.initializer if t.raw_data])
    if tensor is None:
        return "external: none"
    size = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    location = rng.choice(EXTERNAL_LOCATIONS)
    fields = {"location": location}
    if rng.random() < 0.6:
        fields["offset"] = str(rng.choice([0, 0, 16, 2**40, -1, size]))
    if rng.random() < 0.6:
        fields["length"] = str(rng.choice([size, size, size - 1, size + 4, 2**40, -5]))
    if rng.random() < 0.1:
        fields["offset"] = "abc"
    for key, value in fields.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return f"initializer {tensor.name!r} external {fields}"


ONNX_MUTATORS: list[Callable[[random.Random, onnx.ModelProto], str]] = [
    _mutate_dims, _mutate_initializer, _mutate_attribute, _mutate_attribute, _mutate_node,
    _mutate_node, _mutate_graph, _mutate_external]


def mutate_onnx(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """1-2 field-level changes of a parsed model (or, one time in six, raw bytes)."""
    if rng.random() < 1 / 6:
        return mutate_bytes(rng, data)
    model = onnx.ModelProto()
    model.ParseFromString(data)
    steps = []
    for _ in range(rng.randint(1, 2)):
        mutator = rng.choice(ONNX_MUTATORS)
        try:
            steps.append(mutator(rng, model))
        except Exception:  # nothing left to mutate, or an earlier step made it unreadable
            steps.append(f"{mutator.__name__}: not applicable")
    return model.SerializeToString(), "; ".join(steps)


# --------------------------------------------------------------------------- .tflite fields


def tflite_int_fields(buf: bytes) -> list[tuple[int, str]]:
    """Positions of 4-byte integers worth changing: tensor shapes and buffer indices,
    operator opcode indices and tensor lists, subgraph inputs/outputs, buffer sizes."""
    from microlith.formats.tflite.reader import _Table

    fields: list[tuple[int, str]] = []

    def vector(table: _Table, slot: int, what: str) -> None:
        vec = table._vector(slot)
        if vec is not None:
            start, n = vec
            fields.append((start - 4, f"{what} length"))
            fields.extend((start + 4 * i, f"{what}[{i}]") for i in range(min(n, 64)))

    def scalar(table: _Table, slot: int, what: str) -> None:
        off = table._field(slot)
        if off:
            fields.append((table.pos + off, what))

    root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    for sg in root.tables(2):
        vector(sg, 1, "subgraph inputs")
        vector(sg, 2, "subgraph outputs")
        for i, t in enumerate(sg.tables(0)):
            vector(t, 0, f"tensor {i} shape")
            scalar(t, 1, f"tensor {i} type")
            scalar(t, 2, f"tensor {i} buffer")
            quant = t.table(4)
            if quant is not None:
                vector(quant, 2, f"tensor {i} scale")
                vector(quant, 3, f"tensor {i} zero_point")
                scalar(quant, 6, f"tensor {i} quantized_dimension")
        for i, op in enumerate(sg.tables(3)):
            scalar(op, 0, f"operator {i} opcode_index")
            vector(op, 1, f"operator {i} inputs")
            vector(op, 2, f"operator {i} outputs")
            scalar(op, 3, f"operator {i} options_type")
            options = op.table(4)
            if options is not None:
                for slot in range(max(0, (options.vtable_size - 4) // 2)):
                    scalar(options, slot, f"operator {i} option {slot}")
    for i, oc in enumerate(root.tables(1)):
        scalar(oc, 3, f"opcode {i} builtin_code")
    for i, b in enumerate(root.tables(4)):
        vector(b, 0, f"buffer {i} data")
    return fields


def mutate_tflite(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """An interesting int32 written over a structural field, or byte-level changes."""
    if rng.random() < 0.4:
        return mutate_bytes(rng, data)
    fields = tflite_int_fields(data)
    buf = bytearray(data)
    steps = []
    for _ in range(rng.randint(1, 2)):
        at, what = rng.choice(fields)
        value = rng.choice(INTERESTING_INTS + [rng.randrange(64)])
        buf[at:at + 4] = struct.pack("<I", value & 0xFFFFFFFF)
        steps.append(f"{what} -> {value}")
    return bytes(buf), "tflite " + "; ".join(steps)


# --------------------------------------------------------------------------- memory plans


def _json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _json_paths(value, (*prefix, key))
    return paths


def mutate_plan(rng: random.Random, text: str) -> tuple[str, str]:
    """A key deleted or a value replaced by a wrong type or extreme number; or bytes."""
    if rng.random() < 0.25:
        data, what = mutate_bytes(rng, text.encode())
        return data.decode("utf-8", "surrogateescape"), what
    plan = json.loads(text)
    path = rng.choice(_json_paths(plan))
    parent = plan
    for key in path[:-1]:
        parent = parent[key]
    kind = rng.choice(["delete", "value", "value", "nest"])
    if kind == "delete":
        del parent[path[-1]]
        return json.dumps(plan), f"plan delete {list(path)}"
    if kind == "nest":
        deep = rng.random() < 0.2
        parent[path[-1]] = "__DEEP__" if deep else {"x": [1, {"y": None}]}
        out = json.dumps(plan).replace('"__DEEP__"', "[" * 50000 + "]" * 50000)
        return out, f"plan nest {list(path)}{' (50000 deep)' if deep else ''}"
    value = rng.choice([None, "12", True, 1.5, -1, 2**64, -(2**63), 10**30, [], {}, "NaN"])
    parent[path[-1]] = value
    out = json.dumps(plan)
    if value == "NaN":
        out = out.replace('"NaN"', "NaN")
    return out, f"plan {list(path)} -> {value!r}"


def random_input(seed: list[int], shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
