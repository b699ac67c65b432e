"""The passes: one module per pass, named after it (``fold_batchnorm`` is ``fold-batchnorm``).

Importing this package registers every built-in pass; the pass registry does so through
the ``microlith.passes`` entry point, as for any plugin. ``pipelines`` builds the default
pipelines; ``tflite_rules`` holds the rewrite rules both legalize passes share.
"""

from microlith.passes import (  # noqa: F401
    calibrate,
    eliminate_dead,
    fold_batchnorm,
    fold_constants,
    fold_pad,
    fuse_activation,
    fuse_gelu,
    fuse_requantize,
    import_qdq,
    infer_shapes,
    insert_qdq,
    legalize_c,
    legalize_tflite,
    lower_fc,
    plan_memory,
    prepare,
    quantize_weights,
    select_kernels,
    to_nhwc,
    widen_1d,
)
