"""xnornet's engine: the C XNOR-Net / BWN inference library and its Python face.

from engine import Model
model = Model.load("model.xnor")
logits = model.infer(batch)          # float32 NCHW -> float32 [N, classes]
logits = model.infer(pixels)         # or uint8 NHWC pixels: the engine normalizes them

The compiled library loads on first use of Model or the errors: the numpy side
(engine.graph, engine.builders, engine.format, engine.input_spec, engine.enums) writes
and reads model files without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .input_spec import InputSpec
from .version import __version__

if TYPE_CHECKING:
    from .errors import ModelFormatError, XnorError
    from .model import Model, ModelInfo, NodeInfo, default_threads

_COMPILED = {
    "Model": "model",
    "ModelInfo": "model",
    "NodeInfo": "model",
    "default_threads": "model",
    "ModelFormatError": "errors",
    "XnorError": "errors",
}


def __getattr__(name: str) -> Any:
    module = _COMPILED.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "InputSpec",
    "Model",
    "ModelFormatError",
    "ModelInfo",
    "NodeInfo",
    "XnorError",
    "__version__",
    "default_threads",
]
