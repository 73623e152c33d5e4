"""The PyTorch blocks: BinActive, binary conv / linear (alpha, K, gradients), engine-exact BN."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'xnornet[train]')")
import torch

from engine import builders, reference
from training.layers import BatchNorm1d, BatchNorm2d, BinActive, BinaryConv2d, BinaryLinear, bin_active


def test_bin_active_sign_and_straight_through() -> None:
    x = torch.tensor([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y = BinActive()(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1, 1]  # sign(0) = sign(-0.0) = +1
    y.sum().backward()
    assert x.grad is not None
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 0]  # 1 where |x| <= 1


def test_binary_conv_matches_scaled_sign_weights_and_alpha_gradient() -> None:
    torch.manual_seed(0)
    conv = BinaryConv2d(3, 4, 3, padding=1, mode="bwn", bias=False)
    x = torch.randn(2, 3, 5, 5)
    alpha = conv.weight.detach().abs().mean(dim=(1, 2, 3))
    expect = torch.nn.functional.conv2d(
        x, torch.where(conv.weight >= 0, 1.0, -1.0) * alpha.view(-1, 1, 1, 1), padding=1
    )
    torch.testing.assert_close(conv(x), expect, rtol=1e-5, atol=1e-5)
    # The gradient reaches W through sign (straight-through) and through alpha = mean|W|.
    w = conv.weight.detach().clone().requires_grad_(True)
    a = w.abs().mean(dim=(1, 2, 3))
    manual = torch.nn.functional.conv2d(x, bin_active(w), padding=1) * a.view(1, -1, 1, 1)
    manual.square().sum().backward()
    conv(x).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, w.grad)
    # ... and the alpha path matters: with alpha detached the gradient differs.
    w2 = conv.weight.detach().clone().requires_grad_(True)
    a2 = w2.detach().abs().mean(dim=(1, 2, 3))
    (
        torch.nn.functional.conv2d(x, bin_active(w2), padding=1) * a2.view(1, -1, 1, 1)
    ).square().sum().backward()
    assert w2.grad is not None and w.grad is not None
    assert not torch.allclose(w2.grad, w.grad)


@pytest.mark.parametrize("mode,use_k", [("xnor", False), ("xnor", True), ("bwn", False)])
def test_binary_conv_equals_reference_op(mode: str, use_k: bool) -> None:
    torch.manual_seed(1)
    conv = BinaryConv2d(5, 6, 3, stride=2, padding=1, mode=mode, use_k=use_k).eval()
    x = torch.randn(2, 5, 9, 9)
    signs = np.where(conv.weight.detach().numpy() >= 0, 1, -1)
    node = builders.bconv2d(
        signs,
        conv.alpha().detach().numpy(),
        conv.bias.detach().numpy() if conv.bias is not None else None,
        stride=2,
        padding=1,
        mode=mode,
        use_k=use_k,
    )
    with torch.no_grad():
        ours = conv(x).numpy()
    np.testing.assert_allclose(ours, reference.bconv2d(x.numpy(), node), rtol=1e-5, atol=1e-5)
    if use_k:
        np.testing.assert_allclose(
            conv.k_map(x).numpy(), reference.k_map(x.numpy(), node), rtol=1e-6, atol=1e-7
        )


@pytest.mark.parametrize("mode,use_k", [("xnor", False), ("xnor", True), ("bwn", False)])
def test_binary_linear_equals_reference_op(mode: str, use_k: bool) -> None:
    torch.manual_seed(2)
    lin = BinaryLinear(20, 7, mode=mode, use_k=use_k).eval()
    x = torch.randn(3, 20)
    signs = np.where(lin.weight.detach().numpy() >= 0, 1, -1)
    node = builders.blinear(
        signs, lin.alpha().detach().numpy(), lin.bias.detach().numpy(), mode=mode, use_k=use_k
    )
    with torch.no_grad():
        ours = lin(x).numpy()
    np.testing.assert_allclose(ours, reference.blinear(x.numpy(), node), rtol=1e-5, atol=1e-5)


def test_k_only_in_xnor_mode() -> None:
    with pytest.raises(ValueError):
        BinaryConv2d(1, 1, 3, mode="bwn", use_k=True)
    with pytest.raises(ValueError):
        BinaryLinear(1, 1, mode="other")


@pytest.mark.parametrize("cls,shape", [(BatchNorm2d, (4, 6, 3, 3)), (BatchNorm1d, (4, 6))])
def test_eval_batchnorm_is_bit_exact_with_reference(cls: type, shape: tuple[int, ...]) -> None:
    torch.manual_seed(3)
    bn = cls(6, eps=1e-4)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    bn.eval()
    x = torch.randn(*shape)
    g, b, m, v = (t.detach().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var))
    node = builders.batchnorm(g, b, m, v, eps=1e-4)
    with torch.no_grad():
        np.testing.assert_array_equal(bn(x).numpy(), reference.batchnorm(x.numpy(), node))
    bn.train()
    bn(x)  # training mode uses batch statistics as usual
