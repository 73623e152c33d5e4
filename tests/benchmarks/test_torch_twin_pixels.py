"""The PyTorch twin of the service benchmark takes the service's uint8 pixels as engine.Model does."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from benchmarks import architectures, service_speed
from engine import format as fmt
from service import imaging


def test_uint8_pixels_equal_the_normalized_tensor() -> None:
    twin = service_speed.TorchAlexNet(fmt.to_bytes(architectures.alexnet(seed=0, width=0.25)), threads=1)
    spec = twin.info.input
    px = np.random.default_rng(0).integers(0, 256, (2, spec.height, spec.width, 3), dtype=np.uint8)
    floats = np.stack([imaging.normalize(p, spec) for p in px])
    np.testing.assert_allclose(twin.infer(px), twin.infer(floats), rtol=1e-4, atol=1e-4)
