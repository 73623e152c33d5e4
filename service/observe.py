"""What the request metrics leave out: the scrapes and probes.

service/edge.py counts every other HTTP request once: xnornet_requests_total{endpoint,model,status},
xnornet_request_duration_seconds and xnornet_inflight_requests, outside everything else (the
body limit included) so refused requests count too. The endpoint label is the route template
(service/routes.py), found from the path (so it is the same for requests refused before
routing); handlers add the model label through scope["xnornet"].
"""

from __future__ import annotations

UNCOUNTED = frozenset(("/metrics", "/healthz"))  # scrapes and probes would drown the signal
