"""Names and numbers of the C API's public enums (engine/include/xnornet.h).

Both come from the compiled library's constants (lib.XNOR_<ENUM>_<MEMBER>), so the header
is the one place either is written: the member name lower-cased is the name used in
Python, in JSON and in the CLI ("conv2d", "shorter_crop", "avx512", ...).
"""

from __future__ import annotations

from ._xnornet import lib


def members(prefix: str) -> dict[str, int]:
    """{member name lower-cased: value} of every lib constant named prefix + MEMBER."""
    return {n[len(prefix) :].lower(): int(getattr(lib, n)) for n in dir(lib) if n.startswith(prefix)}


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
