"""The Open Inference Protocol v2, protocol-neutral: what /v2 over HTTP (api/v2.py) and the gRPC
service (service/grpc/) share. Tensors in, tensors out, metadata and statistics as the
protocol's JSON shapes (the gRPC side fills its messages from the same dicts).

Inputs: one tensor, either numeric (FP32, INT32, UINT8, ... converted to FP32) of the model's
input shape ([C, H, W] or [N, C, H, W]), or BYTES holding N encoded images, each of which goes
through the same limits, decoding and preprocessing as /v1/classify. Output "output": FP32
[N, classes] (the model's logits or probabilities), or with the classification extension
(`classification: k` on the requested output) BYTES [N, k] of "score:index:label" strings,
the k most probable classes, the score being the probability /v1/classify reports.
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import BadRequest, NotFound, Unprocessable
from .inference import Timing, preprocess_image, run_rows
from .postprocess import topk
from .repository import ModelVersion
from .runtime import Runtime

SERVER_NAME = "xnornet"
PLATFORM = "xnornet"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
MAX_ROWS = 1024
# The protocol extensions implemented (the names Triton uses in its server metadata).
EXTENSIONS = ("binary_tensor_data", "classification", "statistics")

# Numeric datatypes -> little-endian numpy dtypes (the binary encoding is the dtype's bytes).
NUMERIC = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BYTES = "BYTES"


@dataclass
class Tensor:
    """An input tensor: numeric data as a flat numpy array, BYTES as a list of bytes."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[bytes]


@dataclass
class RequestedOutput:
    name: str
    classification: int = 0  # k > 0: the top-k classes as strings
    binary: bool | None = None  # HTTP only: None = the request's default


@dataclass
class Output:
    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[bytes]
    binary: bool = False


@dataclass
class Result:
    model: ModelVersion
    outputs: list[Output] = field(default_factory=list)


# -- decoding ---------------------------------------------------------------------------------
def check_shape(name: str, shape: list[int]) -> int:
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise BadRequest(f"input {name!r}: shape {shape} has a negative or non-integer dimension")
    return math.prod(shape)


def numeric_from_bytes(name: str, datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    dtype = NUMERIC[datatype]
    n = check_shape(name, shape)
    if len(raw) != n * dtype.itemsize:
        raise BadRequest(
            f"input {name!r}: {len(raw)} bytes of {datatype} data for shape {shape} "
            f"(expected {n * dtype.itemsize})"
        )
    return np.frombuffer(raw, dtype=dtype)


def bytes_elements(name: str, raw: bytes) -> list[bytes]:
    """BYTES in the binary encoding: each element a 4-byte little-endian length, then the bytes."""
    out = []
    pos, end = 0, len(raw)
    while pos < end:
        if end - pos < 4:
            raise BadRequest(f"input {name!r}: truncated BYTES element length at offset {pos}")
        (size,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if size > end - pos:
            raise BadRequest(f"input {name!r}: BYTES element of {size} bytes overruns the data")
        out.append(raw[pos : pos + size])
        pos += size
    return out


def encode_bytes_elements(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def output_bytes(out: Output) -> bytes:
    """An output tensor in the binary encoding."""
    if isinstance(out.data, list):
        return encode_bytes_elements(out.data)
    return np.ascontiguousarray(out.data, dtype=NUMERIC[out.datatype]).tobytes()


# -- metadata ---------------------------------------------------------------------------------
def served(rt: Runtime, name: str, version: str | None) -> ModelVersion:
    mv = rt.repo.served().get(name)
    if mv is None:
        raise rt.repo.missing(name)
    check_version(mv, version)
    return mv


def check_version(mv: ModelVersion, version: str | None) -> None:
    if version and version != str(mv.version):
        raise NotFound(f"version {version!r} of model {mv.name!r} is not loaded (serving {mv.version})")


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(rt: Runtime, mv: ModelVersion) -> dict[str, Any]:
    s = mv.spec
    return {
        "name": mv.name,
        "versions": [str(v) for v in rt.repo.versions_on_disk(mv.name)],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, s.channels, s.height, s.width]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, mv.output_size]}],
    }


def model_ready(rt: Runtime, name: str, version: str | None) -> bool:
    """Raises ModelNotFound for a model neither served nor on disk (or an invalid name)."""
    mv = rt.repo.served().get(name)
    if mv is None and name not in rt.repo.names_on_disk():
        raise rt.repo.missing(name)
    return mv is not None and (not version or version == str(mv.version)) and rt.state != "draining"


# -- statistics -------------------------------------------------------------------------------
def _duration(count: float | None, seconds: float | None) -> dict[str, int]:
    return {"count": int(count or 0), "ns": round((seconds or 0.0) * 1e9)}


