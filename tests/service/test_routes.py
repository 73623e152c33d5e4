"""Metric endpoint labels and the admission matcher come from the app's routes."""

from __future__ import annotations

from fastapi.routing import APIRoute

from service.app import ROUTERS
from service.routes import route_table

TABLE = route_table(ROUTERS)


def test_every_route_is_labelled_by_its_template() -> None:
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(TABLE.routes) == len(routes) > 20
    for route in routes:
        concrete = route.path.replace("{name}", "m").replace("{version}", "3")
        assert TABLE.label(concrete) == route.path
    assert TABLE.label("/v2/models/stats") == "/v2/models/stats"  # before /v2/models/{name}
    assert TABLE.label("/admin/models/m/load") == "/admin/models/{name}/load"
    assert TABLE.label("/nope") == TABLE.label("/v1/models/m/classify/x") == "other"


def test_inference_paths_name_their_model() -> None:
    assert TABLE.inference_model("/v1/classify", "dflt") == "dflt"
    assert TABLE.inference_model("/v1/models/a/classify", "dflt") == "a"
    assert TABLE.inference_model("/v2/models/b/infer", "dflt") == "b"
    assert TABLE.inference_model("/v2/models/c/versions/2/infer", "dflt") == "c"
    for path in ("/v1/models", "/v2/models/b", "/v2/models/b/ready", "/admin/models/a/load", "/", "/x"):
        assert TABLE.inference_model(path, "dflt") is None, path
