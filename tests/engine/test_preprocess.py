"""xnor_preprocess_resize: Pillow's antialiased bilinear filter on uint8 pixels, in C.

Three claims: (1) the result is Pillow's two passes bit for bit (Pillow's horizontal-only
resize, then its vertical-only resize), and so within +-1 of a single Image.resize (Pillow 13
chooses the order of its passes itself; the order moves a rounding, never more than 1);
(2) every ISA gives the scalar kernel's bytes; (3) bad arguments are refused with a status,
never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine._xnornet import ffi, lib
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from engine import preprocess
from engine.errors import InvalidArgumentError, UnsupportedISAError
from engine.model import isa_supported

ISAS = [isa for isa in ("scalar", "avx2", "avx512") if isa_supported(isa)]
Box = tuple[float, float, float, float]


def _pillow(a: np.ndarray, box: Box, w: int, h: int) -> np.ndarray:
    return np.asarray(
        Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
    )


def _pillow_two_pass(a: np.ndarray, box: Box, w: int, h: int) -> np.ndarray:
    """Pillow's horizontal pass (full height), then its vertical pass: each exact by itself."""
    rows = a.shape[0]
    img = Image.fromarray(a).resize(
        (w, rows), Image.Resampling.BILINEAR, box=(box[0], 0, box[2], rows), reducing_gap=None
    )
    return np.asarray(
        img.resize((w, h), Image.Resampling.BILINEAR, box=(0, box[1], w, box[3]), reducing_gap=None)
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, Box, int, int]:
    channels = draw(st.sampled_from([1, 3]))
    sw, sh = draw(st.integers(1, 160)), draw(st.integers(1, 160))
    dw, dh = draw(st.integers(1, 160)), draw(st.integers(1, 160))
    if draw(st.booleans()):
        box: Box = (0.0, 0.0, float(sw), float(sh))
    else:
        fx = draw(st.lists(st.floats(0, 1), min_size=2, max_size=2))
        fy = draw(st.lists(st.floats(0, 1), min_size=2, max_size=2))

        def span(f: list[float], n: int) -> tuple[float, float]:
            lo = f[0] * (n - 1e-3)
            return lo, lo + 1e-3 + f[1] * (n - lo - 1e-3)

        (x0, x1), (y0, y1) = span(fx, sw), span(fy, sh)
        box = (x0, y0, min(x1, sw), min(y1, sh))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (sh, sw) if channels == 1 else (sh, sw, 3)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    if draw(st.booleans()):  # smooth content too: rounding near .5 is where orders differ
        a = np.sort(a, axis=1)
    return a, box, dw, dh


@settings(max_examples=300, deadline=None)
@given(cases())
def test_matches_pillow(case: tuple[np.ndarray, Box, int, int]) -> None:
    a, box, w, h = case
    got = preprocess.resize(a, box, (w, h), isa="scalar")
    assert got.shape == (h, w, *a.shape[2:])
    assert np.array_equal(got, _pillow_two_pass(a, box, w, h))
    diff = np.abs(got.astype(np.int16) - _pillow(a, box, w, h))
    assert diff.max(initial=0) <= 1
    for isa in ISAS:
        assert np.array_equal(preprocess.resize(a, box, (w, h), isa=isa), got), isa


@pytest.mark.parametrize(
    "src,dst",
    [((640, 480), (227, 227)), ((4032, 3024), (224, 224)), ((3, 2000), (28, 28)), ((2000, 1), (64, 3)),
     ((28, 28), (28, 28)), ((1, 1), (5, 7)), ((97, 61), (300, 200))],
)  # fmt: skip
def test_photo_sizes_every_isa(src: tuple[int, int], dst: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(src))
    a = rng.integers(0, 256, (src[1], src[0], 3), dtype=np.uint8)
    box = (src[0] * 0.1, src[1] * 0.05, src[0] * 0.93, src[1])
    want = _pillow_two_pass(a, box, *dst)
    for isa in ISAS:
        assert np.array_equal(preprocess.resize(a, box, dst, isa=isa), want), isa


def test_reverse_channels_and_strided_rows() -> None:
    rng = np.random.default_rng(7)
    big = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    view = big[10:80, 5:100]  # rows 360 bytes apart, 285 bytes used
    box = (3.5, 1.25, 90.0, 66.0)
    want = _pillow_two_pass(np.ascontiguousarray(view), box, 33, 41)
    for isa in ISAS:
        assert np.array_equal(preprocess.resize(view, box, (33, 41), isa=isa), want)
        assert np.array_equal(
            preprocess.resize(view, box, (33, 41), reverse_channels=True, isa=isa), want[..., ::-1]
        )


def test_last_row_ends_the_buffer() -> None:
    # The AVX2 kernel reads a byte past a pixel only where it exists: a view that ends exactly
    # at the end of its buffer (the last row's last pixel is the buffer's last byte).
    buf = np.random.default_rng(3).integers(0, 256, 7 * 11 * 3, dtype=np.uint8)
    a = buf.reshape(7, 11, 3)
    for isa in ISAS:
        got = preprocess.resize(a, (0, 0, 11, 7), (23, 9), isa=isa)
        assert np.array_equal(got, _pillow_two_pass(a, (0, 0, 11, 7), 23, 9))


