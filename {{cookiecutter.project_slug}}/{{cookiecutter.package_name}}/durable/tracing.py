"""Optional OpenTelemetry traces: one span per workflow execution and per step, sent over OTLP/HTTP.

Off by default and free when off (one boolean test per span). Turned on by ``enable_otlp=True``;
needs the project's ``otlp`` extra (opentelemetry-sdk and the OTLP/HTTP exporter).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from .config import RuntimeSettings
from .error import DBOSInitializationError

_tracer: Any = None


def enable_tracing(settings: RuntimeSettings) -> None:
    """Install a tracer provider exporting to ``otlp_traces_endpoints`` (or the OTEL_* environment)."""
    global _tracer
    try:  # imported by name: the otlp extra is optional, so type checkers may not see it
        trace = importlib.import_module("opentelemetry.trace")
        exporter = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        resources = importlib.import_module("opentelemetry.sdk.resources")
        sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
        export = importlib.import_module("opentelemetry.sdk.trace.export")
    except ImportError as exc:
        raise DBOSInitializationError(
            f"enable_otlp=True needs OpenTelemetry ({exc.name} is missing); install the project's otlp extra: "
            "pip install -e '.[otlp]'"
        ) from exc
    resource = resources.Resource.create({"service.name": settings.name, **settings.otlp_attributes})
    provider = sdk_trace.TracerProvider(resource=resource)
    endpoints = settings.otlp_traces_endpoints or (None,)
    for endpoint in endpoints:
        provider.add_span_processor(export.BatchSpanProcessor(exporter.OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("durable")


def span(name: str, **attributes: Any) -> Any:
    """A span around a workflow or step when tracing is on; a no-op context otherwise."""
    if _tracer is None:
        return nullcontext()
    return _span(name, attributes)


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[None]:
    with _tracer.start_as_current_span(name, attributes={k: v for k, v in attributes.items() if v is not None}):
        yield
