"""Security regressions: model strings cannot inject C, outputs never clobber special files.

* C injection: a model whose every name (graph input and output, initializers, nodes,
  graph) is adversarial -- a comment closed through a backslash-newline splice, a
  trigraph splice, ``*/``, quotes, non-ASCII -- compiles to C that has exactly the token
  stream of the same model with benign names (comments stripped by the preprocessor,
  identifiers compared by position), builds with gcc ``-std=c99 -trigraphs``, and
  defines no symbol the benign build lacks.
* Output files: ``-o`` naming a FIFO, a character device or a symlink is refused with
  one line and exit 2, and the thing at the path is left as it was.
* ``--c-prefix`` that would overwrite the kernel header, or that ends in a newline
  (a regex ``$`` matches before it), is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "tests" / "zoo"

EVIL = [
    "*\\\n/ __attribute__((constructor)) static void evil(void) { for (;;); } /*",
    "??/\nint pwned = 1; /*",
    "x */ int injected; /* y",
    "quote\"and'apostrophe\\",
    "名前/テンソル",
    "#define model_invoke exit\n",
]


def _model(names: list[str]) -> onnx.ModelProto:
    """input -> Gemm -> Relu -> Gemm -> output, every name taken from ``names``."""
    x, w1, b1, h, r, w2, b2, y, n1, n2, n3, graph = (names * 12)[:12]
    # distinct names, as ONNX requires, with the adversarial text in each
    x, w1, b1, h, r, w2, b2, y = (f"{s}{i}" for i, s in enumerate([x, w1, b1, h, r, w2, b2, y]))
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), w1),
             numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), b1),
             numpy_helper.from_array(rng.standard_normal((3, 8)).astype(np.float32), w2),
             numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), b2)]
    nodes = [helper.make_node("Gemm", [x, w1, b1], [h], name=n1 + "a", transB=1),
             helper.make_node("Relu", [h], [r], name=n2 + "b"),
             helper.make_node("Gemm", [r, w2, b2], [y], name=n3 + "c", transB=1)]
    g = helper.make_graph(nodes, graph, [helper.make_tensor_value_info(x, TensorProto.FLOAT,
                                                                      [1, 4])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _compile_c(model: onnx.ModelProto, where: Path) -> dict[str, str]:
    path = where / "model.onnx"
    onnx.save(model, str(path))
    calib = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    result = compile_onnx(path, CompileOptions(target="c", quantize="int8",
                                               calibration_data=calib, quiet=True,
                                               warn=lambda m: None))
    return result.files


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d[\w.+-]*|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|"
                    r"\S")


def _tokens(text: str, where: Path, trigraphs: bool) -> list[str]:
    """Tokens of ``text`` after the preprocessor removed comments and spliced lines."""
    src = where / "t.c"
    src.write_text(text, encoding="utf-8")
    flags = ["-trigraphs"] if trigraphs else []
    out = subprocess.run(["gcc", "-fpreprocessed", "-dD", "-E", "-P", *flags, str(src)],
                         capture_output=True, text=True, check=True).stdout
    return _TOKEN.findall(out)


def _shape(tokens: list[str]) -> list[str]:
    """Identifiers replaced by their order of first appearance: the token stream's shape."""
    seen: dict[str, str] = {}
    return [seen.setdefault(t, f"id{len(seen)}") if re.fullmatch(r"[A-Za-z_]\w*", t) else t
            for t in tokens]


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


@needs_gcc
@pytest.mark.parametrize("trigraphs", [False, True])
def test_adversarial_names_cannot_change_the_c_tokens(tmp_path: Path, trigraphs: bool) -> None:
    benign = _compile_c(_model(["name"]), tmp_path)
    evil = _compile_c(_model(EVIL), tmp_path)
    assert sorted(benign) == sorted(evil)
    for name in ("model.c", "model.h"):
        assert "evil" not in _tokens(evil[name], tmp_path, trigraphs)
        assert _shape(_tokens(evil[name], tmp_path, trigraphs)) == \
            _shape(_tokens(benign[name], tmp_path, trigraphs)), name
    for text in (evil["model.c"], evil["model.h"]):
        assert text.isascii()
        assert "\\" not in text and "??" not in text


