"""Columns of a stream's tables: JSON-schema types to DuckDB types, names, and value casts.

A stream's tables (final, raw history, overwrite staging) share one column layout, held by a
:class:`ColumnSet`: an ordered list of :class:`Column` (record field -> SQL column name and type).
Values are cast in Python before they reach DuckDB, so a value that does not fit its column
becomes NULL with a note in ``_airbyte_meta.changes`` instead of failing the sync.
"""

from __future__ import annotations

import math
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
    "META_COLUMNS",
    "TIMESTAMPTZ",
    "VARCHAR",
    "Column",
    "ColumnSet",
    "column_type_for_schema",
    "column_type_for_value",
    "parse_datetime",
    "quote_ident",
    "quote_literal",
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

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def quote_ident(name: str) -> str:
    """Quote an SQL identifier for DuckDB (any characters allowed, ``"`` doubled)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote an SQL string literal (``'`` doubled)."""
    return "'" + text.replace("'", "''") + "'"


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
    return orjson.dumps(value).decode()


def _to_timestamptz(value: Any) -> str:
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            # An explicit +00:00 offset makes DuckDB's cast independent of the session TimeZone.
            return parsed.isoformat()
    raise _Mismatch


def _to_double(value: Any) -> float:
    if isinstance(value, bool):
        raise _Mismatch
    if isinstance(value, (int, float)):
        result = float(value)
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

    ``field`` is the record's key (Sentry's camelCase name), ``name`` the SQL column name (equal to
    ``field`` unless it had to be suffixed to avoid a case-insensitive clash), ``type`` a DuckDB type.
    """

    field: str
    name: str
    type: str

    def cast(self, value: Any) -> Any:
        """The value as it goes into this column; raises :class:`_Mismatch` if it cannot."""
        if type(value) in _FAST_TYPES[self.type]:
            return value
        return _CASTS[self.type](value)


class ColumnSet:
    """The ordered data columns of one stream, with case-insensitively unique SQL names."""

    def __init__(self, columns: Iterable[Column] = ()) -> None:
        self.columns: list[Column] = []
        self._by_field: dict[str, Column] = {}
        self._taken: set[str] = {name.lower() for name, _ in META_COLUMNS}
        self._plan_keys: dict[str, str] | None = None
        self._plan_cache: dict[str, tuple[str, tuple[type, ...], Callable[[Any], Any]]] = {}
        for column in columns:
            self._append(column)

    def _append(self, column: Column) -> None:
        self.columns.append(column)
        self._by_field[column.field] = column
        self._taken.add(column.name.lower())

    def get(self, field: str) -> Column | None:
        return self._by_field.get(field)

    def add(self, field: str, column_type: str) -> Column:
        """Add a column for ``field``; its name is ``field``, or ``field_1``, ``field_2``... when
        that name is taken case-insensitively (DuckDB identifiers ignore case)."""
        name, n = field, 0
        while name.lower() in self._taken:
            n += 1
            name = f"{field}_{n}"
        column = Column(field, name, column_type)
        self._append(column)
        return column

    def copy(self) -> ColumnSet:
        return ColumnSet(self.columns)

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
            key, fast, cast = step
            if type(value) in fast:  # the common case: no call at all
                row[key] = value
                continue
            try:
                row[key] = cast(value)
            except _Mismatch:
                if changes is None:
                    changes = []
                changes.append({"field": field, "change": "NULLED", "reason": TYPECAST_ERROR})
        return changes

    def _plan(self, keys: dict[str, str]) -> dict[str, tuple[str, tuple[type, ...], Callable[[Any], Any]]]:
        """Per field: output key, the types stored as they are, the cast (cached per ``keys``)."""
        if self._plan_keys is not keys:
            self._plan_keys = keys
            self._plan_cache = {
                c.field: (keys[c.field], _FAST_TYPES[c.type], _CASTS[c.type]) for c in self.columns
            }
        return self._plan_cache
