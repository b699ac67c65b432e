"""Running compiled models in the real runtimes, shared by the tests and ``tools/bench.py``.

One version of each helper that feeds data to, or runs a model in, onnxruntime, LiteRT
(reference kernels) or TFLite-Micro's Python runtime: the layout transposition of ONNX
(NCHW) data to the compiled graph's layout, TFLite's quantization of a float input, one
invocation, a batch of invocations, and the top-1 of a batch of outputs.

The runtimes are imported inside the functions, so importing this module needs only
numpy; a caller that must skip without a runtime still calls ``pytest.importorskip``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
    from onnxruntime import InferenceSession
    from tflite_micro.python.tflite_micro.runtime import Interpreter as TflmInterpreter

    from microlith.ir.core import Graph

NCHW_TO_NHWC = (0, 2, 3, 1)  # the permutation ``to-nhwc`` gives a 4-D input (NCHW -> NHWC)
TFLM_ARENA_BYTES = 1 << 20  # 1 MiB: enough for every zoo model, float or int8


# --------------------------------------------------------------------------- layout / data


def input_perm(graph: Graph) -> list[int] | None:
    """The permutation the compiler applied to input 0 of ``graph`` (ONNX layout -> the
    compiled model's layout), from ``graph.meta["io_perms"]``. None when that input kept
    its ONNX layout (``to-nhwc`` records only the inputs it permuted) or when the graph has
    no ``io_perms`` (``to-nhwc`` did not run)."""
    return graph.meta.get("io_perms", {}).get(graph.inputs[0].name)


def to_physical(x: np.ndarray, perm: Sequence[int] | None) -> np.ndarray:
    """``x`` (ONNX layout, batch axis first) as a C-contiguous array in the compiled
    model's layout: ``x.transpose(perm)``, or ``x`` itself (made contiguous) if ``perm`` is
    None. The values are unchanged; only their order in memory moves."""
    return np.ascontiguousarray(x if perm is None else x.transpose(perm))


def quantize_input(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8"
                   ) -> np.ndarray:
    """What TFLite does to a float input: ``clamp(round(x / scale) + zero_point)`` as ``dtype``.

    ``x / scale`` is computed in float32 (``x`` cast to float32, ``scale`` to
    ``np.float32``); that quotient is rounded half away from zero (exactly: it is
    converted to float64 first); ``zero_point`` is added and the result clamped to the
    range of ``dtype`` (e.g. ``"int8"``: [-128, 127], ``"uint8"``: [0, 255]).
    """
    v = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
    rounded = np.sign(v) * np.floor(np.abs(v) + 0.5)  # exact: v holds a float32 value
    info = np.iinfo(dtype)
    return np.clip(rounded + zero_point, info.min, info.max).astype(dtype)


def top1(outputs: np.ndarray) -> np.ndarray:
    """Index of the largest element of each sample (row ``k`` of ``outputs`` flattened)."""
    return outputs.reshape(len(outputs), -1).argmax(axis=1)


# --------------------------------------------------------------------------- TFLite-Micro


def tflm_interpreter(data: bytes, arena_size: int = TFLM_ARENA_BYTES,
                     preserve_all_tensors: bool = False) -> TflmInterpreter:
    """TFLite-Micro's Python runtime (``tflite_micro.python.tflite_micro.runtime``) on the
    ``.tflite`` bytes ``data`` with a tensor arena of ``arena_size`` bytes.

    ``preserve_all_tensors``: every tensor keeps its value after ``invoke()``
    (``InterpreterConfig.kPreserveAllTensors``), so ``GetTensor`` reads intermediate
    activations; otherwise the runtime's default (tensors share arena memory).
    """
    from tflite_micro.python.tflite_micro import runtime

    if not preserve_all_tensors:
        return runtime.Interpreter.from_bytes(data, arena_size=arena_size)
    return runtime.Interpreter.from_bytes(  # (sic: the runtime spells it "intrepreter")
        data, arena_size=arena_size,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)


def tflm_invoke(interp: TflmInterpreter, x: np.ndarray) -> np.ndarray:
    """One inference: ``x`` (with its batch axis, e.g. ``[1, H, W, C]``) set as input 0,
    ``invoke()``, and output 0 as the runtime returns it (batch axis included)."""
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def run_tflm(data: bytes, feeds: np.ndarray, arena_size: int = TFLM_ARENA_BYTES,
             flatten: bool = False) -> np.ndarray:
    """Output 0 of TFLite-Micro for each row of ``feeds``, stacked: ``[len(feeds), ...]``.

    One interpreter (``arena_size`` bytes of arena) runs the rows in order, each as a batch
    of one (``row[None]``). Each output loses its batch axis (``out[0]``), or with
    ``flatten`` is flattened to one row of elements (``out.reshape(-1)``).
    """
    interp = tflm_interpreter(data, arena_size)
    outs = []
    for x in feeds:
        out = tflm_invoke(interp, x[None])
        outs.append((out.reshape(-1) if flatten else out[0]).copy())
    return np.stack(outs)


# --------------------------------------------------------------------------- LiteRT


def litert_interpreter(data: bytes) -> LiteRTInterpreter:
    """LiteRT (``ai_edge_litert.interpreter.Interpreter``) on the ``.tflite`` bytes
    ``data`` with its reference kernels (``OpResolverType.BUILTIN_REF``, not the optimized
    ones), tensors allocated."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=data,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    return interp


def litert_invoke(interp: LiteRTInterpreter, x: np.ndarray) -> np.ndarray:
    """One inference: ``x`` (with its batch axis) set as input 0, ``invoke()``, and a copy
    of output 0 (batch axis included)."""
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def run_litert(data: bytes, feeds: np.ndarray) -> np.ndarray:
    """Output 0 of LiteRT's reference kernels for each row of ``feeds``, stacked:
    ``[len(feeds), ...]``, each output without its batch axis (``out[0]``). One interpreter
    (``litert_interpreter``) runs the rows in order, each as a batch of one (``row[None]``).
    """
    interp = litert_interpreter(data)
    return np.stack([litert_invoke(interp, x[None])[0] for x in feeds])


# --------------------------------------------------------------------------- onnxruntime


def ort_session(path: str | os.PathLike[str], single_thread: bool = True
                ) -> InferenceSession:
    """An onnxruntime CPU session (``CPUExecutionProvider``) on the ONNX file ``path``;
    ``single_thread``: ``intra_op_num_threads = 1``, else onnxruntime's default threads.

    Always with ``session.x64quantprecision = 1``: on x86-64 CPUs without VNNI (AVX2 only)
    onnxruntime's u8 x s8 integer kernels (QLinearConv, the fused Q/DQ convolutions) sum
    pairs of products in int16 with saturation (VPMADDUBSW), which loses the exact int32
    sum -- measured here on an AVX2-only machine: the lenet Q/DQ model's top-1 accuracy in
    onnxruntime fell from 98.9% to 95.8%, 48 LSB off the exact result. The option makes
    onnxruntime use its exact u8 x u8 path there; on VNNI CPUs it changes nothing."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.x64quantprecision", "1")
    if single_thread:
        options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_outputs(session: InferenceSession, xs: np.ndarray) -> np.ndarray:
    """Output 0 of ``session`` for each row of ``xs`` (ONNX layout), each run as a batch of
    one (``row[None]``) fed to the session's first input, concatenated along the batch
    axis: ``[len(xs), ...]``."""
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[None]})[0] for x in xs])
