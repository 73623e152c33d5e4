"""Small models for the service tests, written with engine.format (no trained files needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import builders
from engine import format as fmt
from engine.graph import Graph
from engine.input_spec import InputSpec
from training.data import FMNIST_LABELS

FASHION_LABELS = list(FMNIST_LABELS)


def tiny_model(
    seed: int = 0,
    *,
    color: str = "gray",
    size: int = 28,
    classes: int = 10,
    resize: str = "exact",
    resize_size: int = 0,
    softmax: bool = False,
    name: str = "tiny",
) -> Graph:
    """conv -> bn -> bconv2d -> relu -> flatten -> linear, on size x size images."""
    rng = np.random.default_rng(seed)
    c = 1 if color == "gray" else 3
    s1 = (size + 2 - 3) // 2 + 1
    s2 = (s1 + 2 - 3) // 2 + 1
    signs, alpha = builders.binarize_weights(rng.standard_normal((8, 8, 3, 3)))
    nodes = [
        builders.conv2d(
            rng.standard_normal((8, c, 3, 3)).astype(np.float32) * 0.5,
            rng.standard_normal(8) * 0.1,
            stride=2,
            padding=1,
            name="conv1",
        ),
        builders.batchnorm(
            np.ones(8), rng.standard_normal(8) * 0.1, rng.standard_normal(8) * 0.1, np.ones(8), name="bn1"
        ),
        builders.bconv2d(signs, alpha, stride=2, padding=1, mode="xnor", name="bconv2"),
        builders.simple("relu"),
        builders.simple("flatten"),
        builders.linear(
            rng.standard_normal((classes, 8 * s2 * s2)).astype(np.float32) * 0.05,
            rng.standard_normal(classes) * 0.1,
            name="fc",
        ),
    ]
    if softmax:
        nodes.append(builders.simple("softmax"))
    labels = FASHION_LABELS[:classes] if classes <= 10 else [f"class {i}" for i in range(classes)]
    spec = InputSpec(
        c,
        size,
        size,
        color=color,
        resize=resize,
        resize_size=resize_size,
        scale=1 / 255,
        mean=(0.5,) * c,
        std=(0.25,) * c,
    )
    return Graph(spec, nodes, labels, name)


def write_version(repo: Path, name: str, version: int, model: Graph | None = None, *, seed: int = 0) -> Path:
    path = repo / name / str(version) / "model.xnor"
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt.write_model(model or tiny_model(seed), path)
    return path


def write_corrupt(repo: Path, name: str, version: int, *, seed: int = 0) -> Path:
    """A model file with one flipped byte in its weights (the CRC catches it)."""
    path = write_version(repo, name, version, seed=seed)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    return path
