"""The Open Inference Protocol v2 REST JSON shapes, transcribed from the KServe / Triton
specification (required-api.md) as strict pydantic models: a response with a missing,
mistyped or unknown field fails validation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ServerMetadataResponse(Strict):  # $metadata_server_response
    name: StrictStr
    version: StrictStr
    extensions: list[StrictStr]


class MetadataTensor(Strict):  # $metadata_tensor
    name: StrictStr
    datatype: StrictStr
    shape: list[StrictInt]


class ModelMetadataResponse(Strict):  # $metadata_model_response
    name: StrictStr
    versions: list[StrictStr] | None = None
    platform: StrictStr
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ResponseOutput(Strict):  # $response_output
    name: StrictStr
    shape: list[StrictInt]
    datatype: StrictStr
    parameters: dict[str, Any] | None = None
    data: list[StrictFloat | StrictInt]


class InferenceResponse(Strict):  # $inference_response
    model_name: StrictStr
    model_version: StrictStr | None = None
    id: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class ErrorResponse(Strict):  # $inference_error_response, $metadata_model_error_response, ...
    error: StrictStr


class ReadyResponse(BaseModel):  # the spec only fixes the status code; the body is informative
    ready: StrictBool | None = None
