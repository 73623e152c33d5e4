"""int8 edges (FORMAT.md qconv2d / qlinear): the engine against the numpy reference.

Both layers sum integers exactly and share one float epilogue, so on every ISA the
engine equals engine/reference.py bit for bit (node by node, from the engine's own trace),
whatever the padding, stride, channel count or batch. The int8 layers' distance from the
float layers they replace is a quantization bound, measured here on small layers and by
benchmarks/int8_accuracy.py on the real networks.
"""

from __future__ import annotations

import json
import pathlib
import struct
import zlib

import numpy as np
import pytest

from engine import Model, builders, reference
from engine import format as fmt
from engine.errors import ModelFormatError
from engine.graph import Graph, Node, infer_shapes
from engine.input_spec import InputSpec
from engine.int8 import edges_of, qconv2d, qlinear, quantize_first_conv, with_edges
from engine.model import isa_supported

from .netgen import conv_net, residual_net

ISAS = [
    pytest.param(isa, marks=pytest.mark.skipif(not isa_supported(isa), reason=f"CPU lacks {isa}"))
    for isa in ("scalar", "avx2", "avx512")
]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def first_conv_net(
    seed: int,
    in_c: int,
    hw: tuple[int, int],
    k: int,
    stride: int,
    pad: tuple[int, ...],
    out: int,
    classes: int = 13,
) -> Graph:
    """conv -> bn -> relu -> flatten -> linear, float; with_edges turns both ends int8."""
    rng = np.random.default_rng(seed)
    spec = InputSpec(
        in_c,
        *hw,
        color="gray" if in_c == 1 else "rgb",
        scale=1 / 255,
        mean=tuple(float(v) for v in rng.uniform(0.2, 0.6, in_c)),
        std=tuple(float(v) for v in rng.uniform(0.15, 0.4, in_c)),
    )
    w = rng.standard_normal((out, in_c, k, k)) / k
    gamma, beta = rng.uniform(0.5, 1.5, out), rng.normal(0, 0.2, out)
    mean, var = rng.normal(0, 0.2, out), rng.uniform(0.5, 1.5, out)
    nodes = [
        builders.conv2d(w, rng.normal(0, 0.1, out), stride=stride, padding=pad),
        builders.batchnorm(gamma, beta, mean, var, 1e-5),
        builders.simple("relu"),
        builders.simple("flatten"),
    ]
    flat = infer_shapes(Graph(spec, nodes))[-1][0]
    w_fc = rng.standard_normal((classes, flat)) / np.sqrt(flat)
    nodes.append(builders.linear(w_fc, rng.normal(0, 0.1, classes)))
    return Graph(spec, nodes, name=f"q{seed}")


def assert_int8_nodes_exact(graph: Graph, values: list[np.ndarray], pixels: np.ndarray) -> None:
    for i, node in enumerate(graph.nodes):
        ins = [values[v] for v in graph.resolved_inputs(i)]
        if node.op == "qconv2d":
            ins = [pixels.transpose(0, 3, 1, 2)]
        want = reference.run_node(node, ins, graph.input)
        if node.op in ("qconv2d", "qlinear"):
            np.testing.assert_array_equal(values[i + 1], want, err_msg=f"node {i} {node.op}")


GEOMETRIES = [
    # in_c, (h, w), k, stride, (pt, pl, pb, pr), out
    (3, (19, 23), 5, 1, (2, 2, 2, 2), 16),
    (3, (31, 29), 11, 4, (0, 0, 0, 0), 37),  # AlexNet-like: no padding, stride 4
    (3, (30, 33), 7, 2, (3, 1, 2, 3), 70),  # asymmetric padding
    (1, (17, 15), 3, 1, (1, 1, 1, 1), 5),  # gray; 3 bytes per window row: one short group
    (3, (9, 40), 3, 2, (2, 0, 0, 2), 96),  # wide rows: 6-position tiles and remainders
]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("geom", range(len(GEOMETRIES)))
@pytest.mark.parametrize("batch", [1, 4])
def test_int8_layers_match_reference_bit_for_bit(isa: str, geom: int, batch: int) -> None:
    in_c, hw, k, stride, pad, out = GEOMETRIES[geom]
    graph = with_edges(first_conv_net(geom, in_c, hw, k, stride, pad, out), "int8")
    assert [n.op for n in graph.nodes][::4] == ["qconv2d", "qlinear"]
    model = Model.from_bytes(fmt.to_bytes(graph), isa=isa, threads=2)
    pixels = np.random.default_rng(batch).integers(0, 256, (batch, *hw, in_c), dtype=np.uint8)
    assert_int8_nodes_exact(graph, model.trace(pixels), pixels)
    # The optimized plan (batchnorm and relu folded into the int8 epilogue) gives the same.
    np.testing.assert_array_equal(model.infer(pixels), reference.forward(graph, pixels))


