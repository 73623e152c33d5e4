"""cffi builder of the C engine (API mode, out of line).

The cdef is read from the public header between the XNORNET_CDEF markers, so the
header stays the single source of the API. Every ISA's kernels are compiled in
(with per-function target attributes) and chosen at run time; nothing is built with
-march=native. XNORNET_SANITIZE=1 builds with AddressSanitizer and UBSan.
"""

from __future__ import annotations

import os
import pathlib
import re
import tomllib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
HEADER = HERE / "include" / "xnornet.h"


def _cdef() -> str:
    text = HEADER.read_text()
    m = re.search(r"/\* XNORNET_CDEF_BEGIN \*/(.*)/\* XNORNET_CDEF_END \*/", text, re.S)
    if not m:
        raise RuntimeError("CDEF markers missing in xnornet.h")
    return re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)


def _sources() -> list[str]:
    src = sorted((HERE / "src").rglob("*.c"))
    # Paths relative to the project root keep the build reproducible and short.
    root = HERE.parent
    return [str(p.relative_to(root)) for p in src]


def _flags() -> tuple[list[str], list[str]]:
    cflags = [
        "-O3",
        "-std=c11",
        "-ffp-contract=off",
        "-fno-strict-aliasing",
        "-pthread",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "-D_GNU_SOURCE",
    ]
    ldflags = ["-pthread", "-lm"]
    if os.environ.get("XNORNET_SANITIZE") == "1":
        san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
        cflags = [f if f != "-O3" else "-O1" for f in cflags] + san + ["-g"]
        ldflags += san
    return cflags, ldflags


def _version() -> str:
    """pyproject.toml's version, the one source (the build runs in the source tree)."""
    with (HERE.parent / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
_cflags, _ldflags = _flags()
ffibuilder.set_source(
    "engine._xnornet",
    '#include "xnornet.h"\n',
    sources=_sources(),
    include_dirs=[str(HERE / "include")],
    extra_compile_args=_cflags,
    extra_link_args=_ldflags,
    define_macros=[("XNOR_VERSION_STRING", f'"{_version()}"')],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
