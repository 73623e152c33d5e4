"""Training, export and import of BWN / XNOR networks (the optional `xnornet[train]` extra).

`training.cli`, `training.data`, `training.evaluate` (the `eval` command) and `xnornet pull`
(`training.pull`, `catalog`, `converters`, `fetch`, `larq_zoo`) work without PyTorch; everything
else imports torch.
"""

__all__ = [
    "catalog",
    "cli",
    "converters",
    "data",
    "evaluate",
    "export",
    "fetch",
    "importers",
    "larq_zoo",
    "layers",
    "models",
    "pull",
    "train",
]
