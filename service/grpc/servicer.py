"""The RPCs of `inference.GRPCInferenceService`: protobuf <-> service/oip.py, plus the metrics,
deadline and error mapping each call gets.

Tensors come in `raw_input_contents` (one entry per input, the binary encoding: what the Triton
client sends) or in each input's typed `contents`; outputs always go out in
`raw_output_contents`, as Triton does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format

from .. import oip
from ..api.deps import VERSION
from ..errors import ApiError, BadRequest, ClientGone, count
from ..runtime import Runtime
from . import messages as pb
from .status import status_code

log = logging.getLogger("xnornet.service")

# datatype -> the InferTensorContents field that carries it
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def endpoint(method: str) -> str:
    """The metrics' endpoint label of an RPC: its full method path."""
    return f"/{pb.SERVICE}/{method}"


def _param(params: Any, key: str) -> Any:
    if key not in params:
        return None
    p = params[key]
    kind = p.WhichOneof("parameter_choice")
    return None if kind is None else getattr(p, kind)


def _tensor(inp: Any, raw: bytes | None) -> oip.Tensor:
    name, datatype, shape = inp.name, inp.datatype, list(inp.shape)
    if datatype != oip.BYTES and datatype not in oip.NUMERIC:
        raise BadRequest(f"input {name!r}: datatype {datatype!r} is not BYTES or a numeric type")
    oip.check_shape(name, shape)
    data: np.ndarray | list[bytes]
    if raw is not None:
        if datatype == oip.BYTES:
            data = oip.bytes_elements(name, raw)
        else:
            data = oip.numeric_from_bytes(name, datatype, shape, raw)
    else:
        field = CONTENTS_FIELD.get(datatype)
        if field is None:
            raise BadRequest(f"input {name!r}: {datatype} data must be sent in raw_input_contents")
        values = getattr(inp.contents, field)
        if datatype == oip.BYTES:
            data = list(values)
        else:
            try:
                data = np.asarray(values, dtype=oip.NUMERIC[datatype])
            except (OverflowError, ValueError):
                raise BadRequest(f"input {name!r}: values out of range for {datatype}") from None
    return oip.Tensor(name, datatype, shape, data)


def tensors(request: Any) -> list[oip.Tensor]:
    raws = list(request.raw_input_contents)
    if raws and len(raws) != len(request.inputs):
        raise BadRequest(f"{len(raws)} raw_input_contents for {len(request.inputs)} inputs")
    return [_tensor(inp, raws[i] if raws else None) for i, inp in enumerate(request.inputs)]


def requested(request: Any) -> list[oip.RequestedOutput]:
    out = []
    for o in request.outputs:
        k = _param(o.parameters, "classification")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
            raise BadRequest(f"output {o.name!r}: classification must be an integer")
        out.append(oip.RequestedOutput(o.name, int(k or 0)))
    return out


class Servicer:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        ok, _ = self.rt.readiness()
        return pb.ServerReadyResponse(ready=ok)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        return pb.ModelReadyResponse(ready=oip.model_ready(self.rt, request.name, request.version))

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return json_format.ParseDict(oip.server_metadata(VERSION), pb.ServerMetadataResponse())

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        mv = oip.served(self.rt, request.name, request.version)
        return json_format.ParseDict(oip.model_metadata(self.rt, mv), pb.ModelMetadataResponse())

    async def ModelStatistics(self, request: Any, context: Any) -> Any:
        stats = oip.model_statistics(self.rt, request.name or None, request.version or None)
        return json_format.ParseDict(stats, pb.ModelStatisticsResponse())

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        rt = self.rt
        timeout = rt.settings.request_timeout_s
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, remaining)
        deadline = time.monotonic() + timeout
        wanted = requested(request)
        result = await oip.infer(
            rt, request.model_name, request.model_version or None, tensors(request), wanted, deadline
        )
        response = pb.ModelInferResponse(
            model_name=result.model.name, model_version=str(result.model.version), id=request.id
        )
        for out in result.outputs:
            response.outputs.add(name=out.name, datatype=out.datatype, shape=out.shape)
            response.raw_output_contents.append(oip.output_bytes(out))
        return response


Handler = Callable[[Any, Any], Awaitable[Any]]


def instrumented(rt: Runtime, method: str, handler: Handler) -> Handler:
    """Metrics (the HTTP middleware's, with the RPC as endpoint and the status code's name as
    status) and the mapping of service errors to gRPC status codes, around one RPC."""
    label = endpoint(method)
    m = rt.metrics

    async def call(request: Any, context: Any) -> Any:
        start = time.monotonic()
        model = getattr(request, "model_name", "") if method == "ModelInfer" else ""
        code = grpc.StatusCode.OK
        m.inflight.inc()
        try:
            return await handler(request, context)
        except ApiError as exc:
            code = status_code(exc)
            count(m, exc)
            await context.abort(code, exc.message)
        except asyncio.CancelledError:  # the client cancelled or went away
            code = grpc.StatusCode.CANCELLED
            if method == "ModelInfer":
                count(m, ClientGone("the client cancelled"))
            raise
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            code = grpc.StatusCode.INTERNAL
            log.exception("unhandled error in %s", label)
            await context.abort(code, "internal server error")
        finally:
            m.inflight.dec()
            elapsed = time.monotonic() - start
            m.child(m.requests, label, model, code.name).inc()
            m.child(m.request_duration, label).observe(elapsed)
            if model:
                outcome = "success" if code == grpc.StatusCode.OK else "fail"
                m.child(m.model_request, model, outcome).observe(elapsed)

    return call
