"""The C loader rejects every malformed model file with its specific status.

A small valid model holding every op is built with engine.format; each corruption
below patches it (and, for structural corruptions, recomputes the CRC so the loader
gets past the checksum to the deeper check) and must be rejected by
xnor_model_load_bytes with the expected status and a non-empty message. Random
single-byte corruptions with a fixed CRC must never crash the loader.
"""

from __future__ import annotations

import pathlib
import random
import struct
import zlib
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
from engine._xnornet import ffi, lib

from engine import builders
from engine import format as fmt
from engine.graph import Graph, Node
from engine.input_spec import InputSpec

HDR = 256
NODE = 160
TENSOR = 64

# Header field offsets (FORMAT.md).
H_VERSION, H_CRC, H_FILE_BYTES, H_HEADER_BYTES, H_FLAGS = 8, 12, 16, 24, 28
H_N_NODES, H_N_TENSORS, H_N_LABELS, H_RES44 = 32, 36, 40, 44
H_NODES_OFF, H_TENSORS_OFF, H_LABELS_OFF, H_LABELS_BYTES, H_DATA_OFF, H_DATA_BYTES = 48, 56, 64, 72, 80, 88
H_IN_C, H_IN_H, H_IN_W, H_COLOR, H_RESIZE, H_RESIZE_SIZE, H_SCALE, H_RES124 = (
    96,
    100,
    104,
    108,
    112,
    116,
    120,
    124,
)
H_MEAN, H_STD, H_NAME, H_RES224 = 128, 144, 160, 224
U32_MAX, U64_MAX = 2**32 - 1, 2**64 - 1

# Node field offsets.
N_OP, N_NIN, N_IN0, N_IN1, N_P, N_F, N_T, N_NAME = 0, 4, 8, 12, 16, 80, 96, 128

# Node indices of the model below.
(
    CONV,
    RELU1,
    MAXPOOL,
    BN1,
    BCONV,
    RELU2,
    BWNCONV,
    ADD,
    AVGPOOL,
    DROPOUT,
    FLATTEN,
    BN2,
    BLIN,
    RELU3,
    BWNLIN,
    LINEAR,
    SOFTMAX,
) = range(17)

S = lib  # statuses: S.XNOR_ERR_*


