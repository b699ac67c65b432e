"""``microlith inspect`` shows the storage form of compressed weights and the parameter bytes
per dtype (``--quantize dynamic`` / ``float16``, and the C target's tables), recomputed here
from the files."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from microlith.app.driver import CompileOptions, compile_onnx, write_directory
from microlith.formats.tflite.flatbuffer import parse_model
from tests.cli.clikit import ZOO, run


def _by_dtype(text: str, label: str) -> dict[str, int]:
    line = next(line for line in text.splitlines() if label in line)
    return {k: int(v.replace(",", "")) for k, v in re.findall(r"(\w+) ([\d,]+)",
                                                                line.split(":", 1)[1])}


def test_inspect_weight_storage(tmp_path: Path) -> None:
    for mode, form in (("dynamic", "int8 hybrid weights of CONV_2D"),
                       ("float16", "float16 storage, DEQUANTIZE to float32")):
        data = compile_onnx(ZOO / "resnet8.onnx", CompileOptions(quantize=mode)).output
        path = tmp_path / f"{mode}.tflite"
        path.write_bytes(data)
        proc = run("inspect", path, "--tensors", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        model = parse_model(data)
        want: Counter[str] = Counter()
        for t in model.tensors:
            if t.data:
                want[t.dtype] += len(t.data)
        assert _by_dtype(proc.stdout, "parameter bytes by dtype") == dict(want)
        compressed = [t.name for t in model.tensors if t.data and t.dtype in ("int8", "float16")]
        rows = [line for line in proc.stdout.splitlines() if form in line]
        assert compressed and len(rows) >= len(compressed) - 1  # the FC is not a CONV_2D
    result = compile_onnx(ZOO / "lenet.onnx", CompileOptions(target="c", quantize="float16"))
    write_directory(tmp_path / "c", result.files)
    proc = run("inspect", tmp_path / "c", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tables = _by_dtype(proc.stdout, "weights and tables by dtype")
    assert sum(tables.values()) == result.sizes["weights"] and tables["float16"] > 0


def test_inspect_float16_widened_copies_are_not_activations(tmp_path: Path) -> None:
    """The float32 outputs of DEQUANTIZE on constants are load-time copies: listed as
    such, summed on their own line, and out of the peak activation estimate, which is then
    the float model's."""
    float_path, half_path = tmp_path / "float.tflite", tmp_path / "half.tflite"
    float_path.write_bytes(compile_onnx(ZOO / "lenet.onnx", CompileOptions()).output)
    data = compile_onnx(ZOO / "lenet.onnx", CompileOptions(quantize="float16")).output
    half_path.write_bytes(data)
    half = run("inspect", half_path, "--tensors", cwd=tmp_path)
    full = run("inspect", float_path, cwd=tmp_path)
    assert half.returncode == full.returncode == 0, half.stderr + full.stderr

    def peak(text: str) -> str:
        return next(line for line in text.splitlines() if "peak activation" in line)
    assert peak(half.stdout).split(" at ")[0] == peak(full.stdout).split(" at ")[0]
    model = parse_model(data)
    widened = [model.tensors[o] for op in model.operators if op.op == "DEQUANTIZE"
               for o in op.outputs]
    total = sum(4 * int(np.prod(t.shape)) for t in widened)
    assert f"made at load (DEQUANTIZE of constants): {total:,} bytes" in half.stdout
    rows = [line for line in half.stdout.splitlines() if " widened " in line]
    assert len(rows) == len(widened)
