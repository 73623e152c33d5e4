"""The grpc.aio server on the service's event loop: started and stopped by the app's lifespan
(service/app.py), so it shares the runtime with HTTP and drains with it on SIGTERM (readiness
false at once, then in-flight RPCs get the grace period while new ones are refused UNAVAILABLE).
"""

from __future__ import annotations

import logging

import grpc

from ..limits import connection_limit
from ..runtime import Runtime
from . import messages as pb
from .servicer import Servicer, instrumented

log = logging.getLogger("xnornet.service")


def _handler(rt: Runtime) -> grpc.GenericRpcHandler:
    servicer = Servicer(rt)
    methods = {}
    for name, (req, resp) in pb.METHODS.items():
        methods[name] = grpc.unary_unary_rpc_method_handler(
            instrumented(rt, name, getattr(servicer, name)),
            request_deserializer=req.FromString,
            response_serializer=resp.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(pb.SERVICE, methods)


class GrpcServer:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> int:
        s = self.rt.settings
        assert s.grpc_port is not None
        limit = s.max_body_bytes  # the same request size limit as HTTP bodies
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", max(limit, 64 << 20)),
                # The workers of `--workers N` share the port (the kernel balances connections);
                # a single server must not share it with anyone.
                ("grpc.so_reuseport", 1 if self.rt.cluster is not None else 0),
            ],
            maximum_concurrent_rpcs=connection_limit(s),
        )
        self.server.add_generic_rpc_handlers((_handler(self.rt),))
        address = f"[{s.host}]:{s.grpc_port}" if ":" in s.host else f"{s.host}:{s.grpc_port}"
        self.port = self.server.add_insecure_port(address)
        await self.server.start()
        log.info("gRPC server listening on %s:%d", s.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(self.rt.settings.grace_s)
            self.server = None
