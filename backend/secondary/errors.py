"""What went wrong, in one line of plain language: no exception class names,
no tracebacks. For the engine's `last_error` (shown by the console, the
REST status and `status`) and, through `commands.describe_error`, the CLI."""
from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError

from backend.secondary.geo_client import GeoApiError, PrimaryUnreachable

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    if isinstance(exc, PrimaryUnreachable):
        return f"cannot reach the primary: {exc}"
    if isinstance(exc, GeoApiError):
        if exc.status == 401:
            return f"the primary refused our credentials (check access_key and secret): {exc}"
        return f"the primary answered HTTP {exc.status}: {exc}"
    if isinstance(exc, DBAPIError):
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"database error: {reason[0] if reason else 'the connection failed'}"
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return f"{reason}: {exc.filename}" if exc.filename else reason
    text = str(exc).strip().splitlines()
    if text:
        return text[0][:300]
    # Nothing to say but the type: a bug. The log has the details.
    log.error("unexplained error", exc_info=exc)
    return "an unexpected error (the log has the details)"
