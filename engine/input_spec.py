"""InputSpec: what one input image becomes before the engine sees it.

One description of a model's preprocessing, used where a model is built (engine.graph),
read back (engine.format, engine.ModelInfo.input) and applied (service.imaging).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """NCHW float32 of `channels x height x width`, made from an image by: convert to `color`,
    resize (engine/FORMAT.md's resize policies), x[c] = (pixel * scale - mean[c]) / std[c]."""

    channels: int
    height: int
    width: int
    color: str = "rgb"  # gray | rgb | bgr | other (engine.enums.COLORS)
    resize: str = "exact"  # exact | shorter_crop | central_crop_bicubic (engine.enums.RESIZE)
    resize_size: int = 0
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return (self.channels, self.height, self.width)
