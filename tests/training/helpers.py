"""Shared helpers of the training tests (import after pytest.importorskip("torch"))."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'xnornet[train]')")
import torch


def randomize_bn(model: torch.nn.Module, seed: int) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                bn: Any = mod
                c = bn.num_features
                bn.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                bn.weight.copy_(torch.rand(c, generator=g) + 0.5)
                bn.bias.copy_(torch.randn(c, generator=g) * 0.2)


def engine_infer(data: bytes, x: np.ndarray) -> np.ndarray:
    """Run a packed model in the C engine."""
    import engine

    return engine.Model.from_bytes(data, threads=1).infer(np.ascontiguousarray(x, np.float32))


def assert_logits_match(out: np.ndarray, ref: np.ndarray, rel: float = 1e-3) -> None:
    """argmax identical and max |out - ref| within rel of the logits' scale."""
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out.argmax(1), ref.argmax(1))
    err = float(np.abs(out - ref).max())
    scale = float(np.abs(ref).max())
    assert err <= rel * scale, f"max |diff| {err:g} > {rel} * {scale:g}"
