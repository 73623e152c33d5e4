"""xnornet's benchmarks and load generators: beside the product, never imported by it.

They add `xnornet bench` and `xnornet loadtest` through the `xnornet.commands` entry points
(benchmarks/pyproject.toml); the others run as modules:

    python -m benchmarks.service_speed      the service: batching, overhead, XNOR vs PyTorch
    python -m benchmarks.preprocess_stages  image preprocessing, stage by stage
    python -m benchmarks.larq_speed         a Larq Zoo architecture against its PyTorch twin
"""
