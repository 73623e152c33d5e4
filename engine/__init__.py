"""xnornet's engine: the C XNOR-Net / BWN inference library and its Python face.

from engine import Model
model = Model.load("model.xnor")
logits = model.infer(batch)          # float32 NCHW -> float32 [N, classes]
logits = model.infer(pixels)         # or uint8 NHWC pixels: the engine normalizes them
"""

from .errors import ModelFormatError, XnorError
from .model import Model, ModelInfo, NodeInfo

__all__ = ["Model", "ModelFormatError", "ModelInfo", "NodeInfo", "XnorError"]
__version__ = "0.1.0"
