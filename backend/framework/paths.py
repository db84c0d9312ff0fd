"""Relative blob paths that can never leave their storage root."""
from __future__ import annotations

import os
import pathlib
import stat


class UnsafePathError(ValueError):
    pass


def resolve_inside(root: pathlib.Path, relative: str) -> pathlib.Path:
    """`root/relative`, refusing absolute paths, '..' and symlink escapes."""
    if not relative or "\x00" in relative:
        raise UnsafePathError(f"invalid blob path {relative!r}")
    try:
        os.fsencode(relative)  # a lone surrogate names no file
    except UnicodeEncodeError:
        raise UnsafePathError(f"invalid blob path {relative!r}") from None
    candidate = relative.replace("\\", "/")
    if candidate.startswith("/") or ".." in candidate.split("/"):
        raise UnsafePathError(f"blob path {relative!r} escapes the storage path")
    # Strings, not pathlib: this runs for every blob served.
    base = os.path.realpath(root)
    parts = [part for part in candidate.split("/") if part not in ("", ".")]
    full = os.path.join(base, *parts) if parts else base
    if _has_symlink(base, parts):
        full = os.path.realpath(full)
        if full != base and not full.startswith(base.rstrip(os.sep) + os.sep):
            raise UnsafePathError(f"blob path {relative!r} escapes the storage path")
    return pathlib.Path(full)


def _has_symlink(base: str, parts: list[str]) -> bool:
    """Whether a component below `base` is a symbolic link (without one, and
    without '..', the path cannot leave `base`)."""
    path = base
    for part in parts:
        path = os.path.join(path, part)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return True
        except OSError:
            return False  # what cannot be looked at links nowhere (nor opens)
    return False
