"""The README's Triton client examples (one per protocol) run as written against a real server,
with only the addresses and the image path replaced."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from service.settings import BUNDLED_MODELS
from tests.service.images import jpeg

from .conftest import MODEL, ROOT, serve

pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")


def examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it from Triton / KServe clients", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_client_examples_work(tmp_path: Path) -> None:
    blocks = examples()
    assert len(blocks) == 2 and "tritonclient.http" in blocks[0] and "tritonclient.grpc" in blocks[1]
    image = tmp_path / "shirt.jpg"
    image.write_bytes(jpeg(300, 300))
    with serve(BUNDLED_MODELS, "--grpc-port", "0", "--model", MODEL) as srv:
        outputs = []
        for code in blocks:
            code = code.replace("127.0.0.1:8000", srv.url.removeprefix("http://"))
            code = code.replace("127.0.0.1:8001", srv.grpc_address).replace('"shirt.jpg"', repr(str(image)))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, "README.md", "exec"), {})
            outputs.append(out.getvalue())
    http, grpc = outputs
    assert len(re.findall(r"b'0\.\d{6}:\d:[^']+'", http)) == 3, http
    argmax, count = grpc.split("\n")[:2]
    assert re.fullmatch(r"\[\d\]", argmax) and int(count) >= 1, grpc
