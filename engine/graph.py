"""The model graph in memory (what engine.format writes and reads) and its shapes.

Value ids: 0 is the model input, k is the output of node k-1. A node whose `inputs` is
left empty takes the previous value (a chain). Binary weights are kept as int8 arrays of
+1/-1. engine.builders makes nodes; engine.format turns a Graph into bytes and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .enums import MODE_NAMES
from .input_spec import InputSpec

BN_KEYS = ("gamma", "beta", "mean", "var")
BINARY_OPS = ("bconv2d", "blinear")
INT8_OPS = ("qconv2d", "qlinear")
# qlinear: features per scale group (one weight scale per output and group, one activation
# scale per sample and group; FORMAT.md qlinear).
QLINEAR_GROUP = 32


class FormatError(ValueError):
    """A graph that cannot be written, or a file that the Python reader rejects."""


@dataclass
class Node:
    """One operator. `params` uses the names of engine.format.P_INDEX plus `eps` for
    batchnorm;
    `tensors` uses weight/bias/alpha or gamma/beta/mean/var."""

    op: str
    name: str = ""
    inputs: tuple[int, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    def p(self, key: str, default: int = 0) -> int:
        return int(self.params.get(key, default))

    @property
    def mode(self) -> str:
        return MODE_NAMES.get(self.p("mode"), "xnor")


@dataclass
class Graph:
    """A whole model in memory: input spec, nodes in execution order, labels, name."""

    input: InputSpec
    nodes: list[Node]
    labels: list[str] = field(default_factory=list)
    name: str = ""

    def resolved_inputs(self, index: int) -> tuple[int, ...]:
        """Value ids a node reads (a chain when the node names none)."""
        node = self.nodes[index]
        return tuple(node.inputs) if node.inputs else (index,)


# ---------------------------------------------------------------------------------------
# Shapes (per image): (C, H, W) for 4-D values, (F,) for 2-D values.


def pool_out(size: int, k: int, s: int, p0: int, p1: int, ceil_mode: bool) -> int:
    span = size + p0 + p1 - k
    if span < 0:
        return 0
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p0:
            out -= 1
    else:
        out = span // s + 1
    return out


def infer_shapes(model: Graph) -> list[tuple[int, ...]]:
    """Shapes of every value (index 0 = input). Raises FormatError where shapes don't chain."""
    spec = model.input
    shapes: list[tuple[int, ...]] = [(spec.channels, spec.height, spec.width)]
    for i, node in enumerate(model.nodes):
        ins = model.resolved_inputs(i)
        for v in ins:
            if not 0 <= v <= i:
                raise FormatError(f"node {i} ({node.op}) reads value {v}, not produced before it")
        x = shapes[ins[0]]
        op = node.op
        where = f"node {i} ({node.name or op})"
        if op in ("conv2d", "bconv2d", "qconv2d"):
            if len(x) != 3:
                raise FormatError(f"{where}: needs a 4-D input, got {x}")
            w = node.tensors["weight"]
            if w.shape[1] != x[0]:
                raise FormatError(f"{where}: weight has {w.shape[1]} input channels, input has {x[0]}")
            oh = pool_out(x[1], node.p("kh"), node.p("sh"), node.p("pt"), node.p("pb"), False)
            ow = pool_out(x[2], node.p("kw"), node.p("sw"), node.p("pl"), node.p("pr"), False)
            shapes.append((node.p("out"), oh, ow))
        elif op in ("linear", "blinear", "qlinear"):
            if len(x) != 1:
                raise FormatError(f"{where}: needs a 2-D input (flatten first), got {x}")
            if node.tensors["weight"].shape[1] != x[0]:
                raise FormatError(
                    f"{where}: weight has {node.tensors['weight'].shape[1]} inputs, value has {x[0]}"
                )
            shapes.append((node.p("out"),))
        elif op in ("maxpool", "avgpool"):
            if len(x) != 3:
                raise FormatError(f"{where}: needs a 4-D input")
            cm = bool(node.p("ceil_mode"))
            oh = pool_out(x[1], node.p("kh"), node.p("sh"), node.p("pt"), node.p("pb"), cm)
            ow = pool_out(x[2], node.p("kw"), node.p("sw"), node.p("pl"), node.p("pr"), cm)
            shapes.append((x[0], oh, ow))
        elif op == "flatten":
            if len(x) != 3:
                raise FormatError(f"{where}: needs a 4-D input")
            shapes.append((x[0] * x[1] * x[2],))
        elif op == "batchnorm":
            if node.tensors["gamma"].shape[0] != x[0]:
                raise FormatError(f"{where}: {node.tensors['gamma'].shape[0]} channels, input has {x[0]}")
            shapes.append(x)
        elif op == "add":
            if len(ins) != 2 or shapes[ins[1]] != x:
                raise FormatError(f"{where}: add needs two inputs of one shape")
            shapes.append(x)
        elif op == "softmax":
            if len(x) != 1:
                raise FormatError(f"{where}: softmax needs a 2-D input")
            shapes.append(x)
        elif op in ("relu", "dropout"):
            shapes.append(x)
        else:
            raise FormatError(f"{where}: unknown op {op!r}")
        if min(shapes[-1]) < 1:
            raise FormatError(f"{where}: empty output {shapes[-1]}")
    return shapes
