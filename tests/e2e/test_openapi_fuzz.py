"""Property-based fuzzing of the whole HTTP surface from its own /openapi.json (schemathesis)
against a real `xnornet serve` process on loopback: every operation, generated requests (the
image bodies, multipart uploads and v2 JSON the schema describes, and mutations of them), no
5xx, and every response matching the status codes, content types and schemas declared for it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from service.settings import BUNDLED_MODELS

from .conftest import MODEL, TOKEN, Server, serve

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# Per operation; ~20 operations. XNORNET_FUZZ_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("XNORNET_FUZZ_EXAMPLES", "100"))
MIN_REQUESTS = 1000
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def steer(case: Any, n: int) -> None:
    """Every other case names the served model (and version 1), and half of the admin cases
    (never an unload) carry the token, so generated bodies reach the handlers behind routing and
    authentication instead of all ending in 404 and 401."""
    if n % 2:
        return
    params = case.path_parameters or {}
    if "name" in params:
        params["name"] = MODEL
    if "version" in params:
        params["version"] = "1"
    if case.path.startswith("/admin") and not case.path.endswith("/unload"):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve(
        BUNDLED_MODELS, "--model", MODEL, "--max-body-bytes", "262144", env={"XNORNET_ADMIN_TOKEN": TOKEN}
    ) as srv:
        yield srv


def test_every_operation_holds_to_its_schema(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    t0 = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same requests every run: CI failures reproduce
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            key = f"{case.method} {case.path}"
            steer(case, sent[key])
            response = case.call(base_url=server.url, timeout=30)
            sent[key] += 1
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)

        fuzz()
    total = sum(sent.values())
    print(f"\nschemathesis: {total} requests over {len(sent)} operations in {time.monotonic() - t0:.0f} s")
    print("  by status:", dict(sorted(statuses.items())))
    print("  by operation:", dict(sorted(sent.items())))
    assert total >= MIN_REQUESTS
    assert not [s for s in statuses if s >= 500]
    assert any(200 <= s < 300 for s in statuses), "no request succeeded: the fuzzer never got past validation"