@needs_gcc
def test_adversarial_names_build_and_define_only_the_api(tmp_path: Path) -> None:
    files = _compile_c(_model(EVIL), tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    obj = tmp_path / "model.o"
    subprocess.run(["gcc", "-std=c99", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-c", str(tmp_path / "model.c"), "-o", str(obj)], check=True, cwd=tmp_path)
    symbols = subprocess.run(["nm", "--defined-only", "-g", str(obj)], capture_output=True,
                             text=True, check=True).stdout.split()
    exported = sorted(s for s in symbols if s.startswith("model_"))
    assert exported == ["model_input", "model_input_bytes", "model_invoke", "model_output",
                        "model_output_bytes"]


def _cli(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "microlith", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def _assert_refused(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("progress: ")]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_output_fifo_is_refused_and_kept(tmp_path: Path) -> None:
    fifo = tmp_path / "out.tflite"
    os.mkfifo(fifo)
    proc = _cli("compile", ZOO / "lenet.onnx", "-o", fifo, cwd=tmp_path)
    _assert_refused(proc, str(fifo), "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.tflite"]  # no temporary left


def test_output_symlink_is_refused_and_kept(tmp_path: Path) -> None:
    link = tmp_path / "out.tflite"
    os.symlink("/proc/self/fd/1", link)
    proc = _cli("compile", ZOO / "lenet.onnx", "-o", link, cwd=tmp_path)
    _assert_refused(proc, str(link), "symbolic link")
    assert os.readlink(link) == "/proc/self/fd/1"


def _character_device(tmp_path: Path) -> Path:
    """A character device to aim ``-o`` at: our own node (as root), else /dev/null.

    Never /dev/null as root: a regression would replace the machine's /dev/null.
    """
    if os.geteuid() != 0:
        return Path(os.devnull)
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return node


def test_output_character_device_is_refused(tmp_path: Path) -> None:
    device = _character_device(tmp_path)
    proc = _cli("compile", ZOO / "lenet.onnx", "-o", device, cwd=tmp_path)
    _assert_refused(proc, str(device), "not a regular file")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_output_fifo_inside_c_directory_is_refused_before_any_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.c").write_text("keep me")
    os.mkfifo(out / "model.h")
    np.savez(tmp_path / "calib.npz", input=np.zeros((4, 1, 16, 16), np.float32))
    proc = _cli("compile", ZOO / "lenet.onnx", "--target", "c", "-o", out, "--quantize", "int8",
                "--calibration-data", tmp_path / "calib.npz", cwd=tmp_path)
    _assert_refused(proc, "model.h", "not a regular file")
    assert (out / "model.c").read_text() == "keep me"


@pytest.mark.parametrize("prefix, needle", [("microlith_kernels", "kernel header"),
                                            ("model\n", "C identifier"),
                                            ("modèle", "C identifier")])
def test_c_prefix_collisions_are_refused(tmp_path: Path, prefix: str, needle: str) -> None:
    np.savez(tmp_path / "calib.npz", input=np.zeros((4, 1, 16, 16), np.float32))
    proc = _cli("compile", ZOO / "lenet.onnx", "--target", "c", "-o", tmp_path / "out",
                "--quantize", "int8", "--calibration-data", tmp_path / "calib.npz",
                "--c-prefix", prefix, cwd=tmp_path)
    _assert_refused(proc, "--c-prefix", needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_calibration_cache_that_is_not_a_regular_file_is_refused(tmp_path: Path,
                                                                 kind: str) -> None:
    """A FIFO as the cache hung the read; a symlink was replaced by the atomic rename."""
    cache = tmp_path / "calib.json"
    if kind == "fifo":
        os.mkfifo(cache)
    else:
        os.symlink("/proc/self/fd/1", cache)
    proc = _cli("compile", ZOO / "lenet.onnx", "-o", tmp_path / "out.tflite",
                "--quantize", "int8", "--calibration-data",
                REPO / "examples" / "digits_calibration.npz", "--calibration-cache", cache,
                cwd=tmp_path)
    _assert_refused(proc, str(cache), "symbolic link" if kind == "symlink" else "regular file")
    assert stat.S_ISFIFO(os.lstat(cache).st_mode) if kind == "fifo" else cache.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.json"]
