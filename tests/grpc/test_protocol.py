"""The gRPC service's definitions: the committed descriptor is what scripts/grpc/generate.py makes
from the .proto, and every message and method in it is, field by field (name, number, type,
label), the one the Triton client ships: what wire compatibility needs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("grpc_generate", ROOT / "scripts" / "grpc" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ours() -> descriptor_pb2.FileDescriptorProto:
    from service.grpc.descriptor import FILE_DESCRIPTOR

    return descriptor_pb2.FileDescriptorProto.FromString(FILE_DESCRIPTOR)


def test_committed_descriptor_is_regenerated_from_the_proto() -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed (the 'test' extra has it)")
    gen = _generator()
    assert gen.main(["--check"]) == 0, "run: python scripts/grpc/generate.py"
    assert gen.serialized_descriptor() == ours().SerializeToString(deterministic=True)


def _fields(msg: descriptor_pb2.DescriptorProto) -> dict[str, tuple[int, int, int, str, bool]]:
    return {f.name: (f.number, f.type, f.label, f.type_name, f.HasField("oneof_index")) for f in msg.field}


def _messages(fd: descriptor_pb2.FileDescriptorProto) -> dict[str, descriptor_pb2.DescriptorProto]:
    out = {}
    stack = [(f"{fd.package}.{m.name}", m) for m in fd.message_type]
    while stack:
        name, m = stack.pop()
        out[name] = m
        stack.extend((f"{name}.{n.name}", n) for n in m.nested_type)
    return out


def test_every_message_and_method_matches_tritonclients() -> None:
    triton = pytest.importorskip(
        "tritonclient.grpc.service_pb2", reason="tritonclient[grpc] is not installed"
    )
    theirs = descriptor_pb2.FileDescriptorProto()
    triton.DESCRIPTOR.CopyToProto(theirs)
    mine = ours()
    assert (mine.package, mine.syntax) == (theirs.package, theirs.syntax) == ("inference", "proto3")
    their_messages, my_messages = _messages(theirs), _messages(mine)
    assert len(my_messages) >= 30
    for name, msg in my_messages.items():
        assert name in their_messages, f"{name} is not in the protocol"
        assert _fields(msg) == _fields(their_messages[name]), name
        assert msg.options.map_entry == their_messages[name].options.map_entry, name
        assert [o.name for o in msg.oneof_decl] == [o.name for o in their_messages[name].oneof_decl], name
    (service,) = mine.service
    (their_service,) = [s for s in theirs.service if s.name == service.name == "GRPCInferenceService"]
    their_methods = {m.name: m for m in their_service.method}
    for m in service.method:
        t = their_methods[m.name]
        assert (m.input_type, m.output_type) == (t.input_type, t.output_type), m.name
        assert not (m.client_streaming or m.server_streaming)


def test_messages_load_beside_the_clients_copy() -> None:
    """Our private descriptor pool and the client's default-pool copy coexist in one process."""
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
    import tritonclient.grpc  # noqa: F401

    from service.grpc import messages as pb

    assert "tritonclient.grpc.service_pb2" in sys.modules
    req = pb.ModelInferRequest(model_name="m", raw_input_contents=[b"\x00"])
    from tritonclient.grpc import service_pb2

    theirs = service_pb2.ModelInferRequest.FromString(req.SerializeToString())
    assert theirs.model_name == "m" and list(theirs.raw_input_contents) == [b"\x00"]
