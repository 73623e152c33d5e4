#!/usr/bin/env python3
"""Seed corpus for the model-loader fuzzer (tests/fuzz/fuzz_loader.c).

Writes small valid model files (< 20 KB each) that together use every op and every
option of engine/FORMAT.md: conv2d (bias, asymmetric padding, stride), bconv2d in XNOR
(with and without use_k, with and without bias) and BWN mode, linear, blinear XNOR / BWN /
use_k, batchnorm on 4-D and 2-D values, relu, maxpool (ceil_mode, padding), avgpool
(count_include_pad on and off, ceil_mode), flatten (also of a 1x1 map), dropout, softmax,
add (a residual DAG), every color / resize policy, labels with multi-byte UTF-8, models
without tensors. A few invalid files (bad magic, bad version, truncated, trailing data,
checksum) seed the early exits. It also writes a libFuzzer dictionary.

    python3 scripts/fuzz/make_corpus.py OUT_DIR [--dict FILE]

Only numpy is needed: engine's numpy side (graph, builders, format) does not load the
compiled engine, so it does not have to be built first. Output is deterministic (seeded generators).
"""

from __future__ import annotations

import argparse
import pathlib
import struct
import sys
import zlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


sys.path.insert(0, str(ROOT))
from engine import (  # noqa: E402  (the numpy side: no compiled engine needed)
    builders,
    enums,
    int8,
)
from engine import format as fmt  # noqa: E402
from engine.graph import Graph, infer_shapes  # noqa: E402
from engine.input_spec import InputSpec  # noqa: E402

MAX_SEED_BYTES = 20 * 1024


# ------------------------------------------------------------------------- helpers


def _bn(rng: np.random.Generator, c: int, name: str = "") -> object:
    return builders.batchnorm(
        rng.uniform(0.5, 1.5, c),
        rng.normal(0, 0.2, c),
        rng.normal(0, 0.2, c),
        rng.uniform(0.3, 1.5, c),
        1e-5,
        name=name,
    )


def _bconv(rng, o, i, k, *, stride=1, pad=0, mode="xnor", use_k=False, bias=True, name=""):
    kh, kw = (k, k) if isinstance(k, int) else k
    signs, alpha = builders.binarize_weights(rng.standard_normal((o, i, kh, kw)))
    return builders.bconv2d(
        signs,
        alpha,
        rng.normal(0, 0.1, o) if bias else None,
        stride=stride,
        padding=pad,
        mode=mode,
        use_k=use_k,
        name=name,
    )


def _blinear(rng, o, i, *, mode="xnor", use_k=False, bias=True, name=""):
    signs, alpha = builders.binarize_weights(rng.standard_normal((o, i)))
    bias_v = rng.normal(0, 0.1, o) if bias else None
    return builders.blinear(signs, alpha, bias_v, mode=mode, use_k=use_k, name=name)


def _conv(rng, o, i, k, *, stride=1, pad=0, bias=True, name=""):
    kh, kw = (k, k) if isinstance(k, int) else k
    w = rng.standard_normal((o, i, kh, kw)).astype(np.float32)
    return builders.conv2d(w, rng.normal(0, 0.1, o) if bias else None, stride=stride, padding=pad, name=name)


def _linear(rng, o, i, *, bias=True, name=""):
    return builders.linear(
        rng.standard_normal((o, i)).astype(np.float32), rng.normal(0, 0.1, o) if bias else None, name=name
    )


def _flat(spec, nodes) -> int:
    return int(np.prod(infer_shapes(Graph(spec, nodes))[-1]))


def _spec(c, h, w, color=None, **kw):
    if color is None:
        color = {1: "gray", 3: "rgb"}.get(c, "other")
    n = min(c, 4)
    kw.setdefault("mean", (0.1,) * n)
    kw.setdefault("std", (0.5,) * n)
    return InputSpec(c, h, w, color, **kw)


def fix_crc(b: bytes | bytearray) -> bytes:
    b = bytearray(b)
    b[12:16] = b"\0\0\0\0"
    b[12:16] = struct.pack("<I", zlib.crc32(bytes(b)))
    return bytes(b)


