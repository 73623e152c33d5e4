"""Prometheus metrics of one service instance.

Each app owns its registry (not prometheus_client's global one), so several apps in one
process (tests) never collide and every count belongs to exactly one server.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    Summary,
    generate_latest,
)

# Latencies here run from a fraction of a millisecond to seconds.
MS_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
REJECT_REASONS = ("queue_full", "deadline", "too_large", "bad_image", "unsupported_type", "disconnect")


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.requests = Counter(
            "xnornet_requests",
            "HTTP requests by endpoint, model and status",
            ["endpoint", "model", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "xnornet_request_duration_seconds",
            "Request latency, end to end",
            ["endpoint"],
            buckets=MS_BUCKETS,
            registry=r,
        )
        # Per model, every protocol: the success/fail counts and times of the statistics
        # extension (service/oip.py), so they count what Triton counts.
        self.model_request = Summary(
            "xnornet_model_request_seconds",
            "Requests that named a model, by outcome (success = 2xx or OK), end to end",
            ["model", "outcome"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "xnornet_queue_wait_seconds",
            "Time a request waited in the batch queue",
            ["model"],
            buckets=MS_BUCKETS,
            registry=r,
        )
        self.preprocess = Histogram(
            "xnornet_preprocess_seconds",
            "Decode + preprocess time per image",
            ["model"],
            buckets=MS_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "xnornet_inference_seconds", "Engine time per batch", ["model"], buckets=MS_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "xnornet_batch_size", "Images per engine call", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "xnornet_queue_depth", "Requests waiting in the batch queue", ["model"], registry=r
        )
        self.inflight = Gauge("xnornet_inflight_requests", "Requests being handled now", registry=r)
        self.rejected = Counter("xnornet_rejected", "Requests refused, by reason", ["reason"], registry=r)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)  # present at 0 from the start: rates need a baseline
        self.model_loads = Counter(
            "xnornet_model_loads", "Model version loads by result", ["model", "result"], registry=r
        )
        self.model_info = Gauge(
            "xnornet_model_info",
            "The model version being served (value 1)",
            ["model", "version", "sha256", "isa"],
            registry=r,
        )

    def set_served(self, model: str, version: int | None, sha256: str = "", isa: str = "") -> None:
        """Keep exactly one xnornet_model_info series per served model."""
        for labels in list(self._info_labels(model)):
            self.model_info.remove(*labels)
        if version is not None:
            self.model_info.labels(model, str(version), sha256, isa).set(1)

    def _info_labels(self, model: str) -> list[tuple[str, ...]]:
        out = []
        for metric in self.model_info.collect():
            for sample in metric.samples:
                if sample.labels.get("model") == model:
                    out.append(tuple(sample.labels[k] for k in ("model", "version", "sha256", "isa")))
        return out

    def render(self) -> bytes:
        return generate_latest(self.registry)
