"""TFLite flatbuffer writer (and entry point to the reader), independent of microlith's IR.

A model is described with plain dataclasses (``TflModel`` / ``TflTensor`` /
``TflOperator`` / ``TflQuant``) and turned into a ``.tflite`` byte string with
``serialize_model``; ``parse_model`` is its exact inverse.

File conventions of the writer:

* one subgraph, schema version 3, file identifier ``TFL3``;
* ``buffers[0]`` is the empty sentinel; every tensor whose ``data`` is None
  (activations, variables) points at it, and every constant tensor gets a buffer of its
  own, in tensor order; metadata buffers follow, in sorted name order;
* buffer data vectors are 16-byte aligned (relative to the start of the file);
* ``operator_codes`` hold one entry per distinct (op, version), in order of first use,
  with both ``deprecated_builtin_code`` (saturated at 127) and ``builtin_code`` written;
* every tensor is written with ``has_rank = true``; no shape_signature;
* ``signatures`` (``signature.TflSignature``) become ``signature_defs`` when given.

Output is byte-deterministic: it depends only on the dataclass contents.
"""

from __future__ import annotations

import copy
import math
import struct
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import flatbuffers
import numpy as np

from .builder import HoleBuilder, builder_size
from .schema import (
    BUILTIN_CODES,
    DTYPE_TO_TENSOR_TYPE,
    ENUMS,
    FILE_IDENTIFIER,
    PLACEHOLDER_FOR_GREATER_OP_CODES,
    SCHEMA_VERSION,
    OptionField,
    options_table,
)
from .signature import TflSignature, check_signatures, write_signatures

_DTYPE_ITEMSIZE = {
    "float32": 4, "float16": 2, "float64": 8, "bfloat16": 2, "int8": 1, "int16": 2,
    "int32": 4, "int64": 8, "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8, "bool": 1,
    "complex64": 8,
}  # fmt: skip
_MAX_MODEL_BYTES = 2**31 - 2**20  # flatbuffers' 2 GB limit, minus headroom for tables
_HOLE_MIN_BYTES = 4096  # data vectors at least this long are copied once, at assembly


@dataclass
class TflQuant:
    """Affine quantization; per-tensor when ``len(scale) == 1``, else per-axis."""

    scale: list[float]
    zero_point: list[int]
    quantized_dimension: int = 0
    min: list[float] | None = None
    max: list[float] | None = None


@dataclass
class TflTensor:
    name: str
    shape: list[int]
    dtype: str  # a key of schema.DTYPE_TO_TENSOR_TYPE, e.g. 'float32', 'int8'
    data: bytes | memoryview | None = None  # constant contents (a view: never copied)
    quant: TflQuant | None = None
    is_variable: bool = False


@dataclass
class TflOperator:
    op: str  # builtin name, e.g. 'CONV_2D'
    inputs: list[int]  # tensor indices; -1 marks an absent optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass
class TflModel:
    tensors: list[TflTensor]
    operators: list[TflOperator]
    inputs: list[int]
    outputs: list[int]
    description: str = "microlith"
    subgraph_name: str = "main"
    metadata: dict[str, bytes] = field(default_factory=dict)
    signatures: list[TflSignature] = field(default_factory=list)


# --------------------------------------------------------------------------- options


def _has_quant(q: TflQuant | None) -> bool:
    """Whether ``q`` carries anything (an all-empty TflQuant is written as no quant)."""
    return q is not None and bool(q.scale or q.min is not None or q.max is not None)


def _to_float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _canonical(op: str, f: OptionField, value: Any) -> Any:
    """Validate one option value and return its canonical form."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{op}: option {f.name!r}={value!r} {why}")

    if f.enum is not None:
        names = ENUMS[f.enum]
        if isinstance(value, str):
            if value not in names:
                raise bad(f"is not one of {sorted(names)}")
            return value
        if isinstance(value, Integral) and not isinstance(value, bool):
            for name, code in names.items():
                if code == int(value):
                    return name
        raise bad(f"is not a {f.enum} value")
    if f.kind == "bool":
        if isinstance(value, (bool, np.bool_)) or value in (0, 1):
            return bool(value)
        raise bad("is not a bool")
    if f.kind in ("int32", "uint32"):
        lo, hi = (-(2**31), 2**31 - 1) if f.kind == "int32" else (0, 2**32 - 1)
        if isinstance(value, Integral) and not isinstance(value, bool) and lo <= int(value) <= hi:
            return int(value)
        raise bad(f"is not an {f.kind}")
    if f.kind == "float32":
        if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value):
            return _to_float32(float(value))
        raise bad("is not a finite float")
    if f.kind == "int32_vector":
        if value is None:
            return None
        try:
            items = [int(v) for v in value]
        except (TypeError, ValueError):
            raise bad("is not a list of ints") from None
        if any(not -(2**31) <= v < 2**31 for v in items):
            raise bad("has values outside int32")
        return items
    raise AssertionError(f"unknown field kind {f.kind}")


def normalize_options(op: str, options: dict[str, Any]) -> dict[str, Any]:
    """Complete ``options`` of builtin ``op`` with schema defaults, in canonical form.

    Enum values become their names, floats are rounded to float32, vectors become
    ``list[int]`` (``None`` = absent). Raises ValueError naming the op for unknown
    operators, unknown keys and ill-typed values.
    """
    table = options_table(op)
    fields = table.field_map() if table is not None else {}
    for key in options:
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise ValueError(f"{op}: unknown option {key!r} (known options: {known})")
    return {
        name: _canonical(op, f, options.get(name, f.default)) for name, (_, f) in fields.items()
    }


def copy_model(model: TflModel) -> TflModel:
    """A deep copy of ``model`` that shares the tensors' data (read-only weights)."""
    shared = {id(t.data): t.data for t in model.tensors if t.data is not None}
    return copy.deepcopy(model, memo=shared)


