"""One version: pyproject.toml's, seen the same by the package, the C library and the service."""

from __future__ import annotations

from engine._xnornet import ffi, lib

import engine
from engine.version import from_pyproject


def test_every_layer_reports_the_pyproject_version() -> None:
    version = from_pyproject()
    assert engine.__version__ == version
    assert ffi.string(lib.xnor_version()).decode() == version

    from service.api.deps import VERSION
    from service.app import create_app
    from service.settings import Settings

    assert version == VERSION
    assert create_app(Settings(engine_threads=1)).version == version
