"""One torch CPU capability on every x86 machine, for reproducible training.

Torch's CPU kernels dispatch on the instruction set (AVX2 or AVX-512 on x86), and the two sum
in different orders: the trained weights, and the QAT-vs-post-training accuracy tests, differed
between machines. ``pin_cpu_capability`` asks for AVX2 (unless the environment already names a
capability); it must run before torch is first imported.
"""

from __future__ import annotations

import os
import platform


def pin_cpu_capability() -> None:
    """Set ``ATEN_CPU_CAPABILITY=avx2`` on x86 when it is not set (call before importing torch)."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
