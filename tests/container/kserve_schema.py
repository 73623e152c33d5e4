"""Minimal JSON schemas of KServe's ServingRuntime (serving.kserve.io/v1alpha1) and
InferenceService (serving.kserve.io/v1beta1), written from the CRDs' specification for the
fields xnornet's manifests use (no KServe package ships its CRDs' openAPIV3Schema). Unknown
fields are errors, as in kubectl's strict validation; the embedded Kubernetes types (Container,
Volume, ResourceRequirements) are checked against the strict Kubernetes schemas that the
kubernetes-validate package bundles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

K8S_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": K8S_NAME,
        "namespace": K8S_NAME,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}


DEFINITIONS = "https://kubernetes.io/api/_definitions.json"  # the bundled file's $id


def k8s(definition: str) -> dict[str, str]:
    return {"$ref": f"{DEFINITIONS}#/$defs/io.k8s.api.core.v1.{definition}"}


def resource(api_version: str, kind: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A Kubernetes object of `api_version` and `kind` (a schema) with `spec`, no other fields."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": kind,
            "metadata": METADATA,
            "spec": spec,
        },
    }


SERVING_RUNTIME = resource(
    "serving.kserve.io/v1alpha1",
    {"enum": ["ServingRuntime", "ClusterServingRuntime"]},
    {
        "type": "object",
        "required": ["containers", "supportedModelFormats"],
        "additionalProperties": False,
        "properties": {
            "supportedModelFormats": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "autoSelect": {"type": "boolean"},
                        "priority": {"type": "integer", "minimum": 1},
                    },
                },
            },
            "protocolVersions": {
                "type": "array",
                "items": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
            },
            "multiModel": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "grpcEndpoint": {"type": "string"},
            "grpcDataEndpoint": {"type": "string"},
            "httpDataEndpoint": {"type": "string"},
            "replicas": {"type": "integer", "minimum": 0},
            "annotations": STRING_MAP,
            "labels": STRING_MAP,
            "nodeSelector": STRING_MAP,
            "containers": {"type": "array", "minItems": 1, "items": k8s("Container")},
            "volumes": {"type": "array", "items": k8s("Volume")},
            "imagePullSecrets": {"type": "array", "items": k8s("LocalObjectReference")},
        },
    },
)

INFERENCE_SERVICE = resource(
    "serving.kserve.io/v1beta1",
    {"const": "InferenceService"},
    {
        "type": "object",
        "required": ["predictor"],
        "additionalProperties": False,
        "properties": {
            "predictor": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    # ComponentExtensionSpec
                    "minReplicas": {"type": "integer", "minimum": 0},
                    "maxReplicas": {"type": "integer", "minimum": 0},
                    "scaleTarget": {"type": "integer"},
                    "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
                    "containerConcurrency": {"type": "integer", "minimum": 0},
                    "timeout": {"type": "integer", "minimum": 0},
                    "labels": STRING_MAP,
                    "annotations": STRING_MAP,
                    # the PodSpec fields used here
                    "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
                    "serviceAccountName": {"type": "string"},
                    "nodeSelector": STRING_MAP,
                    "model": {
                        "type": "object",
                        "required": ["modelFormat"],
                        "additionalProperties": False,
                        "properties": {
                            "modelFormat": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                            },
                            "runtime": {"type": "string"},
                            "protocolVersion": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
                            "storageUri": {"type": "string", "pattern": r"^[a-z0-9+.-]+://"},
                            "runtimeVersion": {"type": "string"},
                            "args": {"type": "array", "items": {"type": "string"}},
                            "env": {"type": "array", "items": k8s("EnvVar")},
                            "resources": k8s("ResourceRequirements"),
                        },
                    },
                },
            },
        },
    },
)


def validator(schema: dict[str, Any], k8s_schema_dir: Path) -> Any:
    """A validator whose Kubernetes refs resolve to the bundled schemas (offline)."""
    import json

    import jsonschema
    from referencing import Registry, Resource

    definitions = json.loads((k8s_schema_dir / "_definitions.json").read_text())
    registry = Registry().with_resource(DEFINITIONS, Resource.from_contents(definitions))
    return jsonschema.Draft202012Validator(schema, registry=registry)
