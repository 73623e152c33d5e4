"""One Python exception per C status (xnor_status in engine/include/xnornet.h).

Every exception carries the C status code and the engine's message. The format errors
share the base ModelFormatError so a caller can tell "this file is bad" from other
failures with one except clause.

The header is the one place a status is described: each class below is made from its
member, XNOR_ERR_BAD_MAGIC giving BadMagicError with code "bad_magic", the status read
from the compiled library and the member's comment as the docstring.
"""

from __future__ import annotations

from ._xnornet import lib
from .enums import COMMENTS


class XnorError(Exception):
    """Base of every engine error. `status` is the C status code (lib.XNOR_ERR_*), `code` its
    short name."""

    status: int = lib.XNOR_ERR_INTERNAL
    code: str = "internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class ModelFormatError(XnorError, ValueError):
    """The model file is not a valid xnornet model (any of the statuses below)."""

    status, code = lib.XNOR_ERR_BAD_HEADER, "bad_model"


_BY_STATUS: dict[int, type[XnorError]] = {}


def _error(member: str, base: type[Exception], *, name: str = "", code: str = "") -> type[XnorError]:
    """The exception class of status XNOR_ERR_<member>, registered for error_for."""
    name = name or "".join(word.capitalize() for word in member.split("_")) + "Error"
    bases = (base,) if issubclass(base, XnorError) else (XnorError, base)
    attrs = {
        "__doc__": COMMENTS[f"XNOR_ERR_{member}"].capitalize() + ".",
        "__module__": __name__,
        "__qualname__": name,
        "status": int(getattr(lib, f"XNOR_ERR_{member}")),
        "code": code or member.lower(),
    }
    cls: type[XnorError] = type(name, bases, attrs)
    _BY_STATUS[cls.status] = cls
    return cls


InvalidArgumentError = _error("INVALID_ARGUMENT", ValueError)
OutOfMemoryError = _error("OUT_OF_MEMORY", MemoryError)
ModelIOError = _error("IO", OSError, name="ModelIOError", code="io_error")
BadMagicError = _error("BAD_MAGIC", ModelFormatError)
BadVersionError = _error("BAD_VERSION", ModelFormatError)
TruncatedError = _error("TRUNCATED", ModelFormatError)
TrailingDataError = _error("TRAILING_DATA", ModelFormatError)
ChecksumError = _error("CHECKSUM", ModelFormatError)
BadHeaderError = _error("BAD_HEADER", ModelFormatError)
BadTensorError = _error("BAD_TENSOR", ModelFormatError)
BadNodeError = _error("BAD_NODE", ModelFormatError)
ShapeMismatchError = _error("SHAPE_MISMATCH", ModelFormatError)
BadLabelsError = _error("BAD_LABELS", ModelFormatError)
UnsupportedISAError = _error("UNSUPPORTED_ISA", RuntimeError, name="UnsupportedISAError")
ThreadError = _error("THREAD", RuntimeError, code="thread_error")
InternalError = _error("INTERNAL", RuntimeError)


def error_for(status: int, message: str) -> XnorError:
    """The exception for a non-zero C status."""
    return _BY_STATUS.get(status, InternalError)(message)