def _model() -> Graph:
    rng = np.random.default_rng(7)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    def bn(c: int) -> Node:
        return builders.batchnorm(r(c), r(c), r(c), np.abs(r(c)) + 0.5, 1e-5)

    nodes = [
        builders.conv2d(r(6, 3, 3, 3), r(6), padding=1),  # -> [6,9,9]
        builders.simple("relu"),
        builders.maxpool(2, 2, ceil_mode=True),  # -> [6,5,5]
        bn(6),
        # 6*3*3 = 54 bits per row: the last byte of each row has 2 padding bits
        builders.bconv2d(*builders.binarize_weights(r(12, 6, 3, 3)), r(12), padding=1, use_k=True),
        builders.simple("relu"),  # value 6
        builders.bconv2d(*builders.binarize_weights(r(12, 12, 3, 3)), None, padding=1, mode="bwn"),
        builders.simple("add", inputs=(7, 6)),
        builders.avgpool(2, 1, padding=(0, 0, 1, 1), count_include_pad=False),  # -> [12,5,5]
        builders.simple("dropout"),
        builders.simple("flatten"),  # -> [300]
        bn(300),
        builders.blinear(*builders.binarize_weights(r(20, 300)), r(20), use_k=True),
        builders.simple("relu"),
        builders.blinear(*builders.binarize_weights(r(16, 20)), None, mode="bwn"),  # 20 bits: 4 padding bits
        builders.linear(r(10, 16), r(10)),
        builders.simple("softmax"),
    ]
    spec = InputSpec(3, 9, 9, color="rgb", mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    labels = ["zero", "one", "two", "three", "vier", "fünf", "六", "seven", "eight", "nine"]
    return Graph(spec, nodes, labels, name="corrupt-test")


GOOD = fmt.to_bytes(_model())


def _u32(b: bytes | bytearray, off: int) -> int:
    return struct.unpack_from("<I", b, off)[0]


def _u64(b: bytes | bytearray, off: int) -> int:
    return struct.unpack_from("<Q", b, off)[0]


TENSORS_OFF = _u64(GOOD, H_TENSORS_OFF)
LABELS_OFF = _u64(GOOD, H_LABELS_OFF)
LABELS_BYTES = _u64(GOOD, H_LABELS_BYTES)
DATA_OFF = _u64(GOOD, H_DATA_OFF)
N_NODES = _u32(GOOD, H_N_NODES)
N_TENSORS = _u32(GOOD, H_N_TENSORS)


def node_off(k: int) -> int:
    return HDR + NODE * k


def tensor_off(i: int) -> int:
    return TENSORS_OFF + TENSOR * i


def node_tensor(k: int, slot: int) -> int:
    return struct.unpack_from("<i", GOOD, node_off(k) + N_T + 4 * slot)[0]


def tensor_data(i: int) -> int:
    """File offset of tensor i's bytes."""
    return DATA_OFF + _u64(GOOD, tensor_off(i) + 24)


def fix_crc(b: bytearray) -> bytes:
    b[H_CRC : H_CRC + 4] = b"\x00" * 4
    struct.pack_into("<I", b, H_CRC, zlib.crc32(bytes(b)))
    return bytes(b)


def patched(*edits: tuple[int, str, object], crc: bool = True) -> bytes:
    """Apply (offset, struct format, value) edits; recompute the CRC unless told not to."""
    b = bytearray(GOOD)
    for off, f, v in edits:
        if isinstance(v, tuple):
            struct.pack_into("<" + f, b, off, *v)
        else:
            struct.pack_into("<" + f, b, off, v)
    return fix_crc(b) if crc else bytes(b)


def rebuild(labels: bytes, n_labels: int, pad_byte: int = 0) -> bytes:
    """The model with another label section (offsets recomputed, tensor data moved)."""
    head = bytearray(GOOD[:LABELS_OFF])
    data = GOOD[DATA_OFF:]
    data_off = (LABELS_OFF + len(labels) + 63) // 64 * 64
    pad = bytes([pad_byte]) * (data_off - LABELS_OFF - len(labels))
    struct.pack_into("<I", head, H_N_LABELS, n_labels)
    struct.pack_into("<Q", head, H_LABELS_BYTES, len(labels))
    struct.pack_into("<Q", head, H_DATA_OFF, data_off)
    struct.pack_into("<Q", head, H_FILE_BYTES, data_off + len(data))
    return fix_crc(bytearray(bytes(head) + labels + pad + data))


def label_bytes(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<H", len(s)) + s for s in items)


def load(data: bytes) -> tuple[int, str]:
    out = ffi.new("xnor_model_t **")
    err = ffi.new("char[]", 512)
    st = lib.xnor_model_load_bytes(data, len(data), out, err, 512)
    msg = ffi.string(err).decode("utf-8", "replace")
    if st == 0:
        assert out[0] != ffi.NULL
        lib.xnor_model_free(out[0])
    else:
        assert out[0] == ffi.NULL
    return int(st), msg


def _flip(off: int) -> Callable[[], bytes]:
    def f() -> bytes:
        b = bytearray(GOOD)
        b[off] ^= 0x01
        return bytes(b)

    return f


def _bad_pad_bits() -> bytes:
    # Set a padding bit (bit 7 of the last byte of row 0) of the XNOR conv's weights.
    t = node_tensor(BCONV, 0)
    rowbytes = (6 * 9 + 7) // 8
    b = bytearray(GOOD)
    b[tensor_data(t) + rowbytes - 1] |= 0x80
    return fix_crc(b)


def _bad_pad_bits_blinear() -> bytes:
    t = node_tensor(BWNLIN, 0)
    b = bytearray(GOOD)
    b[tensor_data(t) + 2] |= 0x10  # 20 bits per row: bits 4..7 of byte 2 are padding
    return fix_crc(b)


def _tensor_gap_nonzero() -> bytes:
    # Find a tensor that is followed by alignment padding and dirty it.
    b = bytearray(GOOD)
    for i in range(N_TENSORS - 1):
        end = _u64(GOOD, tensor_off(i) + 24) + _u64(GOOD, tensor_off(i) + 32)
        if end % 64:
            b[DATA_OFF + end] = 0xAA
            return fix_crc(b)
    raise AssertionError("no padding between tensors in the test model")


def _node_reads_later_value() -> bytes:
    return patched((node_off(RELU1) + N_IN0, "I", 5))


def _refused(
    status: int, *cases: tuple[str, Callable[[], bytes]]
) -> list[tuple[str, Callable[[], bytes], int]]:
    """Cases that the loader must refuse with `status`."""
    return [(name, make, status) for name, make in cases]


def _values(field: str, off: int, f: str, values: dict[str, object]) -> list[tuple[str, Callable[[], bytes]]]:
    """A case per value written (struct format `f`) at `off`, named `field`_key: for a field tested at
    several values; a field tested at one value is a plain row."""
    return [(f"{field}_{key}", partial(patched, (off, f, v))) for key, v in values.items()]


CASES: list[tuple[str, Callable[[], bytes], int]] = [
    # --- size, magic, version, checksum
    *_refused(
        S.XNOR_ERR_TRUNCATED,
        ("empty", lambda: b""),
        ("trunc_inside_header", lambda: GOOD[:100]),
        ("trunc_at_header_end", lambda: GOOD[:HDR]),
        ("trunc_node_table", lambda: GOOD[: node_off(3) + 17]),
        ("trunc_tensor_table", lambda: GOOD[: tensor_off(2) + 5]),
        ("trunc_labels", lambda: GOOD[: LABELS_OFF + 7]),
        ("trunc_data", lambda: GOOD[: DATA_OFF + 100]),
        ("trunc_last_byte", lambda: GOOD[:-1]),
    ),
    *_refused(
        S.XNOR_ERR_TRAILING_DATA,
        ("trailing_byte", lambda: GOOD + b"\x00"),
        ("trailing_block", lambda: GOOD + b"\x00" * 64),
    ),
    *_refused(
        S.XNOR_ERR_TRUNCATED,
        ("file_bytes_max", lambda: patched((H_FILE_BYTES, "Q", U64_MAX))),
    ),
    *_refused(
        S.XNOR_ERR_TRAILING_DATA,
        ("file_bytes_zero", lambda: patched((H_FILE_BYTES, "Q", 0))),
    ),
    *_refused(
        S.XNOR_ERR_BAD_MAGIC,
        ("bad_magic", lambda: b"XNORNEU\x00" + GOOD[8:]),
        ("magic_zeroed", lambda: b"\x00" * 8 + GOOD[8:]),
    ),
    *_refused(
        S.XNOR_ERR_BAD_VERSION,
        *_values("version", H_VERSION, "I", {"0": 0, "2": 2, "max": U32_MAX}),
    ),
    *_refused(
        S.XNOR_ERR_CHECKSUM,
        ("flip_data_byte", _flip(len(GOOD) - 3)),
        ("flip_node_byte", _flip(node_off(4) + 20)),
        ("flip_label_byte", _flip(LABELS_OFF + 3)),
        ("crc_field", lambda: patched((H_CRC, "I", _u32(GOOD, H_CRC) ^ 1), crc=False)),
    ),
    # --- header fields
    *_refused(
        S.XNOR_ERR_BAD_HEADER,
        *_values("header_bytes", H_HEADER_BYTES, "I", {"0": 0, "max": U32_MAX}),
        *_values("flags", H_FLAGS, "I", {"1": 1, "max": U32_MAX}),
        *_values("n_nodes", H_N_NODES, "I", {"0": 0, "max": U32_MAX, "4097": 4097, "minus_1": N_NODES - 1}),
        *_values("n_tensors", H_N_TENSORS, "I", {"max": U32_MAX, "0": 0, "plus_1": N_TENSORS + 1}),
        ("reserved_44", lambda: patched((H_RES44, "I", 1))),
        *_values("nodes_offset", H_NODES_OFF, "Q", {"0": 0, "max": U64_MAX}),
        ("tensors_offset_max", lambda: patched((H_TENSORS_OFF, "Q", U64_MAX))),
        ("labels_offset_0", lambda: patched((H_LABELS_OFF, "Q", 0))),
        *_values("labels_bytes", H_LABELS_BYTES, "Q", {"max": U64_MAX, "plus_64": LABELS_BYTES + 64}),
        *_values("data_offset", H_DATA_OFF, "Q", {"max": U64_MAX, "plus_64": DATA_OFF + 64}),
        *_values("data_bytes", H_DATA_BYTES, "Q", {"0": 0, "max": U64_MAX}),
        *_values("in_c", H_IN_C, "I", {"0": 0, "max": U32_MAX}),
        ("in_h_0", lambda: patched((H_IN_H, "I", 0))),
        *_values("in_w", H_IN_W, "I", {"max": U32_MAX, "16385": 16385}),
        ("input_over_2e28", lambda: patched((H_IN_C, "I", 3), (H_IN_H, "I", 16384), (H_IN_W, "I", 16384))),
        *_values("color", H_COLOR, "I", {"4": 4, "gray_with_3_channels": 0}),
        *_values("resize_policy", H_RESIZE, "I", {"3": 3, "max": U32_MAX}),
        ("resize_size_with_policy_2", lambda: patched((H_RESIZE, "I", 2), (H_RESIZE_SIZE, "I", 256))),
        ("resize_size_with_policy_0", lambda: patched((H_RESIZE_SIZE, "I", 256))),
        ("resize_size_too_small", lambda: patched((H_RESIZE, "I", 1), (H_RESIZE_SIZE, "I", 8))),
        ("resize_size_too_big", lambda: patched((H_RESIZE, "I", 1), (H_RESIZE_SIZE, "I", 65537))),
        *_values("scale", H_SCALE, "f", {"0": 0.0, "nan": float("nan"), "inf": float("inf")}),
        ("reserved_124", lambda: patched((H_RES124, "I", 7))),
        ("mean_nan", lambda: patched((H_MEAN + 4, "f", float("nan")))),
        ("mean_past_in_c", lambda: patched((H_MEAN + 12, "f", 0.5))),
        ("std_0", lambda: patched((H_STD + 8, "f", 0.0))),
        ("std_negative", lambda: patched((H_STD, "f", -1.0))),
        ("std_past_in_c", lambda: patched((H_STD + 12, "f", 1.0))),
        ("name_unprintable", lambda: patched((H_NAME, "B", 0x07))),
        ("name_no_nul", lambda: patched((H_NAME, "64s", b"A" * 64))),
        ("name_garbage_after_nul", lambda: patched((H_NAME + 40, "B", 0x41))),
        ("reserved_224", lambda: patched((H_RES224 + 31, "B", 1))),
    ),
    # --- tensor table
    *_refused(
        S.XNOR_ERR_BAD_TENSOR,
        ("tensor_dtype_0", lambda: patched((tensor_off(0), "I", 0))),
        ("tensor_dtype_3", lambda: patched((tensor_off(1), "I", 3))),
        *_values("tensor_ndim", tensor_off(0) + 4, "I", {"0": 0, "5": 5}),
        ("tensor_dim_zero", lambda: patched((tensor_off(0) + 8 + 4, "I", 0))),
        ("tensor_dim_past_ndim", lambda: patched((tensor_off(1) + 8 + 4, "I", 1))),
        ("tensor_dims_overflow", lambda: patched((tensor_off(0) + 8, "4I", (65535,) * 4))),
        ("tensor_dims_u32_max", lambda: patched((tensor_off(0) + 8, "4I", (U32_MAX,) * 4))),
        (
            "tensor_nbytes_plus_1",
            lambda: patched((tensor_off(0) + 32, "Q", _u64(GOOD, tensor_off(0) + 32) + 1)),
        ),
        ("tensor_nbytes_max", lambda: patched((tensor_off(3) + 32, "Q", U64_MAX))),
        (
            "tensor_offset_misaligned",
            lambda: patched((tensor_off(1) + 24, "Q", _u64(GOOD, tensor_off(1) + 24) + 4)),
        ),
        ("tensor_offset_overlap", lambda: patched((tensor_off(1) + 24, "Q", 0))),
        ("tensor_offset_max", lambda: patched((tensor_off(2) + 24, "Q", 2**64 - 64))),
        ("tensor_reserved", lambda: patched((tensor_off(0) + 63, "B", 1))),
        ("tensor_gap_nonzero", _tensor_gap_nonzero),
        ("bits_padding_bconv", _bad_pad_bits),
        ("bits_padding_blinear", _bad_pad_bits_blinear),
        (
            "tensor_wrong_dtype_for_node",
            lambda: patched(
                (node_off(CONV) + N_T, "i", node_tensor(BCONV, 0)),
                (node_off(BCONV) + N_T, "i", node_tensor(CONV, 0)),
            ),
        ),
        (
            "tensor_unused",
            lambda: patched((node_off(CONV) + N_P + 4 * 9, "i", 0), (node_off(CONV) + N_T + 4, "i", -1)),
        ),
    ),
    # --- node table
    *_refused(
        S.XNOR_ERR_BAD_NODE,
        *_values("op", node_off(RELU1) + N_OP, "I", {"0": 0, "unknown": 99}),
        ("n_inputs_2_for_relu", lambda: patched((node_off(RELU1) + N_NIN, "I", 2))),
        (
            "n_inputs_1_for_add",
            lambda: patched((node_off(ADD) + N_NIN, "I", 1), (node_off(ADD) + N_IN1, "I", 0)),
        ),
        ("input_later_value", _node_reads_later_value),
        ("input_own_value", lambda: patched((node_off(RELU1) + N_IN0, "I", RELU1 + 1))),
        ("unused_input_slot", lambda: patched((node_off(RELU1) + N_IN1, "I", 1))),
        ("unused_param", lambda: patched((node_off(RELU1) + N_P, "i", 3))),
        ("unused_float_param", lambda: patched((node_off(CONV) + N_F, "f", 1e-5))),
        ("unused_tensor_slot", lambda: patched((node_off(RELU1) + N_T, "i", 0))),
        *_values("tensor_index", node_off(CONV) + N_T, "i", {"out_of_range": N_TENSORS, "negative": -2}),
        *_values("kernel", node_off(MAXPOOL) + N_P + 4, "i", {"0": 0, "65": 65}),
        ("stride_0", lambda: patched((node_off(CONV) + N_P + 12, "i", 0))),
        ("padding_ge_kernel", lambda: patched((node_off(CONV) + N_P + 20, "i", 3))),
        ("padding_negative", lambda: patched((node_off(CONV) + N_P + 32, "i", -1))),
        *_values("out_channels", node_off(CONV) + N_P, "i", {"0": 0, "huge": 65537}),
        ("has_bias_2", lambda: patched((node_off(CONV) + N_P + 36, "i", 2))),
        ("mode_2", lambda: patched((node_off(BCONV) + N_P + 40, "i", 2))),
        ("use_k_with_bwn", lambda: patched((node_off(BWNCONV) + N_P + 44, "i", 1))),
        ("ceil_mode_2", lambda: patched((node_off(MAXPOOL) + N_P + 48, "i", 2))),
        ("count_include_pad_on_maxpool", lambda: patched((node_off(MAXPOOL) + N_P + 52, "i", 1))),
        *_values("bn_eps", node_off(BN1) + N_F, "f", {"0": 0.0, "nan": float("nan")}),
        ("node_name_unprintable", lambda: patched((node_off(ADD) + N_NAME, "B", 0x1B))),
        ("node_name_no_nul", lambda: patched((node_off(ADD) + N_NAME, "32s", b"n" * 32))),
        # value 10 (dropout) is never read when flatten reads value 9 directly
        ("unused_value", lambda: patched((node_off(FLATTEN) + N_IN0, "I", DROPOUT))),
    ),
    # --- shapes
    *_refused(
        S.XNOR_ERR_SHAPE_MISMATCH,
        ("shape_conv_weight_dims", lambda: patched((node_off(CONV) + N_P + 8, "i", 2))),
        ("shape_out_channels", lambda: patched((node_off(CONV) + N_P, "i", 7))),
        ("shape_bn_channels", lambda: patched((node_off(BN1) + N_IN0, "I", 0))),
        ("shape_linear_on_4d", lambda: patched((node_off(BLIN) + N_IN0, "I", AVGPOOL + 1))),
        # flatten turned into dropout: the 2-D batchnorm then sees [12,5,5]
        ("shape_flatten_removed", lambda: patched((node_off(FLATTEN) + N_OP, "I", 10))),
        ("shape_add_differs", lambda: patched((node_off(ADD) + N_IN1, "I", 3))),
        (
            "shape_kernel_bigger_than_input",
            lambda: patched((node_off(MAXPOOL) + N_P + 4, "4i", (12, 12, 2, 2))),
        ),
        ("shape_softmax_4d", lambda: patched((node_off(SOFTMAX) + N_IN0, "I", DROPOUT + 1))),
    ),
    # --- labels
    *_refused(
        S.XNOR_ERR_BAD_LABELS,
        *_values(
            "labels_n", H_N_LABELS, "I", {"zero_with_bytes": 0, "max": U32_MAX, "minus_1": 9, "plus_1": 11}
        ),
        *_values("label_len", LABELS_OFF, "H", {"0": 0, "past_end": 1000}),
        ("label_bad_utf8", lambda: patched((LABELS_OFF + 2, "B", 0xFF))),
        ("label_with_nul", lambda: patched((LABELS_OFF + 3, "B", 0))),
        (
            "label_padding_nonzero",
            lambda: rebuild(label_bytes([s.encode() for s in _model().labels]), 10, 0x20),
        ),
        ("label_count_vs_output", lambda: rebuild(label_bytes([b"a"] * 9), 9)),
        ("label_too_long", lambda: rebuild(label_bytes([b"x" * 1025] + [b"a"] * 9), 10)),
        ("label_overlong_utf8", lambda: rebuild(label_bytes([b"\xc0\xaf"] + [b"a"] * 9), 10)),
        ("label_surrogate", lambda: rebuild(label_bytes([b"\xed\xa0\x80"] + [b"a"] * 9), 10)),
    ),
]


def test_good_model_loads() -> None:
    st, msg = load(GOOD)
    assert st == 0, msg


def test_status_names_are_distinct() -> None:
    codes = {
        S.XNOR_ERR_TRUNCATED,
        S.XNOR_ERR_TRAILING_DATA,
        S.XNOR_ERR_BAD_MAGIC,
        S.XNOR_ERR_BAD_VERSION,
        S.XNOR_ERR_CHECKSUM,
        S.XNOR_ERR_BAD_HEADER,
        S.XNOR_ERR_BAD_TENSOR,
        S.XNOR_ERR_BAD_NODE,
        S.XNOR_ERR_SHAPE_MISMATCH,
        S.XNOR_ERR_BAD_LABELS,
    }
    assert len(codes) == 10


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 25
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "make", "want"), CASES, ids=[c[0] for c in CASES])
def test_corruption_rejected(name: str, make: Callable[[], bytes], want: int) -> None:
    data = make()
    assert data != GOOD
    st, msg = load(data)
    assert st == want, f"{name}: got {ffi.string(lib.xnor_status_str(st)).decode()} ({st}): {msg!r}"
    assert msg, f"{name}: empty error message"