@pytest.mark.parametrize("isa", ISAS)
def test_every_isa_equals_scalar_end_to_end(isa: str) -> None:
    for graph in (with_edges(conv_net(seed=4, k1=5), "int8"), with_edges(residual_net(seed=2), "int8")):
        data = fmt.to_bytes(graph)
        c, h, w = graph.input.channels, graph.input.height, graph.input.width
        pixels = np.random.default_rng(0).integers(0, 256, (3, h, w, c), dtype=np.uint8)
        want = Model.from_bytes(data, isa="scalar").infer(pixels)
        np.testing.assert_array_equal(Model.from_bytes(data, isa=isa, threads=3).infer(pixels), want)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("threads", [1, 2])
def test_qlinear_tiles_and_tails_match_reference_bit_for_bit(isa: str, threads: int) -> None:
    # 70 classes: five 16-row blocks, the last one partial; 7 samples: full 4- and 2-sample
    # tiles and single-sample remainders; 16 * 19 * 23 features: a partial last group.
    graph = with_edges(first_conv_net(5, 3, (19, 23), 5, 1, (2, 2, 2, 2), 16, classes=70), "int8")
    assert graph.nodes[-1].op == "qlinear"
    model = Model.from_bytes(fmt.to_bytes(graph), isa=isa, threads=threads)
    pixels = np.random.default_rng(7).integers(0, 256, (7, 19, 23, 3), dtype=np.uint8)
    assert_int8_nodes_exact(graph, model.trace(pixels), pixels)
    np.testing.assert_array_equal(model.infer(pixels), reference.forward(graph, pixels))


