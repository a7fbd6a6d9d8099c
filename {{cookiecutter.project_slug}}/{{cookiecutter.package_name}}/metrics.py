"""Prometheus metrics of the durable runtime (prometheus-client).

The runtime reports events (``durable/observe.py``); this module counts them. Two kinds of series:

* **counted in this process**: workflows started, completed and failed, step durations, retries,
  recoveries, adoptions, idempotent replays and refusals, checkpoint bytes. Under gunicorn every
  worker counts its own, so ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR``: prometheus-client
  then keeps each worker's values in files there and a scrape of any worker sums them all
  (its multiprocess mode; the folder is emptied when gunicorn starts and a dead worker's live gauge
  files are removed in ``child_exit``).
* **read from the database at scrape time**: workflows pending and each queue's depth. They describe
  the shared database, so any worker answers for all without adding anything up.

Served by the admin server at ``/metrics`` (behind its token) and, with ``METRICS_PATH``, by the app
behind the dashboard's auth hook.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .durable import observe, overview
from .durable.dashboard import AuthHook

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Steps call payment APIs and databases: from a millisecond to minutes.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class RuntimeMetrics:
    """The counted series, and the listener that feeds them from the runtime's events."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.started = counter(
            "durable_workflows_started_total", "Workflows whose first run began", ("name",)
        )
        self.completed = counter("durable_workflows_completed_total", "Workflows that succeeded", ("name",))
        self.failed = counter("durable_workflows_failed_total", "Workflows that ended in an error", ("name",))
        self.recovered = counter(
            "durable_workflow_recoveries_total",
            "Workflows run again from their checkpoints (recovery, resume)",
            ("name",),
        )
        self.adopted = counter(
            "durable_workflow_adoptions_total", "Workflows taken over from an executor that died"
        )
        self.retries = counter(
            "durable_step_retries_total", "Failed step attempts that were retried", ("name",)
        )
        self.replays = counter(
            "durable_idempotent_replays_total", "Keyed requests answered from their stored response"
        )
        self.refusals = counter(
            "durable_idempotent_refusals_total", "Keyed requests refused (409, 422)", ("status",)
        )
        self.checkpoint_bytes = counter(
            "durable_checkpoint_bytes_total", "Bytes of outputs and errors checkpointed", ("kind",)
        )
        self.step_seconds = Histogram(
            "durable_step_duration_seconds",
            "Step run time, retries included",
            ("name", "outcome"),
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        # livesum: the workers' values added up, a dead worker's dropped.
        self.in_flight = Gauge(
            "durable_workflows_in_flight",
            "Workflow bodies running now",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Each series' child by its label values: labels() validates them on every call, and a durable
        # request emits about ten events. The values are workflow and step names, a bounded set.
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        child = self._children.get((metric, values))
        if child is None:
            child = self._children[(metric, values)] = metric.labels(*values)
        return child

    def listen(self, event: str, labels: dict[str, str], value: float) -> None:
        """``observe.Listener``: one runtime event."""
        if event == "workflow_started":
            self._child(self.started, labels["name"]).inc()
        elif event == "workflow_finished":
            done = self.completed if labels["status"] == "SUCCESS" else self.failed
            self._child(done, labels["name"]).inc()
        elif event == "workflow_running":
            self.in_flight.inc(value)
        elif event == "workflow_recovered":
            self._child(self.recovered, labels["name"]).inc()
        elif event == "workflow_adopted":
            self.adopted.inc(value)
        elif event == "step_finished":
            self._child(self.step_seconds, labels["name"], labels["outcome"]).observe(value)
        elif event == "step_retried":
            self._child(self.retries, labels["name"]).inc()
        elif event == "checkpoint_bytes":
            self._child(self.checkpoint_bytes, labels["kind"]).inc(value)
        elif event == "idempotent_replay":
            self.replays.inc()
        elif event == "idempotent_refusal":
            self._child(self.refusals, labels["status"]).inc()


class DatabaseCollector(Collector):
    """Gauges read from the shared database when scraped: any process answers for all."""

    def describe(self) -> Iterator[Metric]:
        """The series' names without their values: registering must not touch the database."""
        yield GaugeMetricFamily("durable_workflows_pending", "")
        yield GaugeMetricFamily("durable_queue_depth", "", labels=["queue"])
        yield GaugeMetricFamily("durable_queue_running", "", labels=["queue"])

    def collect(self) -> Iterator[Metric]:
        try:
            pending = overview.count_workflows("PENDING")
            queues = overview.queue_overview()
        except Exception:  # the database is away: the counted series still answer
            logger.warning("metrics: could not read the workflow counts", exc_info=True)
            return
        yield GaugeMetricFamily(
            "durable_workflows_pending", "Workflows running or due to run (all processes)", value=pending
        )
        depth = GaugeMetricFamily(
            "durable_queue_depth", "Workflows waiting in each queue (ENQUEUED)", labels=["queue"]
        )
        running = GaugeMetricFamily(
            "durable_queue_running", "Workflows of each queue running now (PENDING)", labels=["queue"]
        )
        for queue in queues:
            depth.add_metric([queue.name], queue.enqueued)
            running.add_metric([queue.name], queue.pending)
        yield depth
        yield running


_lock = threading.Lock()
_metrics: RuntimeMetrics | None = None


def install() -> RuntimeMetrics:
    """Create the series once per process and listen to the runtime; the admin server serves them."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = RuntimeMetrics()
            if not os.environ.get(MULTIPROC_ENV):
                REGISTRY.register(DatabaseCollector())
            observe.add_listener(_metrics.listen)
            observe.set_exposition(render)
        return _metrics


def render() -> tuple[bytes, str]:
    """One scrape: this process's series, or every worker's under gunicorn, and the database gauges."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(DatabaseCollector())
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def init_metrics(app: Flask, *, path: str | None, auth: AuthHook | None) -> None:
    """Count the runtime's events; with ``path``, also serve them on the app behind ``auth``."""
    install()
    if path is None:
        return
    if auth is None:
        raise ValueError(
            f"METRICS_PATH={path} needs the dashboard's auth (DASHBOARD_PASSWORD): "
            "metrics name workflows and queues, so they are never served open"
        )

    def metrics() -> Response:
        denied = auth()
        if denied is not None:
            return denied
        body, content_type = render()
        return Response(body, 200, {"Content-Type": content_type})

    app.add_url_rule(path, "metrics", metrics)