def test_messages_name_the_field() -> None:
    assert "n_nodes" in load(patched((H_N_NODES, "I", 0)))[1]
    assert "flags" in load(patched((H_FLAGS, "I", 1)))[1]
    msg = load(patched((node_off(CONV) + N_P + 8, "i", 2)))[1]
    assert "node 0" in msg and "conv2d0" in msg and "t0" in msg and "[6,3,3,3]" in msg and "[6,3,3,2]" in msg
    assert "tensor 1" in load(patched((tensor_off(1) + 24, "Q", 0)))[1]
    assert "label 0" in load(patched((LABELS_OFF, "H", 0)))[1]
    assert "crc" in load(_flip(len(GOOD) - 1)())[1].lower()


def test_small_error_buffer_is_terminated() -> None:
    data = patched((H_N_NODES, "I", 0))
    out = ffi.new("xnor_model_t **")
    err = ffi.new("char[]", b"\xff" * 8)
    assert lib.xnor_model_load_bytes(data, len(data), out, err, 8) == S.XNOR_ERR_BAD_HEADER
    assert err[7] == b"\x00" and len(ffi.string(err)) == 7
    # A NULL message buffer is allowed.
    assert lib.xnor_model_load_bytes(data, len(data), out, ffi.NULL, 0) == S.XNOR_ERR_BAD_HEADER


