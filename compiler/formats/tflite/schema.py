"""TFLite flatbuffer schema facts (schema version 3, file identifier ``TFL3``).

Hand-written tables of the parts of ``tensorflow/lite/schema/schema.fbs`` that microlith
needs: enum values, the ``BuiltinOptions`` union member order, the vtable slot layout of
the builtin options tables, and which options table each builtin operator uses.

Every number here is a format fact: enum values and union indices are positions in the
schema, and a table field's *slot* is its position in the table declaration (deprecated
fields keep their slot, which is why some layouts contain ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3


class TensorType(IntEnum):
    FLOAT32 = 0
    FLOAT16 = 1
    INT32 = 2
    UINT8 = 3
    INT64 = 4
    STRING = 5
    BOOL = 6
    INT16 = 7
    COMPLEX64 = 8
    INT8 = 9
    FLOAT64 = 10
    COMPLEX128 = 11
    UINT64 = 12
    RESOURCE = 13
    VARIANT = 14
    UINT32 = 15
    UINT16 = 16
    INT4 = 17
    BFLOAT16 = 18
    INT2 = 19
    UINT4 = 20


class Padding(IntEnum):
    SAME = 0
    VALID = 1


class ActivationFunctionType(IntEnum):
    NONE = 0
    RELU = 1
    RELU_N1_TO_1 = 2
    RELU6 = 3
    TANH = 4
    SIGN_BIT = 5


class FullyConnectedOptionsWeightsFormat(IntEnum):
    DEFAULT = 0
    SHUFFLED4x16INT8 = 1


class MirrorPadMode(IntEnum):
    REFLECT = 0
    SYMMETRIC = 1


# microlith dtype name -> TensorType.  The lower-case names are also used for
# TensorType-valued option fields (e.g. CastOptions.out_data_type).
DTYPE_TO_TENSOR_TYPE: dict[str, TensorType] = {
    "float32": TensorType.FLOAT32,
    "float16": TensorType.FLOAT16,
    "float64": TensorType.FLOAT64,
    "bfloat16": TensorType.BFLOAT16,
    "int4": TensorType.INT4,
    "int8": TensorType.INT8,
    "int16": TensorType.INT16,
    "int32": TensorType.INT32,
    "int64": TensorType.INT64,
    "uint8": TensorType.UINT8,
    "uint16": TensorType.UINT16,
    "uint32": TensorType.UINT32,
    "uint64": TensorType.UINT64,
    "bool": TensorType.BOOL,
    "string": TensorType.STRING,
    "complex64": TensorType.COMPLEX64,
}
TENSOR_TYPE_TO_DTYPE: dict[int, str] = {int(v): k for k, v in DTYPE_TO_TENSOR_TYPE.items()}

# BuiltinOperator: the enum is dense, so the code of an operator is its position here.
_BUILTIN_OPERATOR_NAMES = """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM
CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND
SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE
BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM
CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE
SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW
ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK
REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR
LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS
WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG
REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL
BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD
UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR
RIGHT_SHIFT
""".split()

BuiltinOperator = IntEnum(  # type: ignore[misc]
    "BuiltinOperator", [(name, code) for code, name in enumerate(_BUILTIN_OPERATOR_NAMES)]
)
BUILTIN_CODES: dict[str, int] = {name: code for code, name in enumerate(_BUILTIN_OPERATOR_NAMES)}
BUILTIN_NAMES: dict[int, str] = dict(enumerate(_BUILTIN_OPERATOR_NAMES))
# Codes above this only fit in OperatorCode.builtin_code; deprecated_builtin_code saturates.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127

# BuiltinOptions union members in declaration order; the union type index is the
# position + 1 (0 is NONE).
_BUILTIN_OPTIONS_NAMES = """
Conv2DOptions DepthwiseConv2DOptions ConcatEmbeddingsOptions LSHProjectionOptions Pool2DOptions
SVDFOptions RNNOptions FullyConnectedOptions SoftmaxOptions ConcatenationOptions AddOptions
L2NormOptions LocalResponseNormalizationOptions LSTMOptions ResizeBilinearOptions CallOptions
ReshapeOptions SkipGramOptions SpaceToDepthOptions EmbeddingLookupSparseOptions MulOptions
PadOptions GatherOptions BatchToSpaceNDOptions SpaceToBatchNDOptions TransposeOptions
ReducerOptions SubOptions DivOptions SqueezeOptions SequenceRNNOptions StridedSliceOptions
ExpOptions TopKV2Options SplitOptions LogSoftmaxOptions CastOptions DequantizeOptions
MaximumMinimumOptions ArgMaxOptions LessOptions NegOptions PadV2Options GreaterOptions
GreaterEqualOptions LessEqualOptions SelectOptions SliceOptions TransposeConvOptions
SparseToDenseOptions TileOptions ExpandDimsOptions EqualOptions NotEqualOptions ShapeOptions
PowOptions ArgMinOptions FakeQuantOptions PackOptions LogicalOrOptions OneHotOptions
LogicalAndOptions LogicalNotOptions UnpackOptions FloorDivOptions SquareOptions ZerosLikeOptions
FillOptions BidirectionalSequenceLSTMOptions BidirectionalSequenceRNNOptions
UnidirectionalSequenceLSTMOptions FloorModOptions RangeOptions ResizeNearestNeighborOptions
LeakyReluOptions SquaredDifferenceOptions MirrorPadOptions AbsOptions SplitVOptions
UniqueOptions ReverseV2Options AddNOptions GatherNdOptions CosOptions WhereOptions RankOptions
ReverseSequenceOptions MatrixDiagOptions QuantizeOptions MatrixSetDiagOptions HardSwishOptions
IfOptions WhileOptions DepthToSpaceOptions NonMaxSuppressionV4Options
NonMaxSuppressionV5Options ScatterNdOptions SelectV2Options DensifyOptions SegmentSumOptions
BatchMatMulOptions CumsumOptions CallOnceOptions BroadcastToOptions Rfft2dOptions
Conv3DOptions HashtableOptions HashtableFindOptions HashtableImportOptions
HashtableSizeOptions VarHandleOptions ReadVariableOptions AssignVariableOptions RandomOptions
BucketizeOptions GeluOptions DynamicUpdateSliceOptions UnsortedSegmentProdOptions
UnsortedSegmentMaxOptions UnsortedSegmentMinOptions UnsortedSegmentSumOptions ATan2Options
SignOptions BitcastOptions BitwiseXorOptions RightShiftOptions
""".split()
BUILTIN_OPTIONS_TYPES: dict[str, int] = {
    name: index + 1 for index, name in enumerate(_BUILTIN_OPTIONS_NAMES)
}
BUILTIN_OPTIONS_NONE = 0
# BuiltinOptions2 (operator field builtin_options_2) only holds StableHLO-era tables,
# none of which microlith emits; the writer always leaves it NONE.

# Enum-valued option fields store integers on the wire and strings in microlith dicts.
ENUMS: dict[str, dict[str, int]] = {
    "Padding": {e.name: int(e) for e in Padding},
    "ActivationFunctionType": {e.name: int(e) for e in ActivationFunctionType},
    "FullyConnectedOptionsWeightsFormat": {
        e.name: int(e) for e in FullyConnectedOptionsWeightsFormat
    },
    "MirrorPadMode": {e.name: int(e) for e in MirrorPadMode},
    "TensorType": {k: int(v) for k, v in DTYPE_TO_TENSOR_TYPE.items()},
}


@dataclass(frozen=True)
class OptionField:
    """One scalar or vector field of an options table.

    kind: 'bool' | 'byte' | 'int32' | 'uint32' | 'float32' | 'int32_vector'.
    enum: name in ``ENUMS`` for enum fields (stored as 'byte'); default is then a name.
    A vector field's default ``None`` means "absent".
    """

    name: str
    kind: str
    default: Any = 0
    enum: str | None = None


@dataclass(frozen=True)
class OptionsTable:
    name: str
    fields: tuple[OptionField | None, ...]  # index == vtable slot; None = deprecated slot

    @property
    def union_type(self) -> int:
        return BUILTIN_OPTIONS_TYPES[self.name]

    def field_map(self) -> dict[str, tuple[int, OptionField]]:
        return {f.name: (slot, f) for slot, f in enumerate(self.fields) if f is not None}


def _i32(name: str, default: int = 0) -> OptionField:
    return OptionField(name, "int32", default)


def _bool(name: str, default: bool = False) -> OptionField:
    return OptionField(name, "bool", default)


def _f32(name: str, default: float = 0.0) -> OptionField:
    return OptionField(name, "float32", default)


def _vec(name: str) -> OptionField:
    return OptionField(name, "int32_vector", None)


def _enum(name: str, enum: str, default: str) -> OptionField:
    return OptionField(name, "byte", default, enum)


_PAD = _enum("padding", "Padding", "SAME")
_ACT = _enum("fused_activation_function", "ActivationFunctionType", "NONE")
_BIAS_T = _enum("quantized_bias_type", "TensorType", "float32")
_SW, _SH = _i32("stride_w"), _i32("stride_h")
_DW, _DH = _i32("dilation_w_factor", 1), _i32("dilation_h_factor", 1)

_TABLES: tuple[OptionsTable, ...] = (
    OptionsTable("Conv2DOptions", (_PAD, _SW, _SH, _ACT, _DW, _DH, _BIAS_T)),
    OptionsTable(
        "DepthwiseConv2DOptions", (_PAD, _SW, _SH, _i32("depth_multiplier"), _ACT, _DW, _DH)
    ),
    OptionsTable("TransposeConvOptions", (_PAD, _SW, _SH, _ACT, _BIAS_T)),
    OptionsTable(
        "Pool2DOptions", (_PAD, _SW, _SH, _i32("filter_width"), _i32("filter_height"), _ACT)
    ),
    OptionsTable(
        "FullyConnectedOptions",
        (
            _ACT,
            _enum("weights_format", "FullyConnectedOptionsWeightsFormat", "DEFAULT"),
            _bool("keep_num_dims"),
            _bool("asymmetric_quantize_inputs"),
            _BIAS_T,
        ),
    ),
    OptionsTable("SoftmaxOptions", (_f32("beta"),)),
    OptionsTable("ConcatenationOptions", (_i32("axis"), _ACT)),
    OptionsTable("AddOptions", (_ACT, _bool("pot_scale_int16", True))),
    OptionsTable("SubOptions", (_ACT, _bool("pot_scale_int16", True))),
    OptionsTable("MulOptions", (_ACT,)),
    OptionsTable("DivOptions", (_ACT,)),
    OptionsTable("L2NormOptions", (_ACT,)),
    OptionsTable(
        "LocalResponseNormalizationOptions",
        (_i32("radius"), _f32("bias"), _f32("alpha"), _f32("beta")),
    ),
    OptionsTable("ReducerOptions", (_bool("keep_dims"),)),
    OptionsTable("ReshapeOptions", (_vec("new_shape"),)),
    OptionsTable("SqueezeOptions", (_vec("squeeze_dims"),)),
    OptionsTable("LeakyReluOptions", (_f32("alpha"),)),
    OptionsTable("GatherOptions", (_i32("axis"), _i32("batch_dims"))),
    OptionsTable(
        "StridedSliceOptions",
        (
            _i32("begin_mask"),
            _i32("end_mask"),
            _i32("ellipsis_mask"),
            _i32("new_axis_mask"),
            _i32("shrink_axis_mask"),
            _bool("offset"),
        ),
    ),
    OptionsTable("SplitOptions", (_i32("num_splits"),)),
    OptionsTable("SplitVOptions", (_i32("num_splits"),)),
    OptionsTable("PackOptions", (_i32("values_count"), _i32("axis"))),
    OptionsTable("UnpackOptions", (_i32("num"), _i32("axis"))),
    OptionsTable("SpaceToDepthOptions", (_i32("block_size"),)),
    OptionsTable("DepthToSpaceOptions", (_i32("block_size"),)),
    OptionsTable(
        "ResizeBilinearOptions",
        (None, None, _bool("align_corners"), _bool("half_pixel_centers")),
    ),
    OptionsTable(
        "ResizeNearestNeighborOptions", (_bool("align_corners"), _bool("half_pixel_centers"))
    ),
    OptionsTable(
        "BatchMatMulOptions",
        (_bool("adj_x"), _bool("adj_y"), _bool("asymmetric_quantize_inputs")),
    ),
    OptionsTable("MirrorPadOptions", (_enum("mode", "MirrorPadMode", "REFLECT"),)),
    OptionsTable("GeluOptions", (_bool("approximate"),)),
    OptionsTable(
        "CastOptions",
        (
            _enum("in_data_type", "TensorType", "float32"),
            _enum("out_data_type", "TensorType", "float32"),
        ),
    ),
    OptionsTable("ArgMaxOptions", (_enum("output_type", "TensorType", "float32"),)),
    OptionsTable("ArgMinOptions", (_enum("output_type", "TensorType", "float32"),)),
    OptionsTable("ShapeOptions", (_enum("out_type", "TensorType", "float32"),)),
    OptionsTable("CumsumOptions", (_bool("exclusive"), _bool("reverse"))),
) + tuple(
    OptionsTable(name, ())
    for name in (
        "PadOptions PadV2Options TransposeOptions HardSwishOptions QuantizeOptions "
        "DequantizeOptions MaximumMinimumOptions ExpandDimsOptions ExpOptions AbsOptions "
        "NegOptions SliceOptions TileOptions LogSoftmaxOptions SquaredDifferenceOptions "
        "SquareOptions PowOptions SelectV2Options BroadcastToOptions SpaceToBatchNDOptions "
        "BatchToSpaceNDOptions CosOptions EqualOptions NotEqualOptions LessOptions "
        "LessEqualOptions GreaterOptions GreaterEqualOptions FloorDivOptions FloorModOptions "
        "SignOptions ZerosLikeOptions FillOptions"
    ).split()
)
OPTIONS_TABLES: dict[str, OptionsTable] = {t.name: t for t in _TABLES}

# Supported builtin operators -> options table name (None: the schema has no table).
OP_OPTIONS: dict[str, str | None] = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions",
    "ADD": "AddOptions",
    "SUB": "SubOptions",
    "MUL": "MulOptions",
    "DIV": "DivOptions",
    "MEAN": "ReducerOptions",
    "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions",
    "REDUCE_ANY": "ReducerOptions",
    "RESHAPE": "ReshapeOptions",
    "SQUEEZE": "SqueezeOptions",
    "CONCATENATION": "ConcatenationOptions",
    "SOFTMAX": "SoftmaxOptions",
    "LOG_SOFTMAX": "LogSoftmaxOptions",
    "LEAKY_RELU": "LeakyReluOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "MIRROR_PAD": "MirrorPadOptions",
    "TRANSPOSE": "TransposeOptions",
    "HARD_SWISH": "HardSwishOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "MAXIMUM": "MaximumMinimumOptions",
    "MINIMUM": "MaximumMinimumOptions",
    "GATHER": "GatherOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "STRIDED_SLICE": "StridedSliceOptions",
    "SLICE": "SliceOptions",
    "SPLIT": "SplitOptions",
    "SPLIT_V": "SplitVOptions",
    "PACK": "PackOptions",
    "UNPACK": "UnpackOptions",
    "TILE": "TileOptions",
    "CAST": "CastOptions",
    "ARG_MAX": "ArgMaxOptions",
    "ARG_MIN": "ArgMinOptions",
    "SHAPE": "ShapeOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions",
    "DEPTH_TO_SPACE": "DepthToSpaceOptions",
    "SPACE_TO_BATCH_ND": "SpaceToBatchNDOptions",
    "BATCH_TO_SPACE_ND": "BatchToSpaceNDOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "BATCH_MATMUL": "BatchMatMulOptions",
    "L2_NORMALIZATION": "L2NormOptions",
    "LOCAL_RESPONSE_NORMALIZATION": "LocalResponseNormalizationOptions",
    "GELU": "GeluOptions",
    "CUMSUM": "CumsumOptions",
    "EXP": "ExpOptions",
    "ABS": "AbsOptions",
    "NEG": "NegOptions",
    "COS": "CosOptions",
    "SIGN": "SignOptions",
    "SQUARE": "SquareOptions",
    "SQUARED_DIFFERENCE": "SquaredDifferenceOptions",
    "POW": "PowOptions",
    "SELECT_V2": "SelectV2Options",
    "BROADCAST_TO": "BroadcastToOptions",
    "EQUAL": "EqualOptions",
    "NOT_EQUAL": "NotEqualOptions",
    "LESS": "LessOptions",
    "LESS_EQUAL": "LessEqualOptions",
    "GREATER": "GreaterOptions",
    "GREATER_EQUAL": "GreaterEqualOptions",
    "FLOOR_DIV": "FloorDivOptions",
    "FLOOR_MOD": "FloorModOptions",
    "ZEROS_LIKE": "ZerosLikeOptions",
    "FILL": "FillOptions",
    **{
        name: None
        for name in (
            "LOGISTIC TANH RELU RELU6 RELU_N1_TO_1 RELU_0_TO_1 PRELU ELU SQRT RSQRT LOG SIN "
            "FLOOR CEIL ROUND"
        ).split()
    },
}

OPTIONS_TYPE_TO_TABLE: dict[int, OptionsTable] = {t.union_type: t for t in _TABLES}


def options_table(op: str) -> OptionsTable | None:
    """The options table of a supported builtin ``op`` (None if it has none)."""
    if op not in OP_OPTIONS:
        raise ValueError(f"unsupported TFLite builtin operator {op!r}")
    table_name = OP_OPTIONS[op]
    return None if table_name is None else OPTIONS_TABLES[table_name]
