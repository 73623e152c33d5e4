"""Import every module the container loads when `xnornet serve` starts (HTTP and gRPC) and when
the HEALTHCHECK runs, then exit.

The image build runs this in the venv stage with bytecode writing on, after deleting all
bytecode, so that exactly these modules ship compiled and none twice; anything imported later
(an error path, a rarely used codec) is compiled in memory from its source. With an argument, it
also writes the standard-library files it imported (paths relative to the standard library, one
a line), which docker/zip_stdlib.py compiles into the zipped standard library. In the runtime
stage it runs again, compiling xnornet's own packages and proving that the pruned image still
imports everything the server needs.
"""

import importlib
import pathlib
import sys
import sysconfig

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

if len(sys.argv) > 1:
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = {pathlib.Path(f) for m in list(sys.modules.values()) if (f := getattr(m, "__file__", None))}
    stdlib_files = [f for f in files if f.suffix == ".py" and f.is_relative_to(stdlib)]
    imported = sorted(str(f.relative_to(stdlib)) for f in stdlib_files)
    pathlib.Path(sys.argv[1]).write_text("".join(f"{name}\n" for name in imported))
