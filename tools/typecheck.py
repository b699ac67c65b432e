"""Type-check the package with mypy as it is installed: ``microlith``, not ``compiler``.

    python tools/typecheck.py [MYPY ARGS...]

The repository's folders install under other names (``compiler/`` is ``microlith``,
``passes/`` is ``microlith.passes``, ``backends/`` is ``microlith.backends``), which mypy
cannot follow through setuptools' editable-install import hook. This script builds that
layout from symbolic links in a temporary directory, runs ``mypy -p microlith`` there with
the ``[tool.mypy]`` settings of ``pyproject.toml``, and prints the findings with the
repository's own paths. Exit status: mypy's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"passes": "passes", "backends": "backends"}  # subpackages living elsewhere


def build_tree(where: Path) -> Path:
    package = where / "microlith"
    package.mkdir()
    for entry in sorted((ROOT / "compiler").iterdir()):
        if entry.name != "__pycache__":
            os.symlink(entry, package / entry.name)
    for name, folder in FOLDERS.items():
        os.symlink(ROOT / folder, package / name)
    return package


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="microlith-mypy-") as tmp:
        package = build_tree(Path(tmp))
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "-p", "microlith", *argv]
        env = dict(os.environ, MYPYPATH=tmp)
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        for name, folder in FOLDERS.items():
            out = out.replace(f"microlith/{name}/", f"{folder}/")
        out = out.replace("microlith/", "compiler/").replace(str(package), "compiler")
        print(out, end="")
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
