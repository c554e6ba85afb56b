"""The server's Prometheus metrics, one registry per app (tests build several apps in one
process; nothing is registered in prometheus_client's global registry).

Series:
  speech_requests_total{status}            inference requests answered, by HTTP status
  speech_requests_dropped_total{reason}    work skipped or results discarded
                                           (timeout_waiting, timeout_running, client_disconnected)
  speech_request_duration_seconds          histogram: admission to answer of 200s
  speech_queue_size, speech_queue_capacity requests waiting; how many may wait
  speech_requests_in_flight                handler calls running (timed-out ones included)
  speech_model_ready                       1 once the handler is loaded
  speech_device_info{device,dtype}         1 for where the models run, once loaded (a GPU replica
                                           whose driver torch cannot use shows device="cpu")
  process_*                                the process collector: resident memory, CPU, ...
"""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

# The classic text format, as this server has always answered (prometheus_client's
# CONTENT_TYPE_LATEST may name a newer version).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# From a rejected request (well under 0.1 s) to a long file near the default timeout
# (REQUEST_TIMEOUT 600 s) and beyond: 0.1 s .. 30 min.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)


class Metrics:
    """`requests`, `dropped` (labelled counters), `duration` (histogram) and `in_flight`
    (gauge) are moved by the server; the queue and readiness gauges read their callables
    at scrape time."""

    def __init__(self, *, queue_size: Callable[[], int], queue_capacity: int, ready: Callable[[], bool]):
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter("speech_requests", "Inference requests answered, by HTTP status.",
                                ["status"], registry=registry)
        self.dropped = Counter("speech_requests_dropped",
                               "Requests whose work was skipped or whose result was discarded.",
                               ["reason"], registry=registry)
        self.duration = Histogram("speech_request_duration_seconds",
                                  "Time from admission to answer of requests answered 200.",
                                  buckets=LATENCY_BUCKETS, registry=registry)
        self.in_flight = Gauge("speech_requests_in_flight",
                               "Handler calls running now (including ones whose request timed out).",
                               registry=registry)
        Gauge("speech_queue_size", "Requests waiting for the handler.",
              registry=registry).set_function(lambda: float(queue_size()))
        Gauge("speech_queue_capacity", "Requests that may wait before the server answers 503.",
              registry=registry).set(queue_capacity)
        Gauge("speech_model_ready", "1 once the handler is loaded.",
              registry=registry).set_function(lambda: float(bool(ready())))
        self._device = Gauge("speech_device_info", "Where the models run (1 for the device and dtype in use).",
                             ["device", "dtype"], registry=registry)
        ProcessCollector(registry=registry)  # process_resident_memory_bytes and friends

    def device(self, device: str, dtype: str) -> None:
        self._device.labels(device=device, dtype=dtype).set(1)

    def answered(self, status: int) -> None:
        self.requests.labels(status=str(status)).inc()

    def drop(self, reason: str) -> None:
        self.dropped.labels(reason=reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
