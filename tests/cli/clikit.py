"""The ``microlith`` command line, run as a user runs it (a subprocess): the shared parts.

The modules of this folder cover ``compile`` (summary line, ``-q``, ``-v``, IR printing,
``--pipeline``, ``--remarks``, ``--verify-each``) and ``passes``
(``test_cli_compile.py``), ``inspect`` (numbers recomputed from the files;
``test_cli_inspect.py``), and every bad input (``test_cli_bad_inputs.py``): each must
exit with status 2, print exactly one ``error: ...`` line naming the file / node / tensor
at fault, never a traceback, and leave no output (or temporary) file behind.

This module holds the runners (``run``, ``fail_in``, ``assert_clean_failure``,
``snapshot``) and the small ONNX models the tests write; the ``work`` directory fixture
is in ``conftest.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from microlith.passes.pipelines import PIPELINES

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "tests" / "zoo"
ZOO_MODELS = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid", "helper_ops",
              "helper_matmul")
DEFAULT_PIPELINE = PIPELINES["float"]
NO_BN_FOLD = ",".join(name for name in DEFAULT_PIPELINE.split(",") if name != "fold-batchnorm")
SUMMARY = re.compile(r"^wrote (?P<path>\S+) \((?P<bytes>[\d,]+) bytes, (?P<ops>\d+) ops, "
                     r"[\d.]+ s\)$")
IR_HEADER = re.compile(r"^// ----- IR after (\S+) -----$", re.M)


# --------------------------------------------------------------------------- running


def microlith_cmd() -> list[str]:
    """The console script of this interpreter's environment, else ``python -m microlith``."""
    beside = Path(sys.executable).parent / "microlith"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("microlith")
    return [found] if found else [sys.executable, "-m", "microlith"]


def module_cmd() -> list[str]:
    return [sys.executable, "-m", "microlith"]


def run(*args: str | os.PathLike[str], cwd: Path, cmd: list[str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([*(cmd or microlith_cmd()), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> set[str]:
    """Every file and directory under ``root``, dot-files (temporaries) included."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, one ``error:`` line on stderr containing every needle, nothing else."""
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines()  # progress lines of long runs aside
             if not line.startswith("progress: ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def fail_in(work: Path, *args: str | os.PathLike[str]) -> tuple[str, set[str]]:
    """Run a command expected to fail; return its error line; check it created nothing."""
    before = snapshot(work.parent)
    proc = run(*args, cwd=work)
    line = assert_clean_failure(proc)
    after = snapshot(work.parent)
    assert after == before, f"files created: {sorted(after - before)}"
    return line, after


# --------------------------------------------------------------------------- models


def save(model: onnx.ModelProto, path: Path, check: bool = True) -> Path:
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def opset(version: int = 13) -> list[onnx.OperatorSetIdProto]:
    return [helper.make_opsetid("", version)]


def cycle_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="loop_add"),
             helper.make_node("Relu", ["a"], ["b"], name="loop_relu"),
             helper.make_node("Relu", ["b"], ["y"], name="out_relu")]
    graph = helper.make_graph(nodes, "cycle", [x], [y])
    return save(helper.make_model(graph, opset_imports=opset()), path, check=False)


def unsupported_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="fine_relu"),
             helper.make_node("Cos", ["a"], ["b"], name="odd_cos"),
             helper.make_node("Sin", ["b"], ["c"], name="odd_sin"),
             helper.make_node("Cos", ["c"], ["y"], name="odd_cos_2")]
    graph = helper.make_graph(nodes, "unsupported", [x], [y])
    return save(helper.make_model(graph, opset_imports=opset()), path)


def dynamic_model(path: Path) -> Path:
    """Conv+Relu with input [N, 3, H, W]: N (batch) is fine, H and W must be pinned."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4, "H", "W"])
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv.w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "conv.b")
    nodes = [helper.make_node("Conv", ["image", "conv.w", "conv.b"], ["c"], name="conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["features"], name="relu")]
    graph = helper.make_graph(nodes, "dynamic", [x], [y], [w, b])
    return save(helper.make_model(graph, opset_imports=opset()), path)


def nan_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    weight = np.ones((4, 3), np.float32)
    weight[1, 2] = np.nan
    weight[3, 0] = np.inf
    inits = [numpy_helper.from_array(weight, "fc.poisoned_weight"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fc.bias")]
    nodes = [helper.make_node("MatMul", ["x", "fc.poisoned_weight"], ["m"], name="fc"),
             helper.make_node("Add", ["m", "fc.bias"], ["y"], name="fc_bias")]
    graph = helper.make_graph(nodes, "nan", [x], [y], inits)
    return save(helper.make_model(graph, opset_imports=opset()), path)
