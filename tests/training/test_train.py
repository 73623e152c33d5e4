"""`xnornet train` / `export` / `eval` on tiny synthetic data: determinism, checkpoint and
resume, DistributedDataParallel with 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import socket
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (pip install 'xnornet[train]')")
import torch

from training.train import TrainConfig, load_checkpoint, model_from_checkpoint, train
from xnornet import cli

from .helpers import assert_logits_match

# Every training test runs on one thread and prints nothing.
QUIET: dict[str, Any] = {"threads": 1, "log_every": 0}
TINY: dict[str, Any] = {
    **QUIET,
    "dataset": "synthetic",
    "arch": "fmnist",
    "width": 0.25,
    "subset": 128,
    "eval_subset": 64,
    "batch_size": 32,
    "epochs": 2,
    "lr": 2e-3,
}


def _weights(path: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_seeded_runs_are_identical_and_resume_continues_exactly(tmp_path) -> None:
    full = str(tmp_path / "full.pt")
    again = str(tmp_path / "again.pt")
    split = str(tmp_path / "split.pt")
    train(TrainConfig(**TINY, out=full, mode="xnor"))
    train(TrainConfig(**TINY, out=again, mode="xnor"))
    assert _same(_weights(full), _weights(again))
    # one epoch, then a second run resumes from the checkpoint and finishes epoch 2
    train(TrainConfig(**TINY, out=split, mode="xnor", stop_after_epoch=1))
    assert load_checkpoint(split)["epoch"] == 1
    train(TrainConfig(**TINY, out=split, mode="xnor"))
    ckpt = load_checkpoint(split)
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert _same(ckpt["model"], _weights(full))
    other = str(tmp_path / "other.pt")
    train(TrainConfig(**{**TINY, "seed": 7}, out=other, mode="xnor"))
    assert not _same(_weights(other), _weights(full))


def test_cli_train_export_eval_roundtrip(tmp_path, capsys) -> None:
    """train -> export -> the engine reproduces the PyTorch eval forward of the checkpoint."""
    import engine

    ckpt = str(tmp_path / "bwn.pt")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('dataset = "synthetic"\narch = "fmnist"\nmode = "bwn"\nepochs = 1\n')
    argv = [
        "train",
        "--config",
        str(cfg),
        "--width",
        "0.25",
        "--subset",
        "256",
        "--eval-subset",
        "64",
        "--batch-size",
        "64",
        "--threads",
        "1",
        "--log-every",
        "2",
        "--out",
        ckpt,
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr()
    assert "epoch 1/1 [" in out.err  # progress lines
    assert json.loads(out.out.strip().splitlines()[-1])["checkpoint"] == ckpt

    model_path = str(tmp_path / "bwn.xnor")
    assert cli.main(["export", ckpt, "-o", model_path, "--edges", "float32"]) == 0
    m = engine.Model.load(model_path, threads=1)
    assert m.input_shape == (1, 28, 28) and len(m.labels) == 10
    net = model_from_checkpoint(load_checkpoint(ckpt))
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = net(x).numpy()
    assert_logits_match(m.infer(x.numpy()), ref)


def test_print_config_merges_file_and_flags(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"epochs": 3, "mode": "bwn"}))
    assert cli.main(["train", "--config", str(cfg), "--epochs", "5", "--use-k", "--print-config"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["epochs"], got["mode"], got["use_k"]) == (5, "bwn", True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path) -> None:
    import torch.multiprocessing as mp

    from training.train import ddp_worker

    dump = tmp_path / "ranks"
    cfg = {**TINY, "epochs": 2, "mode": "xnor", "out": str(tmp_path / "ddp.pt"), "dump_rank_state": str(dump)}
    mp.spawn(ddp_worker, args=(2, _free_port(), cfg), nprocs=2, join=True)
    r0 = torch.load(dump / "rank0.pt", weights_only=True)
    r1 = torch.load(dump / "rank1.pt", weights_only=True)
    assert _same(r0, r1)
    # rank 0 wrote the checkpoint; it holds the same weights
    assert _same(_weights(str(tmp_path / "ddp.pt")), r0)
    np.testing.assert_equal(load_checkpoint(str(tmp_path / "ddp.pt"))["epoch"], 2)


def test_imagenet_folder_training_smoke(tmp_path) -> None:
    """The ImageNet-style folder path: Pillow decoding, shorter-side resize + crop, AlexNet."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            d = tmp_path / "data" / split / cls
            d.mkdir(parents=True)
            for i in range(2):
                size = (300, 260) if i else (240, 320)
                Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(d / f"{i}.png")
    out = str(tmp_path / "alex.pt")
    cfg = TrainConfig(
        dataset="imagenet-folder",
        data_root=str(tmp_path / "data"),
        arch="alexnet",
        width=0.05,
        epochs=1,
        batch_size=2,
        workers=0,
        out=out,
        **QUIET,
    )
    res = train(cfg)
    ckpt = load_checkpoint(out)
    assert ckpt["classes"] == 2 and ckpt["labels"] == ["cat", "dog"] and 0 <= res["top1"] <= 1
    assert ckpt["input"]["height"] == 227 and ckpt["input"]["resize"] == "shorter_crop"
