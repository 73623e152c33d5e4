"""The Open Inference Protocol v2 over HTTP (KServe / Triton REST), with Triton's binary tensor
data, classification and statistics extensions. The protocol itself (tensors, metadata,
statistics) is service/oip.py, shared with gRPC; this module is its HTTP encoding.

The request body is JSON whatever its content type (as in Triton: clients send none). With the
binary tensor data extension the header `Inference-Header-Content-Length: n` says that only the
first n bytes are JSON; the rest holds, in input order, the data of every input whose
parameters give `binary_data_size`. Outputs are returned in binary the same way when asked
(`binary_data` on an output, or `binary_data_output` on the request). JSON BYTES elements are
base64 strings (JSON cannot carry raw bytes); binary BYTES elements are raw. Errors are
{"error": "..."}; readiness is 200 for true and 400 for false, per the spec.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import oip
from ..errors import BadRequest
from ..routes import runs_inference
from .deps import VERSION, RuntimeDep, started, tag_model
from .responses import INFERENCE, errors

router = APIRouter(prefix="/v2", tags=["v2"])

HEADER_LENGTH = "inference-header-content-length"


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    id: str | None = None
    # Not in the protocol's request body, but the KServe SDK sends them: they must agree with the path.
    model_name: str | None = None
    model_version: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[float | str] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[ResponseOutput]


class StatisticDuration(BaseModel):
    count: int
    ns: int


class InferStatistics(BaseModel):
    success: StatisticDuration
    fail: StatisticDuration
    queue: StatisticDuration
    compute_input: StatisticDuration
    compute_infer: StatisticDuration
    compute_output: StatisticDuration
    cache_hit: StatisticDuration
    cache_miss: StatisticDuration


class ModelStatistics(BaseModel):
    name: str
    version: str
    last_inference: int
    inference_count: int
    execution_count: int
    inference_stats: InferStatistics
    batch_stats: list[dict[str, Any]]


class ModelStatisticsResponse(BaseModel):
    model_stats: list[ModelStatistics]


# What every /v2 route may answer besides its success (the OpenAPI schema the fuzzer checks).
router.responses.update(errors(400, 404, v2=True))


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its $defs inlined (for openapi_extra, which has no components)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.split("/")[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    out: dict[str, Any] = resolve(schema)
    return out


INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(InferenceRequest)},
            # The binary tensor data extension: JSON header + tensor bytes.
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    **errors(400, *INFERENCE, v2=True),
    200: {
        "description": "The outputs (JSON, or with binary outputs a JSON header + tensor bytes)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return oip.server_metadata(VERSION)


@router.get("/health/live", summary="Server live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Server ready")
async def ready(rt: RuntimeDep) -> JSONResponse:
    ok, _ = rt.readiness()
    return JSONResponse({"ready": ok}, status_code=200 if ok else 400)


@router.get("/models/stats", response_model=ModelStatisticsResponse, summary="Every model's statistics")
async def all_statistics(rt: RuntimeDep) -> dict[str, Any]:
    return oip.model_statistics(rt, None, None)


@router.get("/models/{name}", response_model=ModelMetadata, response_model_exclude_none=True)
async def model_metadata(name: str, rt: RuntimeDep) -> dict[str, Any]:
    return oip.model_metadata(rt, oip.served(rt, name, None))


@router.get(
    "/models/{name}/versions/{version}", response_model=ModelMetadata, response_model_exclude_none=True
)
async def model_version_metadata(name: str, version: str, rt: RuntimeDep) -> dict[str, Any]:
    return oip.model_metadata(rt, oip.served(rt, name, version))


@router.get("/models/{name}/ready", summary="Model ready")
async def model_ready(name: str, rt: RuntimeDep) -> JSONResponse:
    ok = oip.model_ready(rt, name, None)
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 400)


@router.get("/models/{name}/versions/{version}/ready", summary="Model version ready")
async def model_version_ready(name: str, version: str, rt: RuntimeDep) -> JSONResponse:
    ok = oip.model_ready(rt, name, version)
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 400)


@router.get("/models/{name}/stats", response_model=ModelStatisticsResponse, summary="Model statistics")
async def model_statistics(name: str, rt: RuntimeDep) -> dict[str, Any]:
    return oip.model_statistics(rt, name, None)


@router.get(
    "/models/{name}/versions/{version}/stats",
    response_model=ModelStatisticsResponse,
    summary="Model version statistics",
)
async def model_version_statistics(name: str, version: str, rt: RuntimeDep) -> dict[str, Any]:
    return oip.model_statistics(rt, name, version)


# -- inference --------------------------------------------------------------------------------
def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 <= n <= len(body):
        raise BadRequest(f"Inference-Header-Content-Length {header_length!r} is not 0..{len(body)}")
    return body[:n], body[n:]


def _param(params: dict[str, Any] | None, key: str, kind: type, where: str) -> Any:
    if not params or key not in params:
        return None
    value = params[key]
    # bool is an int in Python; neither may stand for the other here
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        what = "a boolean" if kind is bool else "an integer"
        raise BadRequest(f"{where}: parameter {key!r} must be {what}")
    return value


def _flatten(data: Any) -> list[Any]:
    values = data if isinstance(data, list) else [data]
    flat: list[Any] = []
    stack = list(reversed(values))
    while stack:  # row-major
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(reversed(v))
        else:
            flat.append(v)
    return flat


def _b64(name: str, i: int, v: Any) -> bytes:
    if not isinstance(v, str):
        raise BadRequest(f"input {name!r}: element {i} must be a base64 string of an encoded image")
    try:
        alt = b"-_" if "-" in v or "_" in v else None
        return base64.b64decode(v + "=" * (-len(v) % 4), altchars=alt, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"input {name!r}: element {i} is not valid base64") from None


def _tensor(inp: RequestInput, binary: memoryview, offset: int) -> tuple[oip.Tensor, int]:
    """One input from its JSON data or its slice of the binary part; returns the new offset."""
    where = f"input {inp.name!r}"
    size = _param(inp.parameters, "binary_data_size", int, where)
    if inp.datatype != oip.BYTES and inp.datatype not in oip.NUMERIC:
        raise BadRequest(f"{where}: datatype {inp.datatype!r} is not BYTES or a numeric type")
    if size is not None:
        if inp.data is not None:
            raise BadRequest(f"{where}: both data and binary_data_size")
        if size < 0 or offset + size > len(binary):
            raise BadRequest(f"{where}: binary_data_size {size} overruns the binary part")
        raw = bytes(binary[offset : offset + size])
        if inp.datatype == oip.BYTES:
            data: np.ndarray | list[bytes] = oip.bytes_elements(inp.name, raw)
        else:
            data = oip.numeric_from_bytes(inp.name, inp.datatype, inp.shape, raw)
        return oip.Tensor(inp.name, inp.datatype, inp.shape, data), offset + size
    if inp.data is None:
        raise BadRequest(f"{where}: no data (and no binary_data_size)")
    flat = _flatten(inp.data)
    if inp.datatype == oip.BYTES:
        data = [_b64(inp.name, i, v) for i, v in enumerate(flat)]
    else:
        if any(isinstance(v, (str, dict)) or v is None for v in flat):
            raise BadRequest(f"{where}: data must be numbers (flat or nested lists)")
        try:
            data = np.asarray(flat, dtype=oip.NUMERIC[inp.datatype])
        except (TypeError, ValueError, OverflowError):
            raise BadRequest(f"{where}: data must be {inp.datatype} numbers") from None
    return oip.Tensor(inp.name, inp.datatype, inp.shape, data), offset


def _loads(head: bytes) -> Any:
    """orjson (several times faster on tensors of numbers); what it refuses goes to json, which
    decides as before: NaN/Infinity literals, integers past 64 bits, UTF-16/32 documents."""
    try:
        return orjson.loads(head)
    except orjson.JSONDecodeError:
        return json.loads(head)


def _parse(body: bytes, header_length: str | None) -> tuple[InferenceRequest, list[oip.Tensor]]:
    head, binary = _split_body(body, header_length)
    try:
        doc = _loads(head)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the inference request is not valid JSON") from None
    try:
        req = InferenceRequest.model_validate(doc)
    except ValidationError as exc:
        raise BadRequest(_validation_message(exc)) from None
    view = memoryview(binary)
    offset = 0
    tensors = []
    for inp in req.inputs:
        t, offset = _tensor(inp, view, offset)
        tensors.append(t)
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes of binary data belong to no input")
    return req, tensors


def _requested(req: InferenceRequest) -> list[oip.RequestedOutput]:
    default = bool(_param(req.parameters, "binary_data_output", bool, "request"))
    out = []
    for o in req.outputs or []:
        where = f"output {o.name!r}"
        binary = _param(o.parameters, "binary_data", bool, where)
        k = _param(o.parameters, "classification", int, where) or 0
        out.append(oip.RequestedOutput(o.name, k, default if binary is None else binary))
    if not out:
        out.append(oip.RequestedOutput(oip.OUTPUT_NAME, 0, default))
    return out


def _response(req: InferenceRequest, result: oip.Result, wanted: list[oip.RequestedOutput]) -> Response:
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for out, w in zip(result.outputs, wanted, strict=True):
        entry: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": out.shape}
        if w.binary:
            blob = oip.output_bytes(out)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif isinstance(out.data, list):
            entry["data"] = [b.decode() for b in out.data]
        else:
            entry["data"] = out.data.astype(np.float64).ravel()  # orjson writes the array itself
        outputs.append(entry)
    doc: dict[str, Any] = {"model_name": result.model.name, "model_version": str(result.model.version)}
    if req.id is not None:
        doc["id"] = req.id
    doc["outputs"] = outputs
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return Response(head, media_type="application/json")
    return Response(
        b"".join([head, *blobs]),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(head))},
    )


async def _infer(rt: Any, name: str, version: str | None, request: Request) -> Response:
    tag_model(request, name)
    deadline = started(request) + rt.settings.request_timeout_s
    body = await request.body()
    req, tensors = _parse(body, request.headers.get(HEADER_LENGTH))
    body_version = req.model_version or None
    if req.model_name not in (None, name) or (body_version and version and body_version != version):
        raise BadRequest("model_name/model_version in the body disagree with the path")
    version = version or body_version
    wanted = _requested(req)
    result = await oip.infer(rt, name, version, tensors, wanted, deadline, request)
    return _response(req, result, wanted)


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_OPENAPI,
    summary="Inference",
)
@runs_inference
async def infer(name: str, request: Request, rt: RuntimeDep) -> Response:
    return await _infer(rt, name, None, request)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_OPENAPI,
    summary="Inference with a model version",
)
@runs_inference
async def infer_version(name: str, version: str, request: Request, rt: RuntimeDep) -> Response:
    return await _infer(rt, name, version, request)