def normalize_model(model: TflModel) -> TflModel:
    """A copy of ``model`` as ``parse_model(serialize_model(model))`` returns it.

    Options get their defaults (``normalize_options``), quantization floats are rounded
    to float32 and zero points / shapes become plain ints.
    """

    def f32(values: list[float] | None) -> list[float] | None:
        return None if values is None else [_to_float32(float(v)) for v in values]

    out = copy_model(model)
    for t in out.tensors:
        t.shape = [int(d) for d in t.shape]
        if t.data is not None and not isinstance(t.data, bytes | memoryview):
            t.data = bytes(t.data)
        if not _has_quant(t.quant):
            t.quant = None
        else:
            q = t.quant
            assert q is not None  # _has_quant(None) is False
            t.quant = TflQuant(
                scale=f32(q.scale) or [],
                zero_point=[int(z) for z in q.zero_point],
                quantized_dimension=int(q.quantized_dimension),
                min=f32(q.min),
                max=f32(q.max),
            )
    for op in out.operators:
        op.options = normalize_options(op.op, op.options)
        op.version = int(op.version)
    out.metadata = {k: bytes(out.metadata[k]) for k in sorted(out.metadata)}
    return out


# --------------------------------------------------------------------------- builder helpers


def _int_vector(b: flatbuffers.Builder, values: list[int]) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype="<i4").reshape(-1))


def _offset_vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _aligned_bytes(b: flatbuffers.Builder, data: bytes | memoryview,
                   alignment: int = 16) -> int:
    b.StartVector(1, len(data), alignment)
    if isinstance(b, HoleBuilder) and len(data) >= _HOLE_MIN_BYTES:
        b.hole(data)
    else:
        b.head -= len(data)
        b.Bytes[b.head : b.head + len(data)] = data
    return b.EndVector()


def _write_options(b: flatbuffers.Builder, op: str, options: dict[str, Any]) -> tuple[int, int]:
    """Write the options table of ``op``; returns (union type, offset) or (0, 0)."""
    values = normalize_options(op, options)
    table = options_table(op)
    if table is None:
        return 0, 0
    vectors = {
        f.name: _int_vector(b, values[f.name])
        for f in table.fields
        if f is not None and f.kind == "int32_vector" and values[f.name] is not None
    }
    b.StartObject(len(table.fields))
    for slot, f in enumerate(table.fields):
        if f is None:
            continue
        value = values[f.name]
        if f.kind == "int32_vector":
            if f.name in vectors:
                b.PrependUOffsetTRelativeSlot(slot, vectors[f.name], 0)
        elif f.enum is not None:
            b.PrependInt8Slot(slot, ENUMS[f.enum][value], ENUMS[f.enum][f.default])
        elif f.kind == "bool":
            b.PrependBoolSlot(slot, value, f.default)
        elif f.kind == "int32":
            b.PrependInt32Slot(slot, value, f.default)
        elif f.kind == "uint32":
            b.PrependUint32Slot(slot, value, f.default)
        else:
            b.PrependFloat32Slot(slot, value, f.default)
    return table.union_type, b.EndObject()


# --------------------------------------------------------------------------- validation


