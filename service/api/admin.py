"""The admin API: load, unload and list model versions. Mounted only when an admin token is
configured; every route needs `Authorization: Bearer <token>` (compared in constant time).

It accepts model names and version numbers, never paths (the repository confines them).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from ..errors import Forbidden, Unauthorized
from ..repository import NotServed, check_name
from .deps import RuntimeDep, tag_model
from .responses import errors


def require_admin(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> None:
    token = rt.settings.admin_token
    assert token is not None  # the router is only mounted with a token
    challenge = {"WWW-Authenticate": 'Bearer realm="xnornet-admin"'}
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer <token>", headers=challenge)
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'", headers=challenge)
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise Forbidden("wrong admin token")


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=errors(401, 403, 404, 413, 422),
)


class LoadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a "path" field must fail loudly, not be ignored
    version: int | None = Field(None, ge=0, lt=10**9, description="without it: the highest version on disk")


@router.get("/models", summary="Models on disk and served, with sha256 and load time")
async def list_models(rt: RuntimeDep) -> dict[str, Any]:
    return {"repository": str(rt.repo.root), "models": rt.repo.describe()}


@router.post("/models/{name}/load", summary="Load (validate, warm up, swap in) a version")
async def load_model(
    name: str, request: Request, rt: RuntimeDep, body: Annotated[LoadRequest | None, Body()] = None
) -> dict[str, Any]:
    tag_model(request, name)
    check_name(name)
    mv = await rt.admin_load(name, body.version if body else None)
    return {"name": name, "loaded": mv.describe()}


@router.post("/models/{name}/unload", summary="Stop serving a model (in-flight requests finish)")
async def unload_model(name: str, request: Request, rt: RuntimeDep) -> dict[str, Any]:
    tag_model(request, name)
    check_name(name)
    old = await rt.admin_unload(name)
    if old is None:
        raise NotServed(f"model {name!r} is not loaded")
    return {"name": name, "unloaded": old.version}
