"""Optional OpenTelemetry traces: a span per request, per workflow execution and per step, over OTLP/HTTP.

Off by default and free when off (one test per span). Turned on by ``enable_otlp=True``; needs the
project's ``otlp`` extra (opentelemetry-sdk and the OTLP/HTTP exporter), else launch fails with one
error naming it. Spans nest as the work does: the request's span (``flask.py``) is the parent of the
workflows it runs or starts, a workflow's span the parent of its steps'. A workflow started in the
background runs on a pool thread, so ``carry`` hands the caller's trace context to that thread.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from types import ModuleType
from typing import Any, TypeVar

from .config import RuntimeSettings
from .error import DBOSInitializationError

T = TypeVar("T")

_tracer: Any = None
_provider: Any = None


def import_otel(module: str) -> ModuleType:
    """An OpenTelemetry module, imported by name (the extra is optional); the one clear error if missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DBOSInitializationError(
            f"enable_otlp=True needs OpenTelemetry ({exc.name} is missing); install the project's otlp extra: "
            "pip install -e '.[otlp]'"
        ) from exc


def make_span_exporter(endpoint: str | None) -> Any:
    """The exporter for one endpoint (None: the OTEL_EXPORTER_OTLP_* environment); tests swap in memory."""
    return import_otel("opentelemetry.exporter.otlp.proto.http.trace_exporter").OTLPSpanExporter(endpoint=endpoint)


def resource_of(settings: RuntimeSettings) -> Any:
    resources = import_otel("opentelemetry.sdk.resources")
    return resources.Resource.create({"service.name": settings.name, **settings.otlp_attributes})


def enable_tracing(settings: RuntimeSettings) -> None:
    """A tracer provider exporting to ``otlp_traces_endpoints`` (or the OTEL_* environment)."""
    global _tracer, _provider
    trace = import_otel("opentelemetry.trace")
    sdk_trace = import_otel("opentelemetry.sdk.trace")
    export = import_otel("opentelemetry.sdk.trace.export")
    provider = sdk_trace.TracerProvider(resource=resource_of(settings))
    for endpoint in settings.otlp_traces_endpoints or (None,):
        provider.add_span_processor(export.BatchSpanProcessor(make_span_exporter(endpoint)))
    if not isinstance(trace.get_tracer_provider(), sdk_trace.TracerProvider):
        trace.set_tracer_provider(provider)  # the app's own instrumentation exports there too
    _provider, _tracer = provider, provider.get_tracer("durable")


def disable_tracing() -> None:
    """Flush and stop (``DBOS.destroy()``): spans after this are no-ops again."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def span(name: str, **attributes: Any) -> Any:
    """A span around a request, workflow or step when tracing is on; a no-op context otherwise."""
    if _tracer is None:
        return nullcontext()
    return _span(name, attributes)


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[None]:
    with _tracer.start_as_current_span(name, attributes={k: v for k, v in attributes.items() if v is not None}):
        yield


def carry(work: Callable[[], T]) -> Callable[[], T]:
    """``work`` to run on another thread under this thread's current span (unchanged when tracing is off)."""
    if _tracer is None:
        return work
    context = importlib.import_module("opentelemetry.context")
    captured = context.get_current()

    def traced() -> T:
        token = context.attach(captured)
        try:
            return work()
        finally:
            context.detach(token)

    return traced
