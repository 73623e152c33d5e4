"""A stand-in for engine.Model with controllable speed, for timing tests of the service."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from engine.input_spec import InputSpec


def fake_info(size: int, labels: tuple[str, ...]) -> SimpleNamespace:
    """engine.ModelInfo's input spec and output fields for a gray size x size model."""
    return SimpleNamespace(
        input=InputSpec(1, size, size, "gray", "exact", 0, 1 / 255, (0.0,), (1.0,)),
        labels=labels,
        output_size=len(labels),
        output_kind="logits",
    )


class SlowModel:
    isa = "fake"
    threads = 1

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.lock = threading.Lock()
        self.info = fake_info(8, tuple("abcd"))

    def infer(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.any():  # warm-up batches are zeros and run fast
            with self.lock:
                self.batches.append(len(x))
            time.sleep(self.delay)
        out = np.zeros((len(x), 4), np.float32)
        out[:, 2] = 5.0
        return out


def slow_repo(root: Path, name: str = "fashion-mnist-xnor") -> Path:
    p = root / name / "1" / "model.xnor"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"fake model")
    return root