# ------------------------------------------------------------------------- valid seeds


def seeds() -> dict[str, bytes]:
    out: dict[str, bytes] = {}

    def add(name: str, model) -> None:
        out[name] = fmt.to_bytes(model)

    rng = np.random.default_rng(1)
    # 1. The classic XNOR chain: every op of a classifier, odd channel counts.
    spec = _spec(3, 9, 8)
    nodes = [
        _conv(rng, 5, 3, 3, pad=(1, 0, 1, 2), name="conv1"),
        _bn(rng, 5, "bn1"),
        builders.simple("relu"),
        builders.maxpool(3, 2, 1, ceil_mode=True),
        _bn(rng, 5),
        _bconv(rng, 17, 5, 3, pad=1, name="b2"),
        builders.simple("relu"),
        _bn(rng, 17),
        _bconv(rng, 7, 17, 2, stride=2, pad=(1, 0, 0, 1), bias=False),
        builders.avgpool(2, 1, 1, count_include_pad=True),
        _bn(rng, 7),
        builders.simple("flatten"),
    ]
    f = _flat(spec, nodes)
    nodes += [
        _blinear(rng, 9, f, name="fc1"),
        builders.simple("relu"),
        _bn(rng, 9, "bn1d"),
        builders.simple("dropout"),
        _linear(rng, 4, 9, name="fc2"),
        builders.simple("softmax"),
    ]
    labels = ["cat", "dog", "koala", "\u00e9l\u00e8ve"]
    add("chain_xnor_softmax", Graph(spec, nodes, labels, name="chain"))

    # 2. Same graph in BWN mode, no labels, logits.
    rng = np.random.default_rng(2)
    nodes = [
        _conv(rng, 4, 3, 3, stride=2, pad=1, bias=False),
        builders.simple("relu"),
        _bn(rng, 4),
        _bconv(rng, 6, 4, 3, pad=(0, 1, 2, 1), mode="bwn"),
        builders.maxpool(2, 1),
        _bconv(rng, 5, 6, 1, mode="bwn", bias=False),
        builders.simple("flatten"),
    ]
    spec = _spec(3, 7, 9, "bgr")
    f = _flat(spec, nodes)
    nodes += [_blinear(rng, 6, f, mode="bwn"), _blinear(rng, 3, 6, mode="bwn", bias=False)]
    add("chain_bwn", Graph(spec, nodes, name="bwn"))

    # 3. use_k (the paper's K scaling) in bconv2d and blinear, stride and asymmetric pad.
    rng = np.random.default_rng(3)
    nodes = [
        _bn(rng, 2),
        _bconv(rng, 18, 2, 3, stride=(2, 1), pad=(2, 0, 1, 2), use_k=True),
        builders.simple("relu"),
        _bconv(rng, 3, 18, (1, 3), use_k=True, bias=False),
        builders.simple("flatten"),
    ]
    spec = _spec(2, 6, 5)
    f = _flat(spec, nodes)
    nodes += [_bn(rng, f), _blinear(rng, 5, f, use_k=True), _blinear(rng, 2, 5, use_k=True, bias=False)]
    add("use_k", Graph(spec, nodes, ["yes", "no"], name="usek"))

    # 4. Residual DAG with add (two adds, one of them reading the model input).
    rng = np.random.default_rng(4)
    c = 3
    nodes = [
        _bn(rng, c, "bn0"),  # v1
        _bconv(rng, c, c, 3, pad=1, name="b1"),  # v2
        builders.simple("add", inputs=(2, 0)),  # v3 = v2 + input
        _bn(rng, c, "bn1"),  # v4
        _bconv(rng, c, c, 3, pad=1, mode="bwn"),  # v5
        builders.simple("add", inputs=(5, 3)),  # v6 = v5 + v3
        builders.simple("relu"),  # v7
        builders.avgpool(5, 5, count_include_pad=False),  # global pool
        builders.simple("flatten"),  # flatten of a 1x1 map (an alias)
        _linear(rng, 4, c),
    ]
    add("residual_add", Graph(_spec(3, 5, 5), nodes, name="res"))

    # 5. Pool variants: ceil_mode with the PyTorch "last window" rule, padding, avg without pad.
    rng = np.random.default_rng(5)
    nodes = [
        builders.maxpool((3, 2), (2, 3), (1, 1, 2, 0), ceil_mode=True),
        builders.avgpool(3, 2, 1, ceil_mode=True, count_include_pad=False),
        builders.avgpool(2, 1, (0, 1, 1, 0), count_include_pad=True),
        builders.maxpool(1, 1),
        builders.simple("flatten"),
    ]
    add("pools", Graph(_spec(4, 11, 10), nodes, name="pools"))

    # 6. Tensor-free graphs: relu only; dropout only; flatten + softmax with labels; gray input.
    add("relu_only", Graph(_spec(1, 3, 4), [builders.simple("relu")], name="r"))
    add("dropout_only", Graph(_spec(3, 2, 2), [builders.simple("dropout")], name=""))
    if "central_crop_bicubic" in enums.RESIZE:  # resize_policy 2
        add(
            "relu_policy2",
            Graph(_spec(3, 2, 3, resize="central_crop_bicubic"), [builders.simple("relu")], name="p2"),
        )
    add(
        "flatten_softmax",
        Graph(
            _spec(1, 1, 3),
            [builders.simple("flatten"), builders.simple("softmax")],
            ["a", "\u4e2d\u6587", "\U0001f600"],
            name="sm",
        ),
    )

    # 7. conv2d only, float, many channels past 16 and 32 (lane and word padding), no bias.
    rng = np.random.default_rng(7)
    add(
        "conv_only",
        Graph(
            _spec(5, 4, 3),
            [_conv(rng, 33, 5, (2, 3), stride=(1, 2), pad=(1, 2, 0, 0), bias=False)],
            name="conv",
        ),
    )

    # 8. bconv2d XNOR with C > 32 (two words per pixel) and O > 16, 1x1 input, kernel 1.
    rng = np.random.default_rng(8)
    nodes = [_bconv(rng, 33, 40, 1), builders.simple("flatten"), _bn(rng, 33), _linear(rng, 2, 33)]
    add("bconv_wide", Graph(_spec(40, 1, 1), nodes, name="wide"))

    # 9. linear / blinear on a flattened input, 2-D batchnorm, shorter-side resize policy.
    rng = np.random.default_rng(9)
    spec = _spec(3, 4, 4, resize="shorter_crop", resize_size=6, scale=1.0 / 255)
    nodes = [
        builders.simple("flatten"),
        _bn(rng, 48),
        _blinear(rng, 20, 48, bias=False),
        builders.simple("relu"),
        builders.simple("dropout"),
        _linear(rng, 3, 20, bias=False),
        builders.simple("softmax"),
    ]
    add("fc_only", Graph(spec, nodes, ["x", "y", "z"], name="fc"))

    # 10. Kernel with maximal padding (k-1) on every side and stride > kernel.
    rng = np.random.default_rng(10)
    nodes = [
        _bconv(rng, 2, 1, 3, stride=4, pad=2),
        _bconv(rng, 2, 2, 2, pad=1, mode="bwn"),
        _conv(rng, 1, 2, 2, pad=(1, 1, 0, 0)),
    ]
    add("max_pad", Graph(_spec(1, 5, 6), nodes, name="pad"))

    # 11. in_c > 4 with "other" colour (mean/std only for the first four).
    rng = np.random.default_rng(11)
    nodes = [
        _bn(rng, 6),
        _bconv(rng, 16, 6, 2, use_k=True),
        builders.simple("relu"),
        builders.maxpool(2, 2, ceil_mode=True),
        builders.simple("flatten"),
    ]
    spec = _spec(6, 5, 5)
    f = _flat(spec, nodes)
    nodes += [_blinear(rng, 32, f), _bn(rng, 32), _blinear(rng, 1, 32, mode="bwn")]
    add("wide_input", Graph(spec, nodes, ["only"], name="w6"))

    # 12. Many small nodes (a deeper table).
    rng = np.random.default_rng(12)
    nodes = []
    for i in range(12):
        nodes += [_bn(rng, 3), _bconv(rng, 3, 3, 3, pad=1, mode="xnor" if i % 2 else "bwn", bias=bool(i % 3))]
    nodes += [builders.simple("flatten"), _linear(rng, 2, 3 * 4 * 4)]
    add("deep", Graph(_spec(3, 4, 4), nodes, name="deep"))

    # 13. use_k with left/top padding and stride (K's window starts in the halo), BN folded.
    rng = np.random.default_rng(13)
    nodes = [
        _bn(rng, 3),
        _bconv(rng, 4, 3, 3, stride=2, pad=(2, 2, 1, 0), use_k=True),
        builders.simple("relu"),
        _bn(rng, 4),
        _bconv(rng, 2, 4, (2, 3), pad=(1, 2, 0, 1), use_k=True, bias=False),
        builders.simple("flatten"),
    ]
    add("use_k_halo", Graph(_spec(3, 7, 6), nodes, name="usek-halo"))

    # int8 edges: the classic chain's padded first conv as qconv2d (border taps) and its
    # linear as qlinear; a qlinear on signed activations with every geometry corner.
    add("int8_edges_chain", int8.with_edges(fmt.read_model(out["chain_xnor_softmax"]), "int8"))
    rng = np.random.default_rng(14)
    nodes = [
        _conv(rng, 18, 1, (5, 3), stride=(2, 1), pad=(4, 0, 1, 2), name="q1"),
        _bn(rng, 18),
        builders.simple("flatten"),
    ]
    nodes.append(_linear(rng, 17, _flat(_spec(1, 6, 5), nodes), name="q2"))
    add("int8_edges_gray", int8.with_edges(Graph(_spec(1, 6, 5), nodes, name="int8-gray"), "int8"))

    for name, data in out.items():
        assert len(data) < MAX_SEED_BYTES, (name, len(data))
    return out


