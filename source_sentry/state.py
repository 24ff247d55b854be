"""Stream state: the incoming state, and what each kind of stream checkpoints, as typed values.

The readers report what they saw (a page read, a record, a parent done) and the values here
decide what a checkpoint holds. Each value reads every format an earlier version of this
connector, or Airbyte's own Sentry connector, wrote (a test covers each) and writes one:

- events (``WindowedState``): ``{"projects": {slug: {"dateCreated": next start} or {"windows":
  [{"start", "end", "cursor"} or {"start", "end", "done": true}]}}, "dateCreated": oldest}``;
  earlier versions wrote one ``"window"``; Airbyte's connector one top-level ``dateCreated``.
- snapshot lists (``SnapshotState``): ``{"fingerprints": {key: "digest[@day]"}, <cursor field>,
  "fullScanAt", "rotation"}`` (rotation: where the next slice of a large list starts); lists
  filtered by project group their fingerprints per project
  (``{"fingerprints": {project id: {key: ...}}}``) and records found by another field than their
  key keep it (``"locators": {key: version}``). Airbyte's connector: only the cursor.
- child streams (``ChildState``): ``{"parents": {key: "token[|newest]"}, "fullScanAt",
  "parentCursor"}``; a state holding only the cursor field is a floor for every parent.
- usage (``UsageState``): ``{"interval": first day to read again}``.
- release health (``SessionsState``): ``{"interval": end of the last complete interval read,
  "resolution": "1d", "recent": {row id: digest}}`` (the rows of the tail read again next time).
- Explore datasets and replays (``TimelineState``): ``{<cursor field>: everything before it
  was read}``.

Incoming state: Airbyte hands back the ``state`` of the STATE messages we emitted (a list of
STREAM states), but older platforms left other shapes: a bare ``{stream: state}`` object
(LEGACY), a GLOBAL state, ``null``, ``{"lastSeen": null}``. None of them may crash a sync: each
is read if it can be, else dropped with a warning and a full read of that stream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from .timeutil import format_time, parse_time

__all__ = [
    "ChildState",
    "Entry",
    "ParentEntry",
    "ProjectEvents",
    "SessionsState",
    "SnapshotProgress",
    "SnapshotState",
    "TimelineState",
    "UsageState",
    "Window",
    "WindowedState",
    "fingerprint",
    "parse_state",
]

Warn = Callable[[str], None]


# --------------------------------------------------------------------------- incoming state


def parse_state(raw: Any, warn: Warn) -> dict[str, dict[str, Any]]:
    """Return ``{stream name: stream_state}`` from any state input; never raises."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        if raw.get("type") in ("STREAM", "GLOBAL", "LEGACY"):
            raw = [raw]
        else:
            # LEGACY: a plain object keyed by stream name.
            return {k: v for k, v in raw.items() if _usable(k, v, warn)}
    if not isinstance(raw, list):
        warn(f"Ignoring the input state: expected a list of state messages, got {type(raw).__name__}.")
        return {}
    states: dict[str, dict[str, Any]] = {}
    for item in raw:
        if not isinstance(item, dict):
            warn(f"Ignoring a state entry that is not an object: {_preview(item)}.")
            continue
        kind = item.get("type", "STREAM" if "stream" in item else None)
        if kind == "STREAM":
            stream = item.get("stream")
            name = _descriptor_name(stream.get("stream_descriptor") if isinstance(stream, dict) else None)
            value = stream.get("stream_state") if isinstance(stream, dict) else None
            if name is None:
                warn(f"Ignoring a STREAM state without a stream name: {_preview(item)}.")
            elif _usable(name, value, warn):
                states[name] = value  # type: ignore[assignment]  # _usable checked it is a dict
        elif kind == "GLOBAL":
            glob = item.get("global")
            for entry in (glob.get("stream_states") if isinstance(glob, dict) else None) or []:
                name = _descriptor_name(entry.get("stream_descriptor")) if isinstance(entry, dict) else None
                value = entry.get("stream_state") if isinstance(entry, dict) else None
                if name is not None and _usable(name, value, warn):
                    states[name] = value  # type: ignore[assignment]  # _usable checked it is a dict
        elif kind == "LEGACY" and isinstance(item.get("data"), dict):
            states.update({k: v for k, v in item["data"].items() if _usable(k, v, warn)})
        else:
            warn(f"Ignoring a state entry of unknown type {kind!r}.")
    return states


