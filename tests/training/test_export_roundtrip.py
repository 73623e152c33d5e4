"""Export round trip: the PyTorch eval forward and engine.Model.infer agree on random inputs
(argmax identical, logits within 1e-3 relative) for the Fashion-MNIST net and the AlexNet,
in both modes, with and without K."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'xnornet[train]')")
import torch

from benchmarks import architectures
from engine import format as fmt
from engine.graph import infer_shapes
from training.export import ExportError, to_model
from training.models import INPUTS, build

from .helpers import assert_logits_match, engine_infer, randomize_bn

VARIANTS = [("xnor", False), ("xnor", True), ("bwn", False)]


def _roundtrip(arch: str, mode: str, use_k: bool, width: float, n: int, seed: int = 0) -> None:
    torch.manual_seed(seed)
    net = build(arch, mode, use_k, None, width)
    randomize_bn(net, seed + 1)
    net.eval()
    spec = INPUTS[arch]
    x = torch.randn(
        n, spec["channels"], spec["height"], spec["width"], generator=torch.Generator().manual_seed(seed)
    )
    with torch.no_grad():
        ref = net(x).numpy()
    data = fmt.to_bytes(to_model(net, spec, name=f"{arch}-{mode}"))
    assert_logits_match(engine_infer(data, x.numpy()), ref)


@pytest.mark.parametrize("mode,use_k", VARIANTS)
def test_fmnist_roundtrip(mode: str, use_k: bool) -> None:
    _roundtrip("fmnist", mode, use_k, 1.0, 16)


@pytest.mark.parametrize("mode,use_k", VARIANTS)
def test_narrow_alexnet_roundtrip(mode: str, use_k: bool) -> None:
    _roundtrip("alexnet", mode, use_k, 0.125, 4)


def test_full_size_alexnet_roundtrip() -> None:
    t0 = time.time()
    _roundtrip("alexnet", "xnor", False, 1.0, 2)
    assert time.time() - t0 < 60


@pytest.mark.parametrize("mode,use_k", VARIANTS)
def test_alexnet_exports_the_engine_graph(mode: str, use_k: bool) -> None:
    """Our AlexNet exports to the node order, names and parameters of benchmarks.architectures.alexnet."""
    net = build("alexnet", mode, use_k, 1000, 0.125).eval()
    ours = to_model(net, INPUTS["alexnet"])
    theirs = architectures.alexnet(seed=0, mode=mode, use_k=use_k, width=0.125)
    assert [(n.op, n.name) for n in ours.nodes] == [(n.op, n.name) for n in theirs.nodes]
    for a, b in zip(ours.nodes, theirs.nodes, strict=True):
        pa = {k: v for k, v in a.params.items() if k != "eps"}
        pb = {k: v for k, v in b.params.items() if k != "eps"}
        assert pa == pb, a.name
        assert {k: v.shape for k, v in a.tensors.items()} == {k: v.shape for k, v in b.tensors.items()}, (
            a.name
        )
    assert infer_shapes(ours) == infer_shapes(theirs)


def test_exported_weights_are_signs_and_alpha() -> None:
    torch.manual_seed(0)
    net = build("fmnist", "xnor", False, None, 0.25).eval()
    model = fmt.read_model(fmt.to_bytes(to_model(net, INPUTS["fmnist"])))
    conv2 = next(n for n in model.nodes if n.name == "conv2")
    conv: Any = net.conv2
    w = conv.weight.detach().numpy()
    np.testing.assert_array_equal(conv2.tensors["weight"], np.where(w >= 0, 1, -1))
    np.testing.assert_array_equal(conv2.tensors["alpha"], conv.alpha().detach().numpy())  # bit for bit
    np.testing.assert_allclose(conv2.tensors["alpha"], np.abs(w).mean(axis=(1, 2, 3)), rtol=1e-6)
    assert conv2.mode == "xnor" and not conv2.p("use_k")
    assert [n.op for n in model.nodes][:6] == [
        "conv2d",
        "batchnorm",
        "relu",
        "maxpool",
        "batchnorm",
        "bconv2d",
    ]


def test_unsupported_module_is_rejected() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.GELU())
    with pytest.raises(ExportError, match="GELU"):
        to_model(net, INPUTS["fmnist"])
