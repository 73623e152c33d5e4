"""The engine failing one batch, in process: create_app with a fake model
(tests/service/fakes.py's SlowModel) that fails exactly one batch, since the C engine cannot be
told to fail on demand.

Each request of the failed batch gets a clean 500 in the service's JSON error shape (code
engine_error: a server fault, retryable; no stack trace, no exception text, no file path); the
next batch succeeds; the batcher's task and its worker thread survive; /healthz stays 200.
A model answering with the wrong number of rows fails its batch like any engine error
(service/batcher.py); the batcher task survives, so later requests do not hang.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import InternalError
from tests.service.fakes import SlowModel, slow_repo
from tests.service.images import png

MODEL = "fashion-mnist-xnor"
SECRET = "/srv/secret/models/fashion-mnist-xnor/1/model.xnor"


class FailOnce(SlowModel):
    """Fails the first real (non-warm-up) batch in the given way, then behaves."""

    def __init__(self, how: str) -> None:
        super().__init__(0.01)
        self.how = how
        self.failed: list[int] = []  # size of the batch that failed

    def infer(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.any() and not self.failed:
            with self.lock:
                self.failed.append(len(x))
            if self.how == "raise":
                raise InternalError(f"kernel blew up reading {SECRET}")
            if self.how == "rows":
                return np.zeros((len(x) + 1, 4), np.float32)  # one row too many
            if self.how == "memory":
                raise MemoryError("out of memory")
        return super().infer(x)


def app_client(tmp_path: Path, model: FailOnce) -> Any:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(
        repository=slow_repo(tmp_path / "repo", MODEL),
        max_batch_size=8,
        max_batch_delay_ms=150.0,  # long enough for the concurrent requests to share one batch
        request_timeout_s=10.0,
        preprocess_threads=2,
    )
    app = create_app(settings, loader=lambda data, src: model)
    return TestClient(app, raise_server_exceptions=False), app


def post_many(client: Any, n: int) -> list[Any]:
    out: list[Any] = [None] * n
    body = png(16, 16, "L")

    def one(i: int) -> None:
        out[i] = client.post("/v1/classify?top_k=2", content=body, headers={"Content-Type": "image/png"})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return out


@pytest.mark.parametrize("how", ["raise", "rows", "memory"])
def test_one_failed_batch_gets_clean_errors_and_the_next_succeeds(tmp_path: Path, how: str) -> None:
    model = FailOnce(how)
    client, app = app_client(tmp_path, model)
    with client:
        first = post_many(client, 4)
        codes = [r.status_code for r in first]
        assert model.failed, "the failure was never triggered"
        assert codes.count(500) == model.failed[0], codes  # exactly the failed batch's requests
        assert set(codes) <= {200, 500}, codes
        for r in first:
            if r.status_code == 500:
                body = r.json()
                assert body == {
                    "error": {
                        "code": "engine_error",
                        "message": "inference failed; the request may be retried",
                    }
                }, body
                for leak in ("Traceback", SECRET, "/srv", "InternalError", "MemoryError", 'File "'):
                    assert leak not in r.text

        # the next batch succeeds, on the same (live) batcher task and worker thread
        again = post_many(client, 3)
        assert [r.status_code for r in again] == [200] * 3, [r.text for r in again]
        assert all(r.json()["predictions"][0]["label"] == "c" for r in again)
        batcher = app.state.runtime.batchers[MODEL]
        assert batcher._task is not None and not batcher._task.done()
        assert any(t.name.startswith(f"batch-{MODEL}") and t.is_alive() for t in threading.enumerate())
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        text = client.get("/metrics").text
        assert (
            f'xnornet_requests_total{{endpoint="/v1/classify",model="{MODEL}",status="500"}} '
            f"{codes.count(500)}.0" in text
        )