def test_float_input_is_read_as_the_pixels_it_came_from() -> None:
    graph = with_edges(first_conv_net(9, 3, (21, 21), 5, 2, (2, 2, 2, 2), 24), "int8")
    model = Model.from_bytes(fmt.to_bytes(graph))
    pixels = np.random.default_rng(3).integers(0, 256, (2, 21, 21, 3), dtype=np.uint8)
    x = reference.normalize(pixels, graph.input)
    np.testing.assert_array_equal(reference.to_pixels(x, graph.input), pixels.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(model.infer(x), model.infer(pixels))
    # Values outside the pixel range and NaN clamp (no crash, same as the reference).
    wild = x.copy()
    wild[0, 0, :3, :3] = np.array([[np.nan, 1e9, -1e9], [np.inf, -np.inf, 0], [7, -7, 0.5]], np.float32)
    np.testing.assert_array_equal(model.infer(wild), reference.forward(graph, wild))


@pytest.mark.parametrize("isa", ISAS)
def test_qlinear_signed_zero_and_nonfinite_inputs(isa: str) -> None:
    """Activations with negatives use the zero point 128; all-zero rows give the bias; NaN
    counts as 0 and an infinity saturates, as the reference says."""
    rng = np.random.default_rng(5)
    spec = InputSpec(70, 1, 1, color="other", mean=(0.0,) * 4, std=(1.0,) * 4)
    w = rng.standard_normal((21, 70))
    lin = builders.linear(w, rng.normal(0, 0.1, 21))
    graph = with_edges(Graph(spec, [builders.simple("flatten"), lin]), "int8")
    assert graph.nodes[1].op == "qlinear"
    model = Model.from_bytes(fmt.to_bytes(graph), isa=isa, threads=2)
    x = rng.standard_normal((6, 70, 1, 1)).astype(np.float32)
    x[1] = np.abs(x[1])  # unsigned row
    x[2] = 0.0
    x[3, 5] = np.nan
    x[4, 7] = np.inf
    x[5, :] = -0.0
    x[0, 32:64] = 0.0  # a group of zeros among signed groups: its u is the zero point
    np.testing.assert_array_equal(model.infer(x), reference.forward(graph, x))
    # Quantization error against the float layer (rows 0 and 1: finite inputs).
    want = reference.forward(Graph(spec, [builders.simple("flatten"), lin]), x[:2])
    got = model.infer(x[:2])
    assert np.abs(got - want).max() <= 0.02 * np.abs(want).max()


def test_int8_first_conv_is_close_to_the_float_conv() -> None:
    """The quantization bound on a layer like AlexNet's conv1 (ImageNet normalization)."""
    rng = np.random.default_rng(1)
    spec = InputSpec(3, 35, 35, scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    conv = builders.conv2d(
        rng.standard_normal((32, 3, 11, 11)) / 11, rng.normal(0, 0.1, 32), stride=4, padding=2
    )
    q = quantize_first_conv(conv, spec)
    pixels = rng.integers(0, 256, (2, 35, 35, 3), dtype=np.uint8)
    x = reference.normalize(pixels, spec)
    want = reference.conv2d(x, conv)
    got = reference.qconv2d(pixels.transpose(0, 3, 1, 2), q)
    # White-noise pixels are the worst case (natural images: benchmarks/int8_accuracy.py).
    err = got - want
    assert np.sqrt(np.mean(err**2)) <= 0.01 * np.sqrt(np.mean(want**2))
    assert np.abs(err).max() <= 0.02 * np.abs(want).max()
    # The border (padding 2) is as close as the interior: pad taps mean 0, not pixel 0.
    assert np.abs(err[:, :, 0, :]).max() <= 0.02 * np.abs(want).max()
    zero_pad = reference.qconv2d(np.pad(pixels.transpose(0, 3, 1, 2), ((0, 0), (0, 0), (2, 2), (2, 2))), q)
    assert np.abs(zero_pad[:, :, 0, 0] - want[:, :, 0, 0]).max() > 0.05 * np.abs(want).max()


def test_with_edges_shrinks_the_file_and_names_the_edges() -> None:
    graph = first_conv_net(2, 3, (19, 19), 3, 1, (1, 1, 1, 1), 64)
    q = with_edges(graph, "int8")
    assert edges_of(graph) == "float32" and edges_of(q) == "int8"
    assert len(fmt.to_bytes(q)) < 0.4 * len(fmt.to_bytes(graph))
    back = fmt.read_model(fmt.to_bytes(q))
    assert [n.op for n in back.nodes] == [n.op for n in q.nodes]
    assert back.nodes[0].tensors["weight"].dtype == np.int8
    np.testing.assert_array_equal(back.nodes[0].tensors["offset"], q.nodes[0].tensors["offset"])
    with pytest.raises(ValueError, match="already has int8 edges"):
        with_edges(q, "float32")
    # A raw-tensor input (color "other") keeps its float first conv.
    raw = Graph(InputSpec(3, 19, 19, color="other", mean=(0.0,) * 3, std=(1.0,) * 3), graph.nodes, name="raw")
    assert with_edges(raw, "int8").nodes[0].op == "conv2d"


# ---------------------------------------------------------------- loader validation


def _bytes() -> bytes:
    return fmt.to_bytes(with_edges(first_conv_net(1, 3, (13, 13), 3, 1, (1, 1, 1, 1), 20), "int8"))


def _patch(data: bytes, off: int, fmt_: str, value: object) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt_, b, off, value)
    struct.pack_into("<I", b, 12, 0)
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b)))
    return bytes(b)


def _tensor_off(data: bytes, i: int) -> int:
    return struct.unpack_from("<Q", data, 56)[0] + 64 * i


def _node_off(k: int) -> int:
    return 256 + 160 * k


def _load(data: bytes) -> str:
    with pytest.raises(ModelFormatError) as exc:
        Model.from_bytes(data)
    return str(exc.value)


