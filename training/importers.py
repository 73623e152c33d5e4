"""Importers of public XNOR-Net checkpoints (offline tooling; the service never unpickles).

`jiecaoyu-alexnet`: the ImageNet AlexNet of XNOR-Net-PyTorch (github.com/jiecaoyu/XNOR-Net-PyTorch),
a `torch.save` dict {state_dict, best_prec1, epoch, arch, optimizer}. Its network:

    features.module.0  Conv2d(3, 96, 11, stride 4)            float
    features.module.1  BatchNorm2d(96, eps=1e-4); ReLU; MaxPool(3, 2)
    features.module.4  BinConv2d(96, 256, 5, pad 2): bn(eps 1e-4) -> sign -> conv(+bias) -> ReLU
                       MaxPool(3, 2)
    features.module.6  BinConv2d(256, 384, 3, pad 1)
    features.module.7  BinConv2d(384, 384, 3, pad 1)
    features.module.8  BinConv2d(384, 256, 3, pad 1); MaxPool(3, 2)
    flatten (256*6*6 = 9216)
    classifier.0       BinConv2d(9216, 4096, Linear=True): bn1d(eps 1e-4) -> sign -> linear(+bias) -> ReLU
    classifier.1       BinConv2d(4096, 4096, Linear=True)  (dropout inside is identity at inference)
    classifier.2       BatchNorm1d(4096, eps=1e-3); Dropout
    classifier.4       Linear(4096, 1000)                     float

Its stored binary-layer weights are the real-valued latent weights; it binarizes them as
`W -= mean over input channels (dim 1); W = clamp(W, -1, 1); W = sign(W) * mean|W| per filter`,
which is what this importer does (with sign(0) = +1, the engine's rule, where PyTorch's
sign gives 0: a measure-zero difference). It uses alpha only, no K. Its preprocessing: resize
to 256x256, center-crop 227, pixels 0..255 minus mean*255 (no std); the model file stores
"resize the shorter side to 256, center-crop 227", identical for square images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine import builders
from engine import format as fmt
from engine.graph import Graph, Node
from engine.input_spec import InputSpec
from engine.int8 import DEFAULT_EDGES, Edges, with_edges

IMAGENET_MEAN = (0.485, 0.456, 0.406)
CLASSES_FILE = Path(__file__).with_name("data") / "imagenet_classes.txt"

# (key prefix, kind, in, out, kernel, pad) of the binary blocks, in order.
JIECAOYU_BLOCKS = [
    ("features.module.4", "conv", 96, 256, 5, 2),
    ("features.module.6", "conv", 256, 384, 3, 1),
    ("features.module.7", "conv", 384, 384, 3, 1),
    ("features.module.8", "conv", 384, 256, 3, 1),
    ("classifier.0", "linear", 9216, 4096, 0, 0),
    ("classifier.1", "linear", 4096, 4096, 0, 0),
]
BN_EPS_FEATURES = 1e-4
BN_EPS_CLASSIFIER = 1e-3


class ImportFormatError(ValueError):
    pass


def imagenet_classes() -> list[str]:
    names = [line.strip() for line in CLASSES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != 1000:
        raise ImportFormatError(f"{CLASSES_FILE}: {len(names)} class names, expected 1000")
    return names


def jiecaoyu_binarize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """XNOR-Net-PyTorch's binarization of latent weights: mean-centre over input channels,
    clamp to [-1, 1], then signs and per-filter alpha = mean |W| (float32 throughout)."""
    w = np.asarray(w, np.float32)
    w = (w - w.mean(axis=1, keepdims=True, dtype=np.float32)).astype(np.float32)
    w = np.clip(w, -1.0, 1.0).astype(np.float32)
    return builders.binarize_weights(w)


def _expect(sd: dict[str, Any], key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in sd:
        raise ImportFormatError(f"checkpoint lacks {key!r}")
    t = sd[key]
    arr = t.detach().cpu().float().numpy() if hasattr(t, "detach") else np.asarray(t, np.float32)
    if tuple(arr.shape) != shape:
        raise ImportFormatError(f"{key}: shape {tuple(arr.shape)}, expected {shape}")
    return arr.astype(np.float32)


def _bn(sd: dict[str, Any], prefix: str, c: int, eps: float, name: str) -> Node:
    g, b, m, v = (
        _expect(sd, f"{prefix}.{k}", (c,)) for k in ("weight", "bias", "running_mean", "running_var")
    )
    return builders.batchnorm(g, b, m, v, eps, name=name)


def _state_dict(ckpt: Any) -> dict[str, Any]:
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise ImportFormatError("not a checkpoint dict with a 'state_dict'")
    # Checkpoints saved from a DataParallel-wrapped model may carry a leading 'module.'.
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def jiecaoyu_alexnet_model(
    state_dict: dict[str, Any], labels: list[str] | None = None, name: str = "alexnet-xnor-jiecaoyu"
) -> Graph:
    """The packed model of an XNOR-Net-PyTorch AlexNet state dict (numpy or torch tensors)."""
    sd = _state_dict(state_dict)
    n: list[Node] = [
        builders.conv2d(
            _expect(sd, "features.module.0.weight", (96, 3, 11, 11)),
            _expect(sd, "features.module.0.bias", (96,)),
            stride=4,
            name="conv1",
        ),
        _bn(sd, "features.module.1", 96, BN_EPS_FEATURES, "bn1"),
        builders.simple("relu", name="relu1"),
        builders.maxpool(3, 2, name="pool1"),
    ]
    for idx, (prefix, kind, i, o, k, p) in enumerate(JIECAOYU_BLOCKS):
        layer = idx + 2
        if kind == "conv":
            n.append(_bn(sd, f"{prefix}.bn", i, BN_EPS_FEATURES, f"bn{layer}"))
            signs, alpha = jiecaoyu_binarize(_expect(sd, f"{prefix}.conv.weight", (o, i, k, k)))
            n.append(
                builders.bconv2d(
                    signs,
                    alpha,
                    _expect(sd, f"{prefix}.conv.bias", (o,)),
                    padding=p,
                    mode="xnor",
                    name=f"conv{layer}",
                )
            )
            n.append(builders.simple("relu", name=f"relu{layer}"))
            if layer in (2, 5):
                n.append(builders.maxpool(3, 2, name=f"pool{layer}"))
            if layer == 5:
                n.append(builders.simple("flatten", name="flatten"))
        else:
            n.append(_bn(sd, f"{prefix}.bn", i, BN_EPS_FEATURES, f"bn{layer}"))
            signs, alpha = jiecaoyu_binarize(_expect(sd, f"{prefix}.linear.weight", (o, i)))
            n.append(
                builders.blinear(
                    signs, alpha, _expect(sd, f"{prefix}.linear.bias", (o,)), mode="xnor", name=f"fc{layer}"
                )
            )
            n.append(builders.simple("relu", name=f"relu{layer}"))
    n.append(_bn(sd, "classifier.2", 4096, BN_EPS_CLASSIFIER, "bn8"))
    n.append(builders.simple("dropout", name="drop8"))
    n.append(
        builders.linear(
            _expect(sd, "classifier.4.weight", (1000, 4096)),
            _expect(sd, "classifier.4.bias", (1000,)),
            name="fc8",
        )
    )
    spec = InputSpec(
        3, 227, 227, "rgb", "shorter_crop", 256, 1.0, tuple(m * 255.0 for m in IMAGENET_MEAN), (1.0, 1.0, 1.0)
    )
    return Graph(spec, n, labels if labels is not None else imagenet_classes(), name)


def load_jiecaoyu_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """torch.load with weights_only=True: tensors and plain containers only, never code."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ImportFormatError(f"{path}: cannot be read as a weights-only checkpoint: {exc}") from exc
    return _state_dict(ckpt)


def import_jiecaoyu_alexnet(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    name: str = "alexnet-xnor-jiecaoyu",
    *,
    edges: Edges = DEFAULT_EDGES,
) -> Graph:
    model = with_edges(jiecaoyu_alexnet_model(load_jiecaoyu_checkpoint(path), name=name), edges)
    fmt.write_model(model, out)
    return model


IMPORTERS = {"jiecaoyu-alexnet": import_jiecaoyu_alexnet}
