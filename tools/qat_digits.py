"""The quantization-aware-training round trip on the digits: PyTorch QAT -> ONNX -> int8.

1. A small CNN (Conv-BN-ReLU, MaxPool, Conv-BN-ReLU, MaxPool, Linear) is trained in
   float on the 1347 training digits (16x16, NCHW), deterministically on one thread.
2. Post-training baseline: that float model exported to ONNX and compiled by microlith
   with ``--quantize int8`` (300 training images as calibration data).
3. QAT: a copy is fused (``fuse_modules_qat``), given a TFLite-like qconfig
   (``qat_qconfig``: int8 weights in [-127, 127] per output channel, uint8 activations
   over the full range), ``prepare_qat``-ed and fine-tuned
   (observers and BatchNorm statistics frozen for the last epoch), then ``convert``-ed to
   a quantized torch model and exported by the legacy ONNX exporter, which writes it as
   QuantizeLinear/DequantizeLinear around float ops (the QDQ form). microlith compiles
   that with no calibration data (``--quantize qdq``, chosen automatically).

Both int8 models are run by TFLite-Micro on the 450 held-out digits.

    python tools/qat_digits.py [--out DIR] [--json qat.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tools.digits import load_digits_split  # noqa: E402
from tools.zoo_trained import configure_determinism, seed_everything  # noqa: E402

SEED = 0
FLOAT_EPOCHS = 12
QAT_EPOCHS = 4
N_CALIBRATION = 300


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(1, 8, 3, padding=1, bias=False), \
            nn.BatchNorm2d(8), nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2, self.bn2, self.relu2 = nn.Conv2d(8, 16, 3, padding=1, bias=False), \
            nn.BatchNorm2d(16), nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        return self.dequant(self.fc(torch.flatten(x, 1)))


def qat_qconfig() -> Any:
    """uint8 asymmetric per-tensor activations (full range), int8 symmetric per-channel
    weights in [-127, 127] (torch's XNNPACK-style weight fake-quant): TFLite's int8 spec
    after the uint8 -> int8 shift. Run by torch's x86 engine for ``convert``."""
    from torch.ao.quantization import (
        FusedMovingAvgObsFakeQuantize,
        MovingAverageMinMaxObserver,
        QConfig,
        default_per_channel_symmetric_qnnpack_qat_qconfig,
    )

    torch.backends.quantized.engine = "x86"
    activation = FusedMovingAvgObsFakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
        qscheme=torch.per_tensor_affine, reduce_range=False)
    return QConfig(activation=activation,
                   weight=default_per_channel_symmetric_qnnpack_qat_qconfig.weight)


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float,
           freeze_last: bool = False) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(SEED)
    for epoch in range(epochs):
        model.train()
        if freeze_last and epoch == epochs - 1:
            model.apply(torch.ao.quantization.disable_observer)
            model.apply(torch.ao.nn.intrinsic.qat.freeze_bn_stats)
        for batch in torch.randperm(len(xt), generator=generator).split(32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
            optimizer.step()


def _export(model: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 1, 16, 16),), str(path), dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["logits"])


def build(out: Path) -> dict[str, Any]:
    """Train, quantize both ways, export; the two ONNX paths and torch's accuracies."""
    configure_determinism()
    seed_everything(SEED)
    x_train, y_train, x_test, y_test = load_digits_split(16, "NCHW")
    model = SmallCNN()
    _train(model, x_train, y_train, FLOAT_EPOCHS, 1e-2)
    float_path = out / "qat_cnn_float.onnx"
    _export(model, float_path)
    qat = copy.deepcopy(model).train()
    torch.ao.quantization.fuse_modules_qat(
        qat, [["conv1", "bn1", "relu1"], ["conv2", "bn2", "relu2"]], inplace=True)
    qat.qconfig = qat_qconfig()
    torch.ao.quantization.prepare_qat(qat, inplace=True)
    _train(qat, x_train, y_train, QAT_EPOCHS, 1e-3, freeze_last=True)
    quantized = torch.ao.quantization.convert(qat.eval())
    qat_path = out / "qat_cnn_qdq.onnx"
    torch.use_deterministic_algorithms(False)  # quantized linear's resize has no such mode
    _export(quantized, qat_path)
    with torch.no_grad():
        acc = {name: float((m.eval()(torch.from_numpy(x_test)).argmax(1).numpy() == y_test
                            ).mean()) for name, m in (("float", model), ("qat_fake", qat))}
    return {"float": float_path, "qat": qat_path, "torch_accuracy": acc}


