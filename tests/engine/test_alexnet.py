"""The paper's full XNOR AlexNet (227x227x3, seeded weights), batch 2: engine == reference."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import architectures
from engine import Model
from engine import format as fmt

from .test_engine_reference import assert_nodes_match


@pytest.fixture(scope="module")
def alexnet_bytes() -> bytes:
    return fmt.to_bytes(architectures.alexnet(seed=0))


def test_xnor_alexnet_matches_reference_node_by_node(alexnet_bytes: bytes) -> None:
    graph = fmt.read_model(alexnet_bytes)
    model = Model.from_bytes(alexnet_bytes, threads=2)
    x = np.random.default_rng(0).standard_normal((2, 3, 227, 227)).astype(np.float32)
    values = model.trace(x)
    assert_nodes_match(graph, values)
    # every binary layer really binarizes: its outputs take few distinct values per channel
    assert [n.op for n in model.info.nodes].count("bconv2d") == 4
    np.testing.assert_array_equal(model.infer(x), values[-1])


def test_alexnet_shapes_and_sizes(alexnet_bytes: bytes) -> None:
    model = Model.from_bytes(alexnet_bytes)
    info = model.info
    by_name = {n.name: n for n in info.nodes}
    assert by_name["conv1"].out_shape == (96, 55, 55)
    assert by_name["pool5"].out_shape == (256, 6, 6)
    assert by_name["fc6"].out_shape == (4096,) and by_name["fc6"].mode == "xnor"
    assert by_name["fc8"].out_shape == (1000,)
    # binary layers at 1 bit per weight: the file is at most 1/9 of the float32 weights
    assert info.weight_bytes_float32 / info.file_bytes >= 9.0
    assert info.file_bytes == len(alexnet_bytes)


def test_batch_1_split_over_threads_matches_trace(alexnet_bytes: bytes) -> None:
    # At batch 1 every step (input transpose, packs, convs, flatten) is split within the
    # image; the result must not depend on the thread count or the split.
    x = np.random.default_rng(1).standard_normal((1, 3, 227, 227)).astype(np.float32)
    want = Model.from_bytes(alexnet_bytes, threads=1).trace(x)[-1]
    for threads in (2, 3):
        np.testing.assert_array_equal(Model.from_bytes(alexnet_bytes, threads=threads).infer(x), want)
