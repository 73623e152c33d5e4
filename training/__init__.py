"""Training, export and import of BWN / XNOR networks (the optional `xnornet[train]` extra).

`training.cli`, `training.data` and `training.evaluate` (the `eval` command) work without PyTorch;
everything else imports torch.
"""

__all__ = ["cli", "data", "evaluate", "export", "importers", "layers", "models", "train"]
