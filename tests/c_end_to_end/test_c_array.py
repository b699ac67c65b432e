"""``--target c-array``: C11 and C++11 builds, bytes equal to the ``.tflite``, 16-byte
alignment, and an op resolver with exactly the model's ops.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.backends.c_array import RESOLVER_METHODS
from microlith.formats.tflite.flatbuffer import parse_model
from tests.c_end_to_end.c_models import (
    MODELS,
    ZOO,
    checked,
    defined_symbols,
    run,
    samples,
    write_files,
)

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

# --------------------------------------------------------------------------- c-array


@functools.cache
def c_array_of(name: str) -> tuple[bytes, dict[str, str]]:
    """(the int8 .tflite, the c-array files); helper_ops keeps its float ops (fallback)."""
    calibration, _ = samples(name)
    options = {"quantize": "int8", "calibration_data": calibration, "quiet": True,
               "fallback": "float" if name == "helper_ops" else "none"}
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(target="c-array", **options))
    tflite = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(**options)).output
    assert result.output == tflite
    return tflite, result.files


@pytest.fixture(scope="module")
def c_array(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[str, str]]:
    tflite, files = c_array_of("resnet8")
    directory = write_files(tmp_path_factory.mktemp("c_array") / "out", files)
    return directory, tflite, files


def test_c_array_bytes_equal_the_tflite(c_array: tuple[Path, bytes, dict[str, str]]) -> None:
    directory, tflite, files = c_array
    assert sorted(files) == ["model_data.c", "model_data.h", "model_data_op_resolver.h"]
    body = files["model_data.c"].split("{", 1)[1].split("}", 1)[0]
    parsed = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
    assert parsed == tflite
    assert f"model_data_len = {len(tflite)}u" in files["model_data.c"]
    assert f"#define MODEL_DATA_LEN {len(tflite)}u" in files["model_data.h"]


def rodata_alignment(obj: Path, symbol: str) -> int:
    """Alignment of the section holding ``symbol`` (compiled with -fdata-sections)."""
    sections = checked(["readelf", "-SW", obj])
    rows = [line.split() for line in sections.splitlines() if f" .rodata.{symbol} " in line]
    assert len(rows) == 1 and rows[0][-1].isdigit(), sections
    return int(rows[0][-1])  # the last column: Al


@pytest.mark.parametrize("language", ["c11", "c++11"])
def test_c_array_compiles_aligned_and_round_trips(c_array: tuple[Path, bytes, dict[str, str]],
                                                  tmp_path: Path, language: str) -> None:
    directory, tflite, _ = c_array
    compiler = ["gcc", "-std=c11"] if language == "c11" else ["g++", "-std=c++11", "-x", "c++"]
    strict = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fdata-sections"]
    obj = tmp_path / "model_data.o"
    checked([*compiler, *strict, "-I", directory, "-c", directory / "model_data.c", "-o", obj])
    assert rodata_alignment(obj, "model_data") >= 16
    symbols = dict((name, kind) for kind, name in defined_symbols(obj))
    assert symbols.get("model_data") == "R" and symbols.get("model_data_len") == "R", symbols
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdint.h>\n#include <stdio.h>\n#include "model_data.h"\n'
        "int main(void)\n{\n"
        "    if (((uintptr_t)model_data & 15u) != 0u || model_data_len != MODEL_DATA_LEN) {\n"
        "        return 1;\n    }\n"
        "    return fwrite(model_data, 1, model_data_len, stdout) == model_data_len ? 0 : 2;\n"
        "}\n")
    exe = tmp_path / "dump"
    checked(["gcc", "-std=c11", *strict, "-I", directory, "-c", main, "-o", tmp_path / "main.o"])
    checked(["gcc", tmp_path / "main.o", obj, "-o", exe])
    proc = subprocess.run([str(exe)], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout == tflite


RESOLVER_STANDIN = """\
/* Stand-in for TFLite-Micro's header: every Add*() registers one op, N at most. */
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
template <unsigned int tOpCount>
class MicroMutableOpResolver {
 public:
  unsigned int registered = 0;
%s
 private:
  TfLiteStatus Add() {
    if (registered >= tOpCount) return kTfLiteError;
    ++registered;
    return kTfLiteOk;
  }
};
}  // namespace tflite
"""


@pytest.mark.parametrize("name", [*MODELS, "helper_ops"])
def test_c_array_op_resolver_lists_exactly_the_models_ops(tmp_path: Path, name: str) -> None:
    tflite, files = c_array_of(name)
    directory = write_files(tmp_path / "out", files)
    resolver = files["model_data_op_resolver.h"]
    ops = {op.op for op in parse_model(tflite).operators}
    listed = re.findall(r"resolver\.(\w+)\(\)", resolver)
    assert sorted(listed) == sorted(RESOLVER_METHODS[op] for op in ops)
    assert f"MicroMutableOpResolver<{len(ops)}>" in resolver
    # it compiles as C++11 and registers exactly len(ops) ops into a resolver of that size
    include = tmp_path / "include" / "tensorflow" / "lite" / "micro"
    include.mkdir(parents=True)
    methods = "\n".join(f"  TfLiteStatus {m}() {{ return Add(); }}"
                        for m in sorted(set(RESOLVER_METHODS.values())))
    (include / "micro_mutable_op_resolver.h").write_text(RESOLVER_STANDIN % methods)
    main = tmp_path / "main.cc"
    main.write_text(f'#include "model_data_op_resolver.h"\n'
                    f"int main() {{\n  ModelDataOpResolver resolver;\n"
                    f"  if (RegisterModelDataOps(resolver) != kTfLiteOk) return 1;\n"
                    f"  return resolver.registered == {len(ops)}u ? 0 : 2;\n}}\n")
    exe = tmp_path / "resolver"
    checked(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I",
             tmp_path / "include", "-I", directory, main, "-o", exe])
    assert run([exe]).returncode == 0