def model_statistics(rt: Runtime, name: str | None, version: str | None) -> dict[str, Any]:
    """Triton's statistics shape, read from the service's Prometheus metrics: success/fail from
    the requests (every protocol) that named the model, queue from the batch queue wait per
    image, compute_input from decode + preprocess per image, compute_infer from the engine time
    per batch (count = batches), inference_count/execution_count from the batch sizes.
    compute_output is not measured apart from the request, and there is no response cache."""
    mvs = [served(rt, name, version)] if name else [mv for _, mv in sorted(rt.repo.served().items())]
    get = rt.metrics.registry.get_sample_value
    stats = []
    for mv in mvs:
        m = {"model": mv.name}

        def hist(metric: str, labels: dict[str, str]) -> dict[str, int]:
            return _duration(get(f"{metric}_count", labels), get(f"{metric}_sum", labels))

        zero = {"count": 0, "ns": 0}
        stats.append(
            {
                "name": mv.name,
                "version": str(mv.version),
                "last_inference": int(rt.last_inference_ms.get(mv.name, 0)),
                "inference_count": int(get("xnornet_batch_size_sum", m) or 0),
                "execution_count": int(get("xnornet_batch_size_count", m) or 0),
                "inference_stats": {
                    "success": hist("xnornet_model_request_seconds", {**m, "outcome": "success"}),
                    "fail": hist("xnornet_model_request_seconds", {**m, "outcome": "fail"}),
                    "queue": hist("xnornet_queue_wait_seconds", m),
                    "compute_input": hist("xnornet_preprocess_seconds", m),
                    "compute_infer": hist("xnornet_inference_seconds", m),
                    "compute_output": dict(zero),
                    "cache_hit": dict(zero),
                    "cache_miss": dict(zero),
                },
                "batch_stats": [],
            }
        )
    return {"model_stats": stats}


# -- inference --------------------------------------------------------------------------------
def _numeric_rows(t: Tensor, mv: ModelVersion) -> list[np.ndarray]:
    chw = (mv.spec.channels, mv.spec.height, mv.spec.width)
    shape = tuple(t.shape)
    if shape == chw:
        n = 1
    elif len(shape) == 4 and shape[1:] == chw and 1 <= shape[0] <= MAX_ROWS:
        n = shape[0]
    else:
        raise BadRequest(
            f"input {t.name!r}: shape {list(shape)} is not [{', '.join(map(str, chw))}] "
            f"or [N, {', '.join(map(str, chw))}] with N in 1..{MAX_ROWS}"
        )
    assert isinstance(t.data, np.ndarray)
    if t.data.size != math.prod(shape):
        raise BadRequest(f"input {t.name!r}: {t.data.size} values for shape {list(shape)}")
    arr = t.data.astype(np.float32, copy=False).reshape((n, *chw))
    if not np.all(np.isfinite(arr)):
        raise BadRequest(f"input {t.name!r}: values must be finite numbers")
    return list(arr)


def _image_items(t: Tensor) -> list[bytes]:
    assert isinstance(t.data, list)
    n = len(t.data)
    if not 1 <= n <= MAX_ROWS or n != check_shape(t.name, t.shape):
        raise BadRequest(f"input {t.name!r}: {n} elements for shape {t.shape} (1..{MAX_ROWS} images)")
    return t.data


def _classify(mv: ModelVersion, out: np.ndarray, k: int) -> list[bytes]:
    if k > mv.output_size:
        raise BadRequest(f"classification: at most {mv.output_size} classes for model {mv.name!r}, not {k}")
    items = []
    for row in out:
        for i, p in topk(row, mv.output_kind, k):
            items.append(f"{p:f}:{i}:{mv.labels[i]}".encode())
    return items


async def infer(
    rt: Runtime,
    name: str,
    version: str | None,
    inputs: list[Tensor],
    outputs: list[RequestedOutput],
    deadline: float,
    request: Any = None,
) -> Result:
    """Run one inference request; `request` is the HTTP request (its disconnect cancels the work)."""
    if len(inputs) != 1:
        raise BadRequest(f"model {name!r} takes exactly one input tensor, got {len(inputs)}")
    for o in outputs:
        if o.name != OUTPUT_NAME:
            raise BadRequest(f"unknown output {o.name!r}; the model's output is {OUTPUT_NAME!r}")
        if o.classification < 0:
            raise BadRequest(f"output {o.name!r}: classification must be >= 0")
    wanted = outputs or [RequestedOutput(OUTPUT_NAME)]
    t = inputs[0]
    with rt.repo.acquire(name) as lease:
        mv = lease.version
        check_version(mv, version)
        timing = Timing()
        if t.datatype in NUMERIC:
            rows = _numeric_rows(t, mv)
        elif t.datatype == BYTES:
            images = _image_items(t)
            rows = list(await asyncio.gather(*(preprocess_image(rt, lease, b, timing) for b in images)))
        else:
            raise BadRequest(f"input {t.name!r}: datatype {t.datatype!r} is not BYTES or a numeric type")
        out = np.stack(await run_rows(rt, lease, rows, deadline, request, timing))
    if not np.all(np.isfinite(out)):
        # Finite but extreme inputs can overflow the float layers: the input's doing, and JSON
        # cannot carry the result.
        raise Unprocessable("the model's outputs for this input are not finite", code="non_finite_output")
    result = Result(mv)
    for o in wanted:
        if o.classification:
            k = o.classification
            result.outputs.append(Output(o.name, BYTES, [out.shape[0], k], _classify(mv, out, k)))
        else:
            result.outputs.append(Output(o.name, "FP32", list(out.shape), out))
    return result
