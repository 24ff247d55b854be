"""Incoming state: parse whatever ``--state`` holds into one state dict per stream.

Airbyte hands back the ``state`` field of the STATE messages we emitted (a list of STREAM
states), but older platforms and the Airbyte Sentry connector left other shapes behind: a
bare ``{stream: state}`` object (LEGACY), a GLOBAL state, ``null``, or ``{"lastSeen": null}``.
None of those may crash a sync: each is read if it can be, and otherwise dropped with a
warning and a full read of that stream (duplicates are safe; a crash loses a sync).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from .timeutil import format_time, parse_time

__all__ = ["fingerprint", "format_time", "parse_state", "parse_time"]

Warn = Callable[[str], None]


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


def fingerprint(record: dict[str, Any], volatile: tuple[str, ...] = ()) -> str:
    """A short digest of a record's content, to tell whether it changed since last sync."""
    if volatile:
        record = {k: v for k, v in record.items() if k not in volatile}
    digest = hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=6)
    return digest.hexdigest()
