"""The C target's API: the macros of ``model.h`` against the ``.tflite``; ``--c-prefix``
renames files and every exported symbol (``nm``); no ``malloc``, stdio or libm
(``nm -u``); byte-identical output across compiles and processes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from microlith.backends.c.emitter import kernel_headers
from tests.c_end_to_end.c_models import (
    BUILDS,
    MODELS,
    WARNINGS,
    CModel,
    checked,
    compile_c,
    defined_symbols,
    host_build,
    host_outputs,
    parallel,
    value_of,
    write_files,
)

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

ALLOWED_UNDEFINED = {"memcpy", "memmove", "memset"}  # what gcc may call for struct copies
FORBIDDEN_SYMBOLS = {
    "malloc", "calloc", "realloc", "free", "printf", "fprintf", "sprintf", "snprintf", "puts",
    "putchar", "fputs", "fwrite", "fopen", "abort", "exit", "exp", "expf", "log", "logf",
    "pow", "powf", "sqrt", "sqrtf", "floor", "floorf", "ceil", "ceilf", "round", "roundf",
    "lround", "lroundf", "frexp", "frexpf", "ldexp", "ldexpf", "tanh", "tanhf", "fabs"}


# --------------------------------------------------------------------------- API


def macros(header: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (.+)$", header, re.MULTILINE))


def c_float(text: str) -> np.float32:
    return np.float32(float(text.rstrip("f")))


@pytest.mark.parametrize("name", MODELS)
def test_header_macros_match_the_tflite(models: dict[str, CModel], name: str) -> None:
    m = models[name]
    defs = macros(m.result.files["model.h"])
    assert int(defs["MODEL_ARENA_SIZE"].rstrip("u")) == m.plan.arena_size
    for kind, index in (("INPUT", m.tfl.inputs[0]), ("OUTPUT", m.tfl.outputs[0])):
        tensor = m.tfl.tensors[index]
        key = f"MODEL_{kind}0"
        assert defs[f"MODEL_NUM_{kind}S"] == "1"
        assert c_float(defs[f"{key}_SCALE"]) == np.float32(tensor.quant.scale[0])
        assert int(defs[f"{key}_ZERO_POINT"]) == tensor.quant.zero_point[0]
        shape = [int(d) for d in defs[f"{key}_SHAPE"].strip("{}").split(",")]
        assert shape == list(tensor.shape), (kind, shape, tensor.shape)
        assert int(defs[f"{key}_RANK"]) == len(tensor.shape)
        assert [int(defs[f"{key}_DIM{i}"]) for i in range(len(shape))] == shape
        assert defs[f"{key}_TYPE"] == "int8_t" and tensor.dtype == "int8"
        assert int(defs[f"{key}_BYTES"].rstrip("u")) == int(np.prod(shape))


def test_header_is_usable_from_cpp(models: dict[str, CModel], tmp_path: Path) -> None:
    source = tmp_path / "use.cpp"
    source.write_text('#include "model.h"\nint main() { return model_invoke() == 0 ? 0 : 1; }\n')
    checked(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I",
             models["lenet"].directory, "-c", source, "-o", tmp_path / "use.o"])
    assert "U model_invoke" in checked(["nm", tmp_path / "use.o"])  # C linkage: unmangled


@pytest.fixture(scope="module")
def objects(models: dict[str, CModel], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, object]:
    """(model, O2|Os) -> the compiled model.c object (strict warnings)."""
    root = tmp_path_factory.mktemp("objects")

    def job(name: str, build: str) -> Callable[[], Path]:
        obj = root / f"{name}_{build}.o"
        directory = models[name].directory
        return lambda: (checked(["gcc", *WARNINGS, *BUILDS[build], "-c", directory / "model.c",
                                 "-o", obj]), obj)[1]

    return parallel({f"{n}-{b}": job(n, b) for n in MODELS for b in ("O2", "Os")})


@pytest.mark.parametrize("name", MODELS)
def test_no_malloc_stdio_or_libm(models: dict[str, CModel], objects: dict[str, object],
                                 name: str) -> None:
    for build in ("O2", "Os"):
        obj = value_of(objects[f"{name}-{build}"])
        undefined = set(checked(["nm", "-u", obj]).split()) - {"U", "w"}
        assert undefined <= ALLOWED_UNDEFINED, (build, undefined)
        assert not undefined & FORBIDDEN_SYMBOLS
        exported = {sym for kind, sym in defined_symbols(obj) if kind.isupper()}
        assert exported == {"model_input", "model_output", "model_input_bytes",
                            "model_output_bytes", "model_invoke"}, exported
    for file_name, text in models[name].result.files.items():
        assert "<stdio.h>" not in text and "<math.h>" not in text, file_name
        assert not re.search(r"\b(malloc|calloc|free|printf)\s*\(", text), file_name


def test_c_prefix_renames_files_and_symbols(models: dict[str, CModel], tmp_path: Path) -> None:
    result = compile_c("dscnn", c_prefix="kws")
    assert sorted(result.files) == ["kws.c", "kws.h", "kws_memory_plan.json",
                                    *sorted(kernel_headers())]
    directory = write_files(tmp_path / "kws", result.files)
    obj = tmp_path / "kws.o"
    checked(["gcc", *WARNINGS, "-O0", "-c", directory / "kws.c", "-o", obj])  # no inlining
    symbols = defined_symbols(obj)
    exported = sorted(sym for kind, sym in symbols if kind.isupper())
    assert exported == ["kws_input", "kws_input_bytes", "kws_invoke", "kws_output",
                        "kws_output_bytes"]
    data = [sym for kind, sym in symbols if kind.lower() in "bdr" and not sym.startswith(".")]
    assert data and all(sym.startswith("kws_") for sym in data), data  # arena and weights
    for file_name in ("kws.c", "kws.h"):
        text = result.files[file_name]
        assert not re.search(r"\b(model|MODEL)_\w+", text), file_name
    defs = macros(result.files["kws.h"])
    assert all(name.startswith("KWS_") for name in defs), sorted(defs)
    assert "KWS_ARENA_SIZE" in defs and "KWS_INPUT0_ZERO_POINT" in defs
    # same model, new names: the same bytes
    m = models["dscnn"]
    exe = host_build(directory, m.graph.inputs[0].name, "O2", tmp_path / "build", prefix="kws")
    assert np.array_equal(host_outputs(exe, m.feeds), m.tflm)
    for kws, model in (("kws.c", "model.c"), ("kws.h", "model.h")):  # only names differ
        renamed = (m.result.files[model].replace("model_", "kws_").replace("MODEL_", "KWS_")
                   .replace('"model.h"', '"kws.h"'))
        assert " ".join(result.files[kws].split()) == " ".join(renamed.split()), kws


@pytest.mark.parametrize("name", MODELS)
def test_c_output_is_deterministic(models: dict[str, CModel], name: str) -> None:
    again = compile_c(name)
    assert again.files == models[name].result.files
    assert again.sizes == models[name].result.sizes
