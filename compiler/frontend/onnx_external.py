"""External tensor data (``data_location: EXTERNAL``), read with every field checked first.

onnx's own loader raises ``ValidationError`` / ``ValueError`` / ``OSError`` of its own
for a bad reference, and reads a file to its end when no ``length`` is given (forever
for a device). Here, for each external tensor of the main graph (initializers and
``Constant`` node attributes), before a byte is read:

* ``location`` is given, relative, without ``..`` and not through a symbolic link
  below the model's directory (the data must live beside the model);
* the file is a regular file (``input_files.open_regular``);
* ``offset`` and ``length`` are non-negative integers with ``offset + length`` within
  the file; ``length`` (or the rest of the file) equals what the tensor's dims and
  element type need;
* all external data together with the model file stays within ``MAX_ONNX_BYTES``.

Each failure is one ``FrontendError`` line naming the model file and the tensor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import onnx

from microlith.diagnostics import FrontendError
from microlith.frontend.input_files import open_regular

MAX_ONNX_BYTES = 2**31 - 1  # protobuf's limit for one message: the model and its weights

ITEMSIZE: dict[int, int] = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2,
             onnx.TensorProto.BFLOAT16: 2, onnx.TensorProto.DOUBLE: 8,
             onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1, onnx.TensorProto.INT16: 2,
             onnx.TensorProto.UINT16: 2, onnx.TensorProto.INT32: 4, onnx.TensorProto.UINT32: 4,
             onnx.TensorProto.INT64: 8, onnx.TensorProto.UINT64: 8, onnx.TensorProto.BOOL: 1}


def main_graph_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Initializers and the tensors of top-level node attributes (``Constant`` values)."""
    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors


def tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes the raw data of ``tensor`` must have, or None for a type without a fixed size."""
    itemsize = ITEMSIZE.get(tensor.data_type)
    if itemsize is None or any(d < 0 for d in tensor.dims):
        return None
    return math.prod(tensor.dims) * itemsize


def _location(path: str, base: str, tensor: onnx.TensorProto, location: str) -> str:
    name = f"{path}: external data of tensor {tensor.name!r}"
    if not location:
        raise FrontendError(f"{name} has no location")
    if "\0" in location or os.path.isabs(location) or os.path.splitdrive(location)[0]:
        raise FrontendError(f"{name}: location {location!r} must be a path relative to the "
                            f"model's directory")
    parts = location.replace("\\", "/").split("/")
    if ".." in parts:
        raise FrontendError(f"{name}: location {location!r} points outside the model's "
                            f"directory")
    full = os.path.join(base, *parts)
    expected = os.path.join(os.path.realpath(base), *[p for p in parts if p not in ("", ".")])
    if os.path.lexists(full) and os.path.realpath(full) != expected:
        raise FrontendError(f"{name}: location {location!r} goes through a symbolic link; "
                            f"refusing to follow it")
    return full


def _int_field(name: str, fields: dict[str, str], key: str) -> int | None:
    if key not in fields:
        return None
    try:
        value = int(fields[key])
    except ValueError:
        value = -1
    if value < 0:
        raise FrontendError(f"{name}: {key} {fields[key]!r} is not a non-negative integer")
    return value


def load_external_data(model: onnx.ModelProto, path: str, model_bytes: int) -> None:
    """Replace every external reference of the main graph by its (checked) bytes."""
    base = os.path.dirname(os.path.abspath(path))
    total = model_bytes
    for tensor in main_graph_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        name = f"{path}: external data of tensor {tensor.name!r}"
        fields = {entry.key: entry.value for entry in tensor.external_data}
        full = _location(path, base, tensor, fields.get("location", ""))
        offset = _int_field(name, fields, "offset") or 0
        length = _int_field(name, fields, "length")
        expected = tensor_nbytes(tensor)
        if expected is None:
            raise FrontendError(f"{name}: element type "
                                f"{onnx.TensorProto.DataType.Name(tensor.data_type)} or dims "
                                f"{list(tensor.dims)} cannot be stored externally")
        try:
            handle, size = open_regular(full, f"external data for tensor {tensor.name!r}",
                                        MAX_ONNX_BYTES)
        except FrontendError as exc:  # name the location as the model gives it
            reason = str(exc).replace(full, repr(fields["location"]), 1)
            raise FrontendError(f"{name}: {reason}") from None
        with handle:
            if offset > size:
                raise FrontendError(f"{name}: offset {offset:,} is past the end of "
                                    f"{fields['location']!r} ({size:,} bytes)")
            length = size - offset if length is None else length
            if offset + length > size:
                raise FrontendError(f"{name}: offset {offset:,} + length {length:,} is past "
                                    f"the end of {fields['location']!r} ({size:,} bytes)")
            if length != expected:
                raise FrontendError(f"{name}: {length:,} bytes, but dims {list(tensor.dims)} "
                                    f"need {expected:,}")
            total += length
            if total > MAX_ONNX_BYTES:
                raise FrontendError(f"{path}: model and external data exceed "
                                    f"{MAX_ONNX_BYTES:,} bytes (at tensor {tensor.name!r})")
            handle.seek(offset)
            data = handle.read(length)
        if len(data) != length:
            raise FrontendError(f"{name}: file ended early (read {len(data):,} of "
                                f"{length:,} bytes)")
        tensor.raw_data = data
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