def _descriptor_name(descriptor: Any) -> str | None:
    if isinstance(descriptor, dict) and isinstance(descriptor.get("name"), str):
        return descriptor["name"]
    return None


def _usable(name: Any, value: Any, warn: Warn) -> bool:
    if value is None:
        return False  # a null state is simply "no state"
    if not isinstance(value, dict):
        warn(f"Ignoring the state of stream {name!r}: expected an object, got {_preview(value)}; reading it from the start.")
        return False
    return True


def _preview(value: Any) -> str:
    try:
        text = orjson.dumps(value, default=str).decode()
    except (TypeError, ValueError):  # huge integers, lone surrogates, very deep nesting
        return type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def fingerprint(record: Mapping[str, Any], volatile: tuple[str, ...] = ()) -> str:
    """A short digest of a record's content, to tell whether it changed since the last sync."""
    if volatile:
        record = {k: v for k, v in record.items() if k not in volatile}
    return hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=6).hexdigest()


def _time(raw: Mapping[str, Any], key: str, what: str, warn: Warn) -> datetime | None:
    """A saved time; an unreadable one is a warning and no value."""
    value = raw.get(key)
    parsed = parse_time(value)
    if value is not None and parsed is None:
        warn(f"ignoring the unreadable saved {what} {value!r}")
    return parsed


def _put_time(out: dict[str, Any], key: str, value: datetime | None) -> None:
    if value is not None:
        out[key] = format_time(value)


# --------------------------------------------------------------------------- events


@dataclass
class Window:
    """A time range of one project's events: ``[start, end)``, read newest first down from
    ``end``; ``cursor`` is the page to read next, ``done`` once read to its start.

    ``issues`` set: the window is read issue by issue instead (its issues listed by first
    seen, newest first, each issue's events of the range read whole); it is the page of that list to
    read next (``""``: its first), ``issues_done`` the issues of that page already read."""

    start: datetime
    end: datetime
    cursor: str | None = None
    done: bool = False
    issues: str | None = None
    issues_done: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if self.done:
            return {"start": format_time(self.start), "end": format_time(self.end), "cursor": None, "done": True}
        out: dict[str, Any] = {"start": format_time(self.start), "end": format_time(self.end), "cursor": self.cursor}
        if self.issues is not None:
            out["issues"] = self.issues
            out["issues_done"] = self.issues_done
        return out

    @classmethod
    def from_json(cls, value: Any) -> Window | None:
        if not isinstance(value, dict):
            return None
        start, end, cursor = parse_time(value.get("start")), parse_time(value.get("end")), value.get("cursor")
        if start is None or end is None or start >= end or not (cursor is None or isinstance(cursor, str)):
            return None
        done = value.get("done") is True
        issues, issues_done = value.get("issues"), value.get("issues_done") or []
        if not (issues is None or isinstance(issues, str)) or not all(isinstance(i, str) for i in issues_done):
            return None
        if done:
            return cls(start, end, None, True)
        return cls(start, end, cursor, False, issues, list(issues_done) if issues is not None else [])


