"""The op families: importing this package registers every op (``microlith.ir.ops``).

One module per family holds the ops' definitions, traits, shape functions and float
reference kernels -- the ONNX-level op and its TFLite (``tfl.*``) and C (``c.*``) target
forms side by side. Their integer-exact semantics live in ``microlith.quant``.
"""

from microlith.ops import (  # noqa: F401  (each module registers its ops)
    activation,
    conv,
    elementwise,
    fill,
    linear,
    norm,
    pool,
    quantize,
    reduce,
    resize,
    select,
    tensor,
)
