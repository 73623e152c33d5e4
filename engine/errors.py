"""One Python exception per C status (xnor_status in engine/include/xnornet.h).

Every exception carries the C status code and the engine's message. The format errors
share the base ModelFormatError so a caller can tell "this file is bad" from other
failures with one except clause.
"""

from __future__ import annotations


class XnorError(Exception):
    """Base of every engine error. `status` is the C status code, `code` its short name."""

    status: int = 16
    code: str = "internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class InvalidArgumentError(XnorError, ValueError):
    status, code = 1, "invalid_argument"


class OutOfMemoryError(XnorError, MemoryError):
    status, code = 2, "out_of_memory"


class ModelIOError(XnorError, OSError):
    status, code = 3, "io_error"


class ModelFormatError(XnorError, ValueError):
    """The model file is not a valid xnornet model (any of the statuses below)."""

    status, code = 9, "bad_model"


class BadMagicError(ModelFormatError):
    status, code = 4, "bad_magic"


class BadVersionError(ModelFormatError):
    status, code = 5, "bad_version"


class TruncatedError(ModelFormatError):
    status, code = 6, "truncated"


class TrailingDataError(ModelFormatError):
    status, code = 7, "trailing_data"


class ChecksumError(ModelFormatError):
    status, code = 8, "checksum"


class BadHeaderError(ModelFormatError):
    status, code = 9, "bad_header"


class BadTensorError(ModelFormatError):
    status, code = 10, "bad_tensor"


class BadNodeError(ModelFormatError):
    status, code = 11, "bad_node"


class ShapeMismatchError(ModelFormatError):
    status, code = 12, "shape_mismatch"


class BadLabelsError(ModelFormatError):
    status, code = 13, "bad_labels"


class UnsupportedISAError(XnorError, RuntimeError):
    status, code = 14, "unsupported_isa"


class ThreadError(XnorError, RuntimeError):
    status, code = 15, "thread_error"


class InternalError(XnorError, RuntimeError):
    status, code = 16, "internal"


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
