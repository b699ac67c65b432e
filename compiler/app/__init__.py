"""The app layer: driver, CLI, ``debug`` and ``inspect``.

The only layer that imports ``microlith.passes`` and ``microlith.backends`` (enforced by
the import-layer contract in ``pyproject.toml``).
"""
