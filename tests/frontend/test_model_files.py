"""Input paths that used to hang or exhaust memory (issue class 5, and ``inspect``'s half
of class 12): a FIFO, a device and an oversized file are refused before they are read.

These run ``microlith`` as a subprocess with a timeout: a regression here is a hang.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from microlith.frontend.onnx_external import MAX_ONNX_BYTES
from tests.badinput import ZOO, cli_run, fails_cleanly, microlith, refused


def _zero_device(tmp_path: Path) -> Path:
    """A character device that reads zeros forever: our own node as root, else /dev/zero."""
    if os.geteuid() != 0:
        return Path("/dev/zero")
    node = tmp_path / "zero"
    os.mknod(node, 0o444 | stat.S_IFCHR, os.makedev(1, 5))
    return node


@pytest.mark.parametrize("command", ["compile", "inspect"])
def test_fifo_as_model_is_refused_not_waited_on(tmp_path: Path, command: str) -> None:
    os.mkfifo(tmp_path / "model.onnx")
    extra = ["-o", "out.tflite"] if command == "compile" else []
    refused(microlith(command, "model.onnx", *extra, cwd=tmp_path), "model.onnx", "is a FIFO")
    assert not (tmp_path / "out.tflite").exists()


@pytest.mark.parametrize("command", ["compile", "inspect"])
def test_endless_device_as_model_is_refused(tmp_path: Path, command: str) -> None:
    device = _zero_device(tmp_path)
    extra = ["-o", "out.tflite"] if command == "compile" else []
    refused(microlith(command, device, *extra, cwd=tmp_path), str(device), "is a device")


def test_model_larger_than_protobuf_allows_is_refused_unread(tmp_path: Path) -> None:
    """A sparse file of 2 GiB: refused by its size, without reading (or allocating) it."""
    big = tmp_path / "big.onnx"
    with open(big, "wb") as handle:
        handle.truncate(MAX_ONNX_BYTES + 1)
    line = fails_cleanly(tmp_path, "compile", "big.onnx", "-o", "out.tflite")
    assert "big.onnx" in line and "2,147,483,648 bytes" in line and "limit" in line


def test_symlink_to_a_model_is_still_fine(tmp_path: Path) -> None:
    (tmp_path / "link.onnx").symlink_to(ZOO / "lenet.onnx")
    run = cli_run("compile", "link.onnx", "-o", "out.tflite", "-q", cwd=tmp_path)
    assert run.status == 0 and run.err == "", run.err
