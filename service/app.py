"""create_app(): the FastAPI application, its middleware, routers and lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from PIL import Image

from . import errors
from .admission import AdmissionMiddleware
from .api import admin, classify, health, ui, v2
from .limits import BodyLimitMiddleware
from .observe import MetricsMiddleware
from .repository import Loader
from .runtime import Preprocess, Runtime
from .settings import Settings

log = logging.getLogger("xnornet.service")


def create_app(
    settings: Settings | None = None, *, loader: Loader | None = None, preprocess: Preprocess | None = None
) -> FastAPI:
    """The app for one repository. `loader` replaces the C engine (tests pass fakes, the service
    benchmark PyTorch); `preprocess` replaces imaging.preprocess (the benchmark's decode cache)."""
    settings = settings or Settings()
    runtime = Runtime(settings, loader, preprocess)
    # Our own limit is checked per request (imaging.open_image). Pillow's process-wide bomb check
    # (its warning is an error) may only be raised to make room for it, never lowered by one app.
    if Image.MAX_IMAGE_PIXELS is not None and settings.max_image_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = settings.max_image_pixels

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        grpc_server = None
        try:
            if settings.grpc_port is not None:
                from .grpc.server import GrpcServer  # grpcio is loaded only when gRPC is on

                grpc_server = GrpcServer(runtime)
                app.state.grpc_port = await grpc_server.start()
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop()  # in-flight RPCs finish before the batchers close
            await runtime.stop()

    app = FastAPI(
        title="xnornet",
        version="0.1.0",
        lifespan=lifespan,
        description="XNOR-Net image classification on the CPU",
    )
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(classify.router)
    app.include_router(v2.router)
    app.include_router(health.router)
    app.include_router(ui.router)
    if settings.admin_token is not None:
        app.include_router(admin.router)

    def too_large(scope: Any) -> None:
        runtime.metrics.rejected.labels("too_large").inc()

    # Starlette runs the last added middleware first: metrics see everything, the limit refused ones too.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, on_reject=too_large)
    app.add_middleware(AdmissionMiddleware, runtime=runtime)  # sheds load before the body is read
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    return app
