"""`xnornet train`: Adam (as the paper uses for XNOR-Net), a cosine or step LR schedule,
checkpointing every epoch with resume, seeded determinism, and multi-process training with
PyTorch's DistributedDataParallel (launch with `torchrun`; gloo on CPU, NCCL on GPU).

Determinism: the data order and augmentation of epoch e come from a generator seeded with
(seed, e), the initial weights from `seed`, so a resumed run continues exactly where the
interrupted one was (on the same machine and thread count).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from . import data as D
from .models import FMNIST_LABELS, INPUTS, build

CHECKPOINT_FORMAT = "xnornet-train-checkpoint/1"
DATASETS = ("fashion-mnist", "imagenet-folder", "synthetic")


@dataclass
class TrainConfig:
    dataset: str = "fashion-mnist"
    data_root: str = (
        ""  # fashion-mnist: IDX folder (default the Debian package's); imagenet-folder: train/ and val/
    )
    arch: str = "fmnist"
    mode: str = "xnor"
    use_k: bool = False
    width: float = 1.0
    classes: int = 0  # 0: from the dataset
    epochs: int = 12
    batch_size: int = 128  # per process
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine | step | constant
    lr_step: int = 10  # step schedule: multiply by lr_gamma every lr_step epochs
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    augment: bool = True  # fashion-mnist: random crop (pad 2) + horizontal flip
    label_smoothing: float = 0.0
    seed: int = 0
    subset: int = 0  # use only the first N training images (0: all)
    eval_subset: int = 0
    out: str = "checkpoint.pt"
    resume: bool = True  # continue from `out` if it exists
    device: str = "cpu"
    threads: int = 0  # torch threads per process (0: leave PyTorch's default)
    workers: int = 2  # imagenet-folder DataLoader workers
    log_every: int = 50
    eval_every: int = 1  # evaluate on the test split every N epochs (0: only at the end)
    stop_after_epoch: int = 0  # end this run after epoch N (a later run resumes); 0: run to `epochs`
    dump_rank_state: str = ""  # tests: each rank writes its final weights to DIR/rank{r}.pt
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainConfig:
        text = Path(path).read_text()
        raw = tomllib.loads(text) if os.fspath(path).endswith(".toml") else json.loads(text)
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"unknown config keys: {unknown}")
        return cls(**raw)

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}")
        if self.mode not in ("xnor", "bwn"):
            raise ValueError("mode must be xnor or bwn")
        if self.lr_schedule not in ("cosine", "step", "constant"):
            raise ValueError("lr_schedule must be cosine, step or constant")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs, batch_size and lr must be positive")


# ---------------------------------------------------------------------------------------
# Distributed helpers


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.startswith("cuda") else "gloo", rank=rank, world_size=world
        )
    return Dist(rank, world, local)


def _sync_bn_buffers(model: nn.Module, world: int) -> None:
    """Average the BN running statistics over ranks so every rank ends with the same model."""
    if world <= 1:
        return
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.running_mean is not None:
            for buf in (mod.running_mean, mod.running_var):
                dist.all_reduce(buf, op=dist.ReduceOp.SUM)
                buf.div_(world)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------
# Data


class _Tensors:
    """An in-memory uint8 image set (Fashion-MNIST, synthetic) with batch-level augmentation."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, spec: dict[str, Any]) -> None:
        self.images = torch.from_numpy(np.array(images, np.uint8))
        self.labels = torch.from_numpy(np.array(labels, np.int64))
        self.scale = torch.tensor(spec["scale"], dtype=torch.float32)
        self.mean = torch.tensor(spec["mean"][0], dtype=torch.float32)
        self.std = torch.tensor(spec["std"][0], dtype=torch.float32)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalize(self, u8: torch.Tensor) -> torch.Tensor:
        x = u8.to(torch.float32)[:, None] * self.scale
        return (x - self.mean) / self.std

    def batch(
        self, idx: torch.Tensor, augment: bool, g: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        imgs = self.images[idx]
        if augment and g is not None:
            b, h, w = imgs.shape
            pad = 2
            padded = F.pad(imgs, (pad, pad, pad, pad))
            dy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
            dx = torch.randint(0, 2 * pad + 1, (b,), generator=g)
            rows = (dy[:, None] + torch.arange(h))[:, :, None]
            cols = (dx[:, None] + torch.arange(w))[:, None, :]
            imgs = padded[torch.arange(b)[:, None, None], rows, cols]
            flip = torch.rand(b, generator=g) < 0.5
            imgs = torch.where(flip[:, None, None], imgs.flip(2), imgs)
        return self.normalize(imgs), self.labels[idx]


def _load_tensor_data(cfg: TrainConfig) -> tuple[_Tensors, _Tensors, list[str]]:
    spec = INPUTS["fmnist"]
    if cfg.dataset == "fashion-mnist":
        tr = D.load_fashion_mnist("train", cfg.data_root or None)
        te = D.load_fashion_mnist("test", cfg.data_root or None)
        labels = list(FMNIST_LABELS)
    else:
        tr = D.synthetic(max(cfg.subset, 512), seed=1234)
        te = D.synthetic(max(cfg.eval_subset, 256), seed=4321)
        labels = [f"class {i}" for i in range(10)]
    if cfg.subset:
        tr = (tr[0][: cfg.subset], tr[1][: cfg.subset])
    if cfg.eval_subset:
        te = (te[0][: cfg.eval_subset], te[1][: cfg.eval_subset])
    return _Tensors(*tr, spec), _Tensors(*te, spec), labels


# ---------------------------------------------------------------------------------------
# Training


def lr_at(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "step":
        return cfg.lr * cfg.lr_gamma ** (epoch // max(1, cfg.lr_step))
    t = (epoch * steps_per_epoch + step) / max(1, cfg.epochs * steps_per_epoch)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))


def _fmt_time(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _progress(prefix: str, done: int, total: int, t0: float, extra: str) -> str:
    frac = done / max(1, total)
    bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
    el = time.time() - t0
    eta = el / max(frac, 1e-9) - el
    return f"{prefix} [{bar}] {done}/{total} {extra} {el:.0f}s eta {_fmt_time(eta)}"


@torch.no_grad()
def evaluate(model: nn.Module, data: Any, batch_size: int = 500, device: str = "cpu") -> tuple[float, float]:
    """(top-1, top-5) accuracy of the PyTorch eval forward."""
    model.eval()
    top1 = top5 = n = 0
    if isinstance(data, _Tensors):
        it = (
            (data.batch(torch.arange(s.start, s.stop), False, None)) for s in D.batches(len(data), batch_size)
        )
    else:
        it = iter(data)
    for x, y in it:
        out = model(x.to(device))
        k = min(5, out.shape[1])
        pred = out.topk(k, dim=1).indices.cpu()
        top1 += int((pred[:, 0] == y).sum())
        top5 += int((pred == y[:, None]).any(dim=1).sum())
        n += int(y.shape[0])
    return top1 / max(1, n), top5 / max(1, n)


def _save(path: str, payload: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Our checkpoints hold only tensors and plain containers: read with weights_only=True."""
    from torch.torch_version import TorchVersion  # a str subclass; early checkpoints stored one

    with torch.serialization.safe_globals([TorchVersion]):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an xnornet training checkpoint")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    cfg = ckpt["config"]
    model = build(cfg["arch"], cfg["mode"], cfg["use_k"], ckpt["classes"], cfg["width"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model


def train(cfg: TrainConfig, log: Any = None) -> dict[str, Any]:
    """Train per `cfg`; returns the final metrics. Works alone or under torchrun."""
    cfg.validate()
    device = cfg.device
    dd = init_distributed(device)
    printer = log or (lambda s: print(s, file=sys.stderr, flush=True))

    def say(s: str) -> None:
        if dd.main:
            printer(s)

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.startswith("cuda"):
        device = f"cuda:{dd.local_rank}" if dd.world > 1 else device
        torch.cuda.set_device(device)

    # --- data
    loader: Any = None
    train_data: Any
    test_data: Any
    folder_spec = None
    if cfg.dataset in ("fashion-mnist", "synthetic"):
        train_data, test_data, labels = _load_tensor_data(cfg)
        input_spec = dict(INPUTS["fmnist"])
        classes = cfg.classes or 10
    else:
        spec = INPUTS[cfg.arch]
        folder_spec = D.ImageFolderSpec(
            str(Path(cfg.data_root) / "train"),
            spec["resize_size"],
            spec["height"],
            spec["scale"],
            spec["mean"],
            spec["std"],
            spec["color"],
        )
        train_data = D.image_folder_dataset(folder_spec, True, cfg.seed)
        val_spec = D.ImageFolderSpec(**{**asdict(folder_spec), "root": str(Path(cfg.data_root) / "val")})
        test_data = torch.utils.data.DataLoader(
            D.image_folder_dataset(val_spec, False), batch_size=cfg.batch_size, num_workers=cfg.workers
        )
        labels = list(train_data.classes)
        input_spec = dict(spec)
        classes = cfg.classes or len(labels)
        sampler: Any = torch.utils.data.distributed.DistributedSampler(
            train_data, num_replicas=dd.world, rank=dd.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
        loader = torch.utils.data.DataLoader(
            train_data, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=True
        )

    # --- model, optimizer, resume
    torch.manual_seed(cfg.seed)
    model = build(cfg.arch, cfg.mode, cfg.use_k, classes, cfg.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch = 0
    history: list[dict[str, Any]] = []
    if cfg.resume and cfg.out and os.path.exists(cfg.out):
        ckpt = load_checkpoint(cfg.out)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch = int(ckpt["epoch"])
        history = list(ckpt.get("history", []))
        torch.set_rng_state(ckpt["torch_rng"])
        say(f"resumed from {cfg.out} after epoch {start_epoch}")
    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.startswith("cuda") else None
        )

    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"train {cfg.arch} mode={cfg.mode} use_k={cfg.use_k} params={n_params} dataset={cfg.dataset} "
        f"n={len(train_data)} world={dd.world} epochs={cfg.epochs} batch={cfg.batch_size} lr={cfg.lr} "
        f"schedule={cfg.lr_schedule} seed={cfg.seed} threads={torch.get_num_threads()}"
    )

    top1 = top5 = float("nan")
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        if loader is None:
            perm = torch.randperm(len(train_data), generator=g)
            per_rank = len(perm) // dd.world
            mine = perm[dd.rank * per_rank : (dd.rank + 1) * per_rank]
            steps = math.ceil(per_rank / cfg.batch_size)
            batch_iter: Any = (
                train_data.batch(mine[s], cfg.augment, g) for s in D.batches(per_rank, cfg.batch_size)
            )
        else:
            loader.sampler.set_epoch(epoch)
            train_data.epoch = epoch
            steps = len(loader)
            batch_iter = iter(loader)
        t0 = time.time()
        seen = correct = 0
        loss_sum = 0.0
        for step, (x, y) in enumerate(batch_iter):
            lr = lr_at(cfg, epoch, step, steps)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = x.to(device), y.to(device)
            out = net(x)
            loss = F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += int(y.shape[0])
            correct += int((out.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * int(y.shape[0])
            if cfg.log_every and ((step + 1) % cfg.log_every == 0 or step + 1 == steps):
                say(
                    _progress(
                        f"epoch {epoch + 1}/{cfg.epochs}",
                        step + 1,
                        steps,
                        t0,
                        f"loss {loss_sum / seen:.4f} acc {100 * correct / seen:.2f}% lr {lr:.2e} "
                        f"{seen * dd.world / (time.time() - t0):.0f} img/s",
                    )
                )
        _sync_bn_buffers(model, dd.world)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(1, seen),
            "train_acc": correct / max(1, seen),
            "seconds": time.time() - t0,
        }
        last = epoch + 1 == cfg.epochs
        if dd.main and (last or (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0)):
            top1, top5 = evaluate(model, test_data, device=device)
            record.update(test_top1=top1, test_top5=top5)
            say(f"epoch {epoch + 1}: test top-1 {100 * top1:.2f}% top-5 {100 * top5:.2f}%")
        history.append(record)
        if dd.main and cfg.out:
            _save(
                cfg.out,
                {
                    "format": CHECKPOINT_FORMAT,
                    "config": asdict(cfg),
                    "classes": classes,
                    "labels": labels,
                    "input": input_spec,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch + 1,
                    "history": history,
                    "torch_rng": torch.get_rng_state(),
                    "torch_version": str(torch.__version__),
                },
            )
        if dd.world > 1:
            dist.barrier()
        if cfg.stop_after_epoch and epoch + 1 >= cfg.stop_after_epoch:
            break
    if cfg.dump_rank_state:
        Path(cfg.dump_rank_state).mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), Path(cfg.dump_rank_state) / f"rank{dd.rank}.pt")
    if dd.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return {"top1": top1, "top5": top5, "history": history, "rank": dd.rank, "world": dd.world}


def ddp_worker(rank: int, world: int, port: int, cfg_dict: dict[str, Any]) -> None:
    """A `torch.multiprocessing.spawn` target: one rank of a CPU/gloo run on 127.0.0.1
    (tests; real multi-machine runs use `torchrun ... -m xnornet train`)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    train(TrainConfig.from_dict(cfg_dict), log=lambda s: None)
