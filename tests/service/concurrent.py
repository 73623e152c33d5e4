"""Many classify requests at once through one test client (batching, queue limits, faults)."""

from __future__ import annotations

import threading
from typing import Any

from .images import png


def classify_concurrently(client: Any, n: int) -> list[Any]:
    """The responses of `n` simultaneous POST /v1/classify?top_k=2 of a 16 x 16 grey PNG, in order."""
    results: list[Any] = [None] * n
    body = png(16, 16, "L")

    def one(i: int) -> None:
        results[i] = client.post("/v1/classify?top_k=2", content=body, headers={"Content-Type": "image/png"})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results
