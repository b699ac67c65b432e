"""PyTorch -> ONNX bytes for ``Converter.from_torch`` (torch is an optional dependency).

Uses ``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``: no onnxscript
needed, static shapes from ``example_inputs``), the module in eval mode, through a temporary
file that is removed again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from typing import Any

from microlith.diagnostics import UsageError


def export_onnx(module: Any, example_inputs: Any, input_names: list[str] | None,
                output_names: list[str] | None, opset: int) -> bytes:
    try:
        import torch
    except ImportError:
        raise UsageError("Converter.from_torch needs PyTorch: pip install "
                         "'microlith[torch]'") from None
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"from_torch expects a torch.nn.Module, not {type(module).__name__}")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise UsageError("from_torch: example_inputs must be a tensor or a tuple of tensors")
    names = input_names or (["input"] if len(args) == 1 else
                            [f"input_{i}" for i in range(len(args))])
    was_training = module.training
    module.eval()
    tmp = tempfile.mkdtemp(prefix="microlith-torch-")
    path = os.path.join(tmp, "model.onnx")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
            torch.onnx.export(module, args, path, input_names=names,
                              output_names=output_names, opset_version=opset, dynamo=False)
    except Exception as exc:  # torch's exporter: unsupported op, data-dependent control...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise UsageError(f"from_torch: torch.onnx.export failed: {first}") from None
    else:
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        module.train(was_training)
        shutil.rmtree(tmp, ignore_errors=True)
