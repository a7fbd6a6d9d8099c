"""Process-wide logging: one line per record on stderr, where gunicorn and Docker collect it.

Every line written inside a request or a workflow names them: the durable runtime's
``ContextLogFilter`` adds ``request_id``, ``workflow_id`` and ``step_id`` to each record. It sits on
the *handler*, not on a logger: a logger's filters do not run for records of its child loggers, while
a handler sees every record that reaches it. ``LOG_FORMAT=json`` writes one JSON object per line
(python-json-logger) with those fields, for log stores that index them.

Messages often hold values from requests (a user ID, a header). A newline in one would start what
looks like a record of its own, so the message's control characters are written escaped (``\\n``),
and the lines of a traceback are indented under their record: every line that starts at column 0 is
a real record.
"""

from __future__ import annotations

import logging
import re
from types import TracebackType

from pythonjsonlogger.json import JsonFormatter

from .durable.context import ContextLogFilter

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TRACEBACK_INDENT = "    | "
LOG_FORMATS = ("text", "json")
#: The context fields, in the order a text line shows them.
CONTEXT_FIELDS = ("request_id", "workflow_id", "step_id")
#: What each JSON line holds (python-json-logger renames none; ``timestamp`` is ISO 8601).
JSON_FIELDS = ("levelname", "name", "process", "message", *CONTEXT_FIELDS)


def escape_controls(text: str) -> str:
    """``a\\nb`` -> ``a\\\\nb``: the text on one line, its control characters readable."""
    return UNSAFE.sub(lambda found: repr(found.group())[1:-1], text)


class OneLineFormatter(logging.Formatter):
    """A record's message on one line; a traceback (or stack) follows on indented lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape_controls(record.message)
        line = super().formatMessage(record)
        context = " ".join(
            f"{name}={escape_controls(str(value))}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        )
        return f"{line} [{context}]" if context else line

    def formatException(  # noqa: N802 - logging's name
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        return self._indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return self._indent(super().formatStack(stack_info))

    @staticmethod
    def _indent(text: str) -> str:
        return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in text.splitlines())


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``LOG_FORMAT``: ``text`` (one readable line) or ``json`` (one object per line)."""
    if log_format == "json":
        return JsonFormatter(
            " ".join(f"%({name})s" for name in JSON_FIELDS),
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    return OneLineFormatter(LOG_FORMAT)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Set the root level; add a handler only if nobody (gunicorn, pytest) installed one already.

    Every root handler, ours or not, gets the context filter, so whichever writes the line has the
    workflow's fields.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(make_formatter(log_format))
        root.addHandler(handler)
    for existing in root.handlers:
        if not any(isinstance(f, ContextLogFilter) for f in existing.filters):
            existing.addFilter(ContextLogFilter())
    root.setLevel(level)
