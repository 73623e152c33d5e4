"""A stand-in for engine.Model with controllable speed, for timing tests of the service."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np


class SlowModel:
    isa = "fake"
    threads = 1

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.lock = threading.Lock()
        self.info = SimpleNamespace(
            input_shape=(1, 8, 8),
            color="gray",
            resize="exact",
            resize_size=0,
            scale=1 / 255,
            mean=(0.0,),
            std=(1.0,),
            labels=tuple("abcd"),
            output_size=4,
            output_kind="logits",
        )

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
