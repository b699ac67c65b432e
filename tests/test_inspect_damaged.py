"""``microlith inspect`` on damaged files (issue classes 7 and 12): a ``.tflite`` with an
out-of-range tensor index, negative or int64-overflowing dims, and a C output directory
whose ``*_memory_plan.json`` is malformed in any way -- one error line naming the file
and the field, exit 2; byte counts are never negative or wrapped."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.badinput import ZOO, cli_run, fails_cleanly
from tools.fuzz_mutate import tflite_int_fields


@pytest.fixture(scope="module")
def lenet_tflite(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    where = tmp_path_factory.mktemp("lenet")
    assert cli_run("compile", ZOO / "lenet.onnx", "-o", "l.tflite", "-q", cwd=where).status == 0
    return (where / "l.tflite").read_bytes()


def _patched(data: bytes, field: str, value: int) -> bytes:
    """``data`` with the int32 ``field`` (as ``tflite_int_fields`` names it) set."""
    at = dict((what, pos) for pos, what in tflite_int_fields(data))[field]
    return data[:at] + struct.pack("<i", value) + data[at + 4:]


@pytest.mark.parametrize("field, value, needles", [
    ("operator 0 inputs[0]", 9999, ["operator 0", "tensor 9999"]),
    ("operator 2 outputs[0]", -1, ["operator 2", "output", "tensor -1"]),
    ("operator 2 inputs[1]", -7, ["operator 2", "tensor -7"]),
    ("subgraph inputs[0]", 4096, ["subgraph inputs", "tensor 4096"]),
    ("subgraph outputs[0]", -3, ["subgraph outputs", "tensor -3"]),
    ("tensor 3 shape[1]", -5, ["tensor 3", "negative dimension"]),
])
def test_tflite_bad_tensor_references(tmp_path: Path, lenet_tflite: bytes, field: str,
                                      value: int, needles: list[str]) -> None:
    (tmp_path / "bad.tflite").write_bytes(_patched(lenet_tflite, field, value))
    line = fails_cleanly(tmp_path, "inspect", "bad.tflite", "--tensors")
    assert line.startswith("error: bad.tflite: "), line
    for needle in needles:
        assert needle in line, (needle, line)


def test_tflite_huge_dims_give_exact_byte_counts(tmp_path: Path, lenet_tflite: bytes) -> None:
    """Dims of 2**31-1 overflow int64 in np.prod: the report must show the exact size."""
    data = lenet_tflite
    first = next(what for _, what in tflite_int_fields(data) if what.startswith("tensor ")
                 and "shape[" in what)
    tensor = first.split()[1]
    for axis in range(4):
        data = _patched(data, f"tensor {tensor} shape[{axis}]", 2**31 - 1)
    (tmp_path / "huge.tflite").write_bytes(data)
    run = cli_run("inspect", "huge.tflite", cwd=tmp_path)
    assert run.status == 0, run.err
    numbers = [int(n.replace(",", "")) for n in re.findall(r"bytes[^:]*: (-?[\d,]+)", run.out)]
    assert numbers and all(n >= 0 for n in numbers), run.out
    assert max(numbers) >= (2**31 - 1) ** 4, run.out  # exact, not wrapped to a negative


def test_fifo_is_named_as_a_fifo(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.tflite")
    line = fails_cleanly(tmp_path, "inspect", "pipe.tflite")
    assert "pipe.tflite" in line and "FIFO" in line and "no such file" not in line


@pytest.fixture(scope="module")
def c_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    where = tmp_path_factory.mktemp("cout")
    np.savez(where / "calib.npz", input=np.random.default_rng(0).standard_normal(
        (4, 1, 16, 16)).astype(np.float32))
    run = cli_run("compile", ZOO / "lenet.onnx", "--target", "c", "-o", "out", "--quantize",
                  "int8", "--calibration-data", "calib.npz", "-q", cwd=where)
    assert run.status == 0, run.err
    return {p.name: p.read_bytes() for p in (where / "out").iterdir()}


def _plan_case(plan: dict) -> dict:
    return json.loads(json.dumps(plan))


def _mutations(plan: dict) -> dict[str, tuple[bytes, list[str]]]:
    tensor = sorted(plan["tensors"])[0]

    def edit(path: list[str], value: object) -> bytes:
        data = _plan_case(plan)
        where = data
        for key in path[:-1]:
            where = where[key]
        if value is KeyError:
            del where[path[-1]]
        else:
            where[path[-1]] = value
        return json.dumps(data).encode()

    return {
        "not-json": (b"{\"arena_size\": 12,", ["not a valid memory plan"]),
        "not-utf8": (b"\xff\xfe{}", ["not a valid memory plan"]),
        "a-list": (b"[1, 2, 3]", ["must be an object"]),
        "deeply-nested": (b"[" * 100000 + b"]" * 100000, ["not a valid memory plan"]),
        "no-arena": (edit(["arena_size"], KeyError), ["'arena_size'"]),
        "arena-string": (edit(["arena_size"], "12"), ["'arena_size'", "'12'"]),
        "arena-negative": (edit(["arena_size"], -1), ["'arena_size'", ">= 0"]),
        "arena-bool": (edit(["arena_size"], True), ["'arena_size'"]),
        "alignment-zero": (edit(["alignment"], 0), ["'alignment'", ">= 1"]),
        "tensors-null": (edit(["tensors"], None), ["'tensors'", "object"]),
        "tensor-not-object": (edit(["tensors", tensor], 3), [f"'tensors.{tensor}'"]),
        "offset-missing": (edit(["tensors", tensor, "offset"], KeyError),
                           [f"'tensors.{tensor}.offset'"]),
        "offset-float": (edit(["tensors", tensor, "offset"], 1.5), ["offset", "1.5"]),
        "size-huge-negative": (edit(["tensors", tensor, "size"], -(2**70)), ["size"]),
        "first-string": (edit(["tensors", tensor, "first"], "0"), ["first"]),
        "scratch-list": (edit(["scratch"], [1]), ["'scratch'", "object"]),
        "nan": (json.dumps(_plan_case(plan)).replace(
            str(plan["arena_size"]), "NaN", 1).encode(), ["'arena_size'", "nan"]),
    }


@pytest.fixture(scope="module")
def plan_cases(c_output: dict[str, bytes]) -> dict[str, tuple[bytes, list[str]]]:
    plan = json.loads(c_output["model_memory_plan.json"])
    return _mutations(plan)


CASE_NAMES = ["not-json", "not-utf8", "a-list", "deeply-nested", "no-arena", "arena-string",
              "arena-negative", "arena-bool", "alignment-zero", "tensors-null",
              "tensor-not-object", "offset-missing", "offset-float", "size-huge-negative",
              "first-string", "scratch-list", "nan"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_malformed_memory_plan(tmp_path: Path, c_output: dict[str, bytes],
                               plan_cases: dict[str, tuple[bytes, list[str]]], case: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name, data in c_output.items():
        (out / name).write_bytes(data)
    text, needles = plan_cases[case]
    (out / "model_memory_plan.json").write_bytes(text)
    line = fails_cleanly(tmp_path, "inspect", "out")
    assert line.startswith("error: out/model_memory_plan.json: "), line
    for needle in needles:
        assert needle in line, (needle, line)


def test_memory_plan_that_is_a_directory(tmp_path: Path, c_output: dict[str, bytes]) -> None:
    (tmp_path / "out" / "model_memory_plan.json").mkdir(parents=True)
    line = fails_cleanly(tmp_path, "inspect", "out")
    assert "model_memory_plan.json" in line and "directory" in line


def test_intact_c_output_still_inspects(tmp_path: Path, c_output: dict[str, bytes]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name, data in c_output.items():
        (out / name).write_bytes(data)
    run = cli_run("inspect", "out", cwd=tmp_path)
    plan = json.loads(c_output["model_memory_plan.json"])
    assert run.status == 0 and f"arena {plan['arena_size']:,} bytes" in run.out, run.err
