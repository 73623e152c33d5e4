"""Training, export and import of BWN / XNOR networks (the optional `xnornet[train]` extra).

`training.cli`, `training.data`, `training.evaluate` (the `eval` command) and `xnornet pull`
(`training.pull`, `catalog`, `converters`, `fetch`, `keras_hdf5`, `larq_*`) work without PyTorch; everything
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
    "keras_hdf5",
    "larq_arch",
    "larq_convert",
    "larq_releases",
    "larq_zoo",
    "layers",
    "models",
    "pull",
    "train",
]
