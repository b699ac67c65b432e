"""The registry the C kernel test cases are written against (``kernel_cases_*.py``).

Each ``kernel_cases_*`` module registers its case generators -- functions from a seeded
``np.random.Generator`` to a list of ``harness.Case`` -- in its own ``GENERATORS`` with
a ``@generator(name)`` decorator made by ``registrar``; ``test_c_kernels.py`` chains the
modules' registries in a fixed order and feeds them one generator in turn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from harness import Case

Generator = Callable[[np.random.Generator], list[Case]]


def registrar(registry: dict[str, Generator]) -> Callable[[str], Callable[[Generator], Generator]]:
    """The ``@generator(name)`` decorator of one module: it adds the function to ``registry``."""

    def generator(name: str) -> Callable[[Generator], Generator]:
        def wrap(fn: Generator) -> Generator:
            registry[name] = fn
            return fn

        return wrap

    return generator


def int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform int8 data of ``shape``."""
    return rng.integers(-128, 128, shape).astype(np.int8)
