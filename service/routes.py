"""The service's URL space, read from its routers: each route's template is the endpoint label
of the request metrics, the routes marked `runs_inference` are the paths admission control
sheds, and the routes marked `classifies` are the classification endpoints the edge middleware
may answer without FastAPI's routing (service/api/hot.py). Matching uses each route's own
compiled path regex, so none of them can drift from routing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi.routing import APIRoute, APIRouter

F = TypeVar("F", bound=Callable[..., Any])

_INFERENCE: set[Callable[..., Any]] = set()
_CLASSIFIES: set[Callable[..., Any]] = set()
_LABEL_CACHE_SIZE = 1024  # paths are the client's: keep the cache bounded


def runs_inference(endpoint: F) -> F:
    """Mark a route's endpoint as one that queues images for a model (the route's `name` path
    parameter, or the default model)."""
    _INFERENCE.add(endpoint)
    return endpoint


def classifies(endpoint: F) -> F:
    """Mark a route's endpoint as classify_model(name, request, rt, top_k) for its `name` path
    parameter (or the default model) and its `top_k` query parameter: the edge may call that
    directly for a well-formed request."""
    _CLASSIFIES.add(endpoint)
    return endpoint


@dataclass(frozen=True)
class RouteTable:
    routes: tuple[APIRoute, ...]
    _labels: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def label(self, path: str) -> str:
        """The template of the route a path reaches ("other" for none: bounded cardinality)."""
        label = self._labels.get(path)
        if label is None:
            label = next((r.path for r in self.routes if r.path_regex.match(path)), "other")
            if len(self._labels) < _LABEL_CACHE_SIZE:
                self._labels[path] = label
        return label

    def inference_model(self, path: str, default_model: str) -> str | None:
        """The model an inference path addresses (None: not an inference path)."""
        return _model(self.routes, _INFERENCE, path, default_model)

    def classified_model(self, path: str, default_model: str) -> str | None:
        """The model a classification path addresses (None: not a classification path)."""
        return _model(self.routes, _CLASSIFIES, path, default_model)


def _model(
    routes: tuple[APIRoute, ...], marked: set[Callable[..., Any]], path: str, default: str
) -> str | None:
    for route in routes:
        if route.endpoint in marked:
            m = route.path_regex.match(path)
            if m is not None:
                return m.groupdict().get("name") or default
    return None


def route_table(routers: Iterable[APIRouter]) -> RouteTable:
    """Every API route of the routers, in registration order (the order routing tries them)."""
    return RouteTable(tuple(r for router in routers for r in router.routes if isinstance(r, APIRoute)))
