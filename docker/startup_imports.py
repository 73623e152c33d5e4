"""Import every module the container loads when `xnornet serve` starts (HTTP and gRPC) and when
the HEALTHCHECK runs, then exit.

The image build runs this once with bytecode writing on, after deleting all bytecode, so that
exactly these modules ship compiled (__pycache__) and none twice; anything imported later
(an error path, a rarely used codec) is compiled in memory from its source. It also proves that
the pruned runtime image still imports everything the server needs.
"""

import importlib

from PIL import Image

MODULES = [
    # the service, its CLI entry point and the engine binding
    "engine._xnornet",
    "xnornet.cli",
    "service.app",
    "service.cli",
    "service.server",
    "service.grpc.server",
    # what uvicorn imports by name at start: uvloop's loop, httptools' protocol, the lifespan
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
    # third-party modules the request path imports
    "numpy",
    "PIL.Image",
    "simplejpeg",
    "prometheus_client",
    "grpc",
    "orjson",
    "python_multipart",
    # docker/healthcheck.py
    "urllib.request",
]

for name in MODULES:
    importlib.import_module(name)

# Image.open(formats=...) imports all of Pillow's plugins on the first format that is not one of
# the few preinit() loads (WebP).
Image.init()
