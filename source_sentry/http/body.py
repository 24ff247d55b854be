"""Reading a 200's body: JSON as fast as orjson reads it, and every body Sentry can send.

orjson refuses a few things Python's json (and so Sentry, a Python server) can produce: a lone
surrogate escape (``"\\ud800"``) in a string, ``NaN``/``Infinity``, integers beyond 64 bits. Such
a body is read again with Python's json and made writable: a lone surrogate becomes U+FFFD, a
non-finite number null, a huge integer a float. Each record that changed carries the list of
its changes under :data:`CHANGES` (Airbyte's ``meta.changes``), which the record writer takes
out; a body that neither parser can read is unreadable (retried like a 5xx).

A list whose records go out as Sentry wrote them (:func:`raw_items`: full events, a few
kilobytes each, of which the connector reads two fields) is split into its items' own bytes
without building Python objects for the rest; only a body that JSON lines, redaction or the
protocol could not take as it is goes the way above.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypedDict

import orjson

from ..protocol import CHANGES, RawItem

if TYPE_CHECKING:
    import msgspec

__all__ = ["CHANGES", "UnreadableBody", "decode", "raw_items"]

_INT64 = 2**63


class UnreadableBody(ValueError):
    """A 200 whose body is not JSON we can read (empty, an HTML page, truncated, garbage)."""


def decode(content: bytes, headers: Mapping[str, str]) -> Any:
    """The JSON value of a 200's body; raises :class:`UnreadableBody`."""
    if not content:
        raise UnreadableBody("empty body")
    ctype = headers.get("content-type", "")
    if "html" in ctype:
        raise UnreadableBody(f"content-type {ctype}, probably a proxy's error page")
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as fast_error:
        try:
            value = json.loads(content)
        except (ValueError, RecursionError):
            raise UnreadableBody(f"invalid JSON: {fast_error}") from None
    return _writable_body(value)


# An escaped "/" or printable ASCII character: a token written that way would slip past the
# redaction, which looks for its bytes (Sentry never escapes these; a hostile server might).
_ESCAPED_ASCII = re.compile(rb"\\(?:/|u00[2-7][0-9a-fA-F])")


def raw_items(content: bytes, headers: Mapping[str, str], fields: tuple[str, ...]) -> list[RawItem] | None:
    """The items of a 200's JSON list, each as its own bytes with ``fields`` decoded (a field
    the item lacks is left out), or None when the body must be read by :func:`decode`.

    The bytes go out as they are, so they are taken only when that is exact: valid JSON
    (msgspec checks every byte, surrogate escapes too) and UTF-8, every item an object, no line
    break between tokens (a record is one line), no escaped ``/`` or printable ASCII (the
    redaction of a secret compares bytes). Numbers pass as Sentry wrote them: an integer beyond
    64 bits stays exact here, where :func:`decode` makes it a float.
    """
    if not content or "html" in headers.get("content-type", ""):
        return None
    if b"\n" in content or b"\r" in content or _ESCAPED_ASCII.search(content):
        return None
    if not content.isascii():
        try:
            content.decode()
        except UnicodeDecodeError:
            return None
    import msgspec  # imported by the first page that needs it: ~10 ms a check has no use for

    items_of, heads_of = _decoders(fields)
    try:
        raws = items_of.decode(content)
        heads = heads_of.decode(content)
    except msgspec.DecodeError:  # also a validation error: an item that is not an object
        return None
    items = []
    for head, raw in zip(heads, raws, strict=True):
        item = RawItem(head)
        item.raw = bytes(raw)
        items.append(item)
    return items


@cache
def _decoders(fields: tuple[str, ...]) -> tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]]:
    """Decoders of a JSON list: into its items' raw bytes, and into dicts of only ``fields`` of
    each item (those present), the rest of each object skipped unbuilt."""
    import msgspec

    head = TypedDict("head", dict.fromkeys(fields, Any), total=False)  # type: ignore[misc]
    return msgspec.json.Decoder(list[msgspec.Raw]), msgspec.json.Decoder(list[head])


def _writable_body(value: Any) -> Any:
    """Python's json value made writable by orjson; changes noted per record (list items, or
    the object itself)."""
    if isinstance(value, list):
        return [_writable_record(item) for item in value]
    return _writable_record(value)


def _writable_record(record: Any) -> Any:
    changes: list[dict[str, str]] = []
    fixed = _writable(record, "", changes)
    if changes and isinstance(fixed, dict):
        fixed[CHANGES] = changes
    return fixed


def _writable(value: Any, path: str, changes: list[dict[str, str]]) -> Any:
    if isinstance(value, str):
        if _has_surrogate(value):
            changes.append(_change(path, "TRUNCATED"))  # the protocol's word for a value altered to fit
            return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = _writable(key, path, changes) if isinstance(key, str) and _has_surrogate(key) else key
            out[name] = _writable(item, f"{path}.{name}" if path else str(name), changes)
        return out
    if isinstance(value, list):
        return [_writable(item, f"{path}.{i}", changes) for i, item in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        changes.append(_change(path, "NULLED"))
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < 2 * _INT64:
        changes.append(_change(path, "TRUNCATED"))
        return float(value)  # what orjson itself makes of an integer it cannot hold
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _change(path: str, change: str) -> dict[str, str]:
    return {"field": path, "change": change, "reason": "SOURCE_SERIALIZATION_ERROR"}
