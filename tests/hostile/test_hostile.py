"""Hostile and awkward uploads against a real server process.

Every case is one row of CASES: what is sent, the status the service documents for it and
the error code of the JSON body. For every case: never a 5xx, an answer within
the request timeout, the one JSON error shape, and /healthz 200 right after. Over the whole
table the server's resident memory stays under a stated bound (RSS_BOUND_MIB above what it
used after warm-up), measured from /proc/<pid>/status.

Documented statuses, as this table checks them:
  413 too_large         body over --max-body-bytes (declared, or while a chunked body streams in);
                        images whose header claims more pixels than --max-image-pixels (bombs),
                        refused before any pixel is decoded
  415 unsupported_type  a content type other than image/*, application/octet-stream or
                        multipart/form-data; bytes that are not JPEG, PNG, WebP, GIF or BMP
                        (no other decoder runs: TIFF, EPS, ICO, ... renamed .png are refused)
  422 bad_image         empty, truncated or corrupt images of an allowed format
  422 missing_file      multipart without a complete file field named "file" (unterminated too)
  400 bad_request       multipart the parser refuses (no boundary, a boundary longer than RFC 2046's
                        70 characters or not found in the body, too many parts or files)
  422 invalid_request   top_k not an integer 1..100000;  422 invalid_top_k: above the classes
  404 model_not_found   unknown, unloaded or malformed model names (traversal included)
  404 not_found / 405   no such route / method
The content type of an image upload is not trusted: the bytes are sniffed against the
allowlist, so a PNG sent as image/jpeg or without a content type is classified.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.conftest import MODEL, flags, serve
from tests.service.images import all_modes, encode, gradient, jpeg, png
from tests.service.modelgen import tiny_model, write_version

from . import payloads as p
from .procfs import MiB, rss_bytes
from .rawhttp import Response, chunked_upload, request

RGB_MODEL = "rgb-crop"  # 3x32x32, shorter side to 36 then center crop: the extreme-aspect path
MAX_BODY = 1 << 20
MAX_PIXELS = 10_000_000
REQUEST_TIMEOUT_S = 5.0
# Resident memory may grow at most this much above the level after warm-up, over the whole table.
# The largest legal image here is 3000x3000 (9 Mpx, ~27 MB as RGB while decoded), plus glibc arenas
# of the decode threads; a bomb that was actually decoded would take gigabytes.
RSS_BOUND_MIB = 96
OCT = "application/octet-stream"


@dataclass
class Case:
    id: str
    body: bytes = b""
    ctype: str | None = OCT
    status: int = 200
    code: str | None = None  # the error code; None for 200
    path: str = "/v1/classify"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # send the body with Transfer-Encoding: chunked
    top_k: int = 5  # for 200: how many predictions


def _mp(parts: list[tuple[str, str | None, str | None, bytes]], boundary: str = "xnornet-b0undary") -> bytes:
    return p.multipart(parts, boundary)


def _mp_case(id: str, body: bytes, status: int, code: str | None, boundary: str = "xnornet-b0undary") -> Case:
    return Case(id, body, f"multipart/form-data; boundary={boundary}", status, code)


def cases() -> list[Case]:
    rng = random.Random(5)
    good = png()
    out: list[Case] = []
    add = out.append
    # -- not images ------------------------------------------------------------------------
    add(Case("empty_body", b"", OCT, 422, "bad_image"))
    add(Case("empty_body_no_content_type", b"", None, 422, "bad_image"))
    add(Case("text_plain", b"hello, world\n", "text/plain", 415, "unsupported_type"))
    add(Case("text_as_image_png", b"hello, world\n", "image/png", 415, "unsupported_type"))
    add(Case("html", p.html(), "text/html", 415, "unsupported_type"))
    add(Case("html_as_octet_stream", p.html(), OCT, 415, "unsupported_type"))
    add(Case("svg_as_image_svg", p.svg(), "image/svg+xml", 415, "unsupported_type"))
    add(
        Case(
            "json_body",
            json.dumps({"image": base64.b64encode(good).decode()}).encode(),
            "application/json",
            415,
            "unsupported_type",
        )
    )
    add(Case("json_as_image_jpeg", b'{"image": "x"}', "image/jpeg", 415, "unsupported_type"))
    add(Case("form_urlencoded", b"file=abc", "application/x-www-form-urlencoded", 415, "unsupported_type"))
    add(Case("zip", p.zip_bytes(), "application/zip", 415, "unsupported_type"))
    add(Case("zip_as_image_png", p.zip_bytes(), "image/png", 415, "unsupported_type"))
    add(Case("gzip", p.gz(), "application/gzip", 415, "unsupported_type"))
    add(Case("gzip_as_octet_stream", p.gz(), OCT, 415, "unsupported_type"))
    add(
        Case(
            "gzip_content_encoding",
            p.gz(),
            "image/png",
            415,
            "unsupported_type",
            headers={"Content-Encoding": "gzip"},
        )
    )  # the server does not inflate bodies
    add(Case("random_bytes", rng.randbytes(4096), OCT, 415, "unsupported_type"))
    # formats Pillow could decode but the allowlist refuses: no other decoder may run
    add(Case("tiff_renamed_png", p.tiff(), "image/png", 415, "unsupported_type"))
    add(Case("eps_renamed_png", p.eps(), "image/png", 415, "unsupported_type"))
    for fmt in ("ICO", "PCX", "TGA", "PPM"):
        add(Case(f"{fmt.lower()}_as_image_png", p.other_format(fmt), "image/png", 415, "unsupported_type"))
    # -- truncated and corrupt ---------------------------------------------------------------
    add(Case("jpeg_truncated", p.truncated(jpeg(640, 480)), "image/jpeg", 422, "bad_image"))
    add(Case("jpeg_header_only", p.jpeg_header_only(), "image/jpeg", 422, "bad_image"))
    add(Case("png_truncated", p.truncated(png(640, 480)), "image/png", 422, "bad_image"))
    add(Case("png_header_only", p.png_header_only(), "image/png", 422, "bad_image"))
    add(Case("gif_truncated", p.truncated(all_modes()["gif"], 0.3), "image/gif", 422, "bad_image"))
    add(Case("webp_truncated", p.truncated(all_modes()["webp"], 0.5), "image/webp", 422, "bad_image"))
    add(Case("bmp_truncated", p.truncated(all_modes()["bmp"], 0.5), "image/bmp", 422, "bad_image"))
    # -- decompression bombs: headers only, refused from the header --------------------------
    add(Case("png_bomb_50000x50000", p.png_bomb(50_000, 50_000), "image/png", 413, "too_large"))
    add(Case("png_bomb_1x50000000", p.png_bomb(1, 50_000_000), "image/png", 413, "too_large"))
    add(Case("png_bomb_4000x3000_over_limit", p.png_bomb(4000, 3000), "image/png", 413, "too_large"))
    add(Case("gif_bomb_65535x65535", p.gif_bomb(), "image/gif", 413, "too_large"))
    add(Case("jpeg_bomb_65500x65500", p.jpeg_bomb(), "image/jpeg", 413, "too_large"))
    add(Case("bmp_bomb_50000x50000", p.bmp_bomb(), "image/bmp", 413, "too_large"))
    add(Case("webp_bomb_16383x16383", p.webp_bomb(), "image/webp", 413, "too_large"))
    # -- content types ---------------------------------------------------------------------
    add(Case("png_sent_as_image_jpeg", good, "image/jpeg"))
    add(Case("png_without_content_type", good, None))
    add(Case("png_content_type_upper_case", good, "IMAGE/PNG"))
    add(Case("png_sent_as_text_plain", good, "text/plain", 415, "unsupported_type"))
    # -- multipart -------------------------------------------------------------------------
    add(_mp_case("multipart_ok", _mp([("file", "a.png", "image/png", good)]), 200, None))
    add(
        _mp_case(
            "multipart_filename_traversal",
            _mp([("file", "../../../../etc/passwd", "image/png", good)]),
            200,
            None,
        )
    )
    add(
        _mp_case(
            "multipart_field_not_named_file",
            _mp([("image", "a.png", "image/png", good)]),
            422,
            "missing_file",
        )
    )
    add(_mp_case("multipart_file_as_plain_field", _mp([("file", None, None, b"abc")]), 422, "missing_file"))
    add(
        _mp_case(
            "multipart_two_files",
            _mp([("file", "a.png", "image/png", good), ("file", "b.png", "image/png", good)]),
            400,
            "bad_request",
        )
    )
    add(
        _mp_case(
            "multipart_many_parts", _mp([(f"f{i}", None, None, b"x") for i in range(200)]), 400, "bad_request"
        )
    )
    add(
        Case(
            "multipart_without_boundary",
            _mp([("file", "a.png", "image/png", good)]),
            "multipart/form-data",
            400,
            "bad_request",
        )
    )
    add(
        _mp_case(
            "multipart_boundary_mismatch",
            _mp([("file", "a.png", "image/png", good)], "other"),
            400,
            "bad_request",
        )
    )
    b70 = "7" * 70  # RFC 2046's longest boundary
    add(
        _mp_case(
            "multipart_70_char_boundary", _mp([("file", "a.png", "image/png", good)], b70), 200, None, b70
        )
    )
    long_b = "B" * 4000
    add(
        _mp_case(
            "multipart_4000_char_boundary",
            _mp([("file", "a.png", "image/png", good)], long_b),
            400,
            "bad_request",
            long_b,
        )
    )
    special = "a.*+?(b)[c]{2}^$|\\"  # regex metacharacters: a parser that builds a regex from it breaks
    add(
        _mp_case(
            "multipart_regex_metachar_boundary",
            _mp([("file", "a.png", "image/png", good)], special),
            200,
            None,
            f'"{special}"',
        )
    )
    add(
        _mp_case(
            "multipart_boundary_in_payload",  # the boundary minus CRLF inside the image bytes
            _mp([("file", "a.png", "image/png", good + b"--xnornet-b0undary")]),
            200,
            None,
        )
    )
    add(
        _mp_case(
            "multipart_unterminated", _mp([("file", "a.png", "image/png", good)])[:-40], 422, "missing_file"
        )
    )
    add(
        _mp_case(
            "multipart_tiff_file", _mp([("file", "a.png", "image/png", p.tiff())]), 415, "unsupported_type"
        )
    )
    add(
        _mp_case(
            "multipart_bomb_file",
            _mp([("file", "a.png", "image/png", p.png_bomb(50_000, 50_000))]),
            413,
            "too_large",
        )
    )
    # -- body size -------------------------------------------------------------------------
    add(
        Case(
            "content_length_over_limit",
            b"",
            OCT,
            413,
            "too_large",
            headers={"Content-Length": str(64 * MAX_BODY)},
        )
    )
    add(Case("chunked_small_image", good, "image/png", chunked=True))
    # (the chunked upload past the limit has its own test below)
    # -- geometry --------------------------------------------------------------------------
    add(Case("png_1x1", p.strip(1, 1), "image/png"))
    add(Case("png_1x10000", p.strip(1, 10_000), "image/png"))
    add(Case("png_10000x1", p.strip(10_000, 1), "image/png"))
    add(
        Case(
            "png_1x10000_shorter_crop",
            p.strip(1, 10_000),
            "image/png",
            path=f"/v1/models/{RGB_MODEL}/classify",
        )
    )
    add(
        Case(
            "png_10000x1_shorter_crop",
            p.strip(10_000, 1),
            "image/png",
            path=f"/v1/models/{RGB_MODEL}/classify",
        )
    )
    add(Case("png_3000x3000_under_limit", p.strip(3000, 3000), "image/png"))
    add(
        Case(
            "jpeg_4000x2500_draft",
            encode(gradient(4000, 2500), "JPEG", quality=50),
            "image/jpeg",
            path=f"/v1/models/{RGB_MODEL}/classify",
        )
    )
    # -- every image mode, through both models --------------------------------------------
    for name, data in sorted(all_modes().items()):
        add(Case(f"mode_{name}", data, OCT))
        add(Case(f"mode_{name}_rgb", data, OCT, path=f"/v1/models/{RGB_MODEL}/classify"))
    # -- query and model names: the good PNG at an odd URL --------------------------------

    def at(id: str, path: str, status: int, code: str) -> None:
        add(Case(id, good, "image/png", status, code, path=path))

    at("top_k_0", "/v1/classify?top_k=0", 422, "invalid_request")
    at("top_k_negative", "/v1/classify?top_k=-1", 422, "invalid_request")
    at("top_k_abc", "/v1/classify?top_k=abc", 422, "invalid_request")
    at("top_k_huge", "/v1/classify?top_k=1000000000000000000000", 422, "invalid_request")
    at("top_k_above_classes", "/v1/classify?top_k=11", 422, "invalid_top_k")
    add(Case("top_k_all_classes", good, "image/png", path="/v1/classify?top_k=10", top_k=10))
    at("unknown_model", "/v1/models/nope/classify", 404, "model_not_found")
    at("model_dotdot", "/v1/models/../classify", 404, "model_not_found")
    at("model_dotdot_encoded", "/v1/models/%2e%2e/classify", 404, "model_not_found")
    at("model_traversal_encoded_slashes", "/v1/models/..%2f..%2fetc%2fpasswd/classify", 404, "not_found")
    at("model_absolute_path", "/v1/models/%2fetc%2fpasswd/classify", 404, "not_found")
    at("model_dot_hidden", "/v1/models/.git/classify", 404, "model_not_found")
    at("model_nul_byte", f"/v1/models/{MODEL}%00/classify", 404, "model_not_found")
    at("model_unicode", "/v1/models/%C3%A9t%C3%A9/classify", 404, "model_not_found")
    at("model_name_4000_chars", f"/v1/models/{'a' * 4000}/classify", 404, "model_not_found")
    # -- methods and v2 --------------------------------------------------------------------
    add(Case("get_classify", b"", None, 405, "method_not_allowed", method="GET"))
    add(Case("put_classify", good, "image/png", 405, "method_not_allowed", method="PUT"))
    v2 = f"/v2/models/{MODEL}/infer"
    add(Case("v2_not_json", b"{not json", "application/json", 400, None, path=v2))
    add(
        Case(
            "v2_bytes_bomb",
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "image",
                            "datatype": "BYTES",
                            "shape": [1],
                            "data": [base64.b64encode(p.png_bomb(50_000, 50_000)).decode()],
                        }
                    ]
                }
            ).encode(),
            "application/json",
            413,
            None,
            path=v2,
        )
    )
    add(
        Case(
            "v2_shape_claims_billions",
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "datatype": "FP32",
                            "shape": [1_000_000_000, 1, 28, 28],
                            "data": [0.0] * 784,
                        }
                    ]
                }
            ).encode(),
            "application/json",
            400,
            None,
            path=v2,
        )
    )
    return out


CASES = cases()


class Tracker:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = 0
        self.peak = 0
        self.samples: list[tuple[str, int]] = []

    def sample(self, label: str) -> int:
        rss = rss_bytes(self.pid)
        self.samples.append((label, rss))
        self.peak = max(self.peak, rss)
        return rss


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Tracker, Any]]:
    repo = tmp_path_factory.mktemp("hostile") / "repo"
    write_version(repo, MODEL, 1, seed=1)
    write_version(
        repo, RGB_MODEL, 1, tiny_model(2, color="rgb", size=32, resize="shorter_crop", resize_size=36)
    )
    limits = flags(max_body_bytes=MAX_BODY, max_image_pixels=MAX_PIXELS, request_timeout_s=REQUEST_TIMEOUT_S)
    with serve(repo, *limits, *flags(preprocess_threads=2, max_batch_delay_ms=1)) as srv:
        host, port = srv.address
        # warm-up: every model, every decoder once, so the baseline is the steady state
        for _ in range(3):
            for name, data in all_modes().items():
                for path in ("/v1/classify", f"/v1/models/{RGB_MODEL}/classify"):
                    r = request(host, port, "POST", path, {"Content-Type": OCT}, data)
                    assert r.status == 200, (name, r.status, r.body)
        tracker = Tracker(srv.proc.pid)
        tracker.baseline = tracker.sample("baseline")
        yield host, port, tracker, srv
        assert srv.proc.poll() is None, "the server died during the hostile suite:\n" + srv.output()


def _send(host: str, port: int, case: Case) -> Response:
    headers = dict(case.headers)
    if case.ctype is not None:
        headers["Content-Type"] = case.ctype
    body = case.body
    if case.chunked:
        headers["Transfer-Encoding"] = "chunked"
        step = 1000
        body = (
            b"".join(
                f"{len(body[i : i + step]):x}\r\n".encode() + body[i : i + step] + b"\r\n"
                for i in range(0, len(body), step)
            )
            + b"0\r\n\r\n"
        )
    return request(host, port, case.method, case.path, headers, body, timeout=REQUEST_TIMEOUT_S + 5)


def _check_healthz(host: str, port: int) -> None:
    r = request(host, port, "GET", "/healthz", timeout=5)
    assert r.status == 200 and r.json() == {"status": "ok"}


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(server: tuple[str, int, Tracker, Any], case: Case) -> None:
    host, port, tracker, _ = server
    r = _send(host, port, case)
    tracker.sample(case.id)
    assert r.seconds < REQUEST_TIMEOUT_S, f"{case.id}: answered after {r.seconds:.2f} s"
    assert r.status < 500, f"{case.id}: {r.status} {r.body[:300]!r}"
    assert r.status == case.status, f"{case.id}: {r.status} {r.body[:300]!r}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    body = r.json()
    if case.status == 200:
        preds = body["predictions"]
        assert len(preds) == case.top_k
        probs = [x["probability"] for x in preds]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    elif case.path.startswith("/v2"):
        assert isinstance(body.get("error"), str) and body["error"], body
    else:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert body["error"]["code"] == case.code, body
        msg = body["error"]["message"]
        assert "Traceback" not in msg and "/work/" not in msg and "site-packages" not in msg, msg
    _check_healthz(host, port)


def test_chunked_upload_past_the_limit(server: tuple[str, int, Tracker, Any]) -> None:
    """413 while the body streams in, long before the client has sent it all."""
    host, port, tracker, _ = server
    r = chunked_upload(
        host, port, "/v1/classify", "image/png", total=32 * MAX_BODY, timeout=REQUEST_TIMEOUT_S
    )
    tracker.sample("chunked_past_limit")
    assert r.status == 413, (r.status, r.body[:200], r.notes)
    assert json.loads(r.body)["error"]["code"] == "too_large"
    assert r.sent < 8 * MAX_BODY, r.sent
    assert r.seconds < REQUEST_TIMEOUT_S
    _check_healthz(host, port)


def test_slow_trickle_of_pixels_does_not_hang(server: tuple[str, int, Tracker, Any]) -> None:
    """A body that stops half-way (the client stalls) does not wedge the server for others."""
    host, port, _, _ = server
    import socket

    data = png()
    with socket.create_connection((host, port), timeout=5) as stalled:
        stalled.sendall(
            f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data[: len(data) // 2]
        )
        t0 = time.monotonic()
        r = request(host, port, "POST", "/v1/classify", {"Content-Type": "image/png"}, data, timeout=5)
        assert r.status == 200 and time.monotonic() - t0 < 2.0
    _check_healthz(host, port)


def test_resident_memory_stayed_bounded(server: tuple[str, int, Tracker, Any]) -> None:
    """Runs last (file order): the peak RSS over the whole table, against the stated bound."""
    _host, _port, tracker, _ = server
    tracker.sample("end")
    grown = (tracker.peak - tracker.baseline) / MiB
    worst = max(tracker.samples, key=lambda s: s[1])
    print(
        f"\nhostile suite: {len(tracker.samples)} RSS samples, baseline {tracker.baseline / MiB:.1f} MiB, "
        f"peak {tracker.peak / MiB:.1f} MiB (+{grown:.1f} MiB, at {worst[0]}), bound +{RSS_BOUND_MIB} MiB"
    )
    assert grown <= RSS_BOUND_MIB, tracker.samples
