"""The Larq Zoo benchmark (benchmarks/larq_speed.py): seeded engine graphs and their PyTorch float32
twins agree in shape."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import larq_speed as lb
from engine.graph import infer_shapes


@pytest.mark.parametrize("arch", sorted(lb.BENCH_ARCHES))
def test_graph_and_twin_have_the_same_weights(arch: str) -> None:
    torch = pytest.importorskip("torch")
    width = 1.0 if arch == "resnet-e18" else 0.25  # the AlexNet-sized ones narrower, for speed
    graph = lb.build_graph(arch, seed=0, width=width)
    shapes = infer_shapes(graph)
    assert shapes[0] == lb.input_shape(arch) and shapes[-1] == (1000,)
    engine_weights = sorted(int(n.tensors["weight"].size) for n in graph.nodes if "weight" in n.tensors)
    net = lb.torch_float_twin(arch, width=width)
    twin_weights = sorted(
        int(m.weight.numel()) for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    )
    assert engine_weights == twin_weights
    with torch.inference_mode():
        assert tuple(net(torch.zeros(1, *lb.input_shape(arch))).shape) == (1, 1000)
    assert np.isfinite(np.asarray(graph.nodes[0].tensors["weight"])).all()
