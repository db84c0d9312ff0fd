"""Failure texts, stored in 255-character columns."""
from __future__ import annotations

MAX_FAILURE_LENGTH = 255
# GitLab's text for a blob the primary has a record of but no file for.
MISSING_ON_PRIMARY = "The file is missing on the Geo primary site"
_ELLIPSIS = "..."


def truncate_failure(text: str | None, limit: int = MAX_FAILURE_LENGTH) -> str | None:
    if text is None:
        return None
    text = str(text)
    if len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def sync_failure_text(message: str, error: BaseException | str | None = None) -> str:
    """GitLab's failed!(message, error): "message: error", truncated."""
    if error is not None and str(error):
        message = f"{message}: {error}"
    return truncate_failure(message)
