"""Subcommands `train`, `export`, `import` and `eval` of the `xnornet` command.

This module imports neither torch nor the C engine at import time: `eval` needs only the
engine, the others need the 'train' extra (PyTorch)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from typing import Any

_TRAIN_FLAGS = {  # config field -> (type, help)
    "dataset": (str, "fashion-mnist | imagenet-folder (DATA_ROOT/train, DATA_ROOT/val) | synthetic"),
    "data_root": (str, "dataset folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist)"),
    "arch": (str, "fmnist | alexnet"),
    "mode": (str, "xnor | bwn"),
    "width": (float, "channel multiplier (1.0 = the documented network)"),
    "classes": (int, "output classes (default: from the dataset)"),
    "epochs": (int, "epochs"),
    "batch_size": (int, "batch size per process"),
    "lr": (float, "initial learning rate (Adam)"),
    "lr_schedule": (str, "cosine | step | constant"),
    "lr_step": (int, "step schedule: epochs between decays"),
    "lr_gamma": (float, "step schedule: decay factor"),
    "weight_decay": (float, "Adam weight decay"),
    "label_smoothing": (float, "cross-entropy label smoothing"),
    "seed": (int, "seed of weights, data order and augmentation"),
    "subset": (int, "train on the first N images only"),
    "eval_subset": (int, "evaluate on the first N test images only"),
    "out": (str, "checkpoint path (written every epoch; resumed from if present)"),
    "device": (str, "cpu | cuda"),
    "threads": (int, "torch threads per process (0: PyTorch's default)"),
    "workers": (int, "DataLoader workers (imagenet-folder)"),
    "log_every": (int, "print a progress line every N batches"),
    "eval_every": (int, "evaluate every N epochs (0: only at the end)"),
    "stop_after_epoch": (int, "stop after epoch N (resume later with the same config)"),
    "name": (str, "model name written by export"),
}


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    from engine.int8 import add_edges_argument  # numpy only

    if name == "train":
        parser.add_argument("--config", help="a .toml or .json file of TrainConfig fields; flags override it")
        for key, (typ, text) in _TRAIN_FLAGS.items():
            parser.add_argument(f"--{key.replace('_', '-')}", dest=key, type=typ, default=None, help=text)
        parser.add_argument(
            "--use-k",
            dest="use_k",
            action="store_const",
            const=True,
            default=None,
            help="XNOR: scale binary layers by K",
        )
        parser.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None)
        parser.add_argument(
            "--no-resume",
            dest="resume",
            action="store_const",
            const=False,
            default=None,
            help="start afresh even if the checkpoint exists",
        )
        parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    elif name == "export":
        parser.add_argument("checkpoint", help="a checkpoint written by xnornet train")
        parser.add_argument("-o", "--output", required=True, help="the .xnor file to write")
        parser.add_argument("--name", default=None, help="model name (default: the config's)")
        add_edges_argument(parser)
    elif name == "import":
        # One subparser per checkpoint layout (args.format names it).
        sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
        jp = sub.add_parser("jiecaoyu-alexnet", help="XNOR-Net-PyTorch's ImageNet AlexNet (.pth.tar)")
        jp.add_argument("checkpoint", help="e.g. alexnet.pth.tar (read with torch.load(weights_only=True))")
        jp.add_argument("-o", "--output", required=True, help="the .xnor file to write")
        jp.add_argument("--name", default="alexnet-xnor-jiecaoyu", help="model name")
        add_edges_argument(jp)
        from .larq_zoo import add_cli_arguments  # numpy + engine.format only (h5py when run)

        add_cli_arguments(
            sub.add_parser(
                "larq-zoo",
                help="Larq Zoo HDF5 weights (XNORNet, BinaryAlexNet, BinaryResNetE18); see --list",
            )
        )
    elif name == "eval":
        parser.add_argument("--model", required=True, help="a .xnor model file")
        parser.add_argument(
            "--dataset", default="fashion-mnist", choices=["fashion-mnist", "imagenet-folder"]
        )
        parser.add_argument(
            "--data-root", default=None, help="dataset folder (imagenet-folder: class folders)"
        )
        parser.add_argument("--limit", type=int, default=0, help="only the first N images")
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--threads", type=int, default=None, help="engine threads (default: all)")
        parser.add_argument("--reference", action="store_true", help="run the numpy oracle, not the C engine")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
    else:  # pragma: no cover - xnornet/cli.py only routes the four names above here
        raise ValueError(name)


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    overrides: dict[str, Any] = {
        f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None
    }
    cfg = TrainConfig.from_dict({**{f.name: getattr(cfg, f.name) for f in fields(TrainConfig)}, **overrides})
    if args.print_config:
        print(json.dumps(cfg.__dict__, indent=2))
        return 0
    res = train(cfg)
    if res["rank"] == 0:
        print(json.dumps({"top1": res["top1"], "top5": res["top5"], "checkpoint": cfg.out}))
    return 0


def run(name: str, args: argparse.Namespace) -> int:
    try:
        if name == "train":
            return _train(args)
        if name == "export":
            from .export import export_checkpoint

            m = export_checkpoint(args.checkpoint, args.output, args.name, edges=args.edges)
            print(
                f"wrote {args.output}: {m.name}, {len(m.nodes)} nodes, {len(m.labels)} labels, "
                f"{args.edges} edges"
            )
            return 0
        if name == "import" and args.format == "larq-zoo":  # training/larq_zoo.py
            from .larq_zoo import run_cli

            return run_cli(args)
        if name == "import":
            from .importers import IMPORTERS

            m = IMPORTERS[args.format](args.checkpoint, args.output, name=args.name, edges=args.edges)
            print(f"wrote {args.output}: {m.name}, {len(m.nodes)} nodes, {len(m.labels)} labels")
            return 0
        if name == "eval":
            from .evaluate import main_eval

            return main_eval(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"xnornet {name}: {exc}", file=sys.stderr)
        return 1
    raise ValueError(name)
