"""The `xnornet` command: one dispatcher above the engine, service and training packages.

Product subcommands are listed in xnornet/cli.py; other distributions (the benchmarks) add
theirs through the `xnornet.commands` entry-point group, so no product module names them.
"""
