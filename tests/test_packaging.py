"""Packaging: one import root, ``microlith``, mapped from the repository's folders.

``pyproject.toml`` lists the packages by hand (the folders are renamed on install:
``compiler/`` -> ``microlith``, ``passes/`` -> ``microlith.passes``, ``backends/`` ->
``microlith.backends``); this test keeps that list equal to the folders that hold an
``__init__.py``, so a new subpackage cannot be left out of the wheel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]


def _config() -> dict:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["setuptools"]


def test_package_list_matches_the_folders() -> None:
    config = _config()
    roots = {folder: package for package, folder in config["package-dir"].items()}
    assert roots == {"compiler": "microlith", "passes": "microlith.passes",
                     "backends": "microlith.backends"}
    found = set()
    for folder, package in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *relative)))
    assert sorted(config["packages"]) == sorted(found)


def test_the_import_root_is_microlith() -> None:
    import microlith

    assert Path(microlith.__file__).resolve().parent == REPO / "compiler"
    assert callable(microlith.compile_onnx)
