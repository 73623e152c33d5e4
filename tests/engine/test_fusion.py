"""Load-time fusions (BN and relu folded into a conv epilogue or an XNOR binarization): which
nodes fold, and that the optimized plan equals the unfused trace bit for bit on every ISA."""

import numpy as np
import pytest

from engine import Model, builders
from engine import format as fmt
from engine.graph import Graph
from engine.input_spec import InputSpec
from engine.model import isa_supported
from tests.engine.netgen import _bconv, _bn
from tests.engine.test_engine_reference import assert_nodes_match

ISAS = [i for i in ("scalar", "avx2", "avx512") if isa_supported(i)]


def conv(rng, o, i, k, bias=True, name="c", pad=1):
    return builders.conv2d(
        rng.standard_normal((o, i, k, k)).astype(np.float32) / k,
        rng.normal(0, 0.1, o) if bias else None,
        stride=1,
        padding=pad,
        name=name,
    )


def graphs():
    rng = np.random.default_rng(0)
    spec = InputSpec(3, 9, 10, "rgb", mean=(0.0,) * 3, std=(1.0,) * 3)
    g = {}
    # conv (no bias) -> bn -> relu -> flatten -> linear -> bn1d -> relu (output)
    n = [
        conv(rng, 21, 3, 3, bias=False, name="c1"),
        _bn(rng, 21, "bn1"),
        builders.simple("relu", name="relu"),
        builders.simple("flatten"),
    ]
    n += [
        builders.linear(
            rng.standard_normal((37, 21 * 9 * 10)).astype(np.float32) / 40, rng.normal(0, 0.1, 37), name="fc"
        ),
        _bn(rng, 37, "bnf"),
        builders.simple("relu", name="rf"),
    ]
    g["lin_bn_relu_out"] = (Graph(spec, n), {"bn1", "relu", "bnf", "rf"})
    # conv -> bn (last node)
    n = [conv(rng, 17, 3, 3, name="c1"), _bn(rng, 17, "bnlast")]
    g["bn_last"] = (Graph(spec, n), {"bnlast"})
    # conv -> bn -> xnor bconv (binarize fold wins) ; bn -> relu with bn having 2 consumers
    n = [
        conv(rng, 33, 3, 3, name="c1"),
        _bn(rng, 33, "bnx"),
        _bconv(rng, 33, 33, 3, 1, 1, "xnor", False, "b1"),
        conv(rng, 33, 33, 3, name="c2"),
        _bn(rng, 33, "bn2"),
        builders.simple("relu", name="r2"),
        builders.simple("add", inputs=(6, 5), name="add"),
    ]
    g["mixed"] = (Graph(spec, n), {"bnx", "bn2"})
    # conv with two consumers -> no epilogue fold
    n = [
        conv(rng, 16, 3, 3, name="c1"),
        _bn(rng, 16, "bnn"),
        builders.simple("add", inputs=(2, 1), name="add"),
    ]
    g["two_consumers"] = (Graph(spec, n), set())
    # bwn conv -> bn -> relu: not folded (bwn), relu after bn not folded
    n = [
        conv(rng, 20, 3, 3, name="c1"),
        _bn(rng, 20, "bn1"),
        _bconv(rng, 24, 20, 3, 1, 1, "bwn", False, "bw"),
        _bn(rng, 24, "bnb"),
        builders.simple("relu", name="rb"),
    ]
    g["bwn_bn"] = (Graph(spec, n), {"bn1"})
    return g


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(graphs()))
def test_fold(isa, name):
    graph, want_fused = graphs()[name]
    for threads in (1, 2):
        model = Model.from_bytes(fmt.to_bytes(graph), isa=isa, threads=threads)
        fused = {n.name for n in model.info.nodes if n.fused and n.op != "dropout"}
        assert fused == want_fused, (fused, want_fused)
        for b in (1, 5):
            x = np.random.default_rng(b).standard_normal((b, 3, 9, 10)).astype(np.float32)
            vals = model.trace(x)
            assert_nodes_match(graph, vals)
            np.testing.assert_array_equal(model.infer(x).reshape(vals[-1].shape), vals[-1])
