"""The passes: one module per pass, named after it (``fold_batchnorm`` is ``fold-batchnorm``).

Importing this package registers every built-in pass.
"""

from microlith.passes import (  # noqa: F401
    calibrate,
    eliminate_dead,
    fold_batchnorm,
    fold_constants,
    fold_pad,
    fuse_activation,
    fuse_requantize,
    infer_shapes,
    insert_qdq,
    legalize_c,
    legalize_tflite,
    lower_fc,
    plan_memory,
    to_nhwc,
)
