"""The facts passes require, provide and invalidate (see ``Pass``).

A fact is a property of the graph that a pass establishes and later passes or targets
rely on. The ``PassManager`` keeps the set of facts in ``graph.meta["facts"]`` and checks
a pipeline before running it; a target names the facts its emitter needs.
"""

NHWC = "nhwc"  # to-nhwc: spatial ops are NHWC, io_perms recorded
CALIBRATED = "calibrated"  # calibrate: every float activation has a range
QDQ = "qdq"  # insert-qdq: quantize/dequantize pairs per the int8 spec
INTEGER = "integer"  # fuse-requantize: integer islands fused into integer ops
TFLITE_OPS = "target-ops:tflite"  # legalize-tflite: only tfl.* ops
C_OPS = "target-ops:c"  # legalize-c: only the C target's ops
TARGET_OPS = "target-ops"  # either legalize pass: only target ops (tfl.* / c.*)
PREPARED = "prepared"  # prepare: every integer op has its parameter record
MEMORY_PLANNED = "memory-planned"  # plan-memory: arena offsets for the final node order

PROVIDED_BY = {
    NHWC: "to-nhwc", CALIBRATED: "calibrate", QDQ: "insert-qdq", INTEGER: "fuse-requantize",
    TFLITE_OPS: "legalize-tflite", C_OPS: "legalize-c",
    TARGET_OPS: "legalize-tflite or legalize-c", PREPARED: "prepare",
    MEMORY_PLANNED: "plan-memory",
}
