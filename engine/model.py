"""engine.Model: the Python face of the C engine (a thin cffi layer).

The C model is immutable and shared; each concurrent call borrows a C context
(workspace + thread pool) from a small pool, so one Model serves many Python threads.
cffi releases the GIL during `xnor_infer`. C lifetimes are tied to Python objects
with `ffi.gc`; arguments are checked here before C sees them.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._xnornet import ffi, lib
from .enums import COLOR_NAMES, ISA_NAMES, ISAS, MODE_NAMES, OP_NAMES, OUTPUT_KIND_NAMES, RESIZE_NAMES
from .errors import InvalidArgumentError, XnorError, error_for
from .input_spec import InputSpec

_ERRBUF = 512
# InputSpec fields that ModelInfo.as_dict() lists after input_shape, and ModelInfo has as attributes.
_SPEC_KEYS = ("color", "resize", "resize_size", "scale", "mean", "std")


def _check(status: int, message: str = "") -> None:
    if status != lib.XNOR_OK:
        text = message or ffi.string(lib.xnor_status_str(status)).decode()
        raise error_for(status, text)


def isa_supported(isa: str) -> bool:
    """Can this CPU run the named ISA's kernels (scalar, avx2, avx512)?"""
    if isa not in ISAS:
        raise InvalidArgumentError(f"unknown ISA {isa!r}; expected one of {sorted(ISAS)}")
    return bool(lib.xnor_isa_supported(ISAS[isa]))


def resolve_isa(isa: str | None = None) -> str:
    """The ISA a context would use (XNORNET_ISA is read when isa is None or 'auto')."""
    out = ffi.new("xnor_isa *")
    _check(lib.xnor_isa_resolve(ISAS[_isa_name(isa)], out))
    return ISA_NAMES[int(out[0])]


def default_threads() -> int:
    """CPUs this process may use (affinity and cgroup quota aware)."""
    return int(lib.xnor_default_threads())


def measure_ceilings(isa: str | None = None) -> dict[str, float]:
    """This CPU's one-thread ceilings with an ISA's instructions (xnor_measure_ceilings, ~0.2 s):
    fma_gops, int8_gops (0 without VNNI), popcount_gops (binary MACs x 2), mem_read_gbps,
    cache_read_gbps."""
    out = ffi.new("xnor_ceilings *")
    _check(lib.xnor_measure_ceilings(ISAS[_isa_name(isa)], out))
    keys = ("fma_gops", "int8_gops", "popcount_gops", "mem_read_gbps", "cache_read_gbps")
    return {k: float(getattr(out, k)) for k in keys}


def _isa_name(isa: str | None) -> str:
    name = (isa or "auto").lower()
    if name not in ISAS:
        raise InvalidArgumentError(f"unknown ISA {isa!r}; expected one of {sorted(ISAS)}")
    return name


@dataclass(frozen=True)
class NodeInfo:
    index: int
    name: str
    op: str
    inputs: tuple[int, ...]
    out_shape: tuple[int, ...]  # per image: (C, H, W) or (F,)
    mode: str | None  # "xnor" / "bwn" for binary ops
    use_k: bool
    fused: bool
    macs: int
    packs_into: int | None = None  # the XNOR layer whose input bits this one's epilogue emits


