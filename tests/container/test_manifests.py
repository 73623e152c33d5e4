"""Deployment files: Kubernetes manifests against the Kubernetes JSON schemas (offline, bundled
by the `kubernetes-validate` package), and the compose stack, Prometheus config and Grafana
dashboard checked against the service they describe (settings, port, probes, metric names).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (the 'test' extra has it)")

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
# The oldest Kubernetes minor still widely run that has every API used here (autoscaling/v2,
# policy/v1); the newest bundled schemas are checked too.
K8S_VERSIONS = ("1.27.0", "latest")


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> dict:
    found = [doc for _, doc in k8s_documents() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def settings_fields() -> dict[str, str]:
    """XNORNET_* variable -> Settings field."""
    from service.settings import Settings

    return {f"XNORNET_{name.upper()}": name for name in Settings.model_fields}


def check_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable is a real setting, and the service accepts the values."""
    from service.settings import Settings

    unknown = sorted(set(env) - set(settings_fields()))
    assert not unknown, f"not XNORNET settings: {unknown}"
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    Settings()


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_match_the_kubernetes_schemas(version: str) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (pip install kubernetes-validate)"
    )
    from kubernetes_validate.utils import latest_version

    want = latest_version() if version == "latest" else version
    docs = k8s_documents()
    assert {doc["kind"] for _, doc in docs} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
    }
    for name, doc in docs:
        try:
            kv.validate(doc, want, strict=True)  # strict: unknown fields are errors too
        except kv.ValidationError as e:  # pragma: no cover - the message is the point
            pytest.fail(f"{name} ({doc['kind']}) against Kubernetes {want}: {e}")


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kust["resources"]) == files