# ------------------------------------------------------------------------- invalid seeds


def invalid_seeds(valid: dict[str, bytes]) -> dict[str, bytes]:
    """Early exits; the fuzz harness keeps the crc field 0xFFFFFFFF 'raw' (see fuzz_loader.c)."""
    base = valid["chain_xnor_softmax"]
    out: dict[str, bytes] = {}
    b = bytearray(base)
    b[0] ^= 0x20
    out["bad_magic"] = fix_crc(b)
    b = bytearray(base)
    b[8:12] = struct.pack("<I", 2)
    out["bad_version"] = fix_crc(b)
    out["truncated_header"] = base[:100]
    out["truncated_body"] = base[: len(base) // 2]
    out["trailing_data"] = base + b"\0"
    b = bytearray(base)
    b[12:16] = b"\xff\xff\xff\xff"  # "raw" control word: the harness leaves the bad CRC
    out["checksum_raw"] = bytes(b)
    b = bytearray(base)
    b[12] = 0xFE  # "resize" control word: file_bytes/data_bytes patched to the real size
    out["resize_ctl"] = bytes(b[:-64])
    out["empty"] = b""
    return out


# ------------------------------------------------------------------------- regressions (raw files)


def _align(n: int) -> int:
    return (n + 63) & ~63


def raw_model(
    in_chw: tuple[int, int, int], nodes: list, tensors: list, *, color: int = 3, name: bytes = b"raw"
) -> bytes:
    """A file the numpy writer cannot express (e.g. tensors shared between nodes).
    nodes: (op, inputs, {p index: value}, eps, [t0, t1, ...]); tensors: (dtype, dims, payload)."""
    table, blobs, off = [], b"", 0
    for dtype, dims, payload in tensors:
        o = _align(off)
        blobs += b"\0" * (o - off) + payload
        off = o + len(payload)
        d = list(dims) + [0] * (4 - len(dims))
        table.append(struct.pack("<II4IQQ24x", dtype, len(dims), *d, o, len(payload)))
    rows = []
    for i, (op, ins, p, eps, t) in enumerate(nodes):
        pv = [0] * 16
        for k, v in p.items():
            pv[k] = v
        tv = list(t) + [-1] * (8 - len(t))
        iv = list(ins) + [0] * (2 - len(ins))
        rows.append(
            struct.pack("<4I16i4f8i", op, len(ins), *iv, *pv, eps, 0, 0, 0, *tv)
            + f"n{i}".encode().ljust(32, b"\0")
        )
    no = 256
    to = no + 160 * len(nodes)
    lo = to + 64 * len(table)
    do = _align(lo)
    fb = do + len(blobs)
    c, h, w = in_chw
    hd = bytearray(256)
    struct.pack_into("<8sIIQII", hd, 0, b"XNORNET\0", 1, 0, fb, 256, 0)
    struct.pack_into("<IIII", hd, 32, len(nodes), len(table), 0, 0)
    struct.pack_into("<6Q", hd, 48, no, to, lo, 0, do, len(blobs))
    struct.pack_into("<6IfI", hd, 96, c, h, w, color, 0, 0, 1.0, 0)
    n = min(c, 4)
    struct.pack_into("<4f4f", hd, 128, *([0.0] * 4), *([1.0] * n + [0.0] * (4 - n)))
    hd[160 : 160 + len(name)] = name
    body = bytes(hd) + b"".join(rows) + b"".join(table) + b"\0" * (do - lo) + blobs
    assert len(body) == fb
    return fix_crc(body)


def shared_tensor_amplification(hw: tuple[int, int] = (64, 64), n_lin: int = 64, mode: int = 1) -> bytes:
    """flatten, then n_lin BWN blinear nodes with 1 output that all read the flattened input
    and all use THE SAME weight tensor (legal: FORMAT.md only asks that every tensor is used),
    summed by add nodes. When BWN weights were expanded to float32 at load, each node got its
    own copy padded to 16 lanes (64 bytes per weight bit): 21 KB -> 16.8 MB. Since the engine
    keeps BWN weights as bits this loads at ~27x; kept as a regression input."""
    h, w = hw
    f = h * w
    tensors = [(2, (1, f), b"\x55" * ((f + 7) // 8)), (1, (1,), struct.pack("<f", 0.5))]
    blin = (4, (1,), {0: 1, 10: mode}, 0.0, [0, -1, 1])
    nodes: list[tuple] = [(9, (0,), {}, 0.0, []), blin]
    last = 2
    for _ in range(n_lin - 1):
        nodes.append(blin)
        nodes.append((12, (last, len(nodes)), {}, 0.0, []))
        last = len(nodes)
    return raw_model((1, h, w), nodes, tensors, color=0, name=b"shared-tensor")


def shared_xnor_kernel_chain(n: int = 64, hw: int = 8) -> bytes:
    """n XNOR bconv2d nodes in a chain, 1 -> 1 channel, 64x64 kernel with padding 32/31 (the
    shape is kept), all using THE SAME 512-byte weight tensor and alpha. Each node repacks
    its own copy: 16 lanes x one 32-bit word per tap (256 KiB) plus the popcount prefix
    sums (264 KiB), so ~11 KB of file become ~34 MB (about 3000x; unbounded in n)."""
    k = 64
    tensors = [(2, (1, 1, k, k), b"\x5a" * (k * k // 8)), (1, (1,), struct.pack("<f", 0.25))]
    # p: out, kh, kw, sh, sw, pt, pl, pb, pr, has_bias, mode, use_k
    p = {0: 1, 1: k, 2: k, 3: 1, 4: 1, 5: 32, 6: 32, 7: 31, 8: 31}
    nodes = [(2, (i,), p, 0.0, [0, -1, 1]) for i in range(n)]
    return raw_model((1, hw, hw), nodes, tensors, color=0, name=b"shared-xnor-chain")


def reduction_length_2_30() -> bytes:
    """An XNOR blinear whose reduction length is exactly 2^30: the input [4096][256][256]
    grows to [4096][512][512] through five padded max-pools (4 x +63, 1 x +4) and is
    flattened. The XNOR epilogue computes n - 2 * popcount in int32, which overflows at
    n = 2^30, so the loader must refuse this length (it checks it before the weights;
    its weight tensor is a 512-bit stub, since the real one would take 128 MiB)."""
    grow = {1: 64, 2: 64, 3: 1, 4: 1, 5: 63, 6: 63, 7: 63, 8: 63}
    last = {1: 5, 2: 5, 3: 1, 4: 1, 5: 4, 6: 4, 7: 4, 8: 4}
    nodes: list[tuple] = [(7, (i,), grow, 0.0, []) for i in range(4)]
    nodes += [(7, (4,), last, 0.0, []), (9, (5,), {}, 0.0, [])]
    nodes.append((4, (6,), {0: 1}, 0.0, [0, -1, 1]))
    tensors = [(2, (1, 512), b"\x55" * 64), (1, (1,), struct.pack("<f", 0.5))]
    return raw_model((4096, 256, 256), nodes, tensors, name=b"reduction-2^30")


def regressions() -> dict[str, bytes]:
    """Hand-made inputs for bugs found while fuzzing (kept in tests/fuzz/corpus as regress-*)."""
    return {
        "regress-shared-tensor-bwn-amplification.bin": shared_tensor_amplification(),
        "regress-shared-tensor-xnor-amplification.bin": shared_xnor_kernel_chain(),
        "regress-reduction-length-2-30.bin": reduction_length_2_30(),
    }


# ------------------------------------------------------------------------- dictionary


def dictionary() -> str:
    def esc(bs: bytes) -> str:
        return "".join(f"\\x{x:02X}" for x in bs)

    entries = [("magic", b"XNORNET\x00"), ("ctl_raw", b"\xff\xff\xff\xff"), ("ctl_resize", b"\xfe")]
    for v in (
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        13,
        15,
        16,
        17,
        31,
        32,
        33,
        63,
        64,
        65,
        160,
        256,
        1024,
        4096,
        4097,
        16384,
        16385,
        65535,
        65536,
        65537,
        1 << 28,
        1 << 31,
        0x7FFFFFFF,
        0xFFFFFFFF,
    ):
        entries.append((f"u32_{v}", struct.pack("<I", v)))
    for v in (0, 64, 256, 1 << 32, 1 << 63, (1 << 64) - 1):
        entries.append((f"u64_{v}", struct.pack("<Q", v)))
    for v in (-1, -2, -64):
        entries.append((f"i32_m{-v}", struct.pack("<i", v)))
    for fname, fv in (
        ("f_one", 1.0),
        ("f_eps", 1e-5),
        ("f_neg", -1.0),
        ("f_inv255", 1 / 255),
        ("f_big", 3.0e38),
    ):
        entries.append((fname, struct.pack("<f", fv)))
    entries += [
        ("f_nan", b"\x00\x00\xc0\x7f"),
        ("f_inf", b"\x00\x00\x80\x7f"),
        ("f_ninf", b"\x00\x00\x80\xff"),
        ("f_negzero", b"\x00\x00\x00\x80"),
        ("f_denorm", b"\x01\x00\x00\x00"),
    ]
    lines = ["# libFuzzer dictionary for tests/fuzz/fuzz_loader.c (written by scripts/fuzz/make_corpus.py)"]
    lines += [f'{n}="{esc(b)}"' for n, b in entries]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path, help="corpus directory to write seeds into")
    ap.add_argument("--dict", type=pathlib.Path, help="also write the libFuzzer dictionary here")
    ap.add_argument("--no-invalid", action="store_true", help="only valid models")
    ap.add_argument(
        "--regressions",
        action="store_true",
        help="write only the hand-made regress-* inputs (for tests/fuzz/corpus)",
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    valid = seeds()
    files = {f"seed_{k}.xnor": v for k, v in valid.items()}
    if args.regressions:
        files = regressions()
    elif not args.no_invalid:
        files.update({f"seed_{k}.bin": v for k, v in invalid_seeds(valid).items()})
    for name, data in sorted(files.items()):
        (args.out / name).write_bytes(data)
    total = sum(len(v) for v in files.values())
    print(f"wrote {len(files)} seeds ({total} bytes) to {args.out}")
    if args.dict:
        args.dict.parent.mkdir(parents=True, exist_ok=True)
        args.dict.write_text(dictionary())
        print(f"wrote dictionary {args.dict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
