"""What the sections of ``tools/bench.py`` share: the zoo, the digits, TFLite-Micro's arena.

``tflm_arena_bytes`` finds the smallest arena TFLite-Micro allocates a model in
(bisection, each try in a forked child); ``best_of`` times a function.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

from tools.digits import load_digits_split
from tools.runtimes import tflm_interpreter, tflm_invoke

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = os.path.join(ROOT, "tests", "zoo")
TRAINED = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
N_CALIBRATION = 300  # training images used as calibration data (ours and the peers')
TFLM_ARENA = 1 << 22  # arena of the TFLite-Micro runs that compare outputs (not the bisection)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def digits_for(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(300 calibration images, 450 test images, test labels) in the model's ONNX layout."""
    x_train, _, x_test, y_test = (load_digits_split(8, "flat") if name == "mlp_sigmoid"
                                  else load_digits_split(16, "NCHW"))
    return x_train[:N_CALIBRATION], x_test, y_test


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Silence fds 1 and 2 (TFLite-Micro logs failed allocations from C++)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def tflm_allocates(data: bytes, arena_size: int) -> bool:
    """Whether TFLite-Micro allocates ``data`` in ``arena_size`` bytes.

    Tried in a forked child where ``fork`` exists: for some sizes just too small,
    TFLite-Micro's Python runtime crashes (a failed tail allocation leaves "available"
    negative and the next one segfaults) instead of raising, and a crash of the child
    counts as "does not allocate".
    """
    from tflite_micro.python.tflite_micro import runtime

    if not hasattr(os, "fork"):
        try:
            with silenced():
                runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            return True
        except RuntimeError:
            return False
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: no Python cleanup, just the verdict
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            runtime.Interpreter.from_bytes(data, arena_size=arena_size)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def tflm_arena_bytes(data: bytes, feed: np.ndarray) -> int:
    """The smallest ``arena_size`` TFLite-Micro allocates ``data`` in (bisection).

    The model is also invoked once at that size on ``feed`` (one sample, batch 1).
    """
    lo, hi = 0, 1024  # lo never allocates (nothing fits in 0 bytes), hi does
    while not tflm_allocates(data, hi):
        lo, hi = hi, hi * 2
        if hi > 1 << 28:
            raise RuntimeError("TFLite-Micro does not allocate the model even in 256 MiB")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if tflm_allocates(data, mid) else (mid, hi)
    tflm_invoke(tflm_interpreter(data, arena_size=hi), feed)
    return hi


def best_of(n: int, fn: Callable[[], object]) -> tuple[float, object]:
    """(best wall-clock seconds of ``n`` runs, the last result)."""
    seconds, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return min(seconds), result
