"""Columns of a stream's tables: JSON-schema types to DuckDB types, names, and value casts.

A stream's tables (final, raw history, overwrite staging) share one column layout, held by a
:class:`ColumnSet`: an ordered list of :class:`Column` (record field -> SQL column name and type).
Values are cast in Python before they reach DuckDB, so a value that does not fit its column
becomes NULL with a note in ``_airbyte_meta.changes`` instead of failing the sync.

Names: a column is named after its field, except where DuckDB cannot take the field as it is, or
a person could not query it: ``""`` becomes ``_empty``, a whitespace-only key ``_blank``, control
characters ``_``, a lone surrogate (no UTF-8 form) its ``\\udXXX`` escape, a key longer than
:data:`MAX_NAME_LENGTH` its start plus a hash, and a name taken case-insensitively (by another field
or a meta column such as ``_airbyte_meta``) gets ``_1``, ``_2``... ``_airbyte_columns`` keeps the
mapping, so no rename loses anything and none is noted per row. A column keeps its name forever.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ..timeutil import parse_datetime

__all__ = [
    "BIGINT",
    "BOOLEAN",
    "DOUBLE",
    "JSON",
    "MAX_NAME_LENGTH",
    "META_COLUMNS",
    "TIMESTAMPTZ",
    "VARCHAR",
    "Column",
    "ColumnSet",
    "column_type_for_schema",
    "column_type_for_value",
    "encode_value",
    "parse_datetime",
    "quote_ident",
    "quote_literal",
    "storable_field",
]

VARCHAR = "VARCHAR"
TIMESTAMPTZ = "TIMESTAMPTZ"
DOUBLE = "DOUBLE"
BIGINT = "BIGINT"
BOOLEAN = "BOOLEAN"
JSON = "JSON"

# Airbyte's destination v2 metadata columns, in table order.
META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_airbyte_raw_id", VARCHAR),
    ("_airbyte_extracted_at", TIMESTAMPTZ),
    ("_airbyte_generation_id", BIGINT),
    ("_airbyte_meta", JSON),
)

# Airbyte's reason code for a value nulled because it could not be cast to the column type.
TYPECAST_ERROR = "DESTINATION_TYPECAST_ERROR"
# ... and for a value changed so that it could be written at all (a lone surrogate has no UTF-8).
SERIALIZATION_ERROR = "DESTINATION_SERIALIZATION_ERROR"

# Longest column name the destination creates. DuckDB has no identifier limit (200,000 characters
# work), but every INSERT lists every column: a huge key would be repeated in each statement.
MAX_NAME_LENGTH = 255
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def quote_ident(name: str) -> str:
    """Quote an SQL identifier for DuckDB (any characters allowed, ``"`` doubled)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote an SQL string literal (``'`` doubled)."""
    return "'" + text.replace("'", "''") + "'"


def storable_field(key: str) -> str:
    """The record key as DuckDB can store it: a lone surrogate (no UTF-8 form) as its ``\\udXXX``.

    A key holding the literal text of such an escape is stored as the same field (the one
    ambiguity left, for keys no API sends)."""
    try:
        key.encode()
    except UnicodeEncodeError:
        return key.encode("utf-8", "backslashreplace").decode()
    return key


def column_name(field: str) -> str:
    """The readable SQL name of a (storable) field, before case-insensitive de-duplication."""
    if not field:
        return "_empty"  # DuckDB: "zero-length delimited identifier"
    if field.isspace():
        return "_blank"
    name = _CONTROL.sub("_", field)  # DuckDB takes them, but most clients cannot type or show them
    if len(name) > MAX_NAME_LENGTH:
        # The hash keeps two long keys with one prefix apart, the same way in every sync.
        digest = hashlib.sha256(field.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME_LENGTH - 9]}_{digest}"
    return name


def encode_value(value: Any) -> tuple[bytes, bool]:
    """JSON bytes of any value a JSON parser can produce, and whether writing it lost something.

    orjson first; what it refuses (integers beyond 64 bits, nesting deeper than 255, a lone
    surrogate) goes through :func:`_json_text`, with lone surrogates replaced by U+FFFD (lossy).
    """
    try:
        return orjson.dumps(value), False
    except orjson.JSONEncodeError:
        pass
    text = _json_text(value)
    # UTF-16 joins a surrogate pair into its character and replaces a lone one with U+FFFD.
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return fixed.encode(), fixed.count("\ufffd") > text.count("\ufffd")


