"""`xnornet import jiecaoyu-alexnet`: a synthetic checkpoint with exactly the documented keys
and shapes of XNOR-Net-PyTorch's ImageNet AlexNet; the engine's output equals a PyTorch
re-implementation of that network's forward."""

from __future__ import annotations

import pickle
from collections import OrderedDict

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'xnornet[train]')")
import torch

F = torch.nn.functional

from engine import format as fmt  # noqa: E402
from training.importers import ImportFormatError, imagenet_classes, jiecaoyu_alexnet_model  # noqa: E402
from xnornet import cli  # noqa: E402

from .helpers import assert_logits_match  # noqa: E402

CONVS: dict[str, tuple[int, ...]] = {
    "features.module.4": (256, 96, 5, 5),
    "features.module.6": (384, 256, 3, 3),
    "features.module.7": (384, 384, 3, 3),
    "features.module.8": (256, 384, 3, 3),
}
LINEARS: dict[str, tuple[int, ...]] = {"classifier.0": (4096, 9216), "classifier.1": (4096, 4096)}


def _bn_keys(sd: dict, prefix: str, c: int, g: torch.Generator) -> None:
    sd[f"{prefix}.weight"] = torch.rand(c, generator=g) + 0.5
    sd[f"{prefix}.bias"] = torch.randn(c, generator=g) * 0.2
    sd[f"{prefix}.running_mean"] = torch.randn(c, generator=g) * 0.2
    sd[f"{prefix}.running_var"] = torch.rand(c, generator=g) + 0.5
    # old checkpoints have no num_batches_tracked


def synthetic_state_dict(seed: int = 0) -> OrderedDict:
    g = torch.Generator().manual_seed(seed)
    sd: OrderedDict = OrderedDict()
    sd["features.module.0.weight"] = torch.randn(96, 3, 11, 11, generator=g) * 0.05
    sd["features.module.0.bias"] = torch.randn(96, generator=g) * 0.1
    _bn_keys(sd, "features.module.1", 96, g)
    for p, shape in CONVS.items():
        _bn_keys(sd, f"{p}.bn", shape[1], g)
        sd[f"{p}.conv.weight"] = torch.randn(*shape, generator=g) * 0.6  # latent weights, some beyond [-1, 1]
        sd[f"{p}.conv.bias"] = torch.randn(shape[0], generator=g) * 0.1
    for p, shape in LINEARS.items():
        _bn_keys(sd, f"{p}.bn", shape[1], g)
        sd[f"{p}.linear.weight"] = torch.randn(*shape, generator=g) * 0.6
        sd[f"{p}.linear.bias"] = torch.randn(shape[0], generator=g) * 0.1
    _bn_keys(sd, "classifier.2", 4096, g)
    sd["classifier.4.weight"] = torch.randn(1000, 4096, generator=g) * 0.02
    sd["classifier.4.bias"] = torch.randn(1000, generator=g) * 0.1
    return sd


