"""The Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`), served beside
the HTTP API from the same runtime: repository, batchers, limits, metrics and lifecycle."""
