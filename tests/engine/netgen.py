"""Random small graphs covering every op, mode and awkward shape of FORMAT.md."""

from __future__ import annotations

import numpy as np

from engine import builders
from engine.graph import Graph, Node, infer_shapes
from engine.input_spec import InputSpec


def _bn(rng: np.random.Generator, c: int, name: str) -> Node:
    return builders.batchnorm(
        rng.uniform(0.5, 1.5, c),
        rng.normal(0, 0.2, c),
        rng.normal(0, 0.2, c),
        rng.uniform(0.3, 1.5, c),
        float(rng.choice([1e-5, 1e-4, 1e-3])),
        name=name,
    )


def _bconv(
    rng: np.random.Generator,
    o: int,
    i: int,
    k: int,
    stride: int,
    pad: int | tuple[int, ...],
    mode: str,
    use_k: bool,
    name: str,
    bias: bool = True,
) -> Node:
    signs, alpha = builders.binarize_weights(rng.standard_normal((o, i, k, k)))
    return builders.bconv2d(
        signs,
        alpha,
        rng.normal(0, 0.1, o) if bias else None,
        stride=stride,
        padding=pad,
        mode=mode,
        use_k=use_k,
        name=name,
    )


def conv_net(
    seed: int,
    mode: str = "xnor",
    use_k: bool = False,
    in_c: int = 3,
    hw: tuple[int, int] = (19, 17),
    k1: int = 3,
    classes: int = 7,
    softmax: bool = False,
) -> Graph:
    """conv -> bn -> relu -> maxpool(ceil) -> bn -> bconv(s1) -> relu -> bn -> bconv(stride 2, odd pad)
    -> avgpool -> bn -> flatten -> blinear -> relu -> bn1d -> dropout -> linear (-> softmax).
    Channel counts are deliberately not multiples of 16/32/64."""
    rng = np.random.default_rng(seed)
    c1, c2, c3, f = 19, 70, 37, 45
    nodes = [
        builders.conv2d(
            rng.standard_normal((c1, in_c, k1, k1)).astype(np.float32) / k1,
            rng.normal(0, 0.1, c1),
            stride=1,
            padding=k1 // 2,
            name="conv1",
        ),
        _bn(rng, c1, "bn1"),
        builders.simple("relu"),
        builders.maxpool(3, 2, 1, ceil_mode=True),
        _bn(rng, c1, "bn2"),
        _bconv(rng, c2, c1, 3, 1, 1, mode, use_k, "bconv2"),
        builders.simple("relu"),
        _bn(rng, c2, "bn3"),
        _bconv(rng, c3, c2, 5, 2, (2, 1, 1, 2), mode, use_k, "bconv3", bias=False),
        builders.avgpool(2, 1, 1, count_include_pad=bool(seed % 2)),
        _bn(rng, c3, "bn4"),
        builders.simple("flatten"),
    ]
    shapes = infer_shapes(Graph(InputSpec(in_c, *hw), nodes))
    flat = shapes[-1][0]
    signs, alpha = builders.binarize_weights(rng.standard_normal((f, flat)))
    nodes += [
        builders.blinear(signs, alpha, rng.normal(0, 0.1, f), mode=mode, use_k=use_k, name="fc1"),
        builders.simple("relu"),
        _bn(rng, f, "bn5"),
        builders.simple("dropout"),
        builders.linear(
            rng.standard_normal((classes, f)).astype(np.float32) / np.sqrt(f),
            rng.normal(0, 0.1, classes),
            name="fc2",
        ),
    ]
    if softmax:
        nodes.append(builders.simple("softmax"))
    spec = InputSpec(
        in_c,
        hw[0],
        hw[1],
        "rgb" if in_c == 3 else "other",
        mean=(0.0,) * min(in_c, 4),
        std=(1.0,) * min(in_c, 4),
    )
    return Graph(spec, nodes, [f"c{i}" for i in range(classes)], name=f"net{seed}-{mode}")


def residual_net(seed: int, mode: str = "xnor") -> Graph:
    """A ResNet-style block: the graph is a DAG, not a chain (add of a skip connection)."""
    rng = np.random.default_rng(seed)
    c = 33
    nodes = [
        builders.conv2d(
            rng.standard_normal((c, 3, 3, 3)).astype(np.float32) / 3, None, stride=2, padding=1, name="stem"
        ),
        _bn(rng, c, "bn0"),  # value 2
        _bconv(rng, c, c, 3, 1, 1, mode, False, "b1"),  # value 3 (reads 2)
        _bn(rng, c, "bn1"),  # value 4
        _bconv(rng, c, c, 3, 1, 1, mode, False, "b2"),  # value 5
        builders.simple("add", inputs=(5, 2)),  # value 6: skip from 2
        builders.simple("relu"),  # value 7
        builders.avgpool(6, 6),  # global pool of 6x6
        builders.simple("flatten"),
        builders.linear(
            rng.standard_normal((5, c)).astype(np.float32) / np.sqrt(c), rng.normal(0, 0.1, 5), name="fc"
        ),
    ]
    return Graph(InputSpec(3, 12, 11, "rgb"), nodes, [], name=f"res{seed}")


def integer_net(seed: int) -> Graph:
    """Small-integer weights and no BN: every float sum is exact in float32, so every ISA and
    thread count must give bit-identical outputs end to end."""
    rng = np.random.default_rng(seed)
    nodes = [
        builders.conv2d(
            rng.integers(-2, 3, (21, 5, 3, 3)).astype(np.float32),
            rng.integers(-3, 4, 21).astype(np.float32),
            padding=1,
            name="conv1",
        ),
        builders.simple("relu"),
        builders.bconv2d(
            rng.choice([-1, 1], (40, 21, 3, 3)),
            np.ones(40, np.float32),
            rng.integers(-2, 3, 40),
            padding=(1, 0, 2, 1),
            name="b",
        ),
        builders.maxpool(2, 2),
        builders.bconv2d(
            rng.choice([-1, 1], (17, 40, 1, 1)), np.full(17, 0.5, np.float32), None, mode="bwn", name="w"
        ),
        builders.simple("flatten"),
    ]
    flat = infer_shapes(Graph(InputSpec(5, 9, 10, "other", mean=(0,) * 4, std=(1,) * 4), nodes))[-1][0]
    nodes += [
        builders.blinear(rng.choice([-1, 1], (33, flat)), np.full(33, 0.25, np.float32), None, name="fc1"),
        builders.linear(rng.integers(-2, 3, (9, 33)).astype(np.float32), None, name="fc2"),
    ]
    return Graph(InputSpec(5, 9, 10, "other", mean=(0,) * 4, std=(1,) * 4), nodes, [], name="int")


def integer_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-4, 5, shape).astype(np.float32)
