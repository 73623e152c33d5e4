"""Packed epilogue into a flattened XNOR blinear (engine/src/fold.c): an XNOR conv whose output
reaches an XNOR blinear through relu -> max-pool -> batchnorm -> flatten (each optional but the
flatten), as AlexNet's conv5 -> fc6 does, emits the blinear's input bits from its popcounts;
the blinear's weight bits are reordered at load to the packed map's pixel-major layout, and
neither the batchnorm nor the flatten runs.

Each case checks: which nodes fold; the trace (every node, the blinear packing the flatten's
input map in the reordered layout) against the numpy reference node by node, which fails if
the reordering is wrong; the optimized plan against the trace and against the same graph with
a dropout before the blinear (which keeps every node unfolded), bit for bit, which fails if a
threshold is wrong; every ISA against scalar; batch 1 and 3 on 1 and 3 threads."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import architectures
from engine import Model, builders
from engine import format as fmt
from engine.graph import Graph, Node
from engine.input_spec import InputSpec
from engine.model import isa_supported
from tests.engine.netgen import random_bconv
from tests.engine.test_engine_reference import assert_nodes_match

ISAS = [i for i in ("scalar", "avx2", "avx512") if isa_supported(i)]
HW = 13  # the map before the pool: 13x13, pooled 3/2 to 6x6 as in AlexNet


def _bn(rng: np.random.Generator, c: int, name: str, special: str = "") -> Node:
    gamma = rng.normal(0, 1, c)  # about half the channels decrease with the dot product
    beta = rng.normal(0, 0.3, c)
    gamma[::7] = 0.0  # scale 0: the bit is the sign of the shift alone
    beta[::14] = 0.0  # ... and a shift of 0 (bit 1)
    if special == "nonfinite":
        gamma[1], beta[3] = np.inf, -np.inf
    return builders.batchnorm(gamma, beta, rng.normal(0, 0.3, c), rng.uniform(0.5, 1.5, c), 1e-5, name=name)


def _fc(rng: np.random.Generator, o: int, i: int, name: str, mode: str = "xnor", use_k: bool = False) -> Node:
    signs, alpha = builders.binarize_weights(rng.standard_normal((o, i)))
    return builders.blinear(signs, alpha, rng.normal(0, 0.1, o), mode=mode, use_k=use_k, name=name)


def head(case: str, c5: int = 40, unfold: bool = False) -> Graph:
    """conv5 (XNOR, 3x3 pad 1) -> relu -> maxpool 3/2 -> bn6 -> flatten -> fc6 -> relu -> bn7 ->
    fc7, with the case's variations; unfold puts a dropout (identity) before fc6."""
    rng = np.random.default_rng(len(case) + c5)
    spec = InputSpec(20, HW, HW, "other", mean=(0.0,) * 4, std=(1.0,) * 4)
    conv5 = random_bconv(rng, c5, 20, 3, 1, 1, "xnor", "conv5_k" in case, "conv5")
    if "alpha_nonfinite" in case:
        conv5.tensors["alpha"][5] = np.inf
    nodes = [conv5]
    if "no_relu" not in case:
        nodes.append(builders.simple("relu", name="relu5"))
    pooled = "no_pool" not in case
    if pooled:
        nodes.append(builders.maxpool(3, 2, name="pool5"))
    if "no_bn" not in case:
        nodes.append(_bn(rng, c5, "bn6", "nonfinite" if "bn_nonfinite" in case else ""))
    nodes.append(builders.simple("flatten", name="flatten"))
    flat_at = len(nodes)  # value index of the flatten's output
    if unfold:
        nodes.append(builders.simple("dropout", name="drop"))
    side = (6 if pooled else HW) ** 2 * c5
    mode = "bwn" if "fc6_bwn" in case else "xnor"
    nodes.append(_fc(rng, 24, side, "fc6", mode, "fc6_k" in case))
    if "flatten_shared" in case:
        # a second reader of the flatten's output: fc6 must keep reading the [C][H][W] floats
        fc6_at = len(nodes)
        w = rng.standard_normal((24, side)).astype(np.float32) / 40
        lin = builders.linear(w, None, inputs=(flat_at,))
        nodes += [lin, builders.simple("add", inputs=(fc6_at, fc6_at + 1), name="add")]
    nodes += [builders.simple("relu", name="relu6"), _bn(rng, 24, "bn7"), _fc(rng, 10, 24, "fc7")]
    return Graph(spec, nodes)


