"""Bytes of the xnornet model format (engine/FORMAT.md): an engine.graph.Graph to a file
and back, on numpy arrays.

Training, exporters and importers build a Graph (engine.builders) and call `write_model`;
tests and the reference read files back with `read_model`. Binary weights are stored at
1 bit each. The C loader is the one that validates a file fully.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .enums import COLOR_NAMES, COLORS, OP_NAMES, OPS, RESIZE, RESIZE_NAMES
from .graph import BINARY_OPS, BN_KEYS, INT8_OPS, QLINEAR_GROUP, FormatError, Graph, Node, infer_shapes
from .input_spec import InputSpec

MAGIC = b"XNORNET\x00"
VERSION = 1
HEADER_BYTES = 256
NODE_BYTES = 160
TENSOR_BYTES = 64
ALIGN = 64

DTYPE_F32 = 1
DTYPE_BITS = 2
DTYPE_I8 = 3


# Index of each named integer parameter in the node's p[16] array (FORMAT.md).
P_INDEX = {
    "out": 0,
    "kh": 1,
    "kw": 2,
    "sh": 3,
    "sw": 4,
    "pt": 5,
    "pl": 6,
    "pb": 7,
    "pr": 8,
    "has_bias": 9,
    "mode": 10,
    "use_k": 11,
    "ceil_mode": 12,
    "count_include_pad": 13,
}
# Tensor slots per op kind.
T_SLOTS = {
    "weight": 0,
    "bias": 1,
    "alpha": 2,
    "gamma": 0,
    "beta": 1,
    "mean": 2,
    "var": 3,
    "scale": 2,
    "offset": 3,
}
_Q_KEYS = ("weight", "bias", "scale", "offset")
# int8 layers accumulate u8 x s8 products in int32: the reduction length is bounded.
INT8_MAX_REDUCTION = 65536


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def pack_bits(signs: np.ndarray) -> bytes:
    """[O][...] of +1/-1 -> rows of little-endian bits, each row padded to a byte."""
    rows = (np.asarray(signs).reshape(signs.shape[0], -1) >= 0).astype(np.uint8)
    return np.packbits(rows, axis=1, bitorder="little").tobytes()


def unpack_bits(data: bytes, dims: Sequence[int]) -> np.ndarray:
    rows = int(dims[0])
    per_row = int(np.prod(dims[1:]))
    raw = np.frombuffer(data, np.uint8).reshape(rows, -1)
    bits = np.unpackbits(raw, axis=1, count=per_row, bitorder="little")
    return (bits.astype(np.int8) * 2 - 1).reshape(tuple(int(d) for d in dims))


def _check_name(name: str, limit: int) -> bytes:
    raw = name.encode("ascii", errors="strict")
    if len(raw) >= limit or any(b < 0x20 or b > 0x7E for b in raw):
        raise FormatError(f"name {name!r} must be printable ASCII shorter than {limit} bytes")
    return raw.ljust(limit, b"\x00")


def _validate_tensors(i: int, node: Node) -> None:
    need: tuple[str, ...]
    if node.op in ("conv2d", "linear"):
        need = ("weight",) + (("bias",) if node.p("has_bias") else ())
    elif node.op in BINARY_OPS:
        need = ("weight", "alpha") + (("bias",) if node.p("has_bias") else ())
    elif node.op in INT8_OPS:
        need = ("weight", "scale") + (("bias",) if node.p("has_bias") else ())
        need += ("offset",) if node.op == "qconv2d" else ()
    elif node.op == "batchnorm":
        need = BN_KEYS
    else:
        need = ()
    if set(node.tensors) != set(need):
        raise FormatError(f"node {i} ({node.op}) needs tensors {sorted(need)}, has {sorted(node.tensors)}")
    out = node.p("out")
    for key in ("bias", "alpha", "scale"):
        want: tuple[int, ...] = (out,)
        if key == "scale" and node.op == "qlinear":  # one scale per output and feature group
            want = (out, -(-int(node.tensors["weight"].shape[1]) // QLINEAR_GROUP))
        if key in node.tensors and node.tensors[key].shape != want:
            raise FormatError(f"node {i}: {key} shape {node.tensors[key].shape} != {want}")


def to_bytes(model: Graph) -> bytes:
    """Serialize a model; validates shapes and tensor sets first."""
    shapes = infer_shapes(model)
    for i, node in enumerate(model.nodes):
        _validate_tensors(i, node)
    if model.labels and len(model.labels) != int(np.prod(shapes[-1])):
        raise FormatError(f"{len(model.labels)} labels for an output of {shapes[-1]}")

    tensor_table: list[bytes] = []
    blobs: list[bytes] = []
    data_size = 0
    node_table: list[bytes] = []
    for i, node in enumerate(model.nodes):
        slots = [-1] * 8
        for key in sorted(node.tensors, key=lambda k: T_SLOTS[k]):
            arr = node.tensors[key]
            binary = node.op in BINARY_OPS and key == "weight"
            if binary:
                payload = pack_bits(arr)
                dtype = DTYPE_BITS
            elif node.op in INT8_OPS and key == "weight":
                payload = np.ascontiguousarray(arr, dtype=np.int8).tobytes()
                dtype = DTYPE_I8
            else:
                payload = np.ascontiguousarray(arr, dtype="<f4").tobytes()
                dtype = DTYPE_F32
            if not 1 <= arr.ndim <= 4:
                raise FormatError(f"node {i}: tensor {key} has {arr.ndim} dims")
            offset = _align(data_size)
            dims = list(arr.shape) + [0] * (4 - arr.ndim)
            tensor_table.append(struct.pack("<II4IQQ24x", dtype, arr.ndim, *dims, offset, len(payload)))
            blobs.append(b"\x00" * (offset - data_size) + payload)
            data_size = offset + len(payload)
            slots[T_SLOTS[key]] = len(tensor_table) - 1
        p = [0] * 16
        for key, value in node.params.items():
            if key == "eps":
                continue
            p[P_INDEX[key]] = int(value)
        f = [float(node.params.get("eps", 0.0)), 0.0, 0.0, 0.0]
        ins = list(model.resolved_inputs(i)) + [0] * (2 - len(model.resolved_inputs(i)))
        node_table.append(
            struct.pack("<III", OPS[node.op], len(model.resolved_inputs(i)), ins[0])
            + struct.pack("<I", ins[1])
            + struct.pack("<16i", *p)
            + struct.pack("<4f", *f)
            + struct.pack("<8i", *slots)
            + _check_name(node.name or f"{node.op}{i}", 32)
        )

    labels = b"".join(struct.pack("<H", len(s.encode())) + s.encode() for s in model.labels)
    for s in model.labels:
        if not 1 <= len(s.encode()) <= 1024 or "\x00" in s:
            raise FormatError(f"label {s!r}: 1..1024 bytes of UTF-8 without NUL")

    n_nodes, n_tensors = len(model.nodes), len(tensor_table)
    nodes_offset = HEADER_BYTES
    tensors_offset = nodes_offset + NODE_BYTES * n_nodes
    labels_offset = tensors_offset + TENSOR_BYTES * n_tensors
    data_offset = _align(labels_offset + len(labels))
    file_bytes = data_offset + data_size

    spec = model.input
    mean = [float(m) for m in spec.mean][:4] + [0.0] * (4 - min(4, len(spec.mean)))
    std = [float(s) for s in spec.std][:4] + [0.0] * (4 - min(4, len(spec.std)))
    header = bytearray(HEADER_BYTES)
    struct.pack_into("<8sIIQII", header, 0, MAGIC, VERSION, 0, file_bytes, HEADER_BYTES, 0)
    struct.pack_into("<IIII", header, 32, n_nodes, n_tensors, len(model.labels), 0)
    struct.pack_into(
        "<6Q", header, 48, nodes_offset, tensors_offset, labels_offset, len(labels), data_offset, data_size
    )
    struct.pack_into(
        "<6IfI",
        header,
        96,
        spec.channels,
        spec.height,
        spec.width,
        COLORS[spec.color],
        RESIZE[spec.resize],
        spec.resize_size,
        spec.scale,
        0,
    )
    struct.pack_into("<4f4f", header, 128, *mean, *std)
    header[160:224] = _check_name(model.name, 64)

    body = b"".join(
        [
            bytes(header),
            *node_table,
            *tensor_table,
            labels,
            b"\x00" * (data_offset - labels_offset - len(labels)),
            *blobs,
        ]
    )
    assert len(body) == file_bytes
    crc = zlib.crc32(body)
    return body[:12] + struct.pack("<I", crc) + body[16:]


def write_model(model: Graph, path: str | os.PathLike[str]) -> int:
    """Write atomically (temp file + rename) so a reader never sees half a model."""
    data = to_bytes(model)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(data)


# ---------------------------------------------------------------------------------------
# Reading (for tests and the reference; the C loader is the one that validates fully).


def read_model(source: str | os.PathLike[str] | bytes) -> Graph:
    data = source if isinstance(source, bytes) else open(source, "rb").read()  # noqa: SIM115
    if len(data) < HEADER_BYTES or data[:8] != MAGIC:
        raise FormatError("not an xnornet model")
    version, crc, file_bytes = struct.unpack_from("<IIQ", data, 8)
    if version != VERSION:
        raise FormatError(f"format version {version} is not {VERSION}")
    if file_bytes != len(data):
        raise FormatError(f"file_bytes {file_bytes} != size {len(data)}")
    if zlib.crc32(data[:12] + b"\x00" * 4 + data[16:]) != crc:
        raise FormatError("checksum mismatch")
    n_nodes, n_tensors, n_labels = struct.unpack_from("<III", data, 32)
    nodes_off, tensors_off, labels_off, _labels_bytes, data_off, _ = struct.unpack_from("<6Q", data, 48)
    c, h, w, color, resize, resize_size, scale = struct.unpack_from("<6If", data, 96)
    mean = struct.unpack_from("<4f", data, 128)
    std = struct.unpack_from("<4f", data, 144)
    name = data[160:224].split(b"\x00", 1)[0].decode("ascii")
    nc = min(c, 4)
    spec = InputSpec(
        c,
        h,
        w,
        COLOR_NAMES[color],
        RESIZE_NAMES[resize],
        resize_size,
        scale,
        tuple(mean[:nc]),
        tuple(std[:nc]),
    )

    tensors = []
    for ti in range(n_tensors):
        dtype, ndim, *rest = struct.unpack_from("<II4IQQ", data, tensors_off + TENSOR_BYTES * ti)
        dims, offset, nbytes = rest[:ndim], rest[4], rest[5]
        raw = data[data_off + offset : data_off + offset + nbytes]
        tensors.append((dtype, dims, raw))

    nodes = []
    for i in range(n_nodes):
        base = nodes_off + NODE_BYTES * i
        op, n_in, in0, in1 = struct.unpack_from("<4I", data, base)
        p = struct.unpack_from("<16i", data, base + 16)
        f = struct.unpack_from("<4f", data, base + 80)
        t = struct.unpack_from("<8i", data, base + 96)
        nm = data[base + 128 : base + 160].split(b"\x00", 1)[0].decode("ascii")
        op_name = OP_NAMES.get(op)
        if op_name is None:
            raise FormatError(f"node {i}: unknown op {op}")
        params: dict[str, Any] = {k: p[j] for k, j in P_INDEX.items() if p[j]}
        if op_name == "batchnorm":
            params["eps"] = f[0]
        keys = (
            BN_KEYS
            if op_name == "batchnorm"
            else _Q_KEYS
            if op_name in INT8_OPS
            else ("weight", "bias", "alpha")
        )
        arrays: dict[str, np.ndarray] = {}
        for key in keys:
            idx = t[T_SLOTS[key]]
            if idx < 0:
                continue
            dtype, dims, raw = tensors[idx]
            if dtype == DTYPE_BITS:
                arrays[key] = unpack_bits(raw, dims)
            elif dtype == DTYPE_I8:
                arrays[key] = np.frombuffer(raw, np.int8).reshape(dims).copy()
            else:
                arrays[key] = np.frombuffer(raw, "<f4").reshape(dims).astype(np.float32)
        nodes.append(Node(op_name, nm, (in0, in1)[:n_in], params, arrays))

    labels = []
    pos = labels_off
    for _ in range(n_labels):
        (n,) = struct.unpack_from("<H", data, pos)
        labels.append(data[pos + 2 : pos + 2 + n].decode("utf-8"))
        pos += 2 + n
    return Graph(spec, nodes, labels, name)
