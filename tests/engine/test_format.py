"""The numpy writer/reader of engine/FORMAT.md and the reference's own semantics."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np
import pytest

from engine import Model, builders, reference
from engine import format as fmt
from engine.graph import Graph
from engine.input_spec import InputSpec

from .netgen import conv_net, residual_net


def test_round_trip_preserves_everything() -> None:
    graph = conv_net(seed=0, use_k=True, softmax=True)
    data = fmt.to_bytes(graph)
    back = fmt.read_model(data)
    # the header stores scale as float32
    assert back.input == dataclasses.replace(graph.input, scale=float(np.float32(graph.input.scale)))
    assert back.labels == graph.labels
    for i, (a, b) in enumerate(zip(graph.nodes, back.nodes, strict=True)):
        assert a.op == b.op and b.name == (a.name or f"{a.op}{i}")
        for key, arr in a.tensors.items():
            np.testing.assert_array_equal(np.asarray(arr, np.float32), b.tensors[key].astype(np.float32))
    assert fmt.to_bytes(back) == data


def test_layout_is_aligned_and_checksummed() -> None:
    data = fmt.to_bytes(residual_net(seed=1))
    assert data[:8] == b"XNORNET\x00"
    version, crc, size = struct.unpack_from("<IIQ", data, 8)
    assert version == 1 and size == len(data)
    assert zlib.crc32(data[:12] + b"\x00" * 4 + data[16:]) == crc
    _n_nodes, n_tensors = struct.unpack_from("<II", data, 32)
    tensors_off, _, _, data_off, data_bytes = struct.unpack_from("<5Q", data, 56)
    assert data_off % 64 == 0 and data_off + data_bytes == len(data)
    for t in range(n_tensors):
        offset, nbytes = struct.unpack_from("<QQ", data, tensors_off + 64 * t + 24)
        assert offset % 64 == 0 and offset + nbytes <= data_bytes


def test_binary_weights_take_one_bit_each() -> None:
    signs = np.random.default_rng(0).choice([-1, 1], (8, 13, 3, 3))
    packed = fmt.pack_bits(signs)
    assert len(packed) == 8 * ((13 * 9 + 7) // 8)
    np.testing.assert_array_equal(fmt.unpack_bits(packed, signs.shape), signs)
    # bit order: element 0 of a row is the least significant bit of its first byte
    row = np.full((1, 8), -1)
    row[0, 0] = 1
    assert fmt.pack_bits(row) == b"\x01"


def test_writer_rejects_shapes_that_do_not_chain() -> None:
    graph = conv_net(seed=0)
    graph.nodes[5].tensors["weight"] = graph.nodes[5].tensors["weight"][:, :-1]
    with pytest.raises(fmt.FormatError):
        fmt.to_bytes(graph)


def test_sign_is_plus_one_at_zero() -> None:
    x = np.array([-1.0, -0.0, 0.0, 1e-30, -1e-30], np.float32)
    np.testing.assert_array_equal(reference.sign(x), [-1, 1, 1, 1, -1])


def test_reference_xnor_border_taps_contribute_zero() -> None:
    """At the border a padded tap is neither +1 nor -1: dot = sum over in-bounds taps only."""
    w = np.ones((1, 1, 3, 3), np.int8)
    node = builders.bconv2d(w, np.ones(1, np.float32), padding=1)
    x = np.ones((1, 1, 4, 4), np.float32)
    dot = reference.binary_dot(x, node)[0, 0]
    assert dot[0, 0] == 4 and dot[0, 1] == 6 and dot[1, 1] == 9


def test_engine_agrees_with_padding_semantics() -> None:
    rng = np.random.default_rng(3)
    node = builders.bconv2d(rng.choice([-1, 1], (3, 2, 3, 3)), np.ones(3, np.float32), padding=(2, 0, 1, 2))
    graph = Graph(InputSpec(2, 5, 6, "other", mean=(0, 0), std=(1, 1)), [node])
    x = rng.standard_normal((2, 2, 5, 6)).astype(np.float32)
    want = reference.forward(graph, x)
    model = Model.from_bytes(fmt.to_bytes(graph))
    # a graph that ends 4-D returns each image's NCHW output flattened
    np.testing.assert_array_equal(model.infer(x), want.reshape(2, -1))
    np.testing.assert_array_equal(model.trace(x)[-1], want)
