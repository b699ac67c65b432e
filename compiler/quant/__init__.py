"""The TFLite integer spec, prepared once per node.

* ``params``: choosing quantization parameters (activations asymmetric int8 from a range,
  weights symmetric per channel, int32 biases, fixed outputs);
* ``fixed_point`` / ``arith``: TFLite's fixed-point primitives and the float32 arithmetic
  of TFLite-Micro's Prepare functions (activation ranges, SAME/VALID geometry);
* one module per op family (``conv``, ``pool``, ``elementwise``, ``activation``,
  ``data``): for each integer target op, a typed *parameter record* (what TFLite-Micro's
  Prepare computes: multipliers and shifts per channel, offsets, clamps, geometry), the
  function preparing it from an IR node, and the integer-exact kernel that runs on it;
* ``registry``: target op -> (prepare, kernel), used by the interpreter, the ``prepare``
  pass and ``legalize-c`` (lookup tables); the C backend writes the same records as
  ``static const`` structs;
* ``reference``: the kernels by TFLite builtin name with keyword quantization
  parameters (the numpy TFLite-Micro oracle used by the tests).
"""
