"""Names and numbers of the C API's public enums, read from engine/include/xnornet.h.

The header is the one place either is written: the member name lower-cased is the name
used in Python, in JSON and in the CLI ("conv2d", "shorter_crop", "avx512", ...). The
tables are parsed from the header text rather than taken from the compiled library so
that the numpy side (engine.graph, engine.format) writes and reads model files without
the C engine built (scripts/fuzz/make_corpus.py relies on that); tests/engine/test_enums.py
checks that every value equals the compiled library's lib.XNOR_* constant.
"""

from __future__ import annotations

import pathlib
import re

HEADER = pathlib.Path(__file__).resolve().parent / "include" / "xnornet.h"


def _constants(text: str) -> dict[str, int]:
    """Every `XNOR_NAME = value` enum member of the header (comments removed first)."""
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return {m[1]: int(m[2]) for m in re.finditer(r"\b(XNOR_[A-Z0-9_]+)\s*=\s*(\d+)", code)}


def _comments(text: str) -> dict[str, str]:
    """The one-line comment after each `XNOR_NAME = value` enum member that has one."""
    return {m[1]: m[2] for m in re.finditer(r"\b(XNOR_[A-Z0-9_]+)\s*=\s*\d+,?[ \t]*/\*\s*(.*?)\s*\*/", text)}


CONSTANTS = _constants(HEADER.read_text())
COMMENTS = _comments(HEADER.read_text())


def members(prefix: str) -> dict[str, int]:
    """{member name lower-cased: value} of every enum member named prefix + MEMBER."""
    return {n[len(prefix) :].lower(): v for n, v in CONSTANTS.items() if n.startswith(prefix)}


def names(values: dict[str, int]) -> dict[int, str]:
    """The inverse of a members() table."""
    return {v: k for k, v in values.items()}


OPS = members("XNOR_OP_")
COLORS = members("XNOR_COLOR_")
RESIZE = members("XNOR_RESIZE_")
MODES = members("XNOR_MODE_")
OUTPUT_KINDS = members("XNOR_OUTPUT_")
ISAS = members("XNOR_ISA_")

OP_NAMES = names(OPS)
COLOR_NAMES = names(COLORS)
RESIZE_NAMES = names(RESIZE)
MODE_NAMES = names(MODES)
OUTPUT_KIND_NAMES = names(OUTPUT_KINDS)
ISA_NAMES = names(ISAS)