def _check_model(model: TflModel) -> None:
    n = len(model.tensors)
    total = 0
    for i, t in enumerate(model.tensors):
        where = f"tensor {i} ({t.name!r})"
        if t.dtype not in DTYPE_TO_TENSOR_TYPE:
            raise ValueError(f"{where}: unsupported dtype {t.dtype!r}")
        if any(not isinstance(d, Integral) or d < -1 for d in t.shape):
            raise ValueError(f"{where}: bad shape {t.shape}")
        if t.data is not None:
            total += len(t.data)
            size = _DTYPE_ITEMSIZE.get(t.dtype)
            numel = math.prod(t.shape)
            if size is not None and len(t.data) != numel * size:
                raise ValueError(f"{where}: data has {len(t.data)} bytes, expected {numel * size}")
        q = t.quant
        if q is not None:
            if len(q.scale) != len(q.zero_point):
                raise ValueError(f"{where}: quant scale/zero_point lengths differ")
            if len(q.scale) > 1 and (
                not 0 <= q.quantized_dimension < len(t.shape)
                or t.shape[q.quantized_dimension] != len(q.scale)
            ):
                raise ValueError(
                    f"{where}: {len(q.scale)} per-axis scales do not match "
                    f"dimension {q.quantized_dimension} of shape {t.shape}"
                )
    total += sum(len(v) for v in model.metadata.values())
    if total > _MAX_MODEL_BYTES:
        raise ValueError(f"model data ({total} bytes) exceeds the 2 GB flatbuffer limit")
    for kind, indices in (("input", model.inputs), ("output", model.outputs)):
        for i in indices:
            if not 0 <= i < n:
                raise ValueError(f"model {kind} index {i} out of range (0..{n - 1})")
    for k, op in enumerate(model.operators):
        if op.op not in BUILTIN_CODES:
            raise ValueError(f"operator {k}: unknown TFLite builtin operator {op.op!r}")
        if not isinstance(op.version, Integral) or op.version < 1:
            raise ValueError(f"operator {k} ({op.op}): bad version {op.version!r}")
        for i in op.inputs:
            if not -1 <= i < n:
                raise ValueError(f"operator {k} ({op.op}): input index {i} out of range")
        for i in op.outputs:
            if not 0 <= i < n:
                raise ValueError(f"operator {k} ({op.op}): output index {i} out of range")
    check_signatures(model.signatures, n)


# --------------------------------------------------------------------------- writer


class _Shared:
    """Offsets of vectors and tables already written, keyed by content.

    FlatBuffers references are plain offsets, so identical shape vectors, scale and
    zero-point vectors and whole quantization tables are written once and shared
    (both runtimes' verifiers accept it). Per-channel int64 zero points make this
    worth it: a conv's weights and bias carry identical all-zero vectors.
    """

    def __init__(self, b: flatbuffers.Builder) -> None:
        self.b = b
        self.offsets: dict[tuple[str, bytes], int] = {}

    def vector(self, kind: str, array: np.ndarray) -> int:
        key = (kind + array.dtype.str, array.tobytes())
        if key not in self.offsets:
            self.offsets[key] = self.b.CreateNumpyVector(array)
        return self.offsets[key]


def _write_quant(shared: _Shared, q: TflQuant) -> int:
    b = shared.b
    key = ("quant", repr((q.min, q.max, [float(np.float32(s)) for s in q.scale],
                          list(q.zero_point), q.quantized_dimension)).encode())
    if key in shared.offsets:
        return shared.offsets[key]
    mn = None if q.min is None else shared.vector("min", np.asarray(q.min, "<f4").reshape(-1))
    mx = None if q.max is None else shared.vector("max", np.asarray(q.max, "<f4").reshape(-1))
    scale = shared.vector("scale", np.asarray(q.scale, "<f4").reshape(-1))
    zero_point = shared.vector("zp", np.asarray(q.zero_point, "<i8").reshape(-1))
    b.StartObject(7)
    if mn is not None:
        b.PrependUOffsetTRelativeSlot(0, mn, 0)
    if mx is not None:
        b.PrependUOffsetTRelativeSlot(1, mx, 0)
    b.PrependUOffsetTRelativeSlot(2, scale, 0)
    b.PrependUOffsetTRelativeSlot(3, zero_point, 0)
    b.PrependInt32Slot(6, int(q.quantized_dimension), 0)
    shared.offsets[key] = b.EndObject()
    return shared.offsets[key]


def _write_tensor(shared: _Shared, t: TflTensor, buffer_index: int) -> int:
    b = shared.b
    name = b.CreateString(t.name)
    shape = shared.vector("shape", np.asarray([int(d) for d in t.shape], "<i4").reshape(-1))
    quant = _write_quant(shared, t.quant) if t.quant is not None and _has_quant(t.quant) \
        else None
    b.StartObject(9)
    b.PrependUOffsetTRelativeSlot(0, shape, 0)
    b.PrependInt8Slot(1, int(DTYPE_TO_TENSOR_TYPE[t.dtype]), 0)
    b.PrependUint32Slot(2, buffer_index, 0)
    b.PrependUOffsetTRelativeSlot(3, name, 0)
    if quant is not None:
        b.PrependUOffsetTRelativeSlot(4, quant, 0)
    b.PrependBoolSlot(5, bool(t.is_variable), False)
    b.PrependBoolSlot(8, True, False)  # has_rank
    return b.EndObject()


