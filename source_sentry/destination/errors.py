"""What is wrong with a destination file, in one sentence that says what to do.

:func:`check_path` looks before connecting (cheap ``os`` calls); :func:`connect_error` turns
DuckDB's exception at connect time into the same kind of sentence (it also covers races with the
checks, and what only DuckDB can tell: a lock held by another process, a file that is not a
DuckDB database). Both give a :class:`DestinationError`.
"""

from __future__ import annotations

import os
import re

import duckdb

__all__ = ["DestinationError", "check_path", "connect_error", "not_duckdb"]

# DuckDB's lock error names the holder: 'Conflicting lock is held in /usr/bin/python3 (PID 1234)'.
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class DestinationError(Exception):
    """The destination file cannot be used as it is; ``message`` says why and what to do.

    ``path`` is the destination as given; ``reason`` one of ``directory``, ``missing_directory``,
    ``permission``, ``locked``, ``not_duckdb``, ``unusable``; ``pid`` the process holding the lock
    when DuckDB names it (``locked`` only).
    """

    def __init__(self, message: str, *, path: str, reason: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.reason = reason
        self.pid = pid


def check_path(path: str) -> None:
    """Raise :class:`DestinationError` if ``path`` cannot be a DuckDB file this process writes."""
    if path.startswith(":memory:"):
        return  # DuckDB's in-memory database: no file
    if not path:
        raise DestinationError(
            "The destination path is empty: give a file name such as sentry.duckdb.", path=path, reason="unusable"
        )
    if os.path.isdir(path):
        raise DestinationError(
            f"The destination {path} is a directory: give the path of a database file inside it, "
            f"such as {os.path.join(path, 'sentry.duckdb')}.",
            path=path,
            reason="directory",
        )
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise DestinationError(
            f"The destination {path} cannot be created: {parent} is a file, not a directory; "
            "give a path in a directory.",
            path=path,
            reason="missing_directory",
        )
    if not os.path.isdir(parent):
        raise DestinationError(
            f"The directory of the destination {path} does not exist ({parent}): create it first, "
            "or give a path in an existing directory.",
            path=path,
            reason="missing_directory",
        )
    if os.path.exists(path):
        if not os.access(path, os.R_OK | os.W_OK):
            raise _permission(path)
        # DuckDB writes its log beside the file on the first commit, mid-sync: check now.
        wal = path + ".wal"
        writable = os.access(wal, os.W_OK) if os.path.exists(wal) else os.access(parent, os.W_OK | os.X_OK)
        if not writable:
            raise DestinationError(
                f"Cannot write the destination {path}: DuckDB keeps its log {wal} beside it, and "
                f"{parent} or that file is not writable; change the permissions, or move the database.",
                path=path,
                reason="permission",
            )
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise DestinationError(
            f"Cannot create the destination {path}: no permission to write in {parent}; "
            "give a path in a directory you can write to.",
            path=path,
            reason="permission",
        )


def connect_error(path: str, exc: duckdb.Error) -> DestinationError:
    """The :class:`DestinationError` for DuckDB's exception when it opened ``path``."""
    text = str(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        holder = _LOCK_HOLDER.search(text)
        who = f" (PID {holder['pid']}, {holder['program']})" if holder else ""
        return DestinationError(
            f"The destination {path} is in use by another process{who}: another source-sentry sync "
            "may be running on it; wait for it to finish, or sync into another file.",
            path=path,
            reason="locked",
            pid=int(holder["pid"]) if holder else None,
        )
    if "not a valid DuckDB database file" in text:
        return not_duckdb(path)
    if "Permission denied" in text or "Read-only file system" in text:
        return _permission(path)
    if "Is a directory" in text or "No such file or directory" in text:
        try:
            check_path(path)  # changed since the first check: say which way
        except DestinationError as error:
            return error
    detail = re.sub(r"^[A-Za-z ]*Error: ", "", text).strip().rstrip(".")
    return DestinationError(
        f"Cannot open the destination {path} as a DuckDB database ({detail}): give the path of a "
        "DuckDB file or of a new file.",
        path=path,
        reason="unusable",
    )


def not_duckdb(path: str) -> DestinationError:
    """The error for an existing file that is not a DuckDB database."""
    return DestinationError(
        f"The destination {path} exists but is not a DuckDB database: give the path of a DuckDB "
        "file or of a new file (this one is left as it is).",
        path=path,
        reason="not_duckdb",
    )


def _permission(path: str) -> DestinationError:
    return DestinationError(
        f"No permission to read and write the destination {path}: change its permissions, or give "
        "a path you can write to.",
        path=path,
        reason="permission",
    )
