"""Calibration files that used to exhaust memory (issue class 5): array headers are checked
before anything is allocated, and all samples together stay within a byte budget.

* a ``.npy`` header that claims 931 TiB, or a ``.npz`` member that claims 64 GiB, while
  the file holds a few bytes: refused by comparing the claim with the bytes present;
* a real zip bomb (a small ``.npz`` that inflates past the budget): refused from the
  member's header and uncompressed size, before inflating it (peak memory checked);
* a set of files that together exceed the budget; a representative-dataset generator that
  does; object arrays; a FIFO; each error names the file (and member).
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from microlith.calibration.data import (
    CalibrationError,
    InputSpec,
    calibration_set_from_iterable,
    load_calibration_file,
)
from tests.badinput import ZOO, cli_run, fails_cleanly, microlith, refused

SPEC = [InputSpec("input", (1, 1, 16, 16))]


def npy_bytes(shape: tuple[int, ...], dtype: str = "<f4", data: bytes = b"") -> bytes:
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return header.getvalue() + data


def _compile_with(tmp_path: Path, data: str) -> str:
    return fails_cleanly(tmp_path, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                         "--quantize", "int8", "--calibration-data", data)


def test_npy_header_claiming_931_tib_is_refused(tmp_path: Path) -> None:
    (tmp_path / "huge.npy").write_bytes(npy_bytes((2**48 // 4 * 931 // 256, 1, 16, 16)))
    line = _compile_with(tmp_path, "huge.npy")
    assert "huge.npy" in line and "header claims" in line and "only 0 follow" in line


def test_npz_member_claiming_64_gib_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("input.npy", npy_bytes((2**26, 1, 16, 16)))
    line = _compile_with(tmp_path, "huge.npz")
    assert "huge.npz" in line and "'input.npy'" in line and "68,719,476,736 bytes" in line


def _bomb(path: Path, samples: int) -> None:
    """A deflated .npz whose one member inflates to ``samples`` x 1 KiB of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            archive.open("input.npy", "w", force_zip64=True) as member:
        member.write(npy_bytes((samples, 1, 16, 16)))
        chunk = bytes(1 << 20)
        for _ in range(samples // 1024):
            member.write(chunk)


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    _bomb(tmp_path / "bomb.npz", 8192)  # 8 MiB of zeros, about 8 KiB compressed
    with pytest.raises(CalibrationError, match=r"bomb\.npz.*'input\.npy'.*budget"):
        load_calibration_file(tmp_path / "bomb.npz", SPEC, max_bytes=1 << 20)


@pytest.mark.slow
def test_zip_bomb_of_2_gib_costs_no_memory(tmp_path: Path) -> None:
    """The issue's case through the CLI: a ~2 MB .npz inflating to 2 GiB, refused with
    the default budget while the process stays far below 2 GiB (a child's peak RSS)."""
    _bomb(tmp_path / "bomb.npz", 2 * 1024 * 1024)
    assert (tmp_path / "bomb.npz").stat().st_size < 10 << 20
    # VmHWM: the peak of this process's own memory map. (ru_maxrss is not: Linux carries
    # the forking parent's RSS across fork + exec, so a large pytest process inflated it.)
    code = ("import sys; from microlith.app import cli; status = cli.main(sys.argv[1:]);"
            " print(next(l.split()[1] for l in open('/proc/self/status')"
            " if l.startswith('VmHWM:'))); sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code, "compile", str(ZOO / "lenet.onnx"), "-o",
                           "out.tflite", "--quantize", "int8", "--calibration-data", "bomb.npz"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "bomb.npz" in proc.stderr and "budget" in proc.stderr
    assert int(proc.stdout.strip()) < 512 * 1024  # KiB: well under the 2 GiB it inflates to


def test_files_of_a_directory_share_one_budget(tmp_path: Path) -> None:
    for i in range(3):
        np.save(tmp_path / f"part{i}.npy", np.zeros((64, 1, 16, 16), np.float32))  # 64 KiB
    assert len(load_calibration_file(tmp_path, SPEC, max_bytes=200 << 10)) == 192
    with pytest.raises(CalibrationError, match=r"part2\.npy.*budget"):
        load_calibration_file(tmp_path, SPEC, max_bytes=150 << 10)


def test_uint8_data_is_counted_at_the_input_dtype(tmp_path: Path) -> None:
    """64 KiB of uint8 becomes 256 KiB of float32: the budget counts the larger."""
    np.save(tmp_path / "u8.npy", np.zeros((256, 1, 16, 16), np.uint8))
    with pytest.raises(CalibrationError, match="budget"):
        load_calibration_file(tmp_path / "u8.npy", SPEC, max_bytes=128 << 10)


def test_generator_is_held_to_the_budget() -> None:
    def samples():
        while True:  # endless: the budget stops it
            yield np.zeros((1, 1, 16, 16), np.float32)

    with pytest.raises(CalibrationError, match="more than 10,240 bytes at sample 10"):
        calibration_set_from_iterable(samples, SPEC, max_bytes=10 * 1024)


def test_object_array_header_is_refused_before_unpickling(tmp_path: Path) -> None:
    (tmp_path / "obj.npy").write_bytes(npy_bytes((4,), "|O", b"\x80\x04junk"))
    line = _compile_with(tmp_path, "obj.npy")
    assert "obj.npy" in line and "Python objects" in line


def test_truncated_array_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "short.npy").write_bytes(npy_bytes((2, 1, 16, 16), data=bytes(100)))
    line = _compile_with(tmp_path, "short.npy")
    assert "short.npy" in line and "2,048 bytes" in line and "only 100 follow" in line


def test_fifo_as_calibration_data_is_refused_not_waited_on(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "calib.npz")
    refused(microlith("compile", ZOO / "lenet.onnx", "-o", "out.tflite", "--quantize", "int8",
                      "--calibration-data", "calib.npz", cwd=tmp_path), "calib.npz", "is a FIFO")


def test_debug_labels_archive_goes_through_the_same_checks(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "eval.npz", "w") as archive:
        archive.writestr("input.npy", npy_bytes((2**26, 1, 16, 16)))
        archive.writestr("labels.npy", npy_bytes((2**26,), "<i8"))
    np.savez(tmp_path / "calib.npz", input=np.zeros((4, 1, 16, 16), np.float32))
    run = cli_run("debug", ZOO / "lenet.onnx", "--calibration-data", "calib.npz", "--data",
                  "eval.npz", "-q", cwd=tmp_path)
    assert run.status == 2 and "eval.npz" in run.err and "header claims" in run.err, run.err