def test_bad_arguments() -> None:
    err = ffi.new("char[]", 256)
    assert lib.xnor_model_load_bytes(GOOD, len(GOOD), ffi.NULL, err, 256) == S.XNOR_ERR_INVALID_ARGUMENT
    out = ffi.new("xnor_model_t **")
    assert lib.xnor_model_load_file(b"/nonexistent/model.xnor", out, err, 256) == S.XNOR_ERR_IO
    assert out[0] == ffi.NULL and ffi.string(err)


def test_load_file_matches_bytes(tmp_path) -> None:
    p = tmp_path / "m.xnor"
    p.write_bytes(GOOD)
    out = ffi.new("xnor_model_t **")
    err = ffi.new("char[]", 256)
    assert lib.xnor_model_load_file(str(p).encode(), out, err, 256) == 0, ffi.string(err)
    info = ffi.new("xnor_model_info *")
    assert lib.xnor_model_get_info(out[0], info) == 0
    assert info.file_bytes == len(GOOD) and info.n_nodes == N_NODES and info.n_labels == 10
    assert info.crc32 == _u32(GOOD, H_CRC) and ffi.string(info.name) == b"corrupt-test"
    text, n = ffi.new("const char **"), ffi.new("uint32_t *")
    assert lib.xnor_model_get_label(out[0], 5, text, n) == 0
    assert ffi.unpack(text[0], n[0]).decode() == "fünf"
    assert lib.xnor_model_get_label(out[0], 10, text, n) == S.XNOR_ERR_INVALID_ARGUMENT
    lib.xnor_model_free(out[0])
    (tmp_path / "t.xnor").write_bytes(GOOD[:-5])
    assert lib.xnor_model_load_file(str(tmp_path / "t.xnor").encode(), out, err, 256) == S.XNOR_ERR_TRUNCATED