# case -> folds (conv5 packs fc6's bits; bn6 and flatten do not run)
CASES = {
    "mixed": True,
    "no_relu": True,
    "no_bn": True,  # relu then sign: every bit is 1 (the order of the bits is not seen)
    "no_relu_no_bn": True,  # OR-pooled signs of the dot products
    "no_pool": True,
    "no_pool_no_relu_no_bn": True,
    # a channel on the float chain: evaluated at run time, unless a pool needs every bit
    "no_pool_bn_nonfinite": True,
    "no_pool_alpha_nonfinite": True,
    "bn_nonfinite": False,
    "alpha_nonfinite": False,
    "conv5_k": False,
    "fc6_k": False,
    "fc6_bwn": False,
    "flatten_shared": False,
}


def _check(
    graph: Graph,
    unfolded: Graph,
    folds: bool,
    x_shape: tuple[int, ...],
    exact_nodes: bool,
    float_layers: bool = False,
) -> None:
    """float_layers: the graph has float layers, whose roundings differ between ISAs, so each
    ISA is checked against the reference node by node instead of against scalar's output."""
    blob, blob_unfolded = fmt.to_bytes(graph), fmt.to_bytes(unfolded)
    names = [n.name for n in graph.nodes]
    outs: dict[tuple[int, int], np.ndarray] = {}
    for isa in ISAS:
        for threads in (1, 3):
            model = Model.from_bytes(blob, isa=isa, threads=threads)
            info = {n.name: n for n in model.info.nodes}
            assert (info["conv5"].packs_into == names.index("fc6")) == folds
            folded = {n for n in ("bn6", "flatten") if n in info and info[n].fused}
            assert folded == ({"bn6", "flatten"} & set(names) if folds else set())
            plain = Model.from_bytes(blob_unfolded, isa=isa, threads=threads)
            assert next(n for n in plain.info.nodes if n.name == "conv5").packs_into is None
            for batch in (1, 3):
                x = np.random.default_rng(batch).standard_normal((batch, *x_shape)).astype(np.float32)
                values = model.trace(x)
                if exact_nodes:
                    assert_nodes_match(graph, values)
                got = model.infer(x)
                np.testing.assert_array_equal(got.reshape(values[-1].shape), values[-1])
                np.testing.assert_array_equal(got, plain.infer(x))
                if not float_layers:
                    want = outs.setdefault((threads, batch), got)  # the first ISA is scalar
                    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", list(CASES))
def test_fold_into_flattened_blinear(case: str) -> None:
    _check(head(case), head(case, unfold=True), CASES[case], (20, HW, HW), "nonfinite" not in case)


@pytest.mark.parametrize("c5", [32, 64, 17])
def test_channel_words(c5: int) -> None:
    # whole words per pixel (32, 64) and a padded last word (17: 1 word per pixel, 36 words for
    # 612 features, at most twice the unpadded 20)
    _check(head("mixed", c5), head("mixed", c5, unfold=True), True, (20, HW, HW), True)


def test_no_fold_where_padding_would_more_than_double_the_weights() -> None:
    # 4 channels: one word per pixel, 36 words where 144 features need 5
    model = Model.from_bytes(fmt.to_bytes(head("mixed", 4)))
    assert all(n.packs_into is None for n in model.info.nodes)
    _check(head("mixed", 4), head("mixed", 4, unfold=True), False, (20, HW, HW), True)


def _alexnet(**kw: object) -> tuple[Graph, Graph]:
    g = architectures.alexnet(seed=1, width=0.125, classes=10, **kw)  # type: ignore[arg-type]
    at = [n.name for n in g.nodes].index("fc6")
    # every node reads the one before it, so the dropout needs no index changes; the graphs
    # share their nodes (a change to bn6 below changes both)
    nodes = [*g.nodes[:at], builders.simple("dropout", name="drop"), *g.nodes[at:]]
    return g, Graph(g.input, nodes, g.labels, g.name)


@pytest.mark.parametrize("variant", ["mixed_bn6", "xnor", "xnor_k", "bwn"])
def test_alexnet(variant: str) -> None:
    variants: dict[str, dict[str, object]] = {"xnor_k": {"use_k": True}, "bwn": {"mode": "bwn"}}
    kw = variants.get(variant, {})
    g, unfolded = _alexnet(**kw)
    if variant == "mixed_bn6":  # decreasing and constant channels: AND- and OR-pooled bits
        bn6 = next(n for n in g.nodes if n.name == "bn6")
        gamma = np.random.default_rng(6).normal(0, 1, bn6.tensors["gamma"].shape).astype(np.float32)
        gamma[::5] = 0.0
        bn6.tensors["gamma"] = gamma
    _check(g, unfolded, variant in ("mixed_bn6", "xnor"), (3, 227, 227), True, float_layers=True)
