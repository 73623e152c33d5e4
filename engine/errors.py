"""One Python exception per C status (xnor_status in engine/include/xnornet.h).

Every exception carries the C status code and the engine's message. The format errors
share the base ModelFormatError so a caller can tell "this file is bad" from other
failures with one except clause.
"""

from __future__ import annotations

from ._xnornet import lib


class XnorError(Exception):
    """Base of every engine error. `status` is the C status code (lib.XNOR_ERR_*), `code` its
    short name."""

    status: int = lib.XNOR_ERR_INTERNAL
    code: str = "internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class InvalidArgumentError(XnorError, ValueError):
    status, code = lib.XNOR_ERR_INVALID_ARGUMENT, "invalid_argument"


class OutOfMemoryError(XnorError, MemoryError):
    status, code = lib.XNOR_ERR_OUT_OF_MEMORY, "out_of_memory"


class ModelIOError(XnorError, OSError):
    status, code = lib.XNOR_ERR_IO, "io_error"


class ModelFormatError(XnorError, ValueError):
    """The model file is not a valid xnornet model (any of the statuses below)."""

    status, code = lib.XNOR_ERR_BAD_HEADER, "bad_model"


class BadMagicError(ModelFormatError):
    status, code = lib.XNOR_ERR_BAD_MAGIC, "bad_magic"


class BadVersionError(ModelFormatError):
    status, code = lib.XNOR_ERR_BAD_VERSION, "bad_version"


class TruncatedError(ModelFormatError):
    status, code = lib.XNOR_ERR_TRUNCATED, "truncated"


class TrailingDataError(ModelFormatError):
    status, code = lib.XNOR_ERR_TRAILING_DATA, "trailing_data"


class ChecksumError(ModelFormatError):
    status, code = lib.XNOR_ERR_CHECKSUM, "checksum"


class BadHeaderError(ModelFormatError):
    status, code = lib.XNOR_ERR_BAD_HEADER, "bad_header"


class BadTensorError(ModelFormatError):
    status, code = lib.XNOR_ERR_BAD_TENSOR, "bad_tensor"


class BadNodeError(ModelFormatError):
    status, code = lib.XNOR_ERR_BAD_NODE, "bad_node"


class ShapeMismatchError(ModelFormatError):
    status, code = lib.XNOR_ERR_SHAPE_MISMATCH, "shape_mismatch"


class BadLabelsError(ModelFormatError):
    status, code = lib.XNOR_ERR_BAD_LABELS, "bad_labels"


class UnsupportedISAError(XnorError, RuntimeError):
    status, code = lib.XNOR_ERR_UNSUPPORTED_ISA, "unsupported_isa"


class ThreadError(XnorError, RuntimeError):
    status, code = lib.XNOR_ERR_THREAD, "thread_error"


class InternalError(XnorError, RuntimeError):
    status, code = lib.XNOR_ERR_INTERNAL, "internal"


_BY_STATUS: dict[int, type[XnorError]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        OutOfMemoryError,
        ModelIOError,
        BadMagicError,
        BadVersionError,
        TruncatedError,
        TrailingDataError,
        ChecksumError,
        BadHeaderError,
        BadTensorError,
        BadNodeError,
        ShapeMismatchError,
        BadLabelsError,
        UnsupportedISAError,
        ThreadError,
        InternalError,
    )
}


def error_for(status: int, message: str) -> XnorError:
    """The exception for a non-zero C status."""
    return _BY_STATUS.get(status, InternalError)(message)
