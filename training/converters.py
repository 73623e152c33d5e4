"""The importers a catalogue entry may name: each turns a downloaded file into an engine model.

A converter knows the architectures it accepts (the catalogue is validated against them), the
optional modules it needs (checked before a download starts, so a missing extra never costs a
download) and how to convert. Files are written by the caller through `engine.format`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.graph import Graph

from .larq_zoo import ARCHES as LARQ_ARCHES

if TYPE_CHECKING:
    from .catalog import Entry


class ConvertError(ValueError):
    """The file cannot be converted as the catalogue entry says (the message says why)."""


@dataclass(frozen=True)
class Converter:
    architectures: tuple[str, ...]
    requires: tuple[tuple[str, str], ...]  # (module, how to install it)
    convert: Callable[[Path, Entry], tuple[Graph, list[str]]]  # (model, warnings)


def _larq_zoo(path: Path, entry: Entry) -> tuple[Graph, list[str]]:
    from . import larq_zoo as lz

    cfg = lz.ArchConfig(size=entry.input_size, classes=int(entry.task["classes"]), width=entry.width)
    try:
        # The sha256 was checked against the catalogue already: no release lookup here.
        res = lz.import_file(path, entry.architecture, None, cfg=cfg, name=entry.name, check_sha=False)
    except lz.LarqImportError as exc:
        raise ConvertError(str(exc)) from None
    return res.model, res.warnings


CONVERTERS: dict[str, Converter] = {
    "larq-zoo": Converter(
        architectures=LARQ_ARCHES,
        requires=(("h5py", "pip install 'xnornet[import]'"),),
        convert=_larq_zoo,
    ),
}
