"""int8 edge layers: builders of qconv2d / qlinear nodes and the float32 -> int8 conversion.

A model's "edges" are its first layer (the convolution reading the image) and its float
linear layers (fc8). With int8 edges (FORMAT.md, ops qconv2d and qlinear):

- the first convolution reads the uint8 pixels themselves: the input normalization
  x = (p * scale - mean[c]) / std[c] is folded into its weights (w * scale / std[c],
  quantized to int8 per output channel) and into a float32 offset per tap
  (-sum_c w * mean[c] / std[c]) that the engine adds for the in-bounds taps only, so the
  border means what zero padding means in the float model;
- every float linear layer keeps int8 weights with a scale per output row and group of 32
  features; the engine quantizes its input activations per sample and group at run time
  (uint8 when none is negative, as after a ReLU) and adds the groups' scaled int32 sums.

`with_edges(model, "int8")` converts a float model; `edges_of(model)` names what a graph has.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Literal

import numpy as np

from . import builders
from . import format as fmt
from .graph import QLINEAR_GROUP, Graph, Node
from .input_spec import InputSpec

EDGES = ("float32", "int8")
Edges = Literal["float32", "int8"]
# What exporters and importers write unless told otherwise (README: "Edge precision").
DEFAULT_EDGES: Edges = "int8"


def add_edges_argument(parser: argparse.ArgumentParser) -> None:
    """The `--edges float32|int8` option of every command that writes a model file."""
    parser.add_argument(
        "--edges",
        choices=EDGES,
        default=DEFAULT_EDGES,
        help=f"precision of the first conv and the float linear layers (default {DEFAULT_EDGES})",
    )


def _round_keeping_sums(r: np.ndarray) -> np.ndarray:
    """Round [groups, terms] to integers in -127..127 so that each group's sum is the rounded
    sum of its terms: plain rounding, then the |deficit| terms whose rounding residual points
    most the deficit's way move one step. The layer's response to a constant input (a flat
    image region, a feature's mean) then keeps its float value to half a step, where plain
    rounding lets the errors add up over the terms."""
    q = np.clip(np.rint(r), -127, 127)
    resid = r - q
    deficit = np.rint(resid.sum(axis=1)).astype(np.int64)
    for g in np.nonzero(deficit)[0]:
        d = int(deficit[g])
        step = 1 if d > 0 else -1
        room = (q[g] + step >= -127) & (q[g] + step <= 127)
        score = np.where(room, resid[g] * step, -np.inf)
        k = min(abs(d), int(room.sum()))
        pick = np.argpartition(-score, k - 1)[:k] if k else np.array([], np.int64)
        q[g, pick] += step
    return q


def _row_scales(w: np.ndarray, groups: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 quantization: scale = max |w| / 127 (float32), q ~ w / scale,
    rounded keeping the sums of `groups` equal slices of each row (_round_keeping_sums)."""
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    amax = np.abs(rows).max(axis=1)
    scale = (amax / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale.astype(np.float64), 1.0)
    r = (rows / safe[:, None]).reshape(w.shape[0] * groups, -1)
    q = _round_keeping_sums(r).astype(np.int8)
    return q.reshape(w.shape), scale


def qconv2d(
    weight: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, ...] = 0,
    name: str = "",
) -> Node:
    """An int8 first layer on pixels: weight int8 [O][C][kh][kw], scale float32 [O],
    offset float32 [O][kh][kw] (added per in-bounds tap), optional bias [O]."""
    weight = np.asarray(weight)
    if weight.dtype != np.int8:
        raise fmt.FormatError("qconv2d weights must be int8")
    node = builders.conv2d(
        np.zeros(weight.shape, np.float32), bias, stride=stride, padding=padding, name=name
    )
    node.op = "qconv2d"
    node.inputs = (0,)
    node.tensors["weight"] = weight
    node.tensors["scale"] = np.asarray(scale, np.float32)
    node.tensors["offset"] = np.asarray(offset, np.float32)
    return node