def reimplementation(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """XNOR-Net-PyTorch's AlexNet forward at inference, written out in PyTorch (sign(0) = +1)."""

    def bn(t: torch.Tensor, p: str, eps: float) -> torch.Tensor:
        scale = sd[f"{p}.weight"] / torch.sqrt(
            sd[f"{p}.running_var"] + torch.tensor(eps, dtype=torch.float32)
        )
        shift = sd[f"{p}.bias"] - sd[f"{p}.running_mean"] * scale
        shape = (1, -1, 1, 1) if t.dim() == 4 else (1, -1)
        return t * scale.view(shape) + shift.view(shape)

    def sign(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t >= 0, 1.0, -1.0)

    def binarize(w: torch.Tensor) -> torch.Tensor:  # meancenter, clamp, sign * mean|W| per filter
        w = (w - w.mean(1, keepdim=True)).clamp(-1.0, 1.0)
        n = w[0].nelement()
        m = w.abs().reshape(w.shape[0], -1).sum(1) / n
        return sign(w) * m.view(-1, *([1] * (w.dim() - 1)))

    x = F.conv2d(x, sd["features.module.0.weight"], sd["features.module.0.bias"], stride=4)
    x = F.max_pool2d(F.relu(bn(x, "features.module.1", 1e-4)), 3, 2)
    for p, shape in CONVS.items():
        x = sign(bn(x, f"{p}.bn", 1e-4))
        x = F.relu(F.conv2d(x, binarize(sd[f"{p}.conv.weight"]), sd[f"{p}.conv.bias"], padding=shape[2] // 2))
        if p in ("features.module.4", "features.module.8"):
            x = F.max_pool2d(x, 3, 2)
    x = x.reshape(x.shape[0], 256 * 6 * 6)
    for p in LINEARS:
        x = F.relu(
            F.linear(sign(bn(x, f"{p}.bn", 1e-4)), binarize(sd[f"{p}.linear.weight"]), sd[f"{p}.linear.bias"])
        )
    x = bn(x, "classifier.2", 1e-3)
    return F.linear(x, sd["classifier.4.weight"], sd["classifier.4.bias"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, OrderedDict]:
    sd = synthetic_state_dict()
    path = tmp_path_factory.mktemp("jiecaoyu") / "alexnet.pth.tar"
    torch.save(
        {
            "state_dict": sd,
            "best_prec1": 44.2,
            "epoch": 55,
            "arch": "alexnet",
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5}]},
        },
        path,
    )
    return str(path), sd


def test_import_matches_pytorch_reimplementation(checkpoint: tuple[str, OrderedDict], tmp_path) -> None:
    import engine

    path, sd = checkpoint
    out = tmp_path / "alexnet.xnor"
    # float32 edges: every float layer is exact, so the logits match the PyTorch twin
    assert cli.main(["import", "jiecaoyu-alexnet", path, "-o", str(out), "--edges", "float32"]) == 0
    model = engine.Model.load(out, threads=1)
    assert model.info.edges == "float32"
    assert model.input_shape == (3, 227, 227)
    assert model.labels == tuple(imagenet_classes())
    info = fmt.read_model(str(out)).input
    assert (info.resize, info.resize_size, info.scale) == ("shorter_crop", 256, 1.0)
    np.testing.assert_allclose(info.mean, [0.485 * 255, 0.456 * 255, 0.406 * 255], rtol=1e-6)
    assert tuple(info.std) == (1.0, 1.0, 1.0)

    x = torch.randn(2, 3, 227, 227, generator=torch.Generator().manual_seed(5)) * 60
    with torch.no_grad():
        ref = reimplementation(sd, x).numpy()
    assert_logits_match(model.infer(x.numpy()), ref)


def test_import_default_edges_are_int8(checkpoint: tuple[str, OrderedDict], tmp_path) -> None:
    import engine

    path, _ = checkpoint
    out = tmp_path / "alexnet-int8.xnor"
    assert cli.main(["import", "jiecaoyu-alexnet", path, "-o", str(out)]) == 0
    model = engine.Model.load(out, threads=1)
    assert model.info.edges == "int8"
    assert model.info.nodes[0].op == "qconv2d"


def test_imagenet_classes_file() -> None:
    names = imagenet_classes()
    assert len(names) == 1000
    assert names[0] == "tench" and names[1] == "goldfish" and names[999] == "toilet tissue"
    assert all(1 <= len(n.encode()) <= 1024 and "\x00" not in n for n in names)


def test_wrong_shape_is_rejected() -> None:
    sd = synthetic_state_dict()
    sd["features.module.6.conv.weight"] = torch.zeros(384, 256, 5, 5)
    with pytest.raises(ImportFormatError, match=r"features\.module\.6\.conv\.weight"):
        jiecaoyu_alexnet_model(sd)
    del sd["classifier.4.bias"]
    with pytest.raises(ImportFormatError):
        jiecaoyu_alexnet_model({"state_dict": {k: v for k, v in sd.items() if k != "classifier.2.weight"}})


class _Evil:
    def __reduce__(self):  # pragma: no cover - never executed: weights_only refuses it
        return (print, ("pwned",))


def test_arbitrary_pickles_are_refused(tmp_path, capsys) -> None:
    path = tmp_path / "evil.pth.tar"
    with open(path, "wb") as fh:
        pickle.dump({"state_dict": {}, "x": _Evil()}, fh, protocol=2)
    assert cli.main(["import", "jiecaoyu-alexnet", str(path), "-o", str(tmp_path / "m.xnor")]) == 1
    captured = capsys.readouterr()
    assert "pwned" not in captured.out
    assert "weights-only" in captured.err
