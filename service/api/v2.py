"""The Open Inference Protocol v2 (KServe / Triton REST), JSON tensors only.

Inputs: one tensor, either FP32 of the model's input shape ([C, H, W] or [N, C, H, W]), or
BYTES holding N encoded images as base64 strings (JSON cannot carry raw bytes), each of
which goes through the same decoding and preprocessing as /v1/classify. Output: the FP32
tensor "output" of shape [N, classes] (logits or probabilities, as the model computes).
Errors are {"error": "..."}; readiness is 200 for true and 400 for false, per the spec.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ApiError, BadRequest, NotFound
from ..inference import Timing, lease_model, preprocess_image, run_rows
from ..repository import Lease, ModelVersion, RepositoryError, check_name
from ..runtime import Runtime
from .deps import VERSION, RuntimeDep, started, tag_model

router = APIRouter(prefix="/v2", tags=["v2"])

INPUT_NAME = "input"
OUTPUT_NAME = "output"
MAX_ROWS = 1024


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
    data: Any


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[ResponseOutput]


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="xnornet", version=VERSION, extensions=[])


@router.get("/health/live", summary="Server live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Server ready")
async def ready(rt: RuntimeDep) -> JSONResponse:
    ok, _ = rt.readiness()
    return JSONResponse({"ready": ok}, status_code=200 if ok else 400)


def _served(rt: Runtime, name: str, version: str | None) -> ModelVersion:
    try:
        check_name(name)
    except RepositoryError as exc:
        raise NotFound(str(exc)) from None
    mv = rt.repo.served().get(name)
    if mv is None:
        raise NotFound(f"model {name!r} is not loaded")
    _check_version(mv, version)
    return mv


def _check_version(mv: ModelVersion, version: str | None) -> None:
    if version is not None and version != str(mv.version):
        raise NotFound(f"version {version!r} of model {mv.name!r} is not loaded (serving {mv.version})")


def _metadata(rt: Runtime, mv: ModelVersion) -> ModelMetadata:
    s = mv.spec
    return ModelMetadata(
        name=mv.name,
        versions=[str(v) for v in rt.repo.versions_on_disk(mv.name)],
        platform="xnornet",
        inputs=[MetadataTensor(name=INPUT_NAME, datatype="FP32", shape=[-1, s.channels, s.height, s.width])],
        outputs=[MetadataTensor(name=OUTPUT_NAME, datatype="FP32", shape=[-1, mv.output_size])],
    )


@router.get("/models/{name}", response_model=ModelMetadata, response_model_exclude_none=True)
async def model_metadata(name: str, rt: RuntimeDep) -> ModelMetadata:
    return _metadata(rt, _served(rt, name, None))


@router.get(
    "/models/{name}/versions/{version}", response_model=ModelMetadata, response_model_exclude_none=True
)
async def model_version_metadata(name: str, version: str, rt: RuntimeDep) -> ModelMetadata:
    return _metadata(rt, _served(rt, name, version))


async def _model_ready(rt: Runtime, name: str, version: str | None) -> JSONResponse:
    try:
        check_name(name)
    except RepositoryError as exc:
        raise NotFound(str(exc)) from None
    mv = rt.repo.served().get(name)
    ok = mv is not None and (version is None or version == str(mv.version)) and rt.state != "draining"
    if mv is None and name not in rt.repo.names_on_disk():
        raise NotFound(f"model {name!r} is unknown")
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 400)


@router.get("/models/{name}/ready", summary="Model ready")
async def model_ready(name: str, rt: RuntimeDep) -> JSONResponse:
    return await _model_ready(rt, name, None)


@router.get("/models/{name}/versions/{version}/ready", summary="Model version ready")
async def model_version_ready(name: str, version: str, rt: RuntimeDep) -> JSONResponse:
    return await _model_ready(rt, name, version)


def _fp32_rows(inp: RequestInput, mv: ModelVersion) -> list[np.ndarray]:
    chw = (mv.spec.channels, mv.spec.height, mv.spec.width)
    shape = tuple(inp.shape)
    if shape == chw:
        n = 1
    elif len(shape) == 4 and shape[1:] == chw and 1 <= shape[0] <= MAX_ROWS:
        n = shape[0]
    else:
        raise BadRequest(
            f"input {inp.name!r}: shape {list(shape)} is not [{', '.join(map(str, chw))}] "
            f"or [N, {', '.join(map(str, chw))}] with N in 1..{MAX_ROWS}"
        )
    try:
        arr = np.asarray(inp.data, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadRequest(f"input {inp.name!r}: data must be numbers (flat or nested lists)") from None
    if arr.size != math.prod(shape):
        raise BadRequest(f"input {inp.name!r}: {arr.size} values for shape {list(shape)}")
    return list(arr.reshape((n, *chw)))


def _byte_items(inp: RequestInput) -> list[bytes]:
    values = inp.data if isinstance(inp.data, list) else [inp.data]
    flat: list[Any] = []
    stack = list(reversed(values))
    while stack:  # flatten nested lists, row-major
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(reversed(v))
        else:
            flat.append(v)
    if not 1 <= len(flat) <= MAX_ROWS or len(flat) != math.prod(inp.shape):
        raise BadRequest(
            f"input {inp.name!r}: {len(flat)} elements for shape {inp.shape} (1..{MAX_ROWS} images)"
        )
    out = []
    for i, v in enumerate(flat):
        if not isinstance(v, str):
            raise BadRequest(f"input {inp.name!r}: element {i} must be a base64 string of an encoded image")
        try:
            out.append(
                base64.b64decode(
                    v + "=" * (-len(v) % 4), altchars=b"-_" if "-" in v or "_" in v else None, validate=True
                )
            )
        except (binascii.Error, ValueError):
            raise BadRequest(f"input {inp.name!r}: element {i} is not valid base64") from None
    return out


async def _infer(
    rt: Runtime, name: str, version: str | None, req: InferenceRequest, request: Request
) -> Response:
    tag_model(request, name)
    if len(req.inputs) != 1:
        raise BadRequest(f"model {name!r} takes exactly one input tensor, got {len(req.inputs)}")
    for out in req.outputs or []:
        if out.name != OUTPUT_NAME:
            raise BadRequest(f"unknown output {out.name!r}; the model's output is {OUTPUT_NAME!r}")
    inp = req.inputs[0]
    deadline = started(request) + rt.settings.request_timeout_s
    try:
        lease: Lease = lease_model(rt, name)
    except ApiError as exc:
        raise NotFound(exc.message) from None
    with lease:
        mv = lease.version
        _check_version(mv, version)
        timing = Timing()
        if inp.datatype == "FP32":
            rows = _fp32_rows(inp, mv)
        elif inp.datatype == "BYTES":
            images = _byte_items(inp)
            rows = list(await asyncio.gather(*(preprocess_image(rt, lease, b, timing) for b in images)))
        else:
            raise BadRequest(f"input {inp.name!r}: datatype {inp.datatype!r} is not FP32 or BYTES")
        result = await run_rows(rt, lease, rows, deadline, request, timing)
    # InferenceResponse's shape with its None fields left out (the routes' response_model, for
    # the OpenAPI schema), serialized once by orjson straight from the float64 array: the same
    # numbers as the pydantic model gave, without validating and converting every element.
    answer: dict[str, Any] = {"model_name": mv.name, "model_version": str(mv.version)}
    if req.id is not None:
        answer["id"] = req.id
    answer["outputs"] = [
        {
            "name": OUTPUT_NAME,
            "shape": list(result.shape),
            "datatype": "FP32",
            "data": result.astype(np.float64).ravel(),
        }
    ]
    return Response(orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


InferBody = Annotated[InferenceRequest, Body()]


@router.post("/models/{name}/infer", response_model=InferenceResponse, response_model_exclude_none=True)
async def infer(name: str, body: InferBody, request: Request, rt: RuntimeDep) -> Response:
    return await _infer(rt, name, None, body, request)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
)
async def infer_version(
    name: str, version: str, body: InferBody, request: Request, rt: RuntimeDep
) -> Response:
    return await _infer(rt, name, version, body, request)
