"""The kernel table: op name -> float reference kernel, read off the op definitions.

A kernel is ``kernel(node, inputs) -> outputs``: it reads the node's attributes
(``node.attr`` falls back to the op's registered default), receives one array per node
input (None for an absent optional input) and returns one array per node output. Kernels
work on the arrays they are given, not on the IR types, so a leading batch dimension
larger than the typed one flows through. A fused activation is applied to the result.
Integer nodes run the integer-exact kernels of ``microlith.quant.registry`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from microlith.ir.ops import Kernel, all_ops


class _KernelTable(Mapping[str, Kernel]):
    """Read-only view: every registered op that has a float kernel."""

    def _table(self) -> dict[str, Kernel]:
        table = {}
        for name, opdef in all_ops().items():
            kernel = opdef.float_kernel()
            if kernel is not None:
                table[name] = kernel
        return table

    def __getitem__(self, op: str) -> Kernel:
        return self._table()[op]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


KERNELS: Mapping[str, Kernel] = _KernelTable()
