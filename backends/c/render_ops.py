"""The C renderers, one table keyed by target op (``tfl.*`` and ``c.*``).

Importing this module registers every renderer (``render_nn``, ``render_elementwise``,
``render_data``, ``render_select``). Contract with the emitter: a renderer maps a node and
its parameter record to kernel calls (``render_base.Call``): the kernel, its parameter
struct's fields (arrays become flash tables, shared when identical) and the tensors it
reads and writes.
Every constant read is declared through ``RenderContext.const_array``, so constant values
need no storage of their own. Scratch (the DSP convolution's columns) is a ``Scratch`` field:
the record's ``scratch_bytes``, placed by ``plan-memory``. Element-wise kernels accept an
output aliasing input 0 exactly; the others need disjoint buffers.
"""

from __future__ import annotations

import microlith.backends.c.render_elementwise  # noqa: F401  (registers renderers)
import microlith.backends.c.render_float_data  # noqa: F401
import microlith.backends.c.render_float_math  # noqa: F401
import microlith.backends.c.render_float_norm  # noqa: F401
import microlith.backends.c.render_nn  # noqa: F401
import microlith.backends.c.render_select  # noqa: F401
import microlith.backends.c.render_wide  # noqa: F401
from microlith.backends.c.render_base import RENDERERS, Plan, prepare_plan, render_plan
from microlith.backends.c.render_context import RenderContext
from microlith.backends.c.render_data import SPECIAL_RENDERERS
from microlith.backends.c.render_float import FLOAT_RENDERERS
from microlith.backends.c.render_hybrid import hybrid_plan
from microlith.ir.core import Node
from microlith.quant.registry import is_integer_node

__all__ = ["FLOAT_RENDERERS", "RENDERERS", "check_c_supported", "render_node"]


def plan_of(node: Node) -> Plan:
    """The node's kernel calls: a float kernel for a float node (the integer-dot hybrid one
    when select-kernels chose it), else the integer one."""
    if not is_integer_node(node) and node.op in FLOAT_RENDERERS:
        return hybrid_plan(node) or FLOAT_RENDERERS[node.op](node)
    return prepare_plan(node)


def check_c_supported(node: Node) -> str | None:
    """Why ``node`` cannot be emitted as C (None if it can)."""
    if node.op in SPECIAL_RENDERERS:
        return None
    try:
        plan_of(node)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return str(exc)
    return None


def render_node(ctx: RenderContext, node: Node) -> str:
    special = SPECIAL_RENDERERS.get(node.op)
    if special is not None:
        return special(ctx, node)
    return render_plan(ctx, node, plan_of(node))
