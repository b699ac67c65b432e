"""The CLI modules' shared fixture: a scratch working directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """A scratch working directory; bad-input tests check nothing new appears in it."""
    directory = tmp_path / "work"
    directory.mkdir()
    return directory
