"""Process-wide logging: one line per record on stderr, where gunicorn and Docker collect it.

Messages often hold values from requests (a user ID, a header). A newline in one would start what
looks like a record of its own, so the message's control characters are written escaped (``\\n``),
and the lines of a traceback are indented under their record: every line that starts at column 0 is
a real record.
"""

from __future__ import annotations

import logging
import re
from types import TracebackType

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TRACEBACK_INDENT = "    | "


def escape_controls(text: str) -> str:
    """``a\\nb`` -> ``a\\\\nb``: the text on one line, its control characters readable."""
    return UNSAFE.sub(lambda found: repr(found.group())[1:-1], text)


class OneLineFormatter(logging.Formatter):
    """A record's message on one line; a traceback (or stack) follows on indented lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(  # noqa: N802 - logging's name
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        return self._indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return self._indent(super().formatStack(stack_info))

    @staticmethod
    def _indent(text: str) -> str:
        return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in text.splitlines())


def configure_logging(level: str) -> None:
    """Set the root level; add a handler only if nobody (gunicorn, pytest) installed one already."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(OneLineFormatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
