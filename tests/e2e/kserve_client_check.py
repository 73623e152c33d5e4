"""Run by tests/e2e/test_kserve_client.py in a child process: the KServe SDK registers its own
copy of the protocol's messages in protobuf's default pool, where the Triton client's copy (other
tests) already sits, and two copies of one name cannot share a process.

    python -m tests.e2e.kserve_client_check HTTP_URL GRPC_ADDRESS MODEL

Prints JSON: readiness and the outputs of one FP32 batch over REST (JSON) and gRPC.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(http_url: str, grpc_address: str, model: str) -> dict[str, object]:
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)

    def request() -> InferRequest:
        inp = InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=False)
        return InferRequest(model_name=model, infer_inputs=[inp], request_id="k1")

    rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    out: dict[str, object] = {
        "rest_live": await rest.is_server_live(http_url),
        "rest_ready": await rest.is_server_ready(http_url),
        "rest_model_ready": await rest.is_model_ready(http_url, model),
    }
    r = await rest.infer(http_url, request(), model_name=model)
    out["rest"] = r.outputs[0].as_numpy().tolist()
    await rest.close()
    grpc_client = InferenceGRPCClient(grpc_address)
    out["grpc_ready"] = await grpc_client.is_server_ready()
    out["grpc_model_ready"] = await grpc_client.is_model_ready(model)
    g = await grpc_client.infer(request())
    out["grpc"] = g.outputs[0].as_numpy().tolist()
    out["grpc_id"] = g.id
    await grpc_client.close()
    out["input"] = x.tolist()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
