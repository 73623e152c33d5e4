"""The C engine against the numpy reference (engine/reference.py), node by node.

Each node's reference output is computed from the engine's own inputs to that node (the
trace), so one legitimately different float rounding upstream cannot hide or fake a
mismatch downstream. XNOR layers must match bit for bit (their integer dot products are
equal); float and BWN layers within 1e-4 relative.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from engine._xnornet import lib

from engine import Model, reference
from engine import format as fmt
from engine.errors import InvalidArgumentError
from engine.graph import Graph, infer_shapes
from engine.model import isa_supported

from .netgen import conv_net, integer_input, integer_net, residual_net

ISAS = [
    pytest.param(isa, marks=pytest.mark.skipif(not isa_supported(isa), reason=f"CPU lacks {isa}"))
    for isa in ("scalar", "avx2", "avx512")
]


def assert_nodes_match(graph: Graph, values: list[np.ndarray]) -> None:
    for i, node in enumerate(graph.nodes):
        ins = [values[v] for v in graph.resolved_inputs(i)]
        want = reference.run_node(node, ins)
        got = values[i + 1]
        assert got.shape == want.shape, f"node {i} {node.name}: shape {got.shape} != {want.shape}"
        exact = node.op in ("bconv2d", "blinear") and node.mode == "xnor"
        if exact or node.op in ("relu", "maxpool", "flatten", "dropout"):
            if not np.array_equal(got, want):
                bad = np.argwhere(got != want)
                raise AssertionError(
                    f"node {i} {node.name} ({node.op}) not bit-exact: {len(bad)} differ, "
                    f"first {tuple(bad[0])}: {got[tuple(bad[0])]} vs {want[tuple(bad[0])]}"
                )
        else:
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(
                got, want, rtol=1e-4, atol=1e-4 * scale, err_msg=f"node {i} {node.name} ({node.op})"
            )


def load(graph: Graph, **kw: object) -> Model:
    return Model.from_bytes(fmt.to_bytes(graph), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode,use_k", [("xnor", False), ("xnor", True), ("bwn", False)])
@pytest.mark.parametrize("batch", [1, 7])
def test_conv_net_matches_reference(isa: str, mode: str, use_k: bool, batch: int) -> None:
    graph = conv_net(seed=batch + (3 if use_k else 0), mode=mode, use_k=use_k)
    model = load(graph, isa=isa, threads=2)
    x = np.random.default_rng(batch).standard_normal((batch, 3, 19, 17)).astype(np.float32)
    values = model.trace(x)
    assert_nodes_match(graph, values)
    # The optimized (fused) plan computes the same float operations in the same order.
    np.testing.assert_array_equal(model.infer(x), values[-1])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("k1,in_c,hw", [(1, 1, (8, 9)), (5, 2, (16, 16)), (11, 3, (23, 25))])
def test_kernel_sizes_and_channels(isa: str, k1: int, in_c: int, hw: tuple[int, int]) -> None:
    graph = conv_net(seed=k1, in_c=in_c, hw=hw, k1=k1, softmax=True)
    model = load(graph, isa=isa)
    x = np.random.default_rng(k1).standard_normal((3, in_c, *hw)).astype(np.float32)
    values = model.trace(x)
    assert_nodes_match(graph, values)
    assert model.info.output_kind == "probabilities"
    np.testing.assert_allclose(values[-1].sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("mode", ["xnor", "bwn"])
def test_residual_graph(isa: str, mode: str) -> None:
    graph = residual_net(seed=5, mode=mode)
    model = load(graph, isa=isa)
    x = np.random.default_rng(9).standard_normal((2, 3, 12, 11)).astype(np.float32)
    values = model.trace(x)
    assert_nodes_match(graph, values)
    np.testing.assert_array_equal(model.infer(x), values[-1])


@pytest.mark.parametrize("isa", ISAS)
def test_every_isa_bit_identical_to_scalar_on_exact_arithmetic(isa: str) -> None:
    """With small-integer data every float sum is exact, so any difference is a bug."""
    graph = integer_net(seed=2)
    x = integer_input(np.random.default_rng(4), (5, 5, 9, 10))
    want = reference.forward(graph, x)
    scalar = load(graph, isa="scalar").infer(x)
    got = load(graph, isa=isa).infer(x)
    np.testing.assert_array_equal(scalar, want)
    np.testing.assert_array_equal(got, scalar)


def test_thread_counts_give_identical_results() -> None:
    graph = conv_net(seed=11)
    x = np.random.default_rng(0).standard_normal((5, 3, 19, 17)).astype(np.float32)
    outs = [load(graph, threads=t).infer(x) for t in (1, 2, 3)]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_spin_changes_no_result() -> None:
    """The pool's polling rounds (xnor_context_params.spin) decide only how threads wait."""
    data = fmt.to_bytes(conv_net(seed=11))
    x = np.random.default_rng(0).standard_normal((5, 3, 19, 17)).astype(np.float32)
    want = Model.from_bytes(data, threads=1).infer(x)
    for spin in (0, 1, lib.XNOR_DEFAULT_SPIN, lib.XNOR_MAX_SPIN):
        model = Model.from_bytes(data, threads=3, spin=spin)
        assert model.spin == spin
        for _ in range(3):  # the pool's threads sleep and wake between runs
            np.testing.assert_array_equal(model.infer(x), want)
    assert Model.from_bytes(data, threads=2).spin == lib.XNOR_DEFAULT_SPIN
    for bad in (-1, lib.XNOR_MAX_SPIN + 1):
        with pytest.raises(InvalidArgumentError):
            Model.from_bytes(data, spin=bad)


