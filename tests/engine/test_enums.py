"""The enum tables (parsed from the C header) equal the compiled library's constants, and the
info structs declare the public enum types (not bare integers)."""

from __future__ import annotations

from engine._xnornet import ffi, lib

from engine import enums, errors


def test_tables_hold_every_member_by_name() -> None:
    assert set(enums.OPS) == {
        "conv2d", "bconv2d", "linear", "blinear", "batchnorm", "relu",
        "maxpool", "avgpool", "flatten", "dropout", "softmax", "add", "qconv2d", "qlinear",
    }  # fmt: skip
    assert enums.COLORS == {"gray": 0, "rgb": 1, "bgr": 2, "other": 3}
    assert set(enums.RESIZE) == {"exact", "shorter_crop", "central_crop_bicubic"}
    assert set(enums.MODES) == {"xnor", "bwn"}
    assert set(enums.OUTPUT_KINDS) == {"logits", "probabilities"}
    assert set(enums.ISAS) == {"auto", "scalar", "avx2", "avx512"}
    assert enums.OPS["add"] == lib.XNOR_OP_ADD
    assert enums.RESIZE["shorter_crop"] == lib.XNOR_RESIZE_SHORTER_CROP
    for table in (enums.OPS, enums.COLORS, enums.RESIZE, enums.MODES, enums.OUTPUT_KINDS, enums.ISAS):
        assert len(set(table.values())) == len(table)


def test_header_tables_equal_the_compiled_constants() -> None:
    compiled = {name: int(getattr(lib, name)) for name in dir(lib) if name.startswith("XNOR_")}
    assert compiled == enums.CONSTANTS


def test_info_structs_use_the_public_enum_types() -> None:
    def field_types(struct: str) -> dict[str, str]:
        return {name: f.type.cname for name, f in ffi.typeof(struct).fields}

    model = field_types("xnor_model_info")
    assert (model["color"], model["resize_policy"], model["output_kind"]) == (
        "xnor_color",
        "xnor_resize_policy",
        "xnor_output_kind",
    )
    node = field_types("xnor_node_info")
    assert (node["op"], node["mode"]) == ("xnor_op", "xnor_mode")
    assert field_types("xnor_context_params")["isa"] == "xnor_isa"


def test_one_exception_per_status() -> None:
    statuses = {name: int(getattr(lib, name)) for name in dir(lib) if name.startswith("XNOR_ERR_")}
    assert len(statuses) == 16
    for name, status in statuses.items():
        exc = errors.error_for(status, "m")
        assert exc.status == status, name
        assert isinstance(exc, errors.XnorError) and exc.message == "m"
    assert len({type(errors.error_for(s, "")) for s in statuses.values()}) == len(statuses)


def test_exceptions_are_named_and_described_by_the_header() -> None:
    assert (
        errors.BadMagicError.__name__ == "BadMagicError"
        and errors.BadMagicError.__module__ == "engine.errors"
    )
    assert errors.BadMagicError.__doc__ == "Not an xnornet model file."
    assert (errors.ModelIOError.code, errors.ThreadError.code) == ("io_error", "thread_error")
    assert issubclass(errors.TruncatedError, errors.ModelFormatError) and issubclass(
        errors.ModelIOError, OSError
    )
    for status in range(lib.XNOR_ERR_INVALID_ARGUMENT, lib.XNOR_ERR_INTERNAL + 1):
        cls = type(errors.error_for(status, ""))
        assert getattr(errors, cls.__name__) is cls and cls.__doc__, status