@dataclass
class ProjectEvents:
    """One project's events: where the next span starts, and the span in progress (its
    windows, open or done; empty between syncs). The cursor moves once every window is done."""

    cursor: datetime | None = None
    windows: list[Window] = field(default_factory=list)

    def span_end(self) -> datetime:
        return max(w.end for w in self.windows)

    def open_windows(self) -> list[Window]:
        return [w for w in self.windows if not w.done]

    def split(self, window: Window, middle: datetime) -> Window:
        """Give the range of ``window`` older than ``middle`` to a new window (returned). The
        page cursor of ``window`` stays valid: offsets count from the newest event, and the
        newer half's list is the start of the wider one."""
        older = Window(window.start, middle)
        window.start = middle
        self.windows.append(older)
        return older

    def finish(self, window: Window) -> None:
        """Mark ``window`` read; adjacent done windows merge into one entry."""
        window.cursor, window.done = None, True
        merged: list[Window] = []
        for w in sorted(self.windows, key=lambda w: w.start):
            last = merged[-1] if merged else None
            if last is not None and last.done and w.done and last.end == w.start:
                last.end = w.end
            else:
                merged.append(w)
        self.windows[:] = merged

    def close(self, lookback: timedelta) -> None:
        """Every window is read: the next span starts a look-back before this one's end."""
        self.cursor = self.span_end() - lookback
        self.windows = []

    def to_json(self, cursor_field: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put_time(out, cursor_field, self.cursor)  # while a span is in progress, where it began
        if self.windows:
            out["windows"] = [w.to_json() for w in sorted(self.windows, key=lambda w: w.start)]
        return out


@dataclass
class WindowedState:
    """The events stream: one :class:`ProjectEvents` per project slug. ``legacy`` is the one
    cursor of Airbyte's connector (configured with one project)."""

    projects: dict[str, ProjectEvents] = field(default_factory=dict)
    legacy: datetime | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any], cursor_field: str, *, single_project: bool, warn: Warn) -> WindowedState:
        state = cls()
        saved = raw.get("projects")
        if saved is not None and not isinstance(saved, dict):
            warn("ignoring malformed per-project state")
            saved = None
        for slug, value in (saved or {}).items():
            if not isinstance(value, dict):
                continue
            cursor = _time(value, cursor_field, f"cursor of project {slug} (all retained data is read)", warn)
            windows = value.get("windows")
            if windows is None:
                windows = [] if value.get("window") is None else [value.get("window")]  # earlier versions: one
            parsed = [Window.from_json(w) for w in windows] if isinstance(windows, list) else [None]
            if any(w is None for w in parsed):
                warn(f"project {slug}: ignoring a malformed saved window")
                parsed = []
            state.projects[slug] = ProjectEvents(cursor, [w for w in parsed if w is not None])
        if single_project and not state.projects:
            state.legacy = parse_time(raw.get(cursor_field))
        return state

    def to_json(self, cursor_field: str) -> dict[str, Any]:
        out: dict[str, Any] = {"projects": {slug: p.to_json(cursor_field) for slug, p in self.projects.items()}}
        cursors = [p.cursor for p in self.projects.values() if p.cursor is not None]
        if cursors:
            # The oldest per-project cursor, for tools that look for one top-level value.
            out[cursor_field] = format_time(min(cursors))
        return out


# --------------------------------------------------------------------------- snapshot lists


@dataclass(frozen=True)
class Entry:
    """What the last read knew of one record: its content digest, the day of its cursor (for
    lists bounded by retention), the project it belongs to (lists filtered by project), and the
    value its detail route is found by when that is not its key (a release's version)."""

    digest: str
    day: int | None = None
    partition: str | None = None
    locator: str | None = None

    def encoded(self) -> str:
        return self.digest if self.day is None else f"{self.digest}@{self.day}"

    @classmethod
    def decode(cls, text: str, partition: str | None, locator: str | None) -> Entry:
        digest, _, day = text.partition("@")
        return cls(digest, int(day) if day.isdigit() else None, partition, locator)


