"""The hot path: a well-formed classification request answered by the edge middleware.

POST /v1/classify and /v1/models/{name}/classify are most of the traffic, and for them FastAPI's
own layers (its middleware stack, routing, dependency injection and query validation) cost the
event loop about as much again as the endpoint's own work: measured in-process with a model and
a preprocessing that cost nothing, 0.22-0.29 ms of event-loop CPU per request through the app
against 0.12-0.16 ms calling the endpoint's function directly. The event loop is the one thread
every request passes through, so that is throughput.

So the edge calls the same function the routes call, classify_model, for a request it fully
understands: a POST to one of the routes marked `classifies`, no root path, a body whose length
is declared (the edge's body limit already holds), and a query that is empty or exactly
`top_k=N` with 1 <= N <= TOP_K_MAX. Anything else goes through the app, so FastAPI stays the
authority on everything this path does not take: malformed or extra query parameters, chunked
bodies, other methods. Errors are answered and counted by service/errors.py, as the app's
handlers answer them (an unexpected exception propagates to the app's outermost handler, which
answers 500 and logs it, as for any route).
"""

from __future__ import annotations

import re

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from ..errors import ApiError, client_gone, send_error
from ..routes import RouteTable
from ..runtime import Runtime
from .classify import TOP_K_DEFAULT, TOP_K_MAX, classify_model

_TOP_K = re.compile(rb"top_k=([1-9][0-9]{0,5})")


def _top_k(query: bytes) -> int | None:
    """top_k from the query string this path accepts; None for any other query."""
    if not query:
        return TOP_K_DEFAULT
    m = _TOP_K.fullmatch(query)
    if m is None:
        return None
    k = int(m.group(1))
    return k if k <= TOP_K_MAX else None


async def answer(scope: Scope, receive: Receive, send: Send, rt: Runtime, routes: RouteTable) -> bool:
    """Answer the request if it is one this path takes (True); False: the app must answer it."""
    if scope["method"] != "POST" or scope.get("root_path"):
        return False
    path: str = scope["path"]
    name = routes.classified_model(path, rt.settings.default_model)
    top_k = _top_k(scope["query_string"]) if name is not None else None
    if name is None or top_k is None:
        return False
    try:
        response = await classify_model(name, Request(scope, receive, send), rt, top_k)
    except ApiError as exc:
        await send_error(send, path, exc, rt.metrics)
        return True
    except ClientDisconnect:
        await send_error(send, path, client_gone(scope["method"], path), rt.metrics)
        return True
    await response(scope, receive, send)
    return True