def qlinear(weight: np.ndarray, scale: np.ndarray, bias: np.ndarray | None = None, *, name: str = "") -> Node:
    """An int8 linear layer: weight int8 [O][I], scale float32 [O][ceil(I / 32)] (one per
    output and group of 32 features), optional bias [O]."""
    weight = np.asarray(weight)
    if weight.dtype != np.int8:
        raise fmt.FormatError("qlinear weights must be int8")
    node = builders.linear(np.zeros(weight.shape, np.float32), bias, name=name)
    node.op = "qlinear"
    node.tensors["weight"] = weight
    node.tensors["scale"] = np.asarray(scale, np.float32)
    return node


def _channel_vector(values: tuple[float, ...], channels: int, fill: float) -> np.ndarray:
    """The header's float32 mean/std for each input channel (channels >= 4: `fill`)."""
    out = np.full(channels, fill, np.float64)
    for c in range(min(channels, 4, len(values))):
        out[c] = float(np.float32(values[c]))
    return out


def quantize_first_conv(node: Node, spec: InputSpec) -> Node:
    """conv2d on normalized input -> qconv2d on pixels (module docstring)."""
    w = node.tensors["weight"].astype(np.float64)
    channels = w.shape[1]
    mean = _channel_vector(spec.mean, channels, 0.0)
    std = _channel_vector(spec.std, channels, 1.0)
    scale = float(np.float32(spec.scale))
    # Rounded keeping each (output, input channel) filter's sum, so a flat region of any
    # brightness sees the float filter's response to half a step; the offsets are the float
    # weights' exact mean term, so black (pixel 0) regions are exact.
    q, s = _row_scales(w * (scale / std)[None, :, None, None], groups=channels)
    offset = -(w * (mean / std)[None, :, None, None]).sum(axis=1)
    pads = (node.p("pt"), node.p("pl"), node.p("pb"), node.p("pr"))
    return qconv2d(
        q,
        s,
        offset.astype(np.float32),
        node.tensors.get("bias"),
        stride=(node.p("sh"), node.p("sw")),
        padding=pads,
        name=node.name,
    )


def _group_scales(w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """qlinear's weights: int8 with one float32 scale per output row and group of `group`
    features (max |w| / 127 of the group), rounded keeping each group's sum."""
    o, f = w.shape
    ng = -(-f // group)
    padded = np.zeros((o, ng * group), np.float64)
    padded[:, :f] = w
    q, s = _row_scales(padded.reshape(o * ng, group))
    return q.reshape(o, ng * group)[:, :f], s.reshape(o, ng)


def quantize_linear(node: Node) -> Node:
    q, s = _group_scales(node.tensors["weight"].astype(np.float64), QLINEAR_GROUP)
    out = qlinear(q, s, node.tensors.get("bias"), name=node.name)
    out.inputs = node.inputs
    return out


def _reduction(node: Node) -> int:
    return int(np.prod(node.tensors["weight"].shape[1:]))


def with_edges(model: Graph, edges: Edges) -> Graph:
    """The model with float32 edges unchanged, or its edges in int8 where the format allows:
    the first conv2d when it is the only reader of a pixel input (color gray/rgb/bgr) and
    every float linear layer, each with a reduction length <= 65536. Converting back from
    int8 to float32 is not possible (the file keeps only the int8 weights)."""
    if edges not in EDGES:
        raise ValueError(f"edges must be one of {EDGES}, got {edges!r}")
    if edges == "float32":
        if edges_of(model) != "float32":
            raise ValueError("this model already has int8 edges; its float32 weights are not in the file")
        return model
    readers = [i for i in range(len(model.nodes)) if 0 in model.resolved_inputs(i)]
    nodes = []
    for i, node in enumerate(model.nodes):
        small = node.op in ("conv2d", "linear") and _reduction(node) <= fmt.INT8_MAX_REDUCTION
        if small and node.op == "conv2d" and readers == [i] and model.input.color != "other":
            nodes.append(quantize_first_conv(node, model.input))
        elif small and node.op == "linear":
            nodes.append(quantize_linear(node))
        else:
            nodes.append(node)
        if nodes[-1] is not node and not node.inputs:
            nodes[-1].inputs = model.resolved_inputs(i)
    return dataclasses.replace(model, nodes=nodes)


def edges_of(model: Graph) -> Edges:
    """'int8' when the graph has an int8 layer, else 'float32'."""
    return "int8" if any(n.op in ("qconv2d", "qlinear") for n in model.nodes) else "float32"