def evaluate(paths: dict[str, Any]) -> dict[str, Any]:
    """Compile both (tflite and C), run TFLite-Micro on the test split."""
    from microlith.app.driver import CompileOptions, compile_onnx
    from microlith.formats.tflite.flatbuffer import parse_model
    from tools.runtimes import (
        input_perm,
        ort_outputs,
        ort_session,
        quantize_input,
        run_tflm,
        to_physical,
        top1,
    )

    x_train, _, x_test, y_test = load_digits_split(16, "NCHW")
    results: dict[str, Any] = {"torch_accuracy": paths["torch_accuracy"]}
    builds = {
        "ptq": compile_onnx(paths["float"], CompileOptions(
            quiet=True, quantize="int8", calibration_data=x_train[:N_CALIBRATION])),
        "qat": compile_onnx(paths["qat"], CompileOptions(quiet=True)),
    }
    for name, result in builds.items():
        model = parse_model(result.output)
        inp = model.tensors[model.inputs[0]]
        assert inp.quant is not None
        feeds = quantize_input(to_physical(x_test, input_perm(result.graph)),
                               inp.quant.scale[0], inp.quant.zero_point[0])
        outputs = run_tflm(result.output, feeds).reshape(len(feeds), -1)
        results[name] = {"accuracy": float((top1(outputs) == y_test).mean()),
                         "remarks": [f"{n}: {t}" for p, n, t in result.remarks
                                     if p == "insert-qdq"]}
        results[name]["_tflite"], results[name]["_feeds"] = result.output, feeds
        results[name]["_tflm"] = outputs
    reference = ort_outputs(ort_session(paths["qat"]), x_test).reshape(len(x_test), -1)
    results["qat"]["agreement_ort"] = float((top1(results["qat"]["_tflm"]) ==
                                             top1(reference)).mean())
    out = parse_model(builds["qat"].output)
    q = out.tensors[out.outputs[0]].quant
    assert q is not None
    ref_q = np.clip(np.round(reference.astype(np.float64) / q.scale[0]) + q.zero_point[0],
                    -128, 127)
    results["qat"]["max_lsb_ort"] = int(np.abs(ref_q - results["qat"]["_tflm"]).max())
    results["float_accuracy_ort"] = float((top1(ort_outputs(ort_session(paths["float"]),
                                                             x_test)) == y_test).mean())
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="keep the ONNX models in this directory")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        results = evaluate(build(out))
    table = {k: ({kk: vv for kk, vv in v.items() if not kk.startswith("_")}
                 if isinstance(v, dict) else v) for k, v in results.items()}
    print(f"float (onnxruntime)      {table['float_accuracy_ort']:.4f}")
    print(f"torch fake-quant (QAT)   {table['torch_accuracy']['qat_fake']:.4f}")
    print(f"PTQ int8 (TFLite-Micro)  {table['ptq']['accuracy']:.4f}")
    print(f"QAT int8 (TFLite-Micro)  {table['qat']['accuracy']:.4f}  agreement with "
          f"onnxruntime on the QAT model {table['qat']['agreement_ort']:.4f}, max "
          f"{table['qat']['max_lsb_ort']} LSB")
    for remark in table["qat"]["remarks"]:
        print(f"  remark: {remark}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
