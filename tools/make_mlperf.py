"""MLPerf-Tiny-sized networks with random weights, as ONNX (for ``tools/bench_mcu.py``).

Usage::

    python tools/make_mlperf.py [--out DIR] [--only NAME ...]

The architectures of the MLPerf Tiny v1.0 reference models, built in PyTorch with seeded
random weights and random BatchNorm statistics (so activations have realistic, varied
ranges; the models are not trained and their outputs mean nothing) and exported with
torch's TorchScript ONNX exporter, constants folded (BatchNorm folds into the
convolutions):

* ``ic_resnet8``: image classification, CIFAR-10 ResNet-8 on 32x32x3 (three stacks of
  16/32/64 channels, 1x1 stride-2 shortcuts, 8x8 average pool, 10 classes);
* ``kws_dscnn``: keyword spotting, DS-CNN on 49x10x1 (10x4 stride-2 convolution to 64
  channels, 25x5 outputs as with SAME padding, four depthwise-separable blocks, 12 classes);
* ``vww_mobilenet``: visual wake words, MobileNetV1 with width 0.25 on 96x96x3 (13
  depthwise-separable blocks, 2 classes);
* ``ad_autoencoder``: anomaly detection, the fully connected autoencoder 640 -> 128 x 4 ->
  8 -> 128 x 4 -> 640 with BatchNorm and ReLU.

Nothing is committed: the files are written to ``--out`` (default: a cache directory under
the system temporary directory) and rebuilt identically from the seeds. ``calibration(name,
n)`` gives seeded random representative inputs of each network's shape.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running as ``python tools/make_mlperf.py``
    sys.path.insert(0, str(REPO_ROOT))


DEFAULT_OUT = Path(tempfile.gettempdir()) / "microlith-mlperf"
SEED = 20261202


def _conv_bn(cin: int, cout: int, k: int | tuple[int, int], stride: int = 1,
             padding: int | tuple[int, int] = 0, groups: int = 1, act: bool = True
             ) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, padding, groups=groups,
                                         bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, 3, stride, 1),
                                  _conv_bn(cout, cout, 3, 1, 1, act=False))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      _conv_bn(cin, cout, 1, stride, 0, act=False))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.short(x))


def ic_resnet8() -> nn.Module:
    return nn.Sequential(_conv_bn(3, 16, 3, 1, 1), _ResBlock(16, 16, 1), _ResBlock(16, 32, 2),
                         _ResBlock(32, 64, 2), nn.AvgPool2d(8), nn.Flatten(), nn.Linear(64, 10))


def _dw_separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv_bn(cin, cin, 3, stride, 1, groups=cin), _conv_bn(cin, cout, 1))


def kws_dscnn() -> nn.Module:
    # TensorFlow's SAME padding of the 10x4 stride-2 kernel on 49x10 is rows 4 + 5, columns
    # 1 + 1 (25x5 outputs); torch exports an asymmetric pad as shape arithmetic, so rows
    # 5 + 5 (the same 25x5 outputs and MACs) are used instead
    return nn.Sequential(_conv_bn(1, 64, (10, 4), 2, (5, 1)),
                         *[_dw_separable(64, 64) for _ in range(4)], nn.AvgPool2d((25, 5)),
                         nn.Flatten(), nn.Linear(64, 12))


def vww_mobilenet() -> nn.Module:
    plan = [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2),
            *[(128, 128, 1)] * 5, (128, 256, 2), (256, 256, 1)]
    return nn.Sequential(_conv_bn(3, 8, 3, 2, 1), *[_dw_separable(a, b, s) for a, b, s in plan],
                         nn.AvgPool2d(3), nn.Flatten(), nn.Linear(256, 2))


def ad_autoencoder() -> nn.Module:
    sizes = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    layers.append(nn.Linear(128, 640))
    return nn.Sequential(*layers)


NETWORKS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "ic_resnet8": (ic_resnet8, (1, 3, 32, 32)),
    "kws_dscnn": (kws_dscnn, (1, 1, 49, 10)),
    "vww_mobilenet": (vww_mobilenet, (1, 3, 96, 96)),
    "ad_autoencoder": (ad_autoencoder, (1, 640)),
}


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) *
                                    (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.05)
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = module.num_features
                module.weight.copy_(1.0 + 0.2 * torch.randn(n, generator=gen))
                module.bias.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                module.running_var.copy_(1.0 + 0.5 * torch.rand(n, generator=gen))
    return model.eval()


def build(name: str, out: Path = DEFAULT_OUT) -> Path:
    """Write ``out/<name>.onnx`` (rebuilt only when missing) and return its path."""
    make, shape = NETWORKS[name]
    path = out / f"{name}.onnx"
    if not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(SEED)
        model = _randomize(make(), SEED + sorted(NETWORKS).index(name))
        tmp = path.with_suffix(".onnx.tmp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(shape),), str(tmp), dynamo=False,
                              opset_version=13, do_constant_folding=True,
                              input_names=["input"], output_names=["output"])
        tmp.replace(path)
    return path


def calibration(name: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` seeded random inputs (normal, unit variance) of the network's input shape."""
    shape = NETWORKS[name][1]
    rng = np.random.default_rng(seed + sorted(NETWORKS).index(name))
    return rng.standard_normal((n, *shape[1:])).astype(np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", choices=sorted(NETWORKS), default=None)
    args = parser.parse_args(argv)
    for name in args.only or NETWORKS:
        print(build(name, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
