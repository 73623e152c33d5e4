"""Replay the saved fuzz corpus (tests/fuzz/corpus) through the Python binding.

Every file is offered to the loader twice: as stored, and after the fuzz harness's
transform (tests/fuzz/fuzz_loader.c: the crc field at offset 12 is a control word and
the CRC is patched, so mutated files reach the deep checks). Each attempt must either
load, or be rejected with a format status and a non-empty message from the engine, which
`engine.Model.from_bytes` raises as an XnorError (a ModelFormatError). Nothing else: a
crash takes the whole pytest process down, which fails CI too. A file that loads must
describe itself consistently, stay within the memory bound of the fuzz harness and, when
its graph is small, run one inference on every ISA this CPU has.

Crash inputs the fuzzer finds are saved in the corpus as `crash-*` files and hand-made
ones as `regress-*`, so this is their regression test; scripts/fuzz/run.sh --replay
replays the same files in C under ASan + UBSan. Inputs of bugs that are not fixed yet are
listed in tests/fuzz/known_crashes.txt; the ones Python can observe (column `py`) are
strict xfails here, so the entry must be removed once the engine is fixed.
"""

from __future__ import annotations

import pathlib
import struct
import zlib

import numpy as np
import pytest

engine = pytest.importorskip("engine")
from engine._xnornet import ffi, lib  # noqa: E402

from engine import builders, enums, errors  # noqa: E402
from engine import format as fmt  # noqa: E402
from engine.graph import Graph  # noqa: E402
from engine.input_spec import InputSpec  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
FILES = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []

# The same limits as fuzz_loader.c.
MEM_RATIO = 640
MEM_SLACK = 64 * 1024
MAX_INPUT_ELEMS = 1 << 16
MAX_FLOATS = 4 << 20
MAX_MACS = 20 << 20
MAX_POOL_WORK = 32 << 20

FORMAT_STATUSES = {2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}  # out of memory + the file statuses


def _known() -> dict[str, tuple[set[str], str]]:
    """tests/fuzz/known_crashes.txt: `file  detected-by(c,py)  reason`."""
    out: dict[str, tuple[set[str], str]] = {}
    path = HERE / "known_crashes.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, by, *reason = line.split(None, 2)
            out[name] = (set(by.split(",")), reason[0] if reason else "")
    return out


KNOWN = _known()


def harness_transform(data: bytes) -> bytes:
    """Python twin of transform() in fuzz_loader.c."""
    if len(data) < 16:
        return data
    b = bytearray(data)
    (ctl,) = struct.unpack_from("<I", b, 12)
    if ctl == 0xFFFFFFFF:
        return bytes(b)
    if ctl & 0xFF == 0xFE and len(b) >= 96:
        struct.pack_into("<Q", b, 16, len(b))
        (doff,) = struct.unpack_from("<Q", b, 80)
        struct.pack_into("<Q", b, 88, (len(b) - doff) % (1 << 64))
    b[12:16] = b"\0\0\0\0"
    struct.pack_into("<I", b, 12, zlib.crc32(bytes(b)))
    return bytes(b)


