"""The package as a user gets it: a wheel in a fresh venv, used from an empty directory,
and an sdist that carries its tests.

Built from a copy of the source tree (no build/ or egg-info left in the checkout) with
the running interpreter's setuptools; the fresh venv installs the wheel's dependencies
through pip's configured indexes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".ruff_cache", "out")


def _build(tmp: Path, kind: str) -> Path:
    src = tmp / "src"
    if not src.exists():
        shutil.copytree(REPO, src, ignore=SKIP)
    dist = tmp / "dist"
    dist.mkdir(exist_ok=True)
    code = (f"from setuptools import build_meta as b; print(b.build_{kind}({str(dist)!r}))")
    run = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return dist / run.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("wheel"), "wheel")


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"microlith"}  # no top-level compiler/, passes/, backends/
    assert "microlith/backends/c/kernels/microlith_kernels.h" in names
    assert {"microlith/app/board/startup.c", "microlith/app/board/mps2_an386.ld",
            "microlith/app/board/mps2_an505.ld", "microlith/app/board/mps3_an547.ld",
            "microlith/app/board/board_sections.ld"} <= set(names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: Apache-2.0" in text
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    plain = [r for r in requires if "extra ==" not in r]
    assert not any("onnxruntime" in r or "torch" in r or "litert" in r for r in plain), plain
    assert any("onnxruntime" in r and "extra == \"runtimes\"" in r for r in requires)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_wheel_in_fresh_venv_from_empty_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py, bin_ = venv / "bin" / "python", venv / "bin"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "empty"
    work.mkdir()
    for name in ("lenet_digits.onnx", "digits_calibration.npz"):
        shutil.copy(REPO / "examples" / name, work / name)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=work, capture_output=True, text=True,
                              timeout=600)

    for cmd in (["-o", "m.tflite"],
                ["-o", "q.tflite", "--quantize", "int8", "--calibration-data",
                 "digits_calibration.npz"],
                ["--target", "c", "-o", "out", "--quantize", "int8", "--calibration-data",
                 "digits_calibration.npz"]):
        done = run(str(bin_ / "microlith"), "compile", "lenet_digits.onnx", *cmd)
        assert done.returncode == 0, done.stderr
    assert (work / "q.tflite").stat().st_size > 1000
    assert (work / "out" / "microlith_kernels.h").is_file()
    assert run(str(bin_ / "microlith"), "inspect", "q.tflite").returncode == 0
    import numpy as np

    np.save(work / "x.npy", np.load(work / "digits_calibration.npz")["input"][:3])
    if shutil.which("gcc") is not None:  # the README's `microlith run` on the host
        done = run(str(bin_ / "microlith"), "run", "out", "--input", "x.npy", "-o", "y.npy")
        assert done.returncode == 0, done.stderr
        assert "output 0: int8 [3, 10] (host gcc)" in done.stdout
    done = run(str(bin_ / "microlith"), "run", "q.tflite", "--input", "x.npy")
    assert done.returncode == 2 and "pip install 'microlith[runtimes]'" in done.stderr
    show = run(str(py), "-m", "pip", "show", "onnxruntime")
    assert show.returncode != 0 and "not found" in show.stderr.lower()
    requires = run(str(py), "-m", "pip", "show", "microlith").stdout
    assert "Requires:" in requires and "onnxruntime" not in requires
    assert run(str(py), "-c", "import compiler").returncode != 0
    assert run(str(py), "-c", "import passes").returncode != 0
    assert run(str(py), "-c", "import microlith; print(microlith.compile_onnx)").returncode == 0


@pytest.mark.slow
def test_sdist_carries_the_tests(tmp_path):
    sdist = _build(tmp_path, "sdist")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for folder in ("tests", "tools", "examples"):
        expected = {str(p.relative_to(REPO)) for p in (REPO / folder).rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts}
        assert expected <= names, sorted(expected - names)[:5]
    assert {"LICENSE", "pyproject.toml", "compiler/app/board/startup.c",
            "backends/c/kernels/microlith_kernels.h"} <= names
