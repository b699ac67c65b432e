"""Large initializer payloads set aside while onnx's checker and shape inference run.

``onnx.checker.check_model`` and ``onnx.shape_inference.infer_shapes`` serialize the whole
model to C++ and back: with the weights inside, an import held about 4x the initializer
bytes at its peak (an MLP with 144 MB of initializers peaked at 790 MB before the first
pass). Neither needs the weights' values: node checks read names, types and attributes,
shape inference reads an initializer's dtype and dims (and, for data propagation, the
values of small shape-like tensors, which stay). So every initializer whose ``raw_data``
has at least ``SET_ASIDE_BYTES`` is emptied first and refilled, by name, into the model
shape inference returns; the payload itself is never copied, only moved.

The checker validates a tensor's data size against its dims, so while it runs an emptied
initializer also declares dims ``[0]`` (its own data size is checked earlier, by
``onnx_checks.check_tensor_data``, with the model's real dims). Initializers stored in
``float_data``/``int32_data``/... and tensors inside Constant nodes are left in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

SET_ASIDE_BYTES = 1 << 20


@dataclass
class SetAside:
    """The payloads taken out of ``model.graph.initializer``, by tensor name."""

    payloads: dict[str, bytes] = field(default_factory=dict)

    def refill(self, model: onnx.ModelProto) -> onnx.ModelProto:
        """Put every payload back into ``model``'s initializer of the same name."""
        for tensor in model.graph.initializer:
            payload = self.payloads.pop(tensor.name, None)
            if payload is not None:
                tensor.raw_data = payload
        if self.payloads:  # shape inference keeps every initializer; a loss is our bug
            raise RuntimeError(f"initializers lost while set aside: {sorted(self.payloads)}")
        return model


def set_aside(model: onnx.ModelProto, threshold: int = SET_ASIDE_BYTES) -> SetAside:
    """Empty the ``raw_data`` of every large initializer (dtype and dims kept)."""
    aside = SetAside()
    for tensor in model.graph.initializer:
        if (tensor.data_location == onnx.TensorProto.DEFAULT
                and len(tensor.raw_data) >= threshold and tensor.name not in aside.payloads):
            aside.payloads[tensor.name] = tensor.raw_data
            tensor.ClearField("raw_data")
    return aside


def with_empty_dims(model: onnx.ModelProto, aside: SetAside,
                    check: Callable[[onnx.ModelProto], None]) -> None:
    """Run ``check(model)`` with the emptied initializers declaring dims ``[0]``."""
    saved: list[tuple[onnx.TensorProto, list[int]]] = []
    for tensor in model.graph.initializer:
        if tensor.name in aside.payloads:
            saved.append((tensor, list(tensor.dims)))
            del tensor.dims[:]
            tensor.dims.append(0)
    try:
        check(model)
    finally:
        for tensor, dims in saved:
            del tensor.dims[:]
            tensor.dims.extend(dims)


def check_and_infer(model: onnx.ModelProto, checker: Callable[[onnx.ModelProto], None],
                    infer: Callable[[onnx.ModelProto], onnx.ModelProto]) -> onnx.ModelProto:
    """``checker`` then ``infer`` on ``model`` with its large payloads set aside."""
    aside = set_aside(model)
    with_empty_dims(model, aside, checker)
    return aside.refill(infer(model))