def test_deployment_probes_security_and_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    dep, svc, hpa, cm = (
        by_kind("Deployment"),
        by_kind("Service"),
        by_kind("HorizontalPodAutoscaler"),
        by_kind("ConfigMap"),
    )
    pod = dep["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    port = ctr["ports"][0]
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert ctr["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert ctr["livenessProbe"]["httpGet"]["port"] in (port["name"], port["containerPort"])
    assert ctr["resources"]["requests"] and ctr["resources"]["limits"]["cpu"]
    sc = ctr["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    # A read-only root needs a writable /tmp.
    mounts = {m["mountPath"]: m["name"] for m in ctr["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in vols[mounts["/tmp"]]
    # The pod is killed only after the service's own drain: readiness off, then in-flight work.
    env = cm["data"]
    drain = float(env["XNORNET_DRAIN_DELAY_S"]) + float(env["XNORNET_GRACE_S"])
    assert pod["terminationGracePeriodSeconds"] > drain
    assert ctr["envFrom"][0]["configMapRef"]["name"] == cm["metadata"]["name"]
    assert int(env["XNORNET_PORT"]) == port["containerPort"] == 8000
    grpc_port = {p["name"]: p["containerPort"] for p in ctr["ports"]}["grpc"]
    assert int(env["XNORNET_GRPC_PORT"]) == grpc_port == 8001
    assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]}["grpc"] == "grpc"
    assert env["XNORNET_HOST"] == "0.0.0.0"
    check_settings(env, monkeypatch)
    # The Service and the HPA point at this Deployment's pods.
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # The HPA's CPU utilization needs CPU requests.
    assert ctr["resources"]["requests"]["cpu"]


def test_compose_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    svc = compose["services"]["xnornet"]
    assert (
        svc["build"]["context"] == ".."
        and (DOCKER / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    )
    assert svc["read_only"] is True and any(t.startswith("/tmp") for t in svc["tmpfs"])
    (models,) = [v for v in svc["volumes"] if v["target"] == "/models"]
    assert models["read_only"] is True
    m = re.fullmatch(r"\$\{XNORNET_MODELS_DIR:-(.+)\}", models["source"])
    assert m, models["source"]
    default_src = m.group(1)
    assert (DOCKER / default_src).resolve() == (ROOT / "service" / "models").resolve()
    assert svc["environment"]["XNORNET_REPOSITORY"] == models["target"]
    check_settings(svc["environment"], monkeypatch)
    grace = float(svc["stop_grace_period"].rstrip("s"))
    env = svc["environment"]
    assert grace > float(env["XNORNET_DRAIN_DELAY_S"]) + float(env["XNORNET_GRACE_S"])

    # Prometheus scrapes the service by its compose name on the container port.
    prom = compose["services"]["prometheus"]
    assert any(v.startswith("./prometheus.yml:") for v in prom["volumes"])
    cfg = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == "xnornet"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["xnornet:8000"]
    for vol in compose["services"]["grafana"]["volumes"]:
        assert (DOCKER / vol.split(":")[0]).exists(), vol


def test_grafana_dashboard_uses_the_service_metrics() -> None:
    from service.metrics import Metrics

    exposed = {m.name for m in Metrics().registry.collect()}
    dash = json.loads((DOCKER / "grafana" / "dashboards" / "xnornet.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = {
        re.sub(r"_(bucket|sum|count|total)$", "", m) for e in exprs for m in re.findall(r"\b(xnornet_\w+)", e)
    }
    assert used, "no xnornet metric in the dashboard"
    assert used <= exposed, f"dashboard metrics the service does not expose: {sorted(used - exposed)}"
    # The key metrics: request rate, latency quantiles, batch size, queue depth, rejects,
    # model version.
    for name in (
        "xnornet_requests",
        "xnornet_request_duration_seconds",
        "xnornet_batch_size",
        "xnornet_queue_depth",
        "xnornet_rejected",
        "xnornet_model_info",
    ):
        assert name in used, name
    assert any("histogram_quantile" in e for e in exprs)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------------------
# docker/k8s/examples/imagenet-pull.yaml: an init container pulls into a shared volume

EXAMPLE = K8S / "examples" / "imagenet-pull.yaml"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_pull_example_matches_the_kubernetes_schemas(version: str) -> None:
    kv = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is not installed (pip install kubernetes-validate)"
    )
    from kubernetes_validate.utils import latest_version

    want = latest_version() if version == "latest" else version
    for doc in yaml.safe_load_all(EXAMPLE.read_text()):
        try:
            kv.validate(doc, want, strict=True)
        except kv.ValidationError as e:  # pragma: no cover - the message is the point
            pytest.fail(f"{EXAMPLE.name} ({doc['kind']}) against Kubernetes {want}: {e}")


def test_pull_example_pulls_a_catalogue_model_into_the_served_repository(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from training.catalog import shipped
    from training.pull import add_arguments

    (dep,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    pod = dep["spec"]["template"]["spec"]
    (init,), (ctr,) = pod["initContainers"], pod["containers"]
    vols = {v["name"]: v for v in pod["volumes"]}
    # what the init container runs parses as `xnornet pull` arguments and names a catalogue model
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments("pull", parser)
    args = parser.parse_args(init["args"])
    assert args.name in shipped().names()
    # it writes the repository into a volume the server mounts (read-only) as its repository
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    srv_mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    shared = init_mounts[args.repository]
    assert "emptyDir" in vols[shared] or "persistentVolumeClaim" in vols[shared]
    (srv_path,) = [p for p, m in srv_mounts.items() if m["name"] == shared]
    assert srv_mounts[srv_path].get("readOnly") is True
    env = {e["name"]: e["value"] for e in ctr["env"]}
    assert env["XNORNET_REPOSITORY"] == srv_path
    assert json.loads(env["XNORNET_MODELS"]) == [args.name]
    check_settings(env, monkeypatch)
    # the cache is writable with a read-only root; both run as the non-root user
    cache = {e["name"]: e["value"] for e in init["env"]}["XNORNET_CACHE"]
    assert cache in init_mounts and "emptyDir" in vols[init_mounts[cache]]
    for c in (init, ctr):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # the server's image and the init container's are the two targets of the Dockerfile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM build AS pull$", dockerfile, re.M)
    assert init["image"].split(":")[0] == "xnornet-pull" and ctr["image"].split(":")[0] == "xnornet"


# -- KServe ----------------------------------------------------------------------------------
KSERVE = K8S / "kserve"


def kserve_documents() -> dict[str, dict]:
    docs = {}
    for path in sorted(KSERVE.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in yaml.safe_load_all(path.read_text()):
                docs[doc["kind"]] = doc
    return docs


def kserve_validators() -> dict[str, Any]:
    pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    from kubernetes_validate.utils import latest_version

    from .kserve_schema import INFERENCE_SERVICE, SERVING_RUNTIME, validator

    schemas = Path(kv.__file__).parent / "kubernetes-json-schema" / f"v{latest_version()}-local-strict"
    return {
        "ServingRuntime": validator(SERVING_RUNTIME, schemas),
        "InferenceService": validator(INFERENCE_SERVICE, schemas),
    }


def test_kserve_manifests_match_the_crd_schemas() -> None:
    validators = kserve_validators()
    docs = kserve_documents()
    assert set(docs) == {"ServingRuntime", "InferenceService"}
    for kind, doc in docs.items():
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validators[kind].iter_errors(doc)
        ]
        assert not errors, f"{kind}: {errors}"
    kust = yaml.safe_load((KSERVE / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(
        p.name for p in KSERVE.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_kserve_schemas_refuse_what_kubectl_would() -> None:
    validators = kserve_validators()
    docs = kserve_documents()
    rt = json.loads(json.dumps(docs["ServingRuntime"]))
    rt["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"  # typo inside a Container
    assert list(validators["ServingRuntime"].iter_errors(rt))
    isvc = json.loads(json.dumps(docs["InferenceService"]))
    isvc["spec"]["predictor"]["model"]["protocolVersion"] = "v3"
    assert list(validators["InferenceService"].iter_errors(isvc))


def test_kserve_runtime_serves_both_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = kserve_documents()
    rt, isvc = docs["ServingRuntime"], docs["InferenceService"]
    (ctr,) = rt["spec"]["containers"]
    env = {e["name"]: e["value"] for e in ctr["env"]}
    check_settings(env, monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    assert ports == {"http1": int(env["XNORNET_PORT"]), "h2c": int(env["XNORNET_GRPC_PORT"])}
    assert {"v2", "grpc-v2"} <= set(rt["spec"]["protocolVersions"])
    for probe, path in (("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")):
        assert ctr[probe]["httpGet"] == {"path": path, "port": ports["http1"]}
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in ctr["volumeMounts"]}
    assert "/tmp" in mounts
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == rt["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in rt["spec"]["supportedModelFormats"]}
    assert model["protocolVersion"] in rt["spec"]["protocolVersions"]
    drain = float(env["XNORNET_DRAIN_DELAY_S"]) + float(env["XNORNET_GRACE_S"])
    assert isvc["spec"]["predictor"]["terminationGracePeriodSeconds"] > drain
