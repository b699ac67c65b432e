"""Shared pytest configuration: make the repository root importable (``tools.*``, ...)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# One torch CPU capability everywhere, set before any test imports torch (tools/torch_cpu.py).
from tools.torch_cpu import pin_cpu_capability  # noqa: E402

pin_cpu_capability()
