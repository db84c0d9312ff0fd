"""Relative blob paths that can never leave their storage root."""
from __future__ import annotations

import os
import pathlib


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
    candidate = pathlib.PurePosixPath(relative.replace("\\", "/"))
    if candidate.is_absolute() or ".." in candidate.parts:
        raise UnsafePathError(f"blob path {relative!r} escapes the storage path")
    root = root.resolve()
    full = (root / candidate).resolve()
    if full != root and root not in full.parents:
        raise UnsafePathError(f"blob path {relative!r} escapes the storage path")
    return full
