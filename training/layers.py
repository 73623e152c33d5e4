"""PyTorch building blocks of XNOR-Net / BWN (Rastegari et al., 2016) with the engine's semantics.

- `bin_active` / `BinActive`: sign with +1 at 0; straight-through gradient, 1 where |x| <= 1.
- `BinaryConv2d` / `BinaryLinear`: latent real-valued weights W are kept and updated by the
  optimizer; the forward uses B = sign(W) and alpha = mean |W| per output filter (the
  gradient reaches W through sign (straight-through) and through alpha as autograd gives it).
  Mode "xnor" also binarizes the layer's input (so there is no separate sign node in the
  exported graph), optionally scaled by K; mode "bwn" keeps the input real.
- `BatchNorm2d` / `BatchNorm1d`: PyTorch's batch norm for training; in eval mode they
  compute `x * scale + shift` with `scale = gamma / sqrt(var + eps)`, `shift = beta - mean *
  scale`, each step rounded to float32 exactly as engine/FORMAT.md does, so a sign taken
  after them is the one the engine takes.

The eval forward of the binary layers computes `float32(dot) * alpha (* K) (+ bias)` in the
engine's order (dot an exact integer in float32), so PyTorch and the C engine agree.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("xnor", "bwn")


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(x >= 0, one, -one)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def bin_active(x: torch.Tensor) -> torch.Tensor:
    """sign(x) with sign(0) = +1; gradient passes straight through where |x| <= 1."""
    return _SignSTE.apply(x)


class BinActive(nn.Module):
    """The paper's BinActiv as a module (the binary layers in XNOR mode apply it themselves)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bin_active(x)


def _check_mode(mode: str, use_k: bool) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if use_k and mode != "xnor":
        raise ValueError("K (input scaling) exists only in XNOR mode")


class BinaryConv2d(nn.Conv2d):
    """A conv whose weights (and in XNOR mode, inputs) are binarized in the forward."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        mode: str = "xnor",
        use_k: bool = False,
    ) -> None:
        _check_mode(mode, use_k)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.mode = mode
        self.use_k = use_k

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode}, use_k={self.use_k}"

    def alpha(self) -> torch.Tensor:
        """Per-output-filter mean |W| (float32, shape [O])."""
        return self.weight.abs().mean(dim=(1, 2, 3))

    def k_map(self, x: torch.Tensor) -> torch.Tensor:
        """K: mean over channels of |x|, box-filtered with this conv's kernel, stride and zero
        padding, divisor kh*kw. [N, 1, oh, ow]."""
        a = x.abs().mean(dim=1, keepdim=True)
        kh, kw = self.kernel_size
        pad = (int(self.padding[0]), int(self.padding[1]))  # never a str here
        return F.avg_pool2d(
            a, self.kernel_size, self.stride, pad, count_include_pad=True, divisor_override=kh * kw
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = bin_active(self.weight)
        inp = bin_active(x) if self.mode == "xnor" else x
        y = F.conv2d(inp, w, None, self.stride, self.padding) * self.alpha().view(1, -1, 1, 1)
        if self.use_k:
            y = y * self.k_map(x)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


class BinaryLinear(nn.Linear):
    """A fully connected layer with binary weights (and, in XNOR mode, binary inputs)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, mode: str = "xnor", use_k: bool = False
    ) -> None:
        _check_mode(mode, use_k)
        super().__init__(in_features, out_features, bias=bias)
        self.mode = mode
        self.use_k = use_k

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode}, use_k={self.use_k}"

    def alpha(self) -> torch.Tensor:
        return self.weight.abs().mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = bin_active(self.weight)
        inp = bin_active(x) if self.mode == "xnor" else x
        y = F.linear(inp, w) * self.alpha().view(1, -1)
        if self.use_k:
            y = y * x.abs().mean(dim=1, keepdim=True)
        if self.bias is not None:
            y = y + self.bias.view(1, -1)
        return y


class _EngineBN:
    """Eval-mode batch norm in the engine's float32 operation order."""

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        bn: Any = self
        c = bn.num_features
        one = torch.ones(c, dtype=torch.float32, device=bn.running_mean.device)
        gamma = bn.weight.detach() if bn.weight is not None else one
        beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(one)
        var = bn.running_var if bn.running_var is not None else one
        mean = bn.running_mean if bn.running_mean is not None else torch.zeros_like(one)
        eps = torch.tensor(bn.eps, dtype=torch.float32)
        scale = gamma / torch.sqrt(var + eps)
        shift = beta - mean * scale
        return scale, shift

    def _engine_forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift()
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        return x * scale.view(shape) + shift.view(shape)


class BatchNorm2d(_EngineBN, nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.running_mean is None:
            return super().forward(x)
        return self._engine_forward(x)


class BatchNorm1d(_EngineBN, nn.BatchNorm1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.running_mean is None:
            return super().forward(x)
        return self._engine_forward(x)
