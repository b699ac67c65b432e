"""The C target from the command line: bad cases exit 2 with one ``error:`` line and
leave no output directory behind; a good compile writes the same files as in-process,
and ``microlith inspect OUTDIR`` shows the memory plan.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.c_end_to_end.c_models import (
    REPO,
    ZOO,
    CModel,
    samples,
)

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

# --------------------------------------------------------------------------- CLI


def microlith(*args: str | os.PathLike[str], cwd: Path) -> subprocess.Popen[str]:
    """``python -m microlith`` as a user runs it (its own process and hash seed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTHONHASHSEED", None)
    return subprocess.Popen([sys.executable, "-m", "microlith", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


C_ARGS = ("--target", "c", "--quantize", "int8", "--calibration-data", "calib.npz")
# case -> (model, CLI arguments after the model and "-o out", strings the error must name)
BAD_CLI: dict[str, tuple[str, list[str], tuple[str, ...]]] = {
    # (helper_ops' Div is by a constant: a MUL with an int8 kernel)
    "op-without-int8-kernel": ("helper_ops", [*C_ARGS], ("hardsigmoid", "--fallback float")),
    # 1,944: the arena includes the DSP convolution scratch (select-kernels{optimize=speed})
    "ram-limit": ("lenet", [*C_ARGS, "--ram-limit", "1K"],
                  ("1,944", "1,024", "/0/Conv_output_0 (1,536 B)", "/3/MaxPool_output_0")),
    "flash-limit": ("lenet", [*C_ARGS, "--flash-limit", "4K"], ("4,096", "flash",
                                                                "9.weight_fc_nhwc_q")),
    "bad-prefix": ("lenet", [*C_ARGS, "--c-prefix", "my-model"], ("--c-prefix", "'my-model'",
                                                                  "C identifier")),
    "prefix-digit": ("lenet", [*C_ARGS, "--c-prefix", "9lives"], ("'9lives'",)),
    "c-array-bad-prefix": ("lenet", ["--target", "c-array", "--c-prefix", "a b"],
                           ("--c-prefix", "'a b'")),
    "missing-parent": ("lenet", [*C_ARGS, "-o", "missing/out"], ("missing/out",
                                                                 "does not exist")),
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int, str, str]]:
    """Every CLI case, run concurrently in its own directory, plus one good compile."""
    procs = {}
    for case, (model, args, _) in {**BAD_CLI, "good": ("dscnn", [*C_ARGS], ())}.items():
        where = tmp_path_factory.mktemp(case)
        np.savez(where / "calib.npz", input=samples(model)[0])
        output = [] if "-o" in args else ["-o", "out"]
        procs[case] = (where, microlith("compile", ZOO / f"{model}.onnx", *output, *args,
                                        cwd=where))
    out = {}
    for case, (where, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[case] = (where, proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("case", list(BAD_CLI))
def test_cli_bad_c_cases(cli_runs: dict[str, tuple[Path, int, str, str]], case: str) -> None:
    where, code, out, err = cli_runs[case]
    lines = [line for line in err.strip().splitlines() if not line.startswith("progress: ")]
    assert code == 2, (case, code, err)
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in BAD_CLI[case][2]:
        assert needle in lines[0], (needle, lines[0])
    assert out == ""
    left = sorted(p.name for p in where.iterdir() if p.name != "calib.npz")
    assert left == [], f"{case}: left behind {left}"


def test_cli_c_output_and_inspect(cli_runs: dict[str, tuple[Path, int, str, str]],
                                  models: dict[str, CModel]) -> None:
    where, code, out, err = cli_runs["good"]
    assert code == 0, err
    directory = where / "out"
    assert sorted(p.name for p in directory.iterdir()) == sorted(models["dscnn"].result.files)
    for file_name, text in models["dscnn"].result.files.items():  # another process: same bytes
        assert (directory / file_name).read_text() == text, file_name
    proc = microlith("inspect", "out", cwd=where)
    report, errors = proc.communicate(timeout=120)
    assert proc.returncode == 0, errors
    plan = models["dscnn"].plan
    assert f"arena {plan.arena_size:,} bytes" in report
    assert f"lower bound {plan.lower_bound:,} bytes" in report
    for name, offset in plan.offsets.items():
        first, last = plan.lifetimes[name]
        row = re.compile(rf"^\s+{re.escape(name)}\s+{offset}\s+{plan.sizes[name]}\s+"
                         rf"{first}\.\.{last}$", re.MULTILINE)
        assert row.search(report), (name, report)
