"""The protocol's message classes, built from descriptor.py in a private descriptor pool.

A private pool, not protobuf's default one: the Triton and KServe clients register their own
copies of the same `inference.*` messages in the default pool, and two definitions of one name
there are an error, so a process (a test, an application embedding the service) may load both.
Messages are not named on the wire, so the private pool changes nothing for clients.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pool, message_factory

from .descriptor import FILE_DESCRIPTOR

PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"

_pool = descriptor_pool.DescriptorPool()
_pool.AddSerializedFile(FILE_DESCRIPTOR)


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))


ServerLiveRequest = _message("ServerLiveRequest")
ServerLiveResponse = _message("ServerLiveResponse")
ServerReadyRequest = _message("ServerReadyRequest")
ServerReadyResponse = _message("ServerReadyResponse")
ModelReadyRequest = _message("ModelReadyRequest")
ModelReadyResponse = _message("ModelReadyResponse")
ServerMetadataRequest = _message("ServerMetadataRequest")
ServerMetadataResponse = _message("ServerMetadataResponse")
ModelMetadataRequest = _message("ModelMetadataRequest")
ModelMetadataResponse = _message("ModelMetadataResponse")
ModelInferRequest = _message("ModelInferRequest")
ModelInferResponse = _message("ModelInferResponse")
ModelStatisticsRequest = _message("ModelStatisticsRequest")
ModelStatisticsResponse = _message("ModelStatisticsResponse")

# method name -> (request class, response class), the service's RPCs in the .proto's order.
METHODS: dict[str, tuple[Any, Any]] = {
    m.name: (_message(m.input_type.name), _message(m.output_type.name))
    for m in _pool.FindServiceByName(SERVICE).methods
}