def test_batch_rows_are_independent() -> None:
    graph = conv_net(seed=12)
    model = load(graph)
    x = np.random.default_rng(1).standard_normal((7, 3, 19, 17)).astype(np.float32)
    whole = model.infer(x)
    for i in (0, 3, 6):
        np.testing.assert_array_equal(model.infer(x[i : i + 1]), whole[i : i + 1])


def test_model_shared_across_python_threads() -> None:
    graph = conv_net(seed=13)
    model = load(graph, threads=1)
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((int(rng.integers(1, 5)), 3, 19, 17)).astype(np.float32) for _ in range(16)]
    expected = [model.infer(x) for x in inputs]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = model.infer(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)


def test_infer_validates_arguments() -> None:
    model = load(conv_net(seed=1))
    with pytest.raises(InvalidArgumentError):
        model.infer(np.zeros((1, 3, 19, 16), np.float32))
    with pytest.raises(InvalidArgumentError):
        model.infer(np.zeros((0, 3, 19, 17), np.float32))
    with pytest.raises(InvalidArgumentError):
        model.infer(np.array(["a"]))
    # float64 and a single CHW image are accepted and converted
    assert model.infer(np.zeros((3, 19, 17))).shape == (1, 7)


def test_info_describes_the_graph() -> None:
    graph = conv_net(seed=3)
    model = load(graph)
    info = model.info
    assert info.input_shape == (3, 19, 17)
    assert info.output_size == 7 and info.labels == tuple(f"c{i}" for i in range(7))
    assert [n.op for n in info.nodes] == [n.op for n in graph.nodes]
    shapes = infer_shapes(graph)[1:]
    assert [n.out_shape for n in info.nodes] == shapes
    assert (
        info.nodes[5].mode == "xnor" and info.nodes[5].macs == 70 * 19 * 3 * 3 * shapes[5][1] * shapes[5][2]
    )
    assert info.file_bytes == len(fmt.to_bytes(graph))
    # BN feeding an XNOR conv folds into its binarization; relu after a conv folds into its epilogue.
    fused = {n.name for n in info.nodes if n.fused}
    assert "bn2" in fused and "bn3" in fused
