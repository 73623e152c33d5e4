"""The KServe Python SDK's clients (InferenceRESTClient, InferenceGRPCClient) against a real
server, in a child process (kserve_client_check.py says why). The 'test' extra installs the SDK;
without it this skips."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from service.settings import BUNDLED_MODELS

from .conftest import MODEL, ROOT, serve
from .test_protocol_clients import reference

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("kserve") is None, reason="the KServe SDK is not installed (pip install kserve)"
)


def test_kserve_clients_over_rest_and_grpc() -> None:
    with serve(BUNDLED_MODELS, "--grpc-port", "0", "--model", MODEL) as srv:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.e2e.kserve_client_check", srv.url, srv.grpc_address, MODEL],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rest_live"] and out["rest_ready"] and out["rest_model_ready"]
    assert out["grpc_ready"] and out["grpc_model_ready"] and out["grpc_id"] == "k1"
    want = reference(np.asarray(out["input"], np.float32))
    for protocol in ("rest", "grpc"):
        np.testing.assert_allclose(np.asarray(out[protocol], np.float32), want, rtol=1e-6, atol=1e-6)
