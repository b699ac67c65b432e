"""Shared pytest configuration: make the repository root importable (``tools.*``, ...)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Torch's CPU kernels dispatch on the instruction set (AVX2 or AVX-512 on x86), and the two
# sum in different orders: the trained weights, and the QAT-vs-post-training accuracy tests,
# differed between machines. One capability everywhere (set before any test imports torch;
# tools/zoo_trained.py does the same for the tools run on their own).
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