@dataclass
class SnapshotState:
    """A snapshot list: ``known`` (None: no fingerprints saved, e.g. Airbyte's connector's
    state or a first sync), the newest cursor value seen, and when the last complete full list
    ran (between full lists only deltas are read)."""

    known: dict[str, Entry] | None = None
    cursor: datetime | None = None
    full_scan_at: datetime | None = None
    # Between full lists of a large list, where the next slice of it starts (a page cursor;
    # None: at the head).
    rotation: str | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any], cursor_field: str | None, warn: Warn) -> SnapshotState:
        state = cls(
            cursor=_time(raw, cursor_field, "cursor", warn) if cursor_field else None,
            full_scan_at=parse_time(raw.get("fullScanAt")),
            rotation=raw["rotation"] if isinstance(raw.get("rotation"), str) else None,
        )
        saved = raw.get("fingerprints")
        if saved is None:
            return state
        saved_locators = raw.get("locators")
        locators: Mapping[str, Any] = saved_locators if isinstance(saved_locators, dict) else {}
        known: dict[str, Entry] = {}

        def add(group: Any, partition: str | None) -> bool:
            if not isinstance(group, dict):
                return False
            for key, value in group.items():
                if isinstance(value, str):
                    locator = locators.get(key)
                    known[key] = Entry.decode(value, partition, locator if isinstance(locator, str) else None)
                elif isinstance(value, dict) and partition is None:
                    if not add(value, key):
                        return False
                else:
                    return False
            return True

        if add(saved, None):
            state.known = known
        else:
            warn("the saved fingerprints are malformed; every record is sent again")
        return state

    def to_json(self, cursor_field: str | None, fingerprints: Mapping[str, Entry]) -> dict[str, Any]:
        """The state holding ``fingerprints`` (the known records of a checkpoint)."""
        flat: dict[str, Any] = {}
        locators: dict[str, str] = {}
        for key, entry in fingerprints.items():
            group = flat if entry.partition is None else flat.setdefault(entry.partition, {})
            group[key] = entry.encoded()
            if entry.locator is not None:
                locators[key] = entry.locator
        out: dict[str, Any] = {"fingerprints": flat}
        if locators:
            out["locators"] = locators
        if cursor_field:
            _put_time(out, cursor_field, self.cursor)
        _put_time(out, "fullScanAt", self.full_scan_at)
        if self.rotation:
            out["rotation"] = self.rotation
        return out


class SnapshotProgress:
    """One read of a snapshot list: the reader reports each record (:meth:`see`); this decides
    what is emitted, what each checkpoint holds and which records may have disappeared.

    A checkpoint keeps the last complete full list's time, and in a delta read the old cursor
    (the list is newest first): a read stopped half-way must not be taken for a complete one,
    or the next sync would read only a delta after it and skip what this one never reached.
    """

    def __init__(self, saved: SnapshotState, *, emit_all: bool, delta: bool) -> None:
        self.saved = saved
        self.delta = delta
        self._emit_all = emit_all
        self.seen: dict[str, Entry] = {}
        self.newest = saved.cursor
        # A delta read of a large list also reads its next slice: where the one after starts.
        self.rotation = saved.rotation

    def see(self, key: str, entry: Entry, cursor: datetime | None) -> bool:
        """Record one listed record; True when it is to be emitted (new or changed)."""
        if cursor is not None and (self.newest is None or cursor > self.newest):
            self.newest = cursor
        before = self.seen.get(key)
        if before is not None and before.digest == entry.digest:
            return False  # the same record twice in one read (a page boundary shift)
        self.seen[key] = entry
        if self._emit_all:
            return True
        if self.saved.known is not None:
            known = self.saved.known.get(key)
            return known is None or known.digest != entry.digest
        # First sync after Airbyte's connector's state: only what is newer than its cursor.
        old = self.saved.cursor
        return cursor is None or old is None or cursor > old

    def size(self) -> int:
        return len(self.seen) + len(self.saved.known or ())

    def checkpoint(self, cursor_field: str | None) -> dict[str, Any]:
        """A state for a read still in progress."""
        partial = SnapshotState(
            cursor=self.saved.cursor if self.delta else self.newest,
            full_scan_at=self.saved.full_scan_at,
            rotation=self.saved.rotation,
        )
        return partial.to_json(cursor_field, {**(self.saved.known or {}), **self.seen})

    def missing(self, in_scope: Callable[[Entry], bool], aged_out_day: int | None) -> dict[str, Entry]:
        """Known records this complete full list did not serve and that may be gone: in the
        read's scope, and (for lists bounded by retention) not merely aged out of it."""
        out: dict[str, Entry] = {}
        for key, entry in (self.saved.known or {}).items():
            if key in self.seen or not in_scope(entry):
                continue
            if aged_out_day is not None and (entry.day is None or entry.day <= aged_out_day):
                continue
            out[key] = entry
        return out

    def complete(
        self, cursor_field: str | None, now: datetime, *, failed: bool, kept: Mapping[str, Entry] | None = None
    ) -> dict[str, Any]:
        """The final state. A failed or delta read keeps every known record (nothing of the
        rest was re-read); a complete full list keeps what it saw and ``kept`` (records it missed
        that still exist or could not be confirmed gone) and counts as the last full list."""
        if failed or self.delta:
            fingerprints = {**(self.saved.known or {}), **self.seen}
        else:
            fingerprints = {**(kept or {}), **self.seen}
        final = SnapshotState(
            cursor=self.saved.cursor if self.delta and failed else self.newest,
            full_scan_at=now if not self.delta and not failed else self.saved.full_scan_at,
            # A full list covered every slice: the rotation starts again at the head.
            rotation=(self.rotation if not failed else self.saved.rotation) if self.delta else None,
        )
        return final.to_json(cursor_field, fingerprints)