def _small_enough(info, nodes) -> bool:
    """The harness's budget: only graphs that run in milliseconds get a context."""
    c, h, w = info.in_c, info.in_h, info.in_w
    shapes = [(c, h, w)]
    floats, macs, pool = c * h * w, 0, 0
    for n in nodes:
        shape = (n.out_c, n.out_h, n.out_w)
        shapes.append(shape)
        elems = shape[0] * shape[1] * shape[2]
        floats += elems
        macs += n.macs
        if n.op in (7, 8):
            pool += elems * 64 * 64
        if n.op in (1, 2):
            ic, ih, iw = shapes[n.inputs[0]]
            denom = elems * ic
            kk = min(64, n.macs // denom) if denom else 64
            floats += (ih + 2 * kk) * (iw + 2 * kk) * ic + ih * iw
    return (
        c * h * w <= MAX_INPUT_ELEMS and floats <= MAX_FLOATS and macs <= MAX_MACS and pool <= MAX_POOL_WORK
    )


def _input_from(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    if not data:
        return np.zeros(shape, np.float32)
    src = np.frombuffer(data, np.uint8)
    idx = (np.arange(n, dtype=np.int64) * 7 + 3) % len(src)
    return ((src[idx].astype(np.float32) - 128.0) / 16.0).reshape(shape)


def _replay(data: bytes) -> str:
    # 1. The C entry point directly: status, message, and the model's description, without
    #    building a context (Model.from_bytes makes one at once, which for a huge declared
    #    input would allocate gigabytes; the harness bounds that, so does this test).
    out = ffi.new("xnor_model_t **")
    err = ffi.new("char[]", 512)
    st = lib.xnor_model_load_bytes(ffi.from_buffer(data), len(data), out, err, 512)
    msg = ffi.string(err).decode(errors="replace")
    if st != 0:
        assert out[0] == ffi.NULL, "a failed load returned a model"
        assert st in FORMAT_STATUSES, f"status {st} ({msg}) is not about the file"
        assert msg.strip(), f"status {st} without a message"
        # 2. The binding raises the matching exception with the engine's message.
        with pytest.raises(errors.XnorError) as ei:
            engine.Model.from_bytes(data, threads=1)
        assert ei.value.status == st and ei.value.message == msg
        assert isinstance(ei.value, errors.ModelFormatError | errors.OutOfMemoryError)
        return type(ei.value).__name__
    ptr = ffi.gc(out[0], lib.xnor_model_free)
    info = ffi.new("xnor_model_info *")
    assert lib.xnor_model_get_info(ptr, info) == 0
    assert info.file_bytes == len(data)
    assert 1 <= info.n_nodes <= 4096 and info.out_size >= 1
    assert info.n_labels in (0, info.out_size)
    assert info.memory_bytes <= MEM_RATIO * len(data) + MEM_SLACK, (
        f"loaded model holds {info.memory_bytes} bytes for a {len(data)}-byte file "
        f"({info.memory_bytes / len(data):.0f}x; the fuzz harness allows {MEM_RATIO}x + {MEM_SLACK})"
    )
    nodes = []
    for k in range(info.n_nodes):
        ni = ffi.new("xnor_node_info *")
        assert lib.xnor_model_get_node(ptr, k, ni) == 0
        assert 1 <= ni.op <= max(enums.OPS.values()) and all(ni.inputs[j] <= k for j in range(ni.n_inputs))
        nodes.append(ni)
    last = nodes[-1]
    assert last.out_c * last.out_h * last.out_w == info.out_size
    if not _small_enough(info, nodes):
        return "loaded"
    # 3. Small graphs: the public Python path, one inference per ISA.
    x = _input_from(data, (1, info.in_c, info.in_h, info.in_w))
    for isa in ("scalar", "avx2", "avx512"):
        if not engine.model.isa_supported(isa):
            continue
        m = engine.Model.from_bytes(data, threads=1, isa=isa)
        assert len(m.info.nodes) == info.n_nodes and m.info.output_size == info.out_size
        y = m.infer(x)
        assert y.shape == (1, info.out_size) and y.dtype == np.float32
    return "loaded"


def test_corpus_is_present_and_small() -> None:
    assert FILES, f"{CORPUS} is empty: run scripts/fuzz/run.sh (it seeds the corpus)"
    total = sum(p.stat().st_size for p in FILES)
    assert total <= 1024 * 1024, f"saved corpus is {total} bytes: minimize (scripts/fuzz/run.sh --merge)"
    for name in KNOWN:
        assert (CORPUS / name).exists() or name.startswith("seed_"), f"known_crashes.txt lists missing {name}"


def _params() -> list:
    params = []
    for p in FILES:
        known = KNOWN.get(p.name)
        marks = []
        if known and "py" in known[0]:
            reason = f"known, unfixed (known_crashes.txt): {known[1]}"
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(p, id=p.name, marks=marks))
    return params


@pytest.mark.parametrize("path", _params())
def test_replay(path: pathlib.Path) -> None:
    data = path.read_bytes()
    _replay(data)
    fixed = harness_transform(data)
    if fixed != data:
        _replay(fixed)


def test_seed_files_of_every_op_load() -> None:
    """The corpus keeps at least one loading file that uses each op (the seeds)."""
    seen: set[int] = set()
    for path in FILES:
        data = harness_transform(path.read_bytes())
        out = ffi.new("xnor_model_t **")
        if lib.xnor_model_load_bytes(ffi.from_buffer(data), len(data), out, ffi.NULL, 0) != 0:
            continue
        ptr = ffi.gc(out[0], lib.xnor_model_free)
        info = ffi.new("xnor_model_info *")
        lib.xnor_model_get_info(ptr, info)
        ni = ffi.new("xnor_node_info *")
        for k in range(info.n_nodes):
            lib.xnor_model_get_node(ptr, k, ni)
            seen.add(int(ni.op))
    missing = sorted(name for name, op in enums.OPS.items() if op not in seen)
    assert not missing, f"no loading corpus file uses {missing}"


def test_transform_matches_the_writer() -> None:
    """harness_transform of a valid file is the file itself (the CRC the writer computes)."""
    spec = InputSpec(1, 2, 2, "gray", mean=(0.0,), std=(1.0,))
    data = fmt.to_bytes(Graph(spec, [builders.simple("relu")]))
    assert harness_transform(data) == data
