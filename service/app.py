"""create_app(): the FastAPI application, its middleware, routers and lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from PIL import Image

from engine.version import __version__

from . import errors
from .api import admin, classify, health, ui, v2
from .cluster import Cluster
from .edge import EdgeMiddleware
from .repository import Loader
from .routes import route_table
from .runtime import Preprocess, Runtime
from .settings import Settings

log = logging.getLogger("xnornet.service")

# Routing tries them in this order.
ROUTERS = (classify.router, v2.router, health.router, ui.router, admin.router)


def create_app(
    settings: Settings | None = None,
    *,
    loader: Loader | None = None,
    preprocess: Preprocess | None = None,
    cluster: Cluster | None = None,
) -> FastAPI:
    """The app for one repository. `loader` replaces the C engine (tests pass fakes, the service
    benchmark PyTorch); `preprocess` replaces imaging.preprocess (the benchmark's decode cache);
    `cluster`: this app is one worker of `xnornet serve --workers N`."""
    settings = settings or Settings()
    runtime = Runtime(settings, loader, preprocess, cluster)
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
        version=__version__,
        lifespan=lifespan,
        description="XNOR-Net image classification on the CPU",
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    errors.install(app)
    for router in ROUTERS:
        if router is not admin.router or settings.admin_token is not None:
            app.include_router(router)
    # Every router's routes, admin's too when it is not mounted: the metrics label a request by
    # the URL space the service defines, whatever this instance mounts.
    routes = route_table(ROUTERS)

    # Metrics, load shedding and the body limit, in one layer before the app.
    app.add_middleware(EdgeMiddleware, runtime=runtime, routes=routes)
    return app
