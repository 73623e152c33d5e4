"""POST /v1/classify and /v1/models/{name}/classify: one image in, the top-k classes out;
GET /v1/models: what those serve (the page's model selector reads it)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from ..errors import Unprocessable, UnsupportedMediaType
from ..inference import Timing, classify_row, preprocess_image
from ..routes import classifies, runs_inference
from .deps import RuntimeDep, started, tag_model
from .responses import INFERENCE, errors

router = APIRouter(tags=["classify"])


class ModelRef(BaseModel):
    name: str
    version: int
    sha256: str


class Prediction(BaseModel):
    index: int
    label: str
    probability: float


class TimingMs(BaseModel):
    queue: float
    preprocess: float
    inference: float
    total: float


class ClassifyResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction]
    timing_ms: TimingMs


class ServedTask(BaseModel):
    dataset: str | None  # from the model card; None when the model has none
    classes: int
    summary: str  # "ImageNet, 1000 classes"; without a card: "N classes"


class ServedModel(BaseModel):
    name: str
    version: int
    title: str | None
    task: ServedTask


class ServedModels(BaseModel):
    default_model: str
    models: list[ServedModel]


TOP_K_DEFAULT = 5
TOP_K_MAX = 100_000
TopK = Annotated[int, Query(ge=1, le=TOP_K_MAX, description="how many classes to return (1..classes)")]


async def read_image_bytes(request: Request, rt: RuntimeDep) -> bytes:
    """The raw body (image/*, application/octet-stream) or the multipart field `file`."""
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime == "multipart/form-data":
        async with request.form(max_files=1, max_fields=16) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Unprocessable("multipart upload without a file field named 'file'", code="missing_file")
            return await upload.read()
    if mime in ("", "application/octet-stream") or mime.startswith("image/"):
        return await request.body()
    raise UnsupportedMediaType(
        f"content type {mime!r}: send the image as image/*, application/octet-stream "
        "or multipart/form-data field 'file'"
    )


async def classify_model(name: str, request: Request, rt: RuntimeDep, top_k: int) -> Response:
    tag_model(request, name)
    t_start = started(request)
    deadline = t_start + rt.settings.request_timeout_s
    with rt.repo.acquire(name) as lease:
        mv = lease.version
        if top_k > mv.output_size:
            raise Unprocessable(f"top_k must be 1..{mv.output_size} for model {name!r}", code="invalid_top_k")
        data = await read_image_bytes(request, rt)
        timing = Timing()
        x = await preprocess_image(rt, lease, data, timing)
        best = await classify_row(rt, lease, x, deadline, request, timing, top_k)
    total = time.monotonic() - t_start
    ms = {
        "queue": timing.queue * 1e3,
        "preprocess": timing.preprocess * 1e3,
        "inference": timing.inference * 1e3,
        "total": total * 1e3,
    }
    # The dict is ClassifyResponse's shape (the route's response_model, for the OpenAPI schema;
    # tests/service/test_api.py validates answers against it). Building it directly and
    # serializing it once with orjson spares the event loop a pydantic round trip per request.
    body = {
        "model": {"name": mv.name, "version": mv.version, "sha256": mv.sha256},
        "predictions": [{"index": i, "label": mv.labels[i], "probability": p} for i, p in best],
        "timing_ms": {k: round(v, 3) for k, v in ms.items()},
    }
    headers = {
        "X-Model-Version": str(mv.version),
        "Server-Timing": ", ".join(f"{k};dur={v:.3f}" for k, v in ms.items()),
    }
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


_BINARY = {"schema": {"type": "string", "format": "binary"}}
# The body is read by hand (read_image_bytes), so the schema says what it may be.
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "image/jpeg": _BINARY,
            "image/png": _BINARY,
            "image/webp": _BINARY,
            "application/octet-stream": _BINARY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                },
                "encoding": {"file": {"contentType": "image/*"}},
            },
        },
    }
}
RESPONSES = errors(*INFERENCE)


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    responses=RESPONSES,
    openapi_extra=IMAGE_BODY,
    summary="Classify an image with the default model",
)
@runs_inference
@classifies
async def classify(request: Request, rt: RuntimeDep, top_k: TopK = TOP_K_DEFAULT) -> Response:
    return await classify_model(rt.settings.default_model, request, rt, top_k)


@router.post(
    "/v1/models/{name}/classify",
    response_model=ClassifyResponse,
    responses=RESPONSES,
    openapi_extra=IMAGE_BODY,
    summary="Classify an image with the named model",
)
@runs_inference
@classifies
async def classify_named(
    name: str, request: Request, rt: RuntimeDep, top_k: TopK = TOP_K_DEFAULT
) -> Response:
    return await classify_model(name, request, rt, top_k)


@router.get("/v1/models", response_model=ServedModels, summary="The models served, with their task")
async def served_models(rt: RuntimeDep) -> ServedModels:
    served = rt.repo.served()
    return ServedModels(
        default_model=rt.settings.default_model,
        models=[
            ServedModel(
                name=mv.name,
                version=mv.version,
                title=mv.card.get("title") if isinstance(mv.card.get("title"), str) else None,
                task=ServedTask(**mv.task),
            )
            for _, mv in sorted(served.items())
        ],
    )
