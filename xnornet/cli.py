"""The `xnornet` command. Each subcommand lives in its own module, imported only when
that subcommand runs (so `xnornet info` never imports FastAPI or PyTorch).

A subcommand module provides:
    add_arguments(name: str, parser: argparse.ArgumentParser) -> None
    run(name: str, args: argparse.Namespace) -> int          (the exit status)

The product's subcommands are listed below. Other installed distributions add subcommands
through the `xnornet.commands` entry-point group: each entry point is named after its
subcommand and points at such a module, e.g. in their pyproject.toml

    [project.entry-points."xnornet.commands"]
    bench = "benchmarks.engine_speed"

The one-line help of a plugged-in command is its module docstring's first line, up to a colon.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

ENTRY_POINT_GROUP = "xnornet.commands"

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("engine.cli_info", "describe a model file (layers, input spec, sizes, ISA)"),
    "serve": ("service.cli", "serve a model repository over HTTP"),
    "predict": ("service.cli", "classify an image file locally, without a server"),
    "train": ("training.cli", "train a BWN / XNOR network (needs the 'train' extra)"),
    "export": ("training.cli", "write a trained checkpoint as a packed .xnor model"),
    "pull": ("training.pull", "download, verify and convert a catalogue model (ImageNet) into a repository"),
    "import": ("training.cli", "convert a public XNOR-Net checkpoint to a .xnor model"),
    "eval": ("training.cli", "evaluate a .xnor model on a dataset in the C engine"),
}

# Subcommands that a separate distribution provides: name -> (distribution, how to install it
# from a checkout), for the message shown when it is missing.
OPTIONAL: dict[str, tuple[str, str]] = {
    "bench": ("xnornet-benchmarks", "pip install -e ./benchmarks"),
    "loadtest": ("xnornet-benchmarks", "pip install -e ./benchmarks"),
}


def plugins() -> dict[str, EntryPoint]:
    """Installed subcommands of other distributions (never one that shadows a product command)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in COMMANDS}


def _summary(ep: EntryPoint) -> str:
    """The first docstring line of a plugged-in module, read without importing it."""
    import ast
    import importlib.util

    try:
        spec = importlib.util.find_spec(ep.module)
        if spec is None or spec.origin is None:
            return ""
        with open(spec.origin, encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
    except (ImportError, OSError, SyntaxError, ValueError):
        return ""
    return _first_line(doc)


def _usage(extra: dict[str, EntryPoint]) -> str:
    rows = {name: text for name, (_, text) in COMMANDS.items()}
    rows |= {name: _summary(ep) for name, ep in extra.items()}
    rows |= {name: f"(needs {dist}: {how})" for name, (dist, how) in OPTIONAL.items() if name not in rows}
    width = max(map(len, rows))
    lines = "\n".join(f"  {name:<{width}}  {text}" for name, text in rows.items())
    return (
        f"usage: xnornet COMMAND [options]\n\ncommands:\n{lines}\n\n"
        "'xnornet COMMAND --help' for a command's options."
    )


def _load(name: str, extra: dict[str, EntryPoint]) -> tuple[ModuleType, str]:
    if name in COMMANDS:
        module_name, text = COMMANDS[name]
        return importlib.import_module(module_name), text
    module = extra[name].load()
    if not isinstance(module, ModuleType):
        raise TypeError(f"entry point {extra[name].value!r} is not a module")
    return module, _first_line(module.__doc__)


def _first_line(doc: str | None) -> str:
    line = doc.strip().splitlines()[0] if doc and doc.strip() else ""
    return line.split(":")[0].rstrip(".")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = plugins()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(extra))
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from engine import __version__

        print(__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS and name not in extra:
        if name in OPTIONAL:
            dist, how = OPTIONAL[name]
            print(f"xnornet {name}: comes with {dist}, not installed ({how})", file=sys.stderr)
        else:
            print(f"xnornet: unknown command {name!r}\n\n{_usage(extra)}", file=sys.stderr)
        return 2
    try:
        module, text = _load(name, extra)
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