def _json_text(value: Any) -> str:
    """Compact JSON of ``value`` without recursion (any depth), any integer; strings unchecked."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, str):
            out.append(_encode_string(item))
        elif item is None:
            out.append("null")
        elif isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int):
            out.append(int.__repr__(item))
        elif isinstance(item, float):
            out.append(float.__repr__(item) if math.isfinite(item) else "null")  # as orjson does
        elif isinstance(item, dict):
            parts: list[Any] = [_Raw("{")]
            for n, (key, child) in enumerate(item.items()):
                parts += [_Raw(("," if n else "") + _encode_string(str(key)) + ":"), child]
            stack.extend(reversed([*parts, _Raw("}")]))
        elif isinstance(item, (list, tuple)):
            parts = [_Raw("[")]
            for n, child in enumerate(item):
                parts += [_Raw(","), child] if n else [child]
            stack.extend(reversed([*parts, _Raw("]")]))
        else:
            out.append(_encode_string(str(item)))
    return "".join(out)


class _Raw:
    """JSON text already encoded (a bracket, a separator), pushed between values by _json_text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_encode_string: Callable[[str], str] = json.encoder.encode_basestring  # escapes quotes and controls


def column_type_for_schema(schema: Any) -> str:
    """DuckDB type for one property's JSON schema; anything ambiguous or untyped is JSON."""
    if not isinstance(schema, dict):
        return JSON
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    types = [t for t in types if t != "null"]
    if not types:
        return JSON
    if set(types) <= {"integer", "number"}:
        # {"type": "number", "airbyte_type": "integer"}: Airbyte's way to say integer.
        integer = types == ["integer"] or schema.get("airbyte_type") == "integer"
        return BIGINT if integer else DOUBLE
    if len(types) != 1:
        return JSON
    kind = types[0]
    if kind == "string":
        fmt = schema.get("format")
        # Airbyte's airbyte_type hint (timestamp_with_timezone) means the same as date-time.
        if fmt == "date-time" or schema.get("airbyte_type") == "timestamp_with_timezone":
            return TIMESTAMPTZ
        return VARCHAR
    return {"boolean": BOOLEAN, "integer": BIGINT, "number": DOUBLE}.get(kind, JSON)


def column_type_for_value(value: Any) -> str:
    """Type for a field the schema does not declare, inferred from its first non-null value.

    Numbers become DOUBLE (not BIGINT) so a later fractional value still fits; strings stay
    VARCHAR (no date sniffing: a later non-date string would otherwise be nulled).
    """
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, (int, float)):
        return DOUBLE
    if isinstance(value, str):
        return VARCHAR
    return JSON


class _Mismatch(Exception):
    """A value cannot be cast to its column type."""


def _to_varchar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # a big integer, deep nesting, a lone surrogate inside
        return _json_text(value)  # its surrogates are replaced (and noted) when the row is written


def _to_timestamptz(value: Any) -> str:
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except (ValueError, OverflowError):  # e.g. year 1 moved before year 1 by its offset
            raise _Mismatch from None
        if parsed is not None:
            # An explicit +00:00 offset makes DuckDB's cast independent of the session TimeZone.
            return parsed.isoformat()
    raise _Mismatch


def _to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise _Mismatch
    if isinstance(value, (int, float)):
        try:
            result = float(value)
        except OverflowError:  # an integer beyond 1e308
            raise _Mismatch from None
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            raise _Mismatch from None
    else:
        raise _Mismatch
    if not math.isfinite(result):  # NaN/inf have no JSON form on the way into DuckDB
        raise _Mismatch
    return result


def _to_bigint(value: Any) -> int:
    if isinstance(value, bool):
        raise _Mismatch
    if isinstance(value, float):
        if not value.is_integer():
            raise _Mismatch
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _Mismatch from None
    elif not isinstance(value, int):
        raise _Mismatch
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _Mismatch
    return value


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Mismatch


def _identity(value: Any) -> Any:
    return value