def test_loader_rejects_corrupt_int8_layers() -> None:
    good = _bytes()
    Model.from_bytes(good)
    n_nodes = struct.unpack_from("<I", good, 32)[0]
    qlin = n_nodes - 1
    # tensor 0 is qconv2d's int8 weight [20,3,3,3]
    assert "dtype" in _load(_patch(good, _tensor_off(good, 0), "<I", 1))  # int8 weight declared float32
    assert "dtype 4" in _load(_patch(good, _tensor_off(good, 0), "<I", 4))
    assert "nbytes" in _load(_patch(good, _tensor_off(good, 0) + 32, "<Q", 20 * 27 + 1))
    assert "unknown op 15" in _load(_patch(good, _node_off(0), "<I", 15))
    # a non-finite scale / offset / bias
    scale_t = struct.unpack_from("<8i", good, _node_off(0) + 96)[2]
    data_off = struct.unpack_from("<Q", good, 80)[0]
    scale_at = data_off + struct.unpack_from("<Q", good, _tensor_off(good, scale_t) + 24)[0]
    assert "not finite" in _load(_patch(good, scale_at + 4, "<f", float("nan")))
    off_t = struct.unpack_from("<8i", good, _node_off(0) + 96)[3]
    off_at = data_off + struct.unpack_from("<Q", good, _tensor_off(good, off_t) + 24)[0]
    assert "not finite" in _load(_patch(good, off_at, "<f", float("inf")))
    # qconv2d without its offset tensor slot
    assert "t3" in _load(_patch(good, _node_off(0) + 96 + 12, "<i", -1))
    # qlinear with an offset slot it does not use, or a param it does not read
    assert "t3" in _load(_patch(good, _node_off(qlin) + 96 + 12, "<i", 0))
    assert "p10" in _load(_patch(good, _node_off(qlin) + 16 + 40, "<i", 1))
    # qlinear's scales are [O][groups of 32 features]: the same floats declared 1-D or with
    # the axes swapped are rejected
    lin_scale = _tensor_off(good, struct.unpack_from("<8i", good, _node_off(qlin) + 96)[2])
    o, groups = struct.unpack_from("<2I", good, lin_scale + 8)
    assert (o, groups) == (13, -(-20 * 13 * 13 // 32))
    flat = _patch(_patch(good, lin_scale + 4, "<I", 1), lin_scale + 8, "<Q", o * groups)
    assert f"dims [{o * groups}] expected [{o},{groups}]" in _load(flat)
    swapped = _patch(good, lin_scale + 8, "<Q", groups | (o << 32))
    assert f"dims [{groups},{o}] expected [{o},{groups}]" in _load(swapped)


def test_loader_rejects_a_qconv2d_that_does_not_own_the_input() -> None:
    """qconv2d reads the pixels: it must read value 0, and nothing else may read value 0."""
    spec = InputSpec(3, 8, 8)

    def q() -> Node:
        return qconv2d(np.ones((4, 3, 3, 3), np.int8), np.ones(4), np.zeros((4, 3, 3)), padding=1)

    later = q()
    later.inputs = (1,)
    assert "model input" in _load(fmt.to_bytes(Graph(spec, [builders.simple("relu"), later])))
    shared = Graph(spec, [q(), q(), builders.simple("add", inputs=(1, 2))])
    assert "other node(s) read too" in _load(fmt.to_bytes(shared))
    Model.from_bytes(fmt.to_bytes(Graph(spec, [q()])))


def test_loader_rejects_int8_reductions_past_the_int32_bound() -> None:
    spec = InputSpec(1, 7, 9363, color="other", mean=(0.0,), std=(1.0,))  # 65541 features
    lin = qlinear(np.ones((2, 65541), np.int8), np.ones((2, 2049), np.float32))
    data = fmt.to_bytes(Graph(spec, [builders.simple("flatten"), lin]))
    assert "exceeds 65536" in _load(data)
    spec = InputSpec(1, 4, 16384, color="other", mean=(0.0,), std=(1.0,))
    lin = qlinear(np.full((2, 65536), -127, np.int8), np.ones((2, 2048), np.float32))
    model = Model.from_bytes(fmt.to_bytes(Graph(spec, [builders.simple("flatten"), lin])))
    x = np.full((1, 1, 4, 16384), -1.0, np.float32)
    assert model.infer(x)[0, 0] == pytest.approx(65536 * 127, rel=1e-6)


def test_info_command_shows_the_edges(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xnornet import cli

    path = tmp_path / "q.xnor"
    fmt.write_model(with_edges(first_conv_net(3, 3, (15, 15), 3, 1, (1, 1, 1, 1), 16), "int8"), path)
    assert cli.main(["info", str(path)]) == 0
    assert "edges      int8 (" in capsys.readouterr().out
    assert cli.main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["edges"] == "int8"
