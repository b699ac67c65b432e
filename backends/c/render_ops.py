"""Per-op C renderers of the C backend: one IR node -> calls of ``microlith_kernels.h``.

Every parameter is computed here, at compile time, exactly as the integer interpreter
(``microlith.interpreter.int8_graph_kernels`` -> ``int8_ops``) computes it, so the C is
byte-identical to it and to TFLite-Micro. Scales are float32 values (``f32``); ``QM`` is
``fixed_point.quantize_multiplier`` (``real ~= m 2**(s-31)``); ``MBQM`` is TFLite's
``MultiplyByQuantizedMultiplier`` (double rounding); ``act`` is ``activation_range``.

* Conv (OHWI, groups) / depthwise (``group == C_in``, weights re-laid out as TFLite's
  ``[KH][KW][C*M]``) / FullyConnected (also 1x1 stride-1 convolutions, over the pixels):
  ``y = clamp(z_y + MBQM(b + sum (x - z_x) w, QM(s_x s_w[c] / s_y)), act)``; out-of-image
  taps are skipped (= an explicit ``z_x`` border); interior windows use the folded bias
  ``b - z_x sum w`` (exact: refused when ``|b| + 256 sum|w|`` can reach 2**31).
* MaxPool / AveragePool: SAME/VALID as ``tflite_padding`` decides (taps outside skipped,
  average over the in-image taps) else an explicit border: -128 (= skipped) for max, ``z_x``
  for average over all ``KH KW`` taps; ``(acc +- n/2) / n``; clamp to ``act``.
* GlobalAveragePool / ReduceMean: ``z_y + MBQM(sum x - z_x n, m', s')`` with ``1/n`` folded
  into ``QM(s_x / s_y)``: ``k = min(floor(log2 n), 32, 31 + s)``, ``m' = (m << k) // n``.
* Add / Sub: ``x' = MBQM((x - z) 2**20, QM(s / 2 max(s_a, s_b)))``,
  ``y = z_y + MBQM(a' +- b', QM(2 max / (2**20 s_y)))``; Mul: ``MBQM((a-z_a)(b-z_b),
  QM(s_a s_b / s_y))``; Max / Min: no rescaling; numpy broadcasting up to 4 merged dims.
* Relu: ``clamp(z_y + MBQM(x - z_x, QM(s_x/s_y)), max(-128, z_y), 127)``; LeakyRelu: the
  identity / alpha multipliers by the sign of ``x - z_x``; HardSwish: TFLite's int16 fixed
  point; Sigmoid / Tanh: gemmlowp ``logistic`` / ``tanh`` of ``MBQM(x - z_x, frexp(s_x
  2**27))`` saturating outside the input radius. Element-wise int8 -> int8 ops with at least
  ``LUT_MIN_ELEMENTS[op]`` elements become a 256-entry table made by the interpreter itself.
* Softmax (last axis, output 1/256, -128): ``exp_on_negative_values`` of ``SRDHM((x - max)
  2**L, m)`` with ``(m, L) = PreprocessSoftmaxScaling(1, s_x, 5)``, sum, ``GetReciprocal``.
* QuantizeLinear float -> int: ``clamp(round(x / s) + z)`` in float32; int -> int:
  ``clamp(z_y + MBQM(x - z_x, QM(s_x / s_y)))``; DequantizeLinear: ``s (x - z)`` in float32.
* Pad (fill: ``z_y`` or the quantized ``value``), Concat (+ a RELU / RELU6 applied on the
  output parameters), Transpose, Reshape (nothing when aliased, else ``memmove``): bytes.

Contract with the emitter: a renderer returns a comment line and kernel calls (no
declarations, no braces) for a function body. It calls ``ctx.tensor`` only for non-constant
values and casts the expression (``(const int8_t *)(expr)``, ``(float *)(expr)``, ...);
Reshape compares ``ctx.tensor(x)`` and ``ctx.tensor(y)`` as strings to see an alias. Every
constant read (weights, folded biases, multiplier tables, constant operands) is declared
through ``ctx.const_array``, so constant values need no storage of their own. No renderer
needs scratch. Element-wise kernels accept an output aliasing input 0 exactly; the others
need disjoint buffers.
"""
from __future__ import annotations

import microlith.backends.c.render_data  # noqa: F401  (each module registers its renderers)
import microlith.backends.c.render_elementwise  # noqa: F401
import microlith.backends.c.render_nn  # noqa: F401
from microlith.backends.c.render_base import (
    LUT_MIN_ELEMENTS,
    RENDERERS,
    check_c_supported,
    scratch_bytes,
)

__all__ = ["LUT_MIN_ELEMENTS", "RENDERERS", "check_c_supported", "scratch_bytes"]
