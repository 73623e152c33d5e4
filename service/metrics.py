"""Prometheus metrics of one service instance.

Each app owns its registry (not prometheus_client's global one), so several apps in one
process (tests) never collide and every count belongs to exactly one server.

With `multiprocess_dir` (the workers of `xnornet serve --workers N`; the supervisor sets
PROMETHEUS_MULTIPROC_DIR to it before the workers start, as prometheus-client requires) the
values live in files there and every worker's /metrics reports the sum over all workers:
counters and histograms add up; the in-flight and queue gauges add over the live workers;
xnornet_model_info shows a version while any live worker serves it. The process_* metrics of
one process are left out in that mode: no single process speaks for the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Latencies here run from a fraction of a millisecond to seconds.
MS_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
REJECT_REASONS = ("queue_full", "deadline", "too_large", "bad_image", "unsupported_type", "disconnect")
CHILD_CACHE_SIZE = 4096  # label values can come from clients (model names): keep the cache bounded


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess = multiprocess_dir is not None
        self.registry = r = CollectorRegistry()
        if multiprocess_dir is None:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            self.exposed = r
        else:
            # What /metrics renders: the files of every worker, summed.
            self.exposed = CollectorRegistry()
            PlatformCollector(registry=self.exposed)
            self.exposed.register(_ServedOnly(MultiProcessCollector(None, path=str(multiprocess_dir))))
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
            "xnornet_queue_depth",
            "Requests waiting in the batch queue",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.inflight = Gauge(
            "xnornet_inflight_requests", "Requests being handled now", registry=r, multiprocess_mode="livesum"
        )
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
            multiprocess_mode="livemax",
        )
        self._info_labels: dict[str, tuple[str, str, str, str]] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """metric.labels(*labels), cached: prometheus-client validates the values and takes a lock
        on every labels() call, ~2 us, several times per request on the event loop. Not for
        xnornet_model_info, whose series are removed."""
        key = (id(metric), labels)
        c = self._children.get(key)
        if c is None:
            c = metric.labels(*labels)
            if len(self._children) < CHILD_CACHE_SIZE:
                self._children[key] = c
        return c

    def set_served(self, model: str, version: int | None, sha256: str = "", isa: str = "") -> None:
        """Keep exactly one xnornet_model_info series per served model."""
        old = self._info_labels.pop(model, None)
        if old is not None:
            if self.multiprocess:
                # prometheus-client cannot remove a series from its files: 0 marks it gone
                # (_ServedOnly leaves it out of /metrics).
                self.model_info.labels(*old).set(0)
            else:
                self.model_info.remove(*old)
        if version is not None:
            labels = (model, str(version), sha256, isa)
            self.model_info.labels(*labels).set(1)
            self._info_labels[model] = labels

    def render(self) -> bytes:
        return generate_latest(self.exposed)


class _ServedOnly(Collector):
    """The multiprocess collector, without the xnornet_model_info series marked gone (0)."""

    def __init__(self, inner: MultiProcessCollector) -> None:
        self.inner = inner

    def collect(self) -> Iterable[Metric]:
        for metric in self.inner.collect():
            if metric.name == "xnornet_model_info":
                metric.samples = [s for s in metric.samples if s.value != 0]
            yield metric