# Per type: the Python type that needs no cast (fast path), and the cast for everything else.
_FAST_TYPES: dict[str, tuple[type, ...]] = {
    VARCHAR: (str,),
    TIMESTAMPTZ: (),  # always parsed and normalised
    DOUBLE: (),  # floats still need the finiteness check (NaN and inf have no JSON form)
    BIGINT: (),  # int includes bool, which must be rejected: always go through the cast
    BOOLEAN: (bool,),
    JSON: (str, int, float, bool, dict, list),
}
_CASTS: dict[str, Callable[[Any], Any]] = {
    VARCHAR: _to_varchar,
    TIMESTAMPTZ: _to_timestamptz,
    DOUBLE: _to_double,
    BIGINT: _to_bigint,
    BOOLEAN: _to_boolean,
    JSON: _identity,
}


@dataclass(frozen=True)
class Column:
    """One record field stored as one SQL column.

    ``field`` is the record's key (Sentry's camelCase name; see :func:`storable_field`), ``name``
    the SQL column name (see the module docstring), ``type`` a DuckDB type.
    """

    field: str
    name: str
    type: str

    def cast(self, value: Any) -> Any:
        """The value as it goes into this column; raises :class:`_Mismatch` if it cannot."""
        if type(value) in _FAST_TYPES[self.type]:
            return value
        return _CASTS[self.type](value)


# Per record key: the row key its value goes to, the types stored as they are, the cast, and the
# field name that ``_airbyte_meta.changes`` reports.
_Step = tuple[str, tuple[type, ...], Callable[[Any], Any], str]


class ColumnSet:
    """The ordered data columns of one stream, with case-insensitively unique SQL names."""

    def __init__(self, columns: Iterable[Column] = ()) -> None:
        self.columns: list[Column] = []
        # By field, and by any record key that is stored under another field (a lone surrogate).
        self._by_field: dict[str, Column] = {}
        self._taken: set[str] = {name.lower() for name, _ in META_COLUMNS}
        self._plan_keys: dict[str, str] | None = None
        self._plan_cache: dict[str, _Step] = {}
        for column in columns:
            self._append(column)

    def _append(self, column: Column) -> None:
        self.columns.append(column)
        self._by_field[column.field] = column
        self._taken.add(column.name.lower())

    def get(self, field: str) -> Column | None:
        return self._by_field.get(field)

    def add(self, key: str, column_type: str) -> Column:
        """The column of record key ``key``, added if new: named by :func:`column_name`, plus
        ``_1``, ``_2``... when that name is taken case-insensitively (DuckDB identifiers ignore case)."""
        field = storable_field(key)
        existing = self._by_field.get(field)
        if existing is not None:  # a key stored under an escaped field that is already a column
            self._by_field[key] = existing
            self._plan_keys = None
            return existing
        base = column_name(field)
        name, n = base, 0
        while name.lower() in self._taken:
            n += 1
            name = f"{base}_{n}"
        column = Column(field, name, column_type)
        self._append(column)
        if key != field:
            self._by_field[key] = column
        self._plan_keys = None
        return column

    def copy(self) -> ColumnSet:
        copied = ColumnSet(self.columns)
        copied._by_field.update(self._by_field)
        return copied

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def cast_record(self, data: dict[str, Any], keys: dict[str, str], row: dict[str, Any]) -> list[dict] | None:
        """Fill ``row`` (a JSON object keyed by ``keys[field]``) with the record's cast values.

        Fields without a column are skipped (the caller adds columns first). Returns the
        ``_airbyte_meta`` changes, or None when every value fitted.
        """
        plan = self._plan(keys)
        changes: list[dict] | None = None
        for field, value in data.items():
            if value is None:
                continue
            step = plan.get(field)
            if step is None:
                continue
            key, fast, cast, name = step
            if type(value) in fast:  # the common case: no call at all
                row[key] = value
                continue
            try:
                row[key] = cast(value)
            except _Mismatch:
                if changes is None:
                    changes = []
                changes.append({"field": name, "change": "NULLED", "reason": TYPECAST_ERROR})
        return changes

    def _plan(self, keys: dict[str, str]) -> dict[str, _Step]:
        """Per record key: output key, the types stored as they are, the cast (cached per ``keys``)."""
        if self._plan_keys is not keys:
            self._plan_keys = keys
            self._plan_cache = {
                key: (keys[c.field], _FAST_TYPES[c.type], _CASTS[c.type], c.field) for key, c in self._by_field.items()
            }
        return self._plan_cache
