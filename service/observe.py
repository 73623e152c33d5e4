"""What the request metrics are labelled with: the endpoint label of a path.

service/edge.py counts every HTTP request once: xnornet_requests_total{endpoint,model,status},
xnornet_request_duration_seconds and xnornet_inflight_requests, outside everything else (the
body limit included) so refused requests count too. The endpoint label is the route template,
found from the path (so it is the same for requests refused before routing); handlers add the
model label through scope["xnornet"].
"""

from __future__ import annotations

import re

_SEG = r"[^/]+"
ENDPOINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^{pattern.replace('{name}', _SEG).replace('{version}', _SEG)}$"), pattern)
    for pattern in (
        "/",
        "/readyz",
        "/v1/classify",
        "/v1/models/{name}/classify",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/stats",  # before {name}: every model's statistics, as in Triton
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/versions/{version}/infer",
        "/v2/models/{name}/stats",
        "/v2/models/{name}/versions/{version}/stats",
        "/admin/models",
        "/admin/models/{name}/load",
        "/admin/models/{name}/unload",
    )
]
UNCOUNTED = frozenset(("/metrics", "/healthz"))  # scrapes and probes would drown the signal


_LABEL_CACHE_SIZE = 1024
_label_cache: dict[str, str] = {}


def endpoint_label(path: str) -> str:
    label = _label_cache.get(path)
    if label is None:
        label = _match_endpoint(path)
        if len(_label_cache) < _LABEL_CACHE_SIZE:  # paths are the client's: keep the cache bounded
            _label_cache[path] = label
    return label


def _match_endpoint(path: str) -> str:
    for regex, label in ENDPOINTS:
        if regex.match(path):
            return label
    return "other"  # bounded cardinality whatever clients send
