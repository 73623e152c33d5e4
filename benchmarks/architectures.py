"""Graphs of the paper's networks with seeded weights, for exactness tests and benchmarks.

These are NOT trained models: the weights are random draws from a seeded generator.
Trained weights come from `xnornet train` + `xnornet export`, or from an importer.
"""

from __future__ import annotations

import numpy as np

from engine import builders
from engine.graph import Graph, Node
from engine.input_spec import InputSpec
from engine.int8 import Edges, with_edges

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _bn(rng: np.random.Generator, c: int, name: str, eps: float = 1e-5) -> Node:
    return builders.batchnorm(
        rng.uniform(0.5, 1.5, c),
        rng.normal(0, 0.1, c),
        rng.normal(0, 0.1, c),
        rng.uniform(0.5, 1.5, c),
        eps,
        name=name,
    )


def _binary_conv(
    rng: np.random.Generator, o: int, i: int, k: int, pad: int, mode: str, use_k: bool, name: str
) -> Node:
    w = rng.standard_normal((o, i, k, k)).astype(np.float32) / np.sqrt(i * k * k)
    signs, alpha = builders.binarize_weights(w)
    return builders.bconv2d(
        signs, alpha, rng.normal(0, 0.1, o), padding=pad, mode=mode, use_k=use_k, name=name
    )


def _binary_fc(rng: np.random.Generator, o: int, i: int, mode: str, use_k: bool, name: str) -> Node:
    w = rng.standard_normal((o, i)).astype(np.float32) / np.sqrt(i)
    signs, alpha = builders.binarize_weights(w)
    return builders.blinear(signs, alpha, rng.normal(0, 0.1, o), mode=mode, use_k=use_k, name=name)


def alexnet(
    seed: int = 0,
    mode: str = "xnor",
    use_k: bool = False,
    classes: int = 1000,
    width: float = 1.0,
    edges: Edges = "float32",
) -> Graph:
    """The paper's XNOR (or BWN) AlexNet: 227x227x3, conv1 float, conv2..fc7 binary, fc8 float,
    BatchNorm before each binary layer, max-pools 3/2. `width` < 1 shrinks every hidden
    layer (for quick tests); 1.0 is the paper's shape. edges="int8": conv1 and fc8 in int8
    (engine/int8.py), drawn from the same seeded float weights."""
    rng = np.random.default_rng(seed)

    def ch(c: int) -> int:
        return max(1, round(c * width))

    c1, c2, c3, c4, c5, f6, f7 = ch(96), ch(256), ch(384), ch(384), ch(256), ch(4096), ch(4096)
    n: list[Node] = [
        builders.conv2d(
            rng.standard_normal((c1, 3, 11, 11)).astype(np.float32) / np.sqrt(363),
            rng.normal(0, 0.1, c1),
            stride=4,
            name="conv1",
        ),
        _bn(rng, c1, "bn1"),
        builders.simple("relu", name="relu1"),
        builders.maxpool(3, 2, name="pool1"),
        _bn(rng, c1, "bn2"),
        _binary_conv(rng, c2, c1, 5, 2, mode, use_k, "conv2"),
        builders.simple("relu", name="relu2"),
        builders.maxpool(3, 2, name="pool2"),
        _bn(rng, c2, "bn3"),
        _binary_conv(rng, c3, c2, 3, 1, mode, use_k, "conv3"),
        builders.simple("relu", name="relu3"),
        _bn(rng, c3, "bn4"),
        _binary_conv(rng, c4, c3, 3, 1, mode, use_k, "conv4"),
        builders.simple("relu", name="relu4"),
        _bn(rng, c4, "bn5"),
        _binary_conv(rng, c5, c4, 3, 1, mode, use_k, "conv5"),
        builders.simple("relu", name="relu5"),
        builders.maxpool(3, 2, name="pool5"),
        _bn(rng, c5, "bn6"),
        builders.simple("flatten", name="flatten"),
        _binary_fc(rng, f6, c5 * 36, mode, use_k, "fc6"),
        builders.simple("relu", name="relu6"),
        _bn(rng, f6, "bn7"),
        _binary_fc(rng, f7, f6, mode, use_k, "fc7"),
        builders.simple("relu", name="relu7"),
        builders.simple("dropout", name="drop7"),
        builders.linear(
            rng.standard_normal((classes, f7)).astype(np.float32) / np.sqrt(f7),
            rng.normal(0, 0.1, classes),
            name="fc8",
        ),
    ]
    spec = alexnet_input()
    labels = [f"class_{i:04d}" for i in range(classes)]
    name = f"alexnet-{mode}{'-k' if use_k else ''}-seeded{seed}"
    return with_edges(Graph(spec, n, labels, name=name), edges)


def alexnet_input() -> InputSpec:
    """AlexNet's input: 227x227 RGB, shorter side 256 then center crop, ImageNet mean/std."""
    return InputSpec(3, 227, 227, "rgb", "shorter_crop", 256, 1 / 255, IMAGENET_MEAN, IMAGENET_STD)


def alexnet_layer_specs() -> list[tuple[str, str, dict[str, int]]]:
    """The float twin of alexnet() as (name, kind, shape) rows, for PyTorch baselines."""
    return [
        ("conv1", "conv", {"i": 3, "o": 96, "k": 11, "s": 4, "p": 0, "hw": 227}),
        ("conv2", "conv", {"i": 96, "o": 256, "k": 5, "s": 1, "p": 2, "hw": 27}),
        ("conv3", "conv", {"i": 256, "o": 384, "k": 3, "s": 1, "p": 1, "hw": 13}),
        ("conv4", "conv", {"i": 384, "o": 384, "k": 3, "s": 1, "p": 1, "hw": 13}),
        ("conv5", "conv", {"i": 384, "o": 256, "k": 3, "s": 1, "p": 1, "hw": 13}),
        ("fc6", "fc", {"i": 9216, "o": 4096}),
        ("fc7", "fc", {"i": 4096, "o": 4096}),
        ("fc8", "fc", {"i": 4096, "o": 1000}),
    ]
