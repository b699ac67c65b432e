"""The C end-to-end modules' shared fixture: every model compiled once per session.

``models`` is the expensive part (two compiles per model, TFLite-Micro and our interpreter
on 500 inputs each); it is session-scoped so that the modules of this folder which use it
build it once between them, as the single module they were split from did.
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.interpreter import run_graph
from tests.c_end_to_end.c_models import (
    MODELS,
    ZOO,
    CModel,
    compile_c,
    samples,
    stress_inputs,
    write_files,
)
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CModel]:
    root = tmp_path_factory.mktemp("c_models")
    out = {}
    for name in MODELS:
        calibration, x_test = samples(name)
        result = compile_c(name)
        tflite = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
            quantize="int8", calibration_data=calibration, quiet=True)).output
        graph = result.graph
        physical = to_physical(x_test, input_perm(graph))
        quant = graph.inputs[0].quant
        feeds = np.concatenate([quantize_input(physical, quant.scale[0], quant.zero_point[0]),
                                stress_inputs(physical.shape[1:])])
        ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
        model = CModel(name, result, tflite, parse_model(tflite),
                       write_files(root / name, result.files), feeds,
                       run_tflm(tflite, feeds, flatten=True),
                       np.asarray(ours).reshape(len(feeds), -1))
        out[name] = model
    return out
