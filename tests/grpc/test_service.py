"""The gRPC service in process, over loopback, with a stand-in engine of controllable speed:
status codes (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED with the queue full, UNAVAILABLE
once draining has closed the queues), readiness while draining, and the per-RPC metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from service.grpc import messages as pb
from tests.service.fakes import SlowModel, slow_repo

MODEL = "fashion-mnist-xnor"


@asynccontextmanager
async def running(tmp_path: Path, delay: float = 0.0, **settings: Any) -> AsyncIterator[tuple[Any, Any]]:
    from service.app import create_app
    from service.settings import Settings

    params: dict[str, Any] = {
        "repository": slow_repo(tmp_path / "repo"),
        "grpc_port": 0,
        "engine_threads": 1,
        "max_batch_delay_ms": 0.0,
        **settings,
    }
    app = create_app(Settings(**params), loader=lambda data, src: SlowModel(delay))
    async with (
        app.router.lifespan_context(app),
        grpc.aio.insecure_channel(f"127.0.0.1:{app.state.grpc_port}") as channel,
    ):
        yield app, channel


def rpc(channel: Any, method: str) -> Callable[..., Any]:
    req, resp = pb.METHODS[method]
    return channel.unary_unary(
        f"/{pb.SERVICE}/{method}",
        request_serializer=req.SerializeToString,
        response_deserializer=resp.FromString,
    )


def infer_request(value: float = 1.0, shape: tuple[int, ...] = (1, 1, 8, 8)) -> Any:
    x = np.full(shape, value, np.float32)
    req = pb.ModelInferRequest(model_name=MODEL)
    req.inputs.add(name="input", datatype="FP32", shape=list(shape))
    req.raw_input_contents.append(x.tobytes())
    return req


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_status_codes_and_metrics(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path) as (app, ch):
            infer = rpc(ch, "ModelInfer")
            ok = await infer(infer_request())
            assert ok.model_name == MODEL and list(ok.outputs[0].shape) == [1, 4]
            y = np.frombuffer(ok.raw_output_contents[0], np.float32)
            assert y.tolist() == [0.0, 0.0, 5.0, 0.0]
            assert await code_of(infer(infer_request(shape=(1, 2, 3)))) == grpc.StatusCode.INVALID_ARGUMENT
            unknown = infer_request()
            unknown.model_name = "nope"
            assert await code_of(infer(unknown)) == grpc.StatusCode.NOT_FOUND
            versioned = infer_request()
            versioned.model_version = "9"
            assert await code_of(infer(versioned)) == grpc.StatusCode.NOT_FOUND
            mismatch = infer_request()
            mismatch.raw_input_contents.append(b"extra")
            assert await code_of(infer(mismatch)) == grpc.StatusCode.INVALID_ARGUMENT
            bad = pb.ModelInferRequest(model_name=MODEL)
            bad.inputs.add(name="input", datatype="BYTES", shape=[1])
            bad.raw_input_contents.append(b"\x05\x00\x00\x00abc")  # length overruns
            assert await code_of(infer(bad)) == grpc.StatusCode.INVALID_ARGUMENT
            meta = rpc(ch, "ModelMetadata")
            assert await code_of(meta(pb.ModelMetadataRequest(name="../x"))) == grpc.StatusCode.NOT_FOUND
            missing = ch.unary_unary("/inference.GRPCInferenceService/RepositoryIndex")
            assert await code_of(missing(b"")) == grpc.StatusCode.UNIMPLEMENTED

            get = app.state.runtime.metrics.registry.get_sample_value
            path = "/inference.GRPCInferenceService/ModelInfer"
            assert get("xnornet_requests_total", {"endpoint": path, "model": MODEL, "status": "OK"}) == 1
            assert (
                get(
                    "xnornet_requests_total", {"endpoint": path, "model": MODEL, "status": "INVALID_ARGUMENT"}
                )
                == 3
            )
            assert get("xnornet_request_duration_seconds_count", {"endpoint": path}) == 6
            assert get("xnornet_model_request_seconds_count", {"model": MODEL, "outcome": "success"}) == 1

    asyncio.run(main())


def test_queue_full_is_resource_exhausted(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, delay=0.3, queue_capacity=2, max_batch_size=1) as (app, ch):
            infer = rpc(ch, "ModelInfer")
            codes = await asyncio.gather(*(code_of(infer(infer_request())) for _ in range(8)))
            assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and grpc.StatusCode.OK in codes
            assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
            get = app.state.runtime.metrics.registry.get_sample_value
            assert get("xnornet_rejected_total", {"reason": "queue_full"}) == codes.count(
                grpc.StatusCode.RESOURCE_EXHAUSTED
            )

    asyncio.run(main())


def test_draining(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path) as (app, ch):
            rt = app.state.runtime
            ready, model_ready = rpc(ch, "ServerReady"), rpc(ch, "ModelReady")
            assert (await ready(pb.ServerReadyRequest())).ready
            assert (await model_ready(pb.ModelReadyRequest(name=MODEL))).ready
            rt.begin_drain()  # SIGTERM: not ready, requests still served
            assert not (await ready(pb.ServerReadyRequest())).ready
            assert not (await model_ready(pb.ModelReadyRequest(name=MODEL))).ready
            assert (await rpc(ch, "ServerLive")(pb.ServerLiveRequest())).live
            assert await code_of(rpc(ch, "ModelInfer")(infer_request())) == grpc.StatusCode.OK
            await rt.batchers[MODEL].close()  # the queues close at the end of the drain
            assert await code_of(rpc(ch, "ModelInfer")(infer_request())) == grpc.StatusCode.UNAVAILABLE

    asyncio.run(main())


def test_off_unless_a_port_is_set(tmp_path: Path) -> None:
    from service.app import create_app
    from service.settings import Settings

    async def main() -> None:
        settings = Settings(repository=slow_repo(tmp_path / "repo"), engine_threads=1)
        app = create_app(settings, loader=lambda data, src: SlowModel(0.0))
        async with app.router.lifespan_context(app):
            assert not hasattr(app.state, "grpc_port")

    asyncio.run(main())
    with pytest.raises(ValueError):
        Settings(grpc_port=70000)