# -- validation in C: every argument checked, a status and a message, never a crash ------------
def _call(**over: object) -> tuple[int, str]:
    src = over.pop("src", np.zeros((10, 12, 3), np.uint8))
    assert isinstance(src, np.ndarray)
    p = ffi.new("xnor_resize_params *", lib.xnor_resize_default_params())
    p.src_w, p.src_h, p.channels, p.src_stride = 12, 10, 3, 36
    p.box = [0.0, 0.0, 12.0, 10.0]
    p.dst_w, p.dst_h = 4, 5
    dst_len, src_len = over.pop("dst_len", 4 * 5 * 3), over.pop("src_len", src.size)
    assert isinstance(dst_len, int) and isinstance(src_len, int)
    for k, v in over.items():
        setattr(p, k, v)
    dst = np.zeros(max(dst_len, 1), np.uint8)
    err = ffi.new("char[]", 256)
    st = lib.xnor_preprocess_resize(
        p, ffi.from_buffer("uint8_t[]", src), src_len, ffi.from_buffer("uint8_t[]", dst), dst_len, err, 256
    )
    return int(st), ffi.string(err).decode()


def test_valid_call_is_ok() -> None:
    assert _call() == (lib.XNOR_OK, "")


@pytest.mark.parametrize(
    "over,words",
    [
        ({"channels": 2}, "channels"),
        ({"channels": 4}, "channels"),
        ({"src_w": 0}, "source size"),
        ({"src_h": lib.XNOR_PREPROCESS_MAX_SIDE + 1}, "source size"),
        ({"dst_w": 0}, "output size"),
        ({"dst_h": 70000}, "output size"),
        ({"src_stride": 35}, "stride"),
        ({"src_len": 359}, "shorter"),
        ({"src_stride": 1 << 62}, "shorter"),
        ({"dst_len": 59}, "dst_len"),
        ({"dst_len": 61}, "dst_len"),
        ({"box": [0.0, 0.0, 12.5, 10.0]}, "box"),
        ({"box": [-0.5, 0.0, 12.0, 10.0]}, "box"),
        ({"box": [3.0, 0.0, 3.0, 10.0]}, "box"),
        ({"box": [5.0, 0.0, 4.0, 10.0]}, "box"),
        ({"box": [float("nan"), 0.0, 12.0, 10.0]}, "box"),
        ({"box": [0.0, 0.0, 12.0, float("inf")]}, "box"),
        ({"reverse_channels": 2}, "reverse_channels"),
    ],
)
def test_bad_arguments_refused(over: dict[str, object], words: str) -> None:
    st, msg = _call(**over)
    assert st == lib.XNOR_ERR_INVALID_ARGUMENT
    assert words in msg


def test_unknown_isa_refused() -> None:
    assert _call(isa=99)[0] == lib.XNOR_ERR_UNSUPPORTED_ISA


def test_largest_downscale() -> None:
    # the longest filter the limits allow: 65535 rows into 1 (131073 taps) and into 300
    src = np.full((65535, 1), 77, np.uint8)
    for rows in (1, 300):
        st, msg = _call(src=src, src_w=1, src_h=65535, channels=1, src_stride=1, box=[0.0, 0.0, 1.0, 65535.0],
                        dst_w=1, dst_h=rows, dst_len=rows, src_len=src.size)  # fmt: skip
        assert (st, msg) == (lib.XNOR_OK, "")
    assert np.all(preprocess.resize(src, (0, 0, 1, 65535), (1, 300)) == 77)


def test_null_pointers_refused() -> None:
    p = ffi.new("xnor_resize_params *", lib.xnor_resize_default_params())
    buf = ffi.new("uint8_t[]", 16)
    assert (
        lib.xnor_preprocess_resize(ffi.NULL, buf, 16, buf, 16, ffi.NULL, 0) == lib.XNOR_ERR_INVALID_ARGUMENT
    )
    assert lib.xnor_preprocess_resize(p, ffi.NULL, 16, buf, 16, ffi.NULL, 0) == lib.XNOR_ERR_INVALID_ARGUMENT
    assert lib.xnor_preprocess_resize(p, buf, 16, ffi.NULL, 16, ffi.NULL, 0) == lib.XNOR_ERR_INVALID_ARGUMENT


def test_python_face_checks_its_arguments() -> None:
    a = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(InvalidArgumentError):
        preprocess.resize(a.astype(np.float32), (0, 0, 4, 4), (2, 2))
    with pytest.raises(InvalidArgumentError):
        preprocess.resize(np.zeros((4, 4, 4), np.uint8), (0, 0, 4, 4), (2, 2))
    with pytest.raises(InvalidArgumentError):
        preprocess.resize(a, (0, 0, 4), (2, 2))
    with pytest.raises(InvalidArgumentError):
        preprocess.resize(a, (0, 0, 4, 4), (0, 2))
    with pytest.raises(InvalidArgumentError, match="box"):
        preprocess.resize(a, (0, 0, 5, 4), (2, 2))
    if not isa_supported("avx512"):
        with pytest.raises(UnsupportedISAError):
            preprocess.resize(a, (0, 0, 4, 4), (2, 2), isa="avx512")