def test_random_single_byte_corruptions_never_crash() -> None:
    rng = random.Random(1234)
    outcomes: dict[int, int] = {}
    for _ in range(1000):
        b = bytearray(GOOD)
        off = rng.randrange(16, len(b))  # keep magic/version/crc field; the CRC is recomputed
        b[off] = rng.randrange(256)
        data = fix_crc(b)
        st, msg = load(data)
        assert st == 0 or msg, f"offset {off}: status {st} without a message"
        outcomes[st] = outcomes.get(st, 0) + 1
    # Most bytes are weights (any value is valid) but header/table bytes must be caught.
    assert any(s != 0 for s in outcomes), outcomes


def test_still_loads_after_all_corruptions() -> None:
    for _, make, _ in CASES:
        load(make())
    st, msg = load(GOOD)
    assert st == 0, msg
    # And runs: the loader left no global state behind.
    out = ffi.new("xnor_model_t **")
    err = ffi.new("char[]", 256)
    assert lib.xnor_model_load_bytes(GOOD, len(GOOD), out, err, 256) == 0
    ctx = ffi.new("xnor_context_t **")
    params = ffi.new("xnor_context_params *", lib.xnor_context_default_params())
    params.n_threads = 2
    assert lib.xnor_context_new(out[0], params, ctx, err, 256) == 0, ffi.string(err)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
    y = np.zeros((2, 10), np.float32)
    assert (
        lib.xnor_infer(
            ctx[0], ffi.from_buffer("float[]", x), 2, x.size, ffi.from_buffer("float[]", y), y.size
        )
        == 0
    )
    assert np.allclose(y.sum(axis=1), 1.0, atol=1e-5)
    lib.xnor_context_free(ctx[0])
    lib.xnor_model_free(out[0])


def test_reduction_length_2_30_rejected() -> None:
    # The XNOR epilogue forms n - 2 * popcount in int32: n = 2^30 would overflow, so the
    # longest accepted reduction is 2^30 - 1 (tests/fuzz/corpus holds the same file).
    path = pathlib.Path(__file__).parents[1] / "fuzz" / "corpus" / "regress-reduction-length-2-30.bin"
    st, msg = load(path.read_bytes())
    assert st == S.XNOR_ERR_SHAPE_MISMATCH, msg
    assert "node 6" in msg and "reduction length 1073741824 x 1 x 1 is not below 2^30" in msg
