"""The bundled Fashion-MNIST models, run in the C engine (engine.Model) on the 10,000-image
test set: XNOR >= 91.0% top-1, BWN >= 92.0%. Needs no PyTorch; needs the dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data import FASHION_MNIST_DIR, FMNIST_LABELS, fashion_mnist_available

MODELS = Path(__file__).resolve().parents[2] / "service" / "models"
TARGETS = {"fashion-mnist-xnor": ("xnor", 0.910), "fashion-mnist-bwn": ("bwn", 0.920)}

needs_data = pytest.mark.skipif(
    not fashion_mnist_available(),
    reason=f"needs the Fashion-MNIST IDX files in {FASHION_MNIST_DIR} (Debian package "
    "'dataset-fashion-mnist', installed by .ci/run; or set XNORNET_FASHION_MNIST)",
)


def _path(name: str) -> Path:
    return MODELS / name / "1" / "model.xnor"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_bundled_model_is_well_formed(name: str) -> None:
    import engine

    model = engine.Model.load(_path(name), threads=1)
    info = model.info
    assert info.input_shape == (1, 28, 28) and info.color == "gray" and info.resize == "exact"
    assert model.labels == tuple(FMNIST_LABELS)
    assert info.output_kind == "logits"
    ops = [n.op for n in info.nodes]
    assert ops[0] == "conv2d" and ops[-1] == "linear"  # float first and last layers
    modes = {n.mode for n in info.nodes if n.op in ("bconv2d", "blinear")}
    assert modes == {TARGETS[name][0]}
    assert _path(name).stat().st_size < 1_000_000
    assert (MODELS / "MODEL_CARD.md").exists()


@needs_data
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_bundled_model_accuracy_in_the_c_engine(name: str) -> None:
    from training.evaluate import evaluate_model

    res = evaluate_model(str(_path(name)), "fashion-mnist")
    assert res["engine"] == "c" and res["n"] == 10_000
    assert res["top1"] >= TARGETS[name][1], f"{name}: top-1 {res['top1']:.4f} < {TARGETS[name][1]}"
