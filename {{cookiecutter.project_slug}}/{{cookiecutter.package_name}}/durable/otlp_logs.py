"""Log records over OTLP/HTTP to ``otlp_logs_endpoints``, when ``enable_otlp`` and endpoints are set.

A handler on the root logger, so every logger's records go, the app's included. It carries the
context filter, so each record arrives with ``workflow_id``, ``step_id`` and ``request_id`` as
attributes (and, inside a span, the trace and span IDs). ``otlp_log_level`` (default INFO) is its
level. Needs the project's ``otlp`` extra, like tracing.
"""

from __future__ import annotations

import logging
from typing import Any

from .config import RuntimeSettings
from .context import ContextLogFilter
from .tracing import import_otel, resource_of

_handler: logging.Handler | None = None
_provider: Any = None


def make_log_exporter(endpoint: str) -> Any:
    """The exporter for one endpoint; tests swap in an in-memory one."""
    return import_otel("opentelemetry.exporter.otlp.proto.http._log_exporter").OTLPLogExporter(endpoint=endpoint)


def enable_otlp_logs(settings: RuntimeSettings) -> None:
    """Send log records to each of ``settings.otlp_logs_endpoints`` (nothing when there are none)."""
    global _handler, _provider
    if not settings.otlp_logs_endpoints or _handler is not None:
        return
    sdk_logs = import_otel("opentelemetry.sdk._logs")
    export = import_otel("opentelemetry.sdk._logs.export")
    provider = sdk_logs.LoggerProvider(resource=resource_of(settings))
    for endpoint in settings.otlp_logs_endpoints:
        provider.add_log_record_processor(export.BatchLogRecordProcessor(make_log_exporter(endpoint)))
    handler: logging.Handler = sdk_logs.LoggingHandler(level=settings.otlp_log_level, logger_provider=provider)
    handler.addFilter(ContextLogFilter())
    logging.getLogger().addHandler(handler)
    _handler, _provider = handler, provider


def disable_otlp_logs() -> None:
    """Detach the handler and flush what is batched (``DBOS.destroy()``)."""
    global _handler, _provider
    handler, provider, _handler, _provider = _handler, _provider, None, None
    if handler is not None:
        logging.getLogger().removeHandler(handler)
    if provider is not None:
        provider.shutdown()
