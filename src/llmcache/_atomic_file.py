"""Writing a file so that a crash at any moment leaves either the old file or the new
(the vector indexes' archives, the metrics snapshot)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "fsync_dir"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` so that a crash at any moment leaves either the old file or the new.

    ``write`` fills a temporary file in the same directory (a rename must not cross file
    systems); it is fsynced, renamed over ``path`` with `os.replace` (atomic on POSIX and
    Windows), then the directory is fsynced so the rename itself survives a power cut."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    """Make renames in ``directory`` durable; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows: directories cannot be opened, and NTFS journals renames
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
