"""A destination path the user got wrong: one DestinationError sentence naming the file and the fix.

Real files only: a directory, a missing directory, a text file, a file locked by another process
holding it open, and files this process may not write (as root, checked in a forked child that
gave root up: root ignores file permissions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from dest_helpers import catalog, configured_stream, event, paged, query, sync

from source_sentry.destination import DestinationError, DuckDBDestination

CATALOG = catalog(configured_stream("events", "incremental", "append"))
NOBODY = 65534


def _open(path: Path | str) -> DestinationError:
    with pytest.raises(DestinationError) as info:
        DuckDBDestination(path, CATALOG)
    error = info.value
    assert str(error) == error.message and error.path == str(path)
    assert "\n" not in error.message and "Traceback" not in error.message and "IO Error" not in error.message
    return error


def test_a_directory(tmp_path):
    error = _open(tmp_path)
    assert error.reason == "directory"
    assert error.message == (
        f"The destination {tmp_path} is a directory: give the path of a database file inside it, "
        f"such as {tmp_path / 'sentry.duckdb'}."
    )


def test_a_missing_directory(tmp_path):
    path = tmp_path / "nope" / "sentry.duckdb"
    error = _open(path)
    assert error.reason == "missing_directory"
    assert error.message == (
        f"The directory of the destination {path} does not exist ({tmp_path / 'nope'}): create it first, "
        "or give a path in an existing directory."
    )
    assert not (tmp_path / "nope").exists()  # nothing created behind the user's back


def test_a_file_where_the_directory_should_be(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    error = _open(tmp_path / "notes.txt" / "sentry.duckdb")
    assert error.reason == "missing_directory"
    assert f"{tmp_path / 'notes.txt'} is a file, not a directory" in error.message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.duckdb", b"select * from issues;\n"),
        ("empty.duckdb", b""),
        # DuckDB itself opens an in-memory database for these, silently: the sync would vanish.
        ("export.csv", b"id,title\n1,boom\n"),
        ("config.json", b'{"organization": "acme"}\n'),
    ],
    ids=["text", "empty", "csv", "json"],
)
def test_a_file_that_is_not_a_duckdb_database(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    error = _open(path)
    assert error.reason == "not_duckdb"
    assert error.message == (
        f"The destination {path} exists but is not a DuckDB database: give the path of a DuckDB file "
        "or of a new file (this one is left as it is)."
    )
    assert path.read_bytes() == content


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.readline()  # hold the file until told
con.close()
"""


def test_a_file_locked_by_another_running_process(tmp_path):
    path = tmp_path / "sentry.duckdb"
    sync(path, CATALOG, paged("events", [event(1)], page=1))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"  # it holds DuckDB's lock now
        error = _open(path)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("done\n")
        holder.stdin.close()
        holder.wait()
    assert (error.reason, error.pid) == ("locked", holder.pid)
    assert error.message.startswith(f"The destination {path} is in use by another process (PID {holder.pid}, ")
    assert error.message.endswith(
        "): another source-sentry sync may be running on it; wait for it to finish, or sync into another file."
    )
    # Once the other process let go, the same file opens, its data intact.
    assert sync(path, CATALOG, paged("events", [event(2)], page=1)).ok
    assert query(path, 'SELECT count(*) FROM "events"') == [(2,)]


# ---------------------------------------------------------------- permissions


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="source-sentry-perm-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _open_without_root(path: Path) -> dict[str, str]:
    """Open the destination as a user that permissions apply to: ``{}`` or the error's reason and message.

    Not root: here. Root: in a forked child that switched to ``nobody`` (a new interpreter could not
    be started as nobody when Python lives under /root)."""
    if os.geteuid() != 0:
        try:
            DuckDBDestination(path, CATALOG).abort()
        except DestinationError as error:
            return {"reason": error.reason, "message": error.message}
        return {}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                DuckDBDestination(path, CATALOG).abort()
                outcome = {}
            except DestinationError as error:
                outcome = {"reason": error.reason, "message": error.message}
            except BaseException as exc:  # reported to the parent, which fails the test
                outcome = {"reason": "unexpected", "message": repr(exc)}
            os.write(write, json.dumps(outcome).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _as_other_user(path: Path) -> None:
    """Files made here belong to root when we are root: nobody reads them but cannot write them."""
    if os.geteuid() != 0:
        path.chmod(0o444 if path.is_file() else 0o555)


def test_a_database_file_without_write_permission(shared_dir):
    path = shared_dir / "sentry.duckdb"
    sync(path, CATALOG, paged("events", [event(1)], page=1))
    path.chmod(0o644)
    shared_dir.chmod(0o777)  # the directory is writable: only the file is not
    _as_other_user(path)
    assert _open_without_root(path) == {
        "reason": "permission",
        "message": f"No permission to read and write the destination {path}: change its permissions, "
        "or give a path you can write to.",
    }


def test_a_new_file_in_a_directory_without_write_permission(shared_dir):
    _as_other_user(shared_dir)
    path = shared_dir / "sentry.duckdb"
    assert _open_without_root(path) == {
        "reason": "permission",
        "message": f"Cannot create the destination {path}: no permission to write in {shared_dir}; "
        "give a path in a directory you can write to.",
    }
    assert not path.exists()


def test_a_writable_file_in_a_directory_where_duckdb_cannot_write_its_log(shared_dir):
    """Without this check the sync would fail at its first commit, mid-way (the log is created then)."""
    path = shared_dir / "sentry.duckdb"
    sync(path, CATALOG, paged("events", [event(1)], page=1))
    path.chmod(0o666)
    _as_other_user(shared_dir)
    outcome = _open_without_root(path)
    assert outcome["reason"] == "permission"
    assert outcome["message"].startswith(f"Cannot write the destination {path}: DuckDB keeps its log {path}.wal beside it")