def _write_operator(b: flatbuffers.Builder, op: TflOperator, opcode_index: int) -> int:
    inputs = _int_vector(b, op.inputs)
    outputs = _int_vector(b, op.outputs)
    options_type, options = _write_options(b, op.op, op.options)
    b.StartObject(5)
    b.PrependUint32Slot(0, opcode_index, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs, 0)
    if options_type:
        b.PrependUint8Slot(3, options_type, 0)
        b.PrependUOffsetTRelativeSlot(4, options, 0)
    return b.EndObject()


def _write_opcode(b: flatbuffers.Builder, op: str, version: int) -> int:
    code = BUILTIN_CODES[op]
    b.ForceDefaults(True)
    b.StartObject(4)
    b.PrependInt8Slot(0, min(code, PLACEHOLDER_FOR_GREATER_OP_CODES), 0)
    b.PrependInt32Slot(2, int(version), 1)
    b.PrependInt32Slot(3, code, 0)
    offset = b.EndObject()
    b.ForceDefaults(False)
    return offset


def _write_buffer(b: flatbuffers.Builder, data: bytes | memoryview | None) -> int:
    vec = _aligned_bytes(b, data) if data is not None else None
    b.StartObject(1)
    if vec is not None:
        b.PrependUOffsetTRelativeSlot(0, vec, 0)
    return b.EndObject()


def serialize_model(model: TflModel) -> bytes:
    """Serialize ``model`` to a ``.tflite`` flatbuffer (see module docstring)."""
    _check_model(model)
    # Room for every data buffer (16-aligned) up front: the builder then never grows by
    # doubling and copying (a large model's weights would be copied several times).
    b = HoleBuilder(builder_size(model))

    # Buffers: sentinel, one per constant tensor, then metadata.
    buffer_data: list[bytes | memoryview | None] = [None]
    tensor_buffer: list[int] = []
    for t in model.tensors:
        if t.data is None:
            tensor_buffer.append(0)
        else:
            tensor_buffer.append(len(buffer_data))
            buffer_data.append(t.data)
    metadata_names = sorted(model.metadata)
    metadata_buffer = {}
    for name in metadata_names:
        metadata_buffer[name] = len(buffer_data)
        buffer_data.append(model.metadata[name])
    buffers = [_write_buffer(b, data) for data in buffer_data]

    shared = _Shared(b)
    tensors = [
        _write_tensor(shared, t, idx)
        for t, idx in zip(model.tensors, tensor_buffer, strict=True)
    ]

    opcode_keys: dict[tuple[str, int], int] = {}
    operators = []
    for op in model.operators:
        key = (op.op, int(op.version))
        opcode_index = opcode_keys.setdefault(key, len(opcode_keys))
        operators.append(_write_operator(b, op, opcode_index))

    tensors_vec = _offset_vector(b, tensors)
    inputs_vec = _int_vector(b, model.inputs)
    outputs_vec = _int_vector(b, model.outputs)
    operators_vec = _offset_vector(b, operators)
    sg_name = b.CreateString(model.subgraph_name)
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensors_vec, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, operators_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, sg_name, 0)
    subgraph = b.EndObject()

    opcodes = [_write_opcode(b, op, version) for op, version in opcode_keys]
    metadata = []
    for name in metadata_names:
        md_name = b.CreateString(name)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, md_name, 0)
        b.PrependUint32Slot(1, metadata_buffer[name], 0)
        metadata.append(b.EndObject())

    opcodes_vec = _offset_vector(b, opcodes)
    subgraphs_vec = _offset_vector(b, [subgraph])
    description = b.CreateString(model.description)
    buffers_vec = _offset_vector(b, buffers)
    metadata_vec = _offset_vector(b, metadata) if metadata else None
    signatures_vec = write_signatures(b, model.signatures) if model.signatures else None
    b.StartObject(8 if signatures_vec is not None else 7)
    b.PrependUint32Slot(0, SCHEMA_VERSION, 0)
    b.PrependUOffsetTRelativeSlot(1, opcodes_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, description, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers_vec, 0)
    if metadata_vec is not None:
        b.PrependUOffsetTRelativeSlot(6, metadata_vec, 0)
    if signatures_vec is not None:
        b.PrependUOffsetTRelativeSlot(7, signatures_vec, 0)
    root = b.EndObject()
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return b.assemble()  # the weights are copied once, into the file's bytes


def parse_model(data: bytes) -> TflModel:
    """Parse a ``.tflite`` flatbuffer; the exact inverse of ``serialize_model``."""
    from .reader import parse_model as _parse

    return _parse(data)
