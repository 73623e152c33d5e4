"""Architectures built from the blocks of `training.layers`, as flat `nn.Sequential`s whose
child names are the node names of the exported graph (the exporter walks them in order).

- `fmnist_net`: a small network for 28x28 grayscale input (Fashion-MNIST): a float first
  conv, binary conv blocks BN -> BinActiv -> BinConv -> ReLU -> Pool, a binary FC block and
  a float last layer.
- `alexnet`: the paper's XNOR / BWN AlexNet (227x227x3, no groups), the same node order as
  `benchmarks.architectures.alexnet` so the two can be compared node by node.

A ResNet-18 can follow: the exporter (`training.export`) also accepts modules that emit
their own nodes (a `xnor_export(builder, prefix)` method), which is how a residual block
with an `add` node would plug in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from .data import FMNIST_LABELS
from .layers import BatchNorm1d, BatchNorm2d, BinaryConv2d, BinaryLinear

ARCHS = ("fmnist", "alexnet")
__all__ = ["ARCHS", "FMNIST_LABELS", "INPUTS", "alexnet", "build", "fmnist_net"]


def _ch(c: int, width: float) -> int:
    return max(1, round(c * width))


def fmnist_net(
    mode: str = "xnor",
    use_k: bool = False,
    classes: int = 10,
    width: float = 1.0,
    channels: tuple[int, int, int] = (64, 128, 256),
    hidden: int = 512,
) -> nn.Sequential:
    """28x28x1 -> conv1 (float, 64) -> pool -> [BN, bconv 128, ReLU, pool] -> [BN, bconv 256,
    ReLU, pool] -> BN -> flatten -> [bfc 512, ReLU] -> BN -> fc (float) -> classes."""
    c1, c2, c3 = (_ch(c, width) for c in channels)
    h = _ch(hidden, width)
    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(1, c1, 3, padding=1)),
        ("bn1", BatchNorm2d(c1)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),  # 14x14
        ("bn2", BatchNorm2d(c1)),
        ("conv2", BinaryConv2d(c1, c2, 3, padding=1, mode=mode, use_k=use_k)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),  # 7x7
        ("bn3", BatchNorm2d(c2)),
        ("conv3", BinaryConv2d(c2, c3, 3, padding=1, mode=mode, use_k=use_k)),
        ("relu3", nn.ReLU()),
        ("pool3", nn.MaxPool2d(2, ceil_mode=True)),  # 4x4
        ("bn4", BatchNorm2d(c3)),
        ("flatten", nn.Flatten()),
        ("fc4", BinaryLinear(c3 * 16, h, mode=mode, use_k=use_k)),
        ("relu4", nn.ReLU()),
        ("bn5", BatchNorm1d(h)),
        ("drop5", nn.Dropout(0.2)),
        ("fc5", nn.Linear(h, classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


def alexnet(
    mode: str = "xnor", use_k: bool = False, classes: int = 1000, width: float = 1.0
) -> nn.Sequential:
    """The paper's XNOR / BWN AlexNet for 227x227x3 input; `width` < 1 narrows every hidden
    layer (tests). Node names and order equal benchmarks.architectures.alexnet's."""
    c1, c2, c3, c4, c5, f6, f7 = (_ch(c, width) for c in (96, 256, 384, 384, 256, 4096, 4096))

    def bconv(i: int, o: int, k: int, p: int) -> BinaryConv2d:
        return BinaryConv2d(i, o, k, padding=p, mode=mode, use_k=use_k)

    layers: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(3, c1, 11, stride=4)),
        ("bn1", BatchNorm2d(c1)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(3, 2)),
        ("bn2", BatchNorm2d(c1)),
        ("conv2", bconv(c1, c2, 5, 2)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(3, 2)),
        ("bn3", BatchNorm2d(c2)),
        ("conv3", bconv(c2, c3, 3, 1)),
        ("relu3", nn.ReLU()),
        ("bn4", BatchNorm2d(c3)),
        ("conv4", bconv(c3, c4, 3, 1)),
        ("relu4", nn.ReLU()),
        ("bn5", BatchNorm2d(c4)),
        ("conv5", bconv(c4, c5, 3, 1)),
        ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(3, 2)),
        ("bn6", BatchNorm2d(c5)),
        ("flatten", nn.Flatten()),
        ("fc6", BinaryLinear(c5 * 36, f6, mode=mode, use_k=use_k)),
        ("relu6", nn.ReLU()),
        ("bn7", BatchNorm1d(f6)),
        ("fc7", BinaryLinear(f6, f7, mode=mode, use_k=use_k)),
        ("relu7", nn.ReLU()),
        ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(f7, classes)),
    ]
    return nn.Sequential(OrderedDict(layers))


# What each architecture's input is (for the exporter's InputSpec and the data pipeline).
INPUTS: dict[str, dict[str, Any]] = {
    "fmnist": {
        "channels": 1,
        "height": 28,
        "width": 28,
        "color": "gray",
        "resize": "exact",
        "resize_size": 0,
        "scale": 1.0 / 255.0,
        "mean": (0.2860,),
        "std": (0.3530,),
    },
    "alexnet": {
        "channels": 3,
        "height": 227,
        "width": 227,
        "color": "rgb",
        "resize": "shorter_crop",
        "resize_size": 256,
        "scale": 1.0 / 255.0,
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
    },
}


def build(
    arch: str, mode: str = "xnor", use_k: bool = False, classes: int | None = None, width: float = 1.0
) -> nn.Sequential:
    """The network named by a checkpoint's config."""
    if arch == "fmnist":
        return fmnist_net(mode, use_k, classes or 10, width)
    if arch == "alexnet":
        return alexnet(mode, use_k, classes or 1000, width)
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")