# --------------------------------------------------------------------------- child streams


@dataclass(frozen=True)
class ParentEntry:
    """A parent whose children were read: the token of what it looked like then (a change
    fingerprint, or its ``since`` timestamp), and the newest child read (newest-first lists)."""

    token: str
    newest: datetime | None = None

    def encoded(self) -> str:
        return self.token if self.newest is None else f"{self.token}|{format_time(self.newest)}"

    @classmethod
    def decode(cls, text: Any) -> ParentEntry:
        token, _, newest = str(text).partition("|")
        return cls(token, parse_time(newest))


@dataclass
class ChildState:
    """A child stream: the parents whose children were read, the parent list's last complete
    full list and newest cursor (for deltas), and a ``floor`` (children older than it count as
    read) from a state holding only the cursor field."""

    parents: dict[str, ParentEntry] = field(default_factory=dict)
    full_scan_at: datetime | None = None
    parent_cursor: datetime | None = None
    floor: datetime | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any], cursor_field: str | None, warn: Warn) -> ChildState:
        saved = raw.get("parents")
        if saved is not None and not isinstance(saved, dict):
            warn("ignoring malformed parent state; reading every parent's children")
        parents = {str(k): ParentEntry.decode(v) for k, v in saved.items()} if isinstance(saved, dict) else {}
        floor = parse_time(raw.get(cursor_field)) if cursor_field and saved is None else None
        return cls(parents, parse_time(raw.get("fullScanAt")), parse_time(raw.get("parentCursor")), floor)

    def to_json(
        self, parents: Mapping[str, ParentEntry], *, full_scan_at: datetime | None, parent_cursor: datetime | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"parents": {k: v.encoded() for k, v in parents.items()}}
        _put_time(out, "fullScanAt", full_scan_at)
        _put_time(out, "parentCursor", parent_cursor)
        return out


# --------------------------------------------------------------------------- usage


@dataclass
class UsageState:
    """Daily usage: the first day the next sync reads again."""

    interval: datetime | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> UsageState:
        return cls(parse_time(raw.get("interval")))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put_time(out, "interval", self.interval)
        return out


# --------------------------------------------------------------------------- release health


@dataclass
class SessionsState:
    """Release health: where the complete intervals end, at which resolution, and a digest of
    each row of the tail the next sync reads again (unchanged rows are not emitted twice)."""

    interval: datetime | None = None
    resolution: str | None = None
    recent: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: Mapping[str, Any], warn: Warn) -> SessionsState:
        recent = raw.get("recent")
        resolution = raw.get("resolution")
        return cls(
            _time(raw, "interval", "release_health", warn),
            resolution if isinstance(resolution, str) else None,
            {str(k): str(v) for k, v in recent.items()} if isinstance(recent, dict) else {},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put_time(out, "interval", self.interval)
        if self.resolution:
            out["resolution"] = self.resolution
        if self.recent:
            out["recent"] = dict(sorted(self.recent.items()))
        return out


# --------------------------------------------------------------------------- timelines


@dataclass
class TimelineState:
    """Explore datasets and replays: every row before ``cursor`` was read."""

    cursor: datetime | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any], cursor_field: str, warn: Warn) -> TimelineState:
        return cls(_time(raw, cursor_field, cursor_field, warn))

    def to_json(self, cursor_field: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _put_time(out, cursor_field, self.cursor)
        return out
