"""Export a PyTorch network built from `training.layers` to the packed model format.

The exporter walks a module tree in order and emits one engine node per leaf module:

| module | node |
|---|---|
| nn.Conv2d | conv2d |
| BinaryConv2d | bconv2d (mode, use_k; signs of W and alpha = mean |W|) |
| nn.Linear / BinaryLinear | linear / blinear |
| BatchNorm1d/2d (any _BatchNorm) | batchnorm |
| nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Softmax | the op of that name |
| BinActive | nothing when the next layer is an XNOR binary layer (it binarizes its input itself) |

A module with a method `xnor_export(builder, prefix)` emits its own nodes instead (how a
residual block with an `add` node plugs in); containers are walked recursively.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from engine import builders
from engine import format as fmt
from engine.graph import Graph, Node, infer_shapes
from engine.input_spec import InputSpec
from engine.int8 import DEFAULT_EDGES, Edges, with_edges

from .layers import BinActive, BinaryConv2d, BinaryLinear


class ExportError(ValueError):
    pass


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().to(torch.float32).numpy().copy()


def _req(t: torch.Tensor | None) -> np.ndarray:
    if t is None:
        raise ExportError("a required tensor is missing")
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _conv_padding(m: nn.Conv2d) -> tuple[int, int]:
    if isinstance(m.padding, str):
        raise ExportError(f"padding={m.padding!r} is not supported; give integers")
    return int(m.padding[0]), int(m.padding[1])


def _check_conv(m: nn.Conv2d, name: str) -> None:
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        raise ExportError(f"{name}: only groups=1, dilation=1 and zero padding are supported")


class GraphBuilder:
    """Collects nodes; `value` is the id of the value the next chained node reads."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    @property
    def value(self) -> int:
        return len(self.nodes)

    def add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes)


def binary_weights(m: BinaryConv2d | BinaryLinear) -> tuple[np.ndarray, np.ndarray]:
    """The exported signs (+1 at 0) and the alpha the PyTorch forward uses, bit for bit."""
    with torch.no_grad():
        w = m.weight.detach().cpu().to(torch.float32)
        signs = np.where(w.numpy() >= 0, 1, -1).astype(np.int8)
        alpha = m.alpha().detach().cpu().to(torch.float32).numpy().copy()
    return signs, alpha


def _leaf(b: GraphBuilder, m: nn.Module, name: str, next_mod: nn.Module | None) -> None:
    if isinstance(m, BinaryConv2d):
        _check_conv(m, name)
        signs, alpha = binary_weights(m)
        b.add(
            builders.bconv2d(
                signs,
                alpha,
                _np(m.bias),
                stride=tuple(m.stride),
                padding=_conv_padding(m),
                mode=m.mode,
                use_k=m.use_k,
                name=name,
            )
        )
    elif isinstance(m, nn.Conv2d):
        _check_conv(m, name)
        b.add(
            builders.conv2d(
                _req(m.weight), _np(m.bias), stride=tuple(m.stride), padding=_conv_padding(m), name=name
            )
        )
    elif isinstance(m, BinaryLinear):
        signs, alpha = binary_weights(m)
        b.add(builders.blinear(signs, alpha, _np(m.bias), mode=m.mode, use_k=m.use_k, name=name))
    elif isinstance(m, nn.Linear):
        b.add(builders.linear(_req(m.weight), _np(m.bias), name=name))
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        if m.running_mean is None or m.running_var is None:
            raise ExportError(f"{name}: batch norm without running statistics")
        c = m.num_features
        gamma = _req(m.weight) if m.weight is not None else np.ones(c, np.float32)
        beta = _req(m.bias) if m.bias is not None else np.zeros(c, np.float32)
        b.add(
            builders.batchnorm(
                gamma, beta, _req(m.running_mean), _req(m.running_var), float(m.eps), name=name
            )
        )
    elif isinstance(m, nn.ReLU):
        b.add(builders.simple("relu", name=name))
    elif isinstance(m, nn.MaxPool2d):
        if m.dilation not in (1, (1, 1)) or m.return_indices:
            raise ExportError(f"{name}: dilated max-pool / return_indices not supported")
        b.add(builders.maxpool(m.kernel_size, m.stride, m.padding, bool(m.ceil_mode), name=name))
    elif isinstance(m, nn.AvgPool2d):
        if m.divisor_override:
            raise ExportError(f"{name}: divisor_override not supported")
        b.add(
            builders.avgpool(
                m.kernel_size, m.stride, m.padding, bool(m.ceil_mode), bool(m.count_include_pad), name=name
            )
        )
    elif isinstance(m, nn.Flatten):
        b.add(builders.simple("flatten", name=name))
    elif isinstance(m, nn.Dropout):
        b.add(builders.simple("dropout", name=name))
    elif isinstance(m, nn.Softmax):
        b.add(builders.simple("softmax", name=name))
    elif isinstance(m, BinActive):
        if not (isinstance(next_mod, BinaryConv2d | BinaryLinear) and next_mod.mode == "xnor"):
            raise ExportError(f"{name}: a standalone BinActive must feed an XNOR binary layer")
    elif isinstance(m, nn.Identity):
        pass
    else:
        raise ExportError(f"{name}: no export for {type(m).__name__}")


def emit(b: GraphBuilder, module: nn.Module, prefix: str = "") -> None:
    """Append the nodes of `module` (and its children, in order) to the builder."""
    if hasattr(module, "xnor_export"):
        module.xnor_export(b, prefix)  # type: ignore[operator]
        return
    children = list(module.named_children())
    if not children:
        _leaf(b, module, prefix or type(module).__name__.lower(), None)
        return
    for i, (name, child) in enumerate(children):
        full = f"{prefix}.{name}" if prefix else name
        nxt = children[i + 1][1] if i + 1 < len(children) else None
        if list(child.named_children()) or hasattr(child, "xnor_export"):
            emit(b, child, full)
        else:
            _leaf(b, child, full[-31:], nxt)


def to_model(
    module: nn.Module,
    input_spec: dict[str, Any] | InputSpec,
    labels: list[str] | None = None,
    name: str = "",
) -> Graph:
    """The in-memory packed model of an eval-mode network (BN running statistics used)."""
    b = GraphBuilder()
    emit(b, module)
    spec = input_spec if isinstance(input_spec, InputSpec) else InputSpec(**input_spec)
    model = Graph(spec, b.nodes, list(labels or []), name[:63])
    infer_shapes(model)
    return model


def export_checkpoint(path: str, out: str, name: str | None = None, *, edges: Edges = DEFAULT_EDGES) -> Graph:
    """`xnornet export`: read a training checkpoint (weights_only) and write the .xnor file
    with float32 or int8 edges (engine/int8.py)."""
    from .train import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt)
    cfg = ckpt["config"]
    default = cfg.get("name") or f"{cfg['arch']}-{cfg['mode']}{'-k' if cfg['use_k'] else ''}"
    packed = with_edges(to_model(model, ckpt["input"], ckpt["labels"], name or default), edges)
    fmt.write_model(packed, out)
    return packed
