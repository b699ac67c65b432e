"""What can go wrong on the board: the exceptions ``build_and_run`` (``run.py``) raises."""

from __future__ import annotations


class BoardError(RuntimeError):
    """The board could not build or run the program; the message says why."""


class ToolchainMissing(BoardError):
    """arm-none-eabi-gcc or qemu-system-arm is not installed."""


class BuildError(BoardError):
    """Compiling or linking failed; the message holds the compiler's output."""


class BoardFault(BoardError):
    """The program faulted (HardFault, ...) or exited with an unexpected status."""

    def __init__(self, message: str, exit_code: int, fault: str | None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.fault = fault
