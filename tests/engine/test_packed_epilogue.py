"""Packed epilogues (engine/src/fold.c): an XNOR conv whose output reaches the next XNOR conv
through only relu / batchnorm emits that conv's input bits from its popcounts. The optimized
plan must give the unfused trace's values bit for bit on every ISA, with channels whose bit
decreases with the dot product (negative batchnorm scale), zero scale, non-finite parameters,
border pixels, with the relu or the batchnorm missing, and with a max-pool between (pooled as
bits: OR, or AND for decreasing channels)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Model, builders
from engine import format as fmt
from engine.graph import Graph, Node
from engine.input_spec import InputSpec
from engine.model import isa_supported
from tests.engine.netgen import _bconv
from tests.engine.test_engine_reference import assert_nodes_match

ISAS = [i for i in ("scalar", "avx2", "avx512") if isa_supported(i)]


def _bn_special(rng: np.random.Generator, c: int, case: str, name: str) -> Node:
    gamma = rng.normal(0, 1, c)  # about half the channels decrease with the dot product
    beta = rng.normal(0, 0.3, c)
    gamma[::7] = 0.0  # scale 0: the bit is the sign of the shift alone
    beta[::14] = 0.0  # ... and a shift of 0 (bit 1, since sign(0) = +1)
    if case.endswith("nonfinite"):
        gamma[1], gamma[2], beta[3] = np.inf, np.nan, -np.inf
    return builders.batchnorm(gamma, beta, rng.normal(0, 0.3, c), rng.uniform(0.5, 1.5, c), 1e-5, name=name)


def graph(case: str) -> Graph:
    rng = np.random.default_rng(len(case))
    spec = InputSpec(20, 11, 12, "other", mean=(0.0,) * 4, std=(1.0,) * 4)
    a = _bconv(rng, 40, 20, 3, 1, 1, "xnor", False, "a")  # 40 channels: a half-filled 16-block at the end
    if case.endswith("nonfinite"):
        a.tensors["alpha"][5] = np.inf
        a.tensors["bias"][6] = np.nan
    nodes = [a]
    if "no_relu" not in case:
        nodes.append(builders.simple("relu", name="ra"))
    if case.startswith("pool_pad"):
        nodes.append(builders.maxpool(3, 1, padding=1, ceil_mode=True, name="pa"))
    elif case.startswith("pool"):
        nodes.append(builders.maxpool(3, 2, name="pa"))
    if "no_bn" not in case:
        nodes.append(_bn_special(rng, 40, case, "bn_ab"))
    nodes += [_bconv(rng, 36, 40, 5, 1, 2, "xnor", False, "b"), builders.simple("relu", name="rb")]
    nodes += [_bn_special(rng, 36, case, "bn_bc"), _bconv(rng, 24, 36, 3, 2, 1, "xnor", False, "c")]
    return Graph(spec, nodes)


CASES = ["mixed", "nonfinite", "no_relu", "no_bn", "pool", "pool_pad_no_relu", "pool_no_bn", "pool_nonfinite"]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", CASES)
def test_packed_epilogue_equals_trace(isa: str, case: str) -> None:
    g = graph(case)
    blob = fmt.to_bytes(g)
    for threads in (1, 3):
        model = Model.from_bytes(blob, isa=isa, threads=threads)
        packs = {n.name: n.packs_into for n in model.info.nodes if n.packs_into is not None}
        names = [n.name for n in model.info.nodes]
        # pooling needs every bit from integers: a channel on the float chain keeps the float pool
        want = (
            {"b": names.index("c")}
            if case == "pool_nonfinite"
            else {"a": names.index("b"), "b": names.index("c")}
        )
        assert packs == want
        for batch in (1, 3):
            x = np.random.default_rng(batch).standard_normal((batch, 20, 11, 12)).astype(np.float32)
            values = model.trace(x)
            if not case.endswith("nonfinite"):
                assert_nodes_match(g, values)
            np.testing.assert_array_equal(model.infer(x).reshape(values[-1].shape), values[-1])


def test_not_folded_where_the_bits_need_floats() -> None:
    rng = np.random.default_rng(3)
    spec = InputSpec(8, 9, 9, "other", mean=(0.0,) * 4, std=(1.0,) * 4)
    # a maxpool between, a K-scaled consumer, a consumer that is not XNOR
    nodes = [
        _bconv(rng, 16, 8, 3, 1, 1, "xnor", False, "a"),
        builders.maxpool(3, 1, padding=1, name="p"),
        _bconv(rng, 16, 16, 3, 1, 1, "xnor", True, "k"),
        _bconv(rng, 16, 16, 3, 1, 1, "bwn", False, "w"),
    ]
    model = Model.from_bytes(fmt.to_bytes(Graph(spec, nodes)))
    assert all(n.packs_into is None for n in model.info.nodes)
