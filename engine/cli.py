"""The `xnornet` command. Each subcommand lives in its own module, imported only when
that subcommand runs (so `xnornet info` never imports FastAPI or PyTorch).

A subcommand module provides:
    add_arguments(name: str, parser: argparse.ArgumentParser) -> None
    run(name: str, args: argparse.Namespace) -> int          (the exit status)
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("engine.cli_info", "describe a model file (layers, input spec, sizes, ISA)"),
    "bench": ("engine.bench", "benchmark the engine on XNOR AlexNet against PyTorch float32"),
    "serve": ("service.cli", "serve a model repository over HTTP"),
    "predict": ("service.cli", "classify an image file locally, without a server"),
    "loadtest": ("service.loadtest", "load-test a running server (loopback)"),
    "train": ("training.cli", "train a BWN / XNOR network (needs the 'train' extra)"),
    "export": ("training.cli", "write a trained checkpoint as a packed .xnor model"),
    "pull": ("training.pull", "download, verify and convert a catalogue model (ImageNet) into a repository"),
    "import": ("training.cli", "convert a public XNOR-Net checkpoint to a .xnor model"),
    "eval": ("training.cli", "evaluate a .xnor model on a dataset in the C engine"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return (
        f"usage: xnornet COMMAND [options]\n\ncommands:\n{rows}\n\n"
        "'xnornet COMMAND --help' for a command's options."
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"xnornet: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = " (install the 'train' extra: pip install 'xnornet[train]')" if exc.name == "torch" else ""
        print(f"xnornet {name}: missing module {exc.name!r}{hint}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"xnornet {name}", description=text)
    module.add_arguments(name, parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(name, args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
