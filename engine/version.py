"""The project's version, whose one source is pyproject.toml's [project] version: read from the
installed distribution's metadata, or from pyproject.toml in a source tree never installed."""

from __future__ import annotations

import pathlib
import tomllib
from importlib import metadata

PYPROJECT = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"


def from_pyproject(path: pathlib.Path = PYPROJECT) -> str:
    with path.open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def version() -> str:
    try:
        return metadata.version("xnornet")
    except metadata.PackageNotFoundError:
        return from_pyproject()


__version__ = version()
