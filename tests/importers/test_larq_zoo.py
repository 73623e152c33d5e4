"""`xnornet import larq-zoo`: synthetic Keras HDF5 files of every layout variant are
imported and the C engine's logits are compared with an independent numpy forward pass."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("h5py", reason="h5py is not installed (pip install 'xnornet[import]')")

from engine import format as fmt
from engine.model import Model
from training import larq_zoo as lz

from . import keras_ref as kr


def _input(size: int, seed: int, batch: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, size, size, 3)).astype(np.float32)


def _compare(km: kr.KModel, xnor_path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    """Engine logits vs the numpy forward: within 1e-3 of the largest logit, argmax equal."""
    ref = kr.forward(km, x_nhwc)
    got = Model.load(xnor_path, threads=1).infer(x_nhwc.transpose(0, 3, 1, 2))
    assert got.shape == ref.shape
    err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    assert err <= 1e-3, f"relative error {err}"
    assert (got.argmax(axis=1) == ref.argmax(axis=1)).all()
    return ref


def _import(h5: Path, arch: str, out: Path, cfg: lz.ArchConfig, softmax: bool = False) -> lz.ImportResult:
    res = lz.import_file(h5, arch, out, cfg=cfg, softmax=softmax, edges="float32")  # exact: float edges
    assert any("not a known" in w for w in res.warnings)  # synthetic weights are no release
    return res


# ---------------------------------------------------------------------------------------
# The real shapes (224 x 224, full width), one layout variant each


def test_xnornet_full_size_bytes_strings_chunked_layer_names(tmp_path: Path) -> None:
    km = kr.xnornet(seed=1)
    h5 = tmp_path / "xnornet.h5"
    kr.write_h5(h5, km, strings="bytes", chunks=3)
    res = _import(h5, "XNORNet", tmp_path / "x.xnor", lz.ArchConfig())
    assert res.model.input.resize == "central_crop_bicubic" and res.model.input.height == 224
    _compare(km, tmp_path / "x.xnor", _input(224, 2))
    # float32 -> packed: the binary convs dominate
    assert res.bytes_written * 8 <= res.float_bytes


def test_binary_alexnet_full_size_str_strings_full_model_save(tmp_path: Path) -> None:
    km = kr.binary_alexnet(seed=3, dense_as_conv=True)  # v0.3.0: 1x1 convs on the 1x1x9216 reshape
    h5 = tmp_path / "alexnet.h5"
    kr.write_h5(h5, km, strings="str", nested=True)
    _import(h5, "binary_alexnet", tmp_path / "a.xnor", lz.ArchConfig())
    _compare(km, tmp_path / "a.xnor", _input(224, 4))


def test_resnet_e18_full_size_packed_size_and_probabilities(tmp_path: Path) -> None:
    km = kr.resnet_e18(seed=5)
    h5 = tmp_path / "resnet.h5"
    kr.write_h5(h5, km, strings="str", top_level=True)
    res = lz.import_file(h5, "BinaryResNetE18", tmp_path / "r.xnor", edges="float32")  # softmax, 1000 labels
    m = res.model
    assert m.nodes[-1].op == "softmax" and len(m.labels) == 1000
    assert sum(n.op == "add" for n in m.nodes) == 16
    float_bytes = 4 * sum(int(a.size) for lay in km.layers for _, a in lay.weights)
    assert res.float_bytes == float_bytes
    size = os.path.getsize(tmp_path / "r.xnor")
    assert size * 8 <= float_bytes, (size, float_bytes)  # packed <= 1/8 of float32
    x = _input(224, 6)
    logits = kr.forward(km, x)
    probs = Model.load(tmp_path / "r.xnor", threads=1).infer(x.transpose(0, 3, 1, 2))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.allclose(probs, e / e.sum(axis=1, keepdims=True), atol=1e-4)
    assert probs.argmax() == logits.argmax()
    # the same file without softmax gives logits
    lz.import_file(h5, "resnet-e18", tmp_path / "r2.xnor", softmax=False, edges="float32")
    _compare(km, tmp_path / "r2.xnor", x)


# ---------------------------------------------------------------------------------------
# Every layout variant on narrow networks (width 1/4, the same structure)

NARROW = 0.25
VARIANTS: dict[str, dict[str, Any]] = {
    "bytes-chunked": dict(strings="bytes", chunks=2, weight_chunks=2),
    "str-nested-toplevel": dict(strings="str", nested=True, top_level=True),
    "bytes-nested": dict(strings="bytes", nested=True),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("arch", ["xnornet", "binary-alexnet", "resnet-e18"])
def test_layout_variants(tmp_path: Path, arch: str, variant: str) -> None:
    size = 64 if arch == "resnet-e18" else 224
    km = (
        kr.resnet_e18(seed=7, width=NARROW, size=size)
        if arch == "resnet-e18"
        else kr.BUILDERS[arch](seed=7, width=NARROW)
    )
    h5 = tmp_path / "m.h5"
    kr.write_h5(h5, km, **VARIANTS[variant])
    _import(h5, arch, tmp_path / "m.xnor", lz.ArchConfig(size=size, width=NARROW))
    _compare(km, tmp_path / "m.xnor", _input(size, 8, batch=2))


def test_binary_alexnet_v02_dense_layout(tmp_path: Path) -> None:
    km = kr.binary_alexnet(seed=9, width=NARROW, dense_as_conv=False)  # QuantDense kernels (in, out)
    kr.write_h5(tmp_path / "m.h5", km, strings="str")
    _import(tmp_path / "m.h5", "binary-alexnet", tmp_path / "m.xnor", lz.ArchConfig(width=NARROW))
    _compare(km, tmp_path / "m.xnor", _input(224, 10))


def test_resnet_e18_other_class_count(tmp_path: Path) -> None:
    km = kr.resnet_e18(seed=11, width=NARROW, classes=10, size=64)
    kr.write_h5(tmp_path / "m.h5", km)
    res = _import(tmp_path / "m.h5", "resnet-e18", tmp_path / "m.xnor", lz.ArchConfig(64, 10, NARROW))
    assert res.model.labels == [f"class_{i:04d}" for i in range(10)]
    assert any("class_0000" in w for w in res.warnings)
    _compare(km, tmp_path / "m.xnor", _input(64, 12))


# ---------------------------------------------------------------------------------------
# Refusals

SMALL = lz.ArchConfig(size=64, width=0.125)


def _small(tmp_path: Path, **kw: object) -> Path:
    km = kr.resnet_e18(seed=13, width=0.125, size=64)
    path = tmp_path / "bad.h5"
    kr.write_h5(path, km, **kw)  # type: ignore[arg-type]
    return path


def _refused(path: Path, match: str, arch: str = "resnet-e18", cfg: lz.ArchConfig = SMALL) -> None:
    with pytest.raises(lz.LarqImportError, match=match):
        lz.import_file(path, arch, path.with_suffix(".xnor"), cfg=cfg)
    assert not path.with_suffix(".xnor").exists()


def test_missing_layer_is_refused(tmp_path: Path) -> None:
    # batch_normalization_3 is weighted layer #5 (stem conv, 2 BNs, quant_conv2d, BN, quant_conv2d_1, BN ...)
    _refused(
        _small(tmp_path, drop_layer="batch_normalization_3"),
        r"41 layers with weights, BinaryResNetE18 has 42; the first difference: weighted layer #6 "
        r"\('quant_conv2d_2'\) has weights of shapes \[\(3, 3, 8, 8\)\]; BinaryResNetE18 expects "
        r"BatchNormalization \(stage 1 block 2\)",
    )


def test_missing_layer_group_is_refused(tmp_path: Path) -> None:
    _refused(
        _small(tmp_path, drop_group="quant_conv2d_2"),
        r"'quant_conv2d_2' is listed in layer_names but missing",
    )


def test_wrong_shape_is_refused(tmp_path: Path) -> None:
    _refused(
        _small(tmp_path, reshape=("quant_conv2d_1/kernel:0", (3, 3, 8, 9))),
        r"weighted layer #5 \('quant_conv2d_1'\) has weights of shapes \[\(3, 3, 8, 9\)\]",
    )


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    _refused(
        _small(tmp_path),
        r"weighted layer #0 .* XNORNet expects Conv2D 96 11x11/4",
        arch="xnornet",
        cfg=lz.ArchConfig(width=0.125),
    )


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = _small(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    _refused(path, r"HDF5")


def test_not_hdf5_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    path.write_bytes(b"<html>404 Not Found</html>" * 100)
    _refused(path, r"not a readable HDF5 file")


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    km = kr.resnet_e18(seed=13, width=0.125, size=64)
    km.layers[1].weights[2][1][0] = np.nan
    kr.write_h5(tmp_path / "bad.h5", km)
    _refused(tmp_path / "bad.h5", r"NaN or infinite")


def test_hdf5_without_layer_names_is_refused(tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3, np.float32))
    _refused(tmp_path / "bad.h5", r"no 'layer_names' attribute")


def test_unknown_arch_and_other_release() -> None:
    with pytest.raises(lz.LarqImportError, match="unknown Larq Zoo model"):
        lz.canonical_arch("quicknet")
    xnornet = next(r for r in lz.releases() if r["arch"] == "xnornet" and r["include_top"])
    with pytest.raises(lz.LarqImportError, match=r"is the XNORNet release xnornet-v0\.2\.0"):
        lz.check_release(xnornet["sha256"], "resnet-e18")
    notop = next(r for r in lz.releases() if r["arch"] == "resnet-e18" and not r["include_top"])
    with pytest.raises(lz.LarqImportError, match="without the classifier"):
        lz.check_release(notop["sha256"], "resnet-e18")
    rel, warn = lz.check_release(xnornet["sha256"], "xnornet")
    assert rel is xnornet or rel == xnornet
    assert warn is None


# ---------------------------------------------------------------------------------------
# Command line


def test_list_prints_the_releases(capsys: pytest.CaptureFixture[str]) -> None:
    from xnornet.cli import main

    assert main(["import", "larq-zoo", "--list"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "xnornet-v0.2.0 / xnornet_weights.h5",
        "binary_alexnet-v0.3.0",
        "resnet_e-v0.1.0",
        "44.96 %",
        "69.18 %",
        "36.30 %",
        "61.53 %",
        "58.32 %",
        "80.79 %",
        "bde4a64d42c164a7b10a28debbe1ad5b287c499bc0247ecb00449e6e89f3bf5b",
    ):
        assert needle in out


def test_cli_imports_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from xnornet.cli import main

    km = kr.resnet_e18(seed=14)
    kr.write_h5(tmp_path / "r.h5", km)
    assert (
        main(["import", "larq-zoo", "resnet-e18", str(tmp_path / "r.h5"), "-o", str(tmp_path / "r.xnor")])
        == 0
    )
    cap = capsys.readouterr()
    assert "wrote" in cap.out and "binary-resnet-e18-larq" in cap.out
    assert "not a known BinaryResNetE18 release" in cap.err
    m = fmt.read_model(tmp_path / "r.xnor")
    assert m.input.resize == "central_crop_bicubic" and m.input.scale == 1.0
    assert np.allclose(m.input.mean, lz.LARQ_MEAN) and np.allclose(m.input.std, lz.LARQ_STD)
    # a bad file: exit status 1 and the reason on stderr, nothing written
    (tmp_path / "bad.h5").write_bytes(b"nope")
    assert (
        main(["import", "larq-zoo", "xnornet", str(tmp_path / "bad.h5"), "-o", str(tmp_path / "b.xnor")]) == 1
    )
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "b.xnor").exists()


def test_int8_edges_import(tmp_path: Path) -> None:
    """--edges int8: the stem conv reads the pixels in int8 and the classifier is qlinear; the
    file shrinks by the float weights the two layers held."""
    km = kr.resnet_e18(seed=5)
    h5 = tmp_path / "resnet.h5"
    kr.write_h5(h5, km, strings="str", top_level=True)
    f32 = lz.import_file(h5, "BinaryResNetE18", tmp_path / "f.xnor", edges="float32")
    q = lz.import_file(h5, "BinaryResNetE18", tmp_path / "q.xnor", edges="int8")
    ops = [n.op for n in q.model.nodes]
    f32_ops = [n.op for n in f32.model.nodes]
    assert ops[0] == "qconv2d" and "qlinear" in ops and "linear" not in ops
    assert ops.count("conv2d") == f32_ops.count("conv2d") - 1  # the float shortcut convs stay
    assert q.bytes_written < f32.bytes_written
    model = Model.load(tmp_path / "q.xnor", threads=1)
    assert model.info.edges == "int8"
    pixels = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    assert model.infer(pixels).shape == (1, 1000)
