"""Pytest configuration of the int8-vs-TFLite-Micro modules: the LiteRT-reference table."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _litert_table():
    """After the last test: print the differences ``tflm_oneop.check`` recorded (``-s``)."""
    yield
    try:
        from tests.interpreter.tflm_oneop import litert_table
    except pytest.skip.Exception:  # TFLite-Micro or LiteRT missing: nothing was recorded
        return
    print(litert_table())