@dataclass(frozen=True)
class ModelInfo:
    name: str
    format_version: int
    input: InputSpec  # what one image becomes before inference
    output_size: int
    output_kind: str  # "logits" or "probabilities"
    labels: tuple[str, ...]
    nodes: tuple[NodeInfo, ...]
    file_bytes: int
    weight_bytes_packed: int
    weight_bytes_float32: int
    memory_bytes: int
    crc32: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.input.shape

    def __getattr__(self, name: str) -> Any:
        """The input spec's fields (_SPEC_KEYS), by the names `xnornet info --json` has always used."""
        if name in _SPEC_KEYS:
            return getattr(self.input, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def edges(self) -> str:
        """'int8' when the first conv or a linear layer is int8 (engine/int8.py), else 'float32'."""
        return "int8" if any(n.op in ("qconv2d", "qlinear") for n in self.nodes) else "float32"

    @property
    def activation_bytes(self) -> int:
        """Per image: the float32 size of the input and of every node's output. An upper-bound
        estimate of what inference allocates per image of a batch (the engine reuses buffers
        and keeps binary values packed), read from the file's shapes before anything runs."""
        elements = math.prod(self.input_shape) + sum(math.prod(n.out_shape) for n in self.nodes)
        return 4 * elements

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k in self.__dataclass_fields__:
            if k == "input":
                d["input_shape"] = self.input_shape
                d.update((f, getattr(self.input, f)) for f in _SPEC_KEYS)
            elif k not in ("nodes", "labels"):
                d[k] = getattr(self, k)
        d["activation_bytes"] = self.activation_bytes
        d["edges"] = self.edges
        d["n_labels"] = len(self.labels)
        d["nodes"] = [n.__dict__ for n in self.nodes]
        return d


class _Context:
    """One C workspace; freed with its Python object."""

    def __init__(self, model_ptr: Any, threads: int, isa: str, trace: bool, spin: int | None) -> None:
        params = lib.xnor_context_default_params()
        params.n_threads = threads
        params.isa = ISAS[isa]
        params.trace = 1 if trace else 0
        if spin is not None:
            params.spin = spin
        out = ffi.new("xnor_context_t **")
        err = ffi.new("char[]", _ERRBUF)
        st = lib.xnor_context_new(model_ptr, ffi.new("xnor_context_params *", params), out, err, _ERRBUF)
        _check(st, ffi.string(err).decode(errors="replace"))
        self.model_ptr = model_ptr  # the C context reads the model: keep it alive
        self.ptr = ffi.gc(out[0], lib.xnor_context_free)
        self.isa = ISA_NAMES[int(lib.xnor_context_isa(self.ptr))]
        self.threads = int(lib.xnor_context_threads(self.ptr))


class Model:
    """A loaded model. Safe to share across threads; `infer` may run concurrently.

    `spin`: polling rounds of the thread pool before a waiting thread sleeps (None: the
    engine's default, lib.XNOR_DEFAULT_SPIN; 0: sleep at once; xnornet.h says when to lower it).
    """

    def __init__(
        self,
        ptr: Any,
        *,
        threads: int | None = None,
        isa: str | None = None,
        source: str = "<bytes>",
        spin: int | None = None,
    ) -> None:
        self._ptr = ptr
        self.source = source
        self._threads = 0 if threads is None else int(threads)
        if self._threads < 0:
            raise InvalidArgumentError("threads must be >= 0 (0 = all CPUs this process may use)")
        if spin is not None and not 0 <= spin <= lib.XNOR_MAX_SPIN:
            raise InvalidArgumentError(f"spin must be 0..{lib.XNOR_MAX_SPIN} (None = the engine's default)")
        self._spin = spin
        self.spin = lib.XNOR_DEFAULT_SPIN if spin is None else spin
        self._isa = resolve_isa(isa)
        self._lock = threading.Lock()
        self._idle: list[_Context] = []
        self.info = self._read_info()
        # Fail now, not on the first request, if the ISA or threads cannot be had.
        self._idle.append(_Context(self._ptr, self._threads, self._isa, False, spin))
        self.isa = self._idle[0].isa
        self.threads = self._idle[0].threads

    # -- loading -----------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        isa: str | None = None,
        spin: int | None = None,
    ) -> Model:
        """Load and validate a model file (raises a ModelFormatError subclass if it is bad)."""
        path = os.fspath(path)
        if not isinstance(path, str) or "\x00" in path:
            raise InvalidArgumentError("path must be a str without NUL")
        out = ffi.new("xnor_model_t **")
        err = ffi.new("char[]", _ERRBUF)
        _check(
            lib.xnor_model_load_file(path.encode(), out, err, _ERRBUF),
            ffi.string(err).decode(errors="replace"),
        )
        return cls(ffi.gc(out[0], lib.xnor_model_free), threads=threads, isa=isa, source=path, spin=spin)

    @classmethod
    def from_bytes(
        cls,
        data: bytes | bytearray | memoryview,
        *,
        threads: int | None = None,
        isa: str | None = None,
        spin: int | None = None,
    ) -> Model:
        buf = bytes(data)
        out = ffi.new("xnor_model_t **")
        err = ffi.new("char[]", _ERRBUF)
        st = lib.xnor_model_load_bytes(ffi.from_buffer(buf), len(buf), out, err, _ERRBUF)
        _check(st, ffi.string(err).decode(errors="replace"))
        return cls(ffi.gc(out[0], lib.xnor_model_free), threads=threads, isa=isa, spin=spin)

    # -- description -------------------------------------------------------------------
    def _read_info(self) -> ModelInfo:
        ci = ffi.new("xnor_model_info *")
        _check(lib.xnor_model_get_info(self._ptr, ci))
        labels = []
        text = ffi.new("const char **")
        length = ffi.new("uint32_t *")
        for i in range(ci.n_labels):
            _check(lib.xnor_model_get_label(self._ptr, i, text, length))
            labels.append(ffi.unpack(text[0], length[0]).decode("utf-8", errors="replace"))
        nodes = []
        two_d = [False]  # per value: is it [F] rather than [C][H][W]?
        ni = ffi.new("xnor_node_info *")
        for i in range(ci.n_nodes):
            _check(lib.xnor_model_get_node(self._ptr, i, ni))
            op = OP_NAMES.get(int(ni.op), f"op{ni.op}")
            if op in ("linear", "blinear", "qlinear", "flatten", "softmax"):
                two_d.append(True)
            elif op in ("conv2d", "bconv2d", "qconv2d", "maxpool", "avgpool"):
                two_d.append(False)
            else:
                two_d.append(two_d[int(ni.inputs[0])])
            shape = (int(ni.out_c),) if two_d[-1] else (int(ni.out_c), int(ni.out_h), int(ni.out_w))
            nodes.append(
                NodeInfo(
                    index=i,
                    name=ffi.string(ni.name).decode(errors="replace"),
                    op=op,
                    inputs=tuple(int(ni.inputs[j]) for j in range(ni.n_inputs)),
                    out_shape=shape,
                    mode=MODE_NAMES[int(ni.mode)] if op in ("bconv2d", "blinear") else None,
                    use_k=bool(ni.use_k),
                    fused=bool(ni.fused),
                    macs=int(ni.macs),
                    packs_into=int(ni.packs_into) if ni.packs_into >= 0 else None,
                )
            )
        nc = min(int(ci.in_c), 4)
        return ModelInfo(
            name=ffi.string(ci.name).decode(errors="replace"),
            format_version=int(ci.format_version),
            input=InputSpec(
                channels=int(ci.in_c),
                height=int(ci.in_h),
                width=int(ci.in_w),
                color=COLOR_NAMES[int(ci.color)],
                resize=RESIZE_NAMES[int(ci.resize_policy)],
                resize_size=int(ci.resize_size),
                scale=float(ci.scale),
                mean=tuple(float(ci.mean[j]) for j in range(nc)),
                std=tuple(float(ci.std[j]) for j in range(nc)),
            ),
            output_size=int(ci.out_size),
            output_kind=OUTPUT_KIND_NAMES[int(ci.output_kind)],
            labels=tuple(labels),
            nodes=tuple(nodes),
            file_bytes=int(ci.file_bytes),
            weight_bytes_packed=int(ci.weight_bytes_packed),
            weight_bytes_float32=int(ci.weight_bytes_float32),
            memory_bytes=int(ci.memory_bytes),
            crc32=int(ci.crc32),
        )

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.info.input_shape

    # -- inference ---------------------------------------------------------------------
    @contextmanager
    def _context(self) -> Iterator[_Context]:
        with self._lock:
            ctx = self._idle.pop() if self._idle else None
        if ctx is None:
            ctx = _Context(self._ptr, self._threads, self._isa, False, self._spin)
        try:
            yield ctx
        finally:
            with self._lock:
                self._idle.append(ctx)

    def _check_input(self, x: Any) -> np.ndarray:
        """A float32 NCHW batch, or a uint8 NHWC batch of pixels (dtype uint8)."""
        arr = np.asarray(x)
        if arr.ndim == 3:
            arr = arr[None]
        c, h, w = self.info.input_shape
        pixels = arr.dtype == np.uint8
        want = (h, w, c) if pixels else (c, h, w)
        if arr.ndim != 4 or tuple(arr.shape[1:]) != want:
            layout = "uint8 NHWC" if pixels else "NCHW"
            raise InvalidArgumentError(
                f"input shape {tuple(arr.shape)} is not {layout} (N, {', '.join(map(str, want))})"
            )
        if arr.shape[0] < 1 or arr.shape[0] > 1 << 16:
            raise InvalidArgumentError(f"batch size {arr.shape[0]} must be 1..65536")
        if pixels:
            return np.ascontiguousarray(arr)
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise InvalidArgumentError(
                f"input dtype {arr.dtype} is neither uint8 pixels (NHWC) nor a real number (NCHW)"
            )
        return np.ascontiguousarray(arr, dtype=np.float32)

    def infer(self, x: Any) -> np.ndarray:
        """One batch -> float32 [N, output_size]: logits, or probabilities when the graph ends
        in softmax (info.output_kind). Two input kinds, told apart by dtype:

        - uint8 pixels, NHWC [N, H, W, C] (or one HWC image): the decoded, resized and cropped
          image in the model's color order. The engine applies the model's preprocessing
          (x = (p * scale - mean[c]) / std[c], from the file's input spec) itself, so no float
          tensor is built in Python; the result equals `infer` on that float tensor.
        - any other real dtype, NCHW [N, C, H, W] (or one CHW image): the already normalized
          input, converted to float32.
        """
        arr = self._check_input(x)
        out = np.empty((arr.shape[0], self.info.output_size), np.float32)
        with self._context() as ctx:
            self._run(ctx, arr, out)
        return out

    def _run(self, ctx: _Context, arr: np.ndarray, out: np.ndarray) -> None:
        dst = ffi.from_buffer("float[]", out, require_writable=True)
        n = arr.shape[0]
        if arr.dtype == np.uint8:
            st = lib.xnor_infer_u8(ctx.ptr, ffi.from_buffer("uint8_t[]", arr), n, arr.size, dst, out.size)
        else:
            st = lib.xnor_infer(ctx.ptr, ffi.from_buffer("float[]", arr), n, arr.size, dst, out.size)
        if st != lib.XNOR_OK:
            _check(st, ffi.string(lib.xnor_context_last_error(ctx.ptr)).decode(errors="replace"))

    def infer_timed(self, x: Any) -> tuple[np.ndarray, list[int]]:
        """infer plus the nanoseconds each node took (fused nodes report 0)."""
        arr = self._check_input(x)
        out = np.empty((arr.shape[0], self.info.output_size), np.float32)
        ns = ffi.new("uint64_t[]", max(1, len(self.info.nodes)))
        with self._context() as ctx:
            self._run(ctx, arr, out)
            _check(lib.xnor_context_get_timings(ctx.ptr, ns, len(self.info.nodes)))
        return out, [int(ns[i]) for i in range(len(self.info.nodes))]

    def trace(self, x: Any) -> list[np.ndarray]:
        """Run the unfused graph and return every value: [input as given, node 0 output, ...],
        node outputs NCHW."""
        arr = self._check_input(x)
        out = np.empty((arr.shape[0], self.info.output_size), np.float32)
        ctx = _Context(self._ptr, self._threads, self._isa, True, self._spin)
        self._run(ctx, arr, out)
        values = [arr]
        for node in self.info.nodes:
            v = np.empty((arr.shape[0], *node.out_shape), np.float32)
            _check(
                lib.xnor_context_get_trace(
                    ctx.ptr, node.index, ffi.from_buffer("float[]", v, require_writable=True), v.size
                )
            )
            values.append(v)
        return values

    def __repr__(self) -> str:
        i = self.info
        return (
            f"Model({i.name or self.source!r}, input={i.input_shape}, outputs={i.output_size}, "
            f"isa={self.isa}, threads={self.threads})"
        )


__all__ = [
    "ISAS",
    "Model",
    "ModelInfo",
    "NodeInfo",
    "XnorError",
    "default_threads",
    "isa_supported",
    "resolve_isa",
]
