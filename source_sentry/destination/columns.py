"""Columns of a stream's tables: JSON-schema types to DuckDB types, names, and value typing.

A stream's tables (final, raw history, overwrite staging) share one column layout, held by a
:class:`ColumnSet`: an ordered list of :class:`Column` (record field -> SQL column name and type).
Values are typed inside DuckDB (:data:`SQL_MACROS`, :func:`sql_value`), never record by record in
Python: a value that does not fit its column becomes NULL with a note in ``_airbyte_meta.changes``
(:func:`sql_misfit`) instead of failing the sync. :func:`encode_value` writes what orjson refuses
(big integers, deep nesting, lone surrogates) for the records that arrive as Python objects.

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
    "SQL_MACROS",
    "TIMESTAMPTZ",
    "VARCHAR",
    "Column",
    "ColumnSet",
    "column_type_for_json_type",
    "column_type_for_schema",
    "encode_value",
    "json_pointer",
    "parse_datetime",
    "quote_ident",
    "quote_literal",
    "sql_misfit",
    "sql_value",
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



def quote_ident(name: str) -> str:
    """Quote an SQL identifier for DuckDB (any characters allowed, ``"`` doubled)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote an SQL string literal (``'`` doubled)."""
    return "'" + text.replace("'", "''") + "'"


def json_pointer(field: str) -> str:
    """The JSON pointer (RFC 6901) of a top-level key: any key, "" and case-alike ones too."""
    return "/" + field.replace("~", "~0").replace("/", "~1")


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


def column_type_for_json_type(json_type: str) -> str:
    """Type for a field the schema does not declare, from DuckDB's ``json_type`` of its first
    non-null value.

    Numbers become DOUBLE (not BIGINT) so a later fractional value still fits; strings stay
    VARCHAR (no date sniffing: a later non-date string would otherwise be nulled).
    """
    if json_type == "BOOLEAN":
        return BOOLEAN
    if json_type in ("BIGINT", "UBIGINT", "HUGEINT", "DOUBLE"):
        return DOUBLE
    if json_type == "VARCHAR":
        return VARCHAR
    return JSON


# The typing of one JSON value ``j`` (DuckDB JSON, NULL when the record lacks the field) per column
# type, as SQL macros: what fits becomes the typed value, anything else NULL. The rules are those
# of a careful reader: no rounding (1.5 is no BIGINT, TRY_CAST would give 2), no date words
# ('epoch', 'infinity'), no NaN or infinity in DOUBLE, integers beyond 64 bits are no BIGINT.
# A JSON ``null`` reads as the text 'null' (json_extract writes values minified).
SQL_MACROS: tuple[str, ...] = (
    "CREATE OR REPLACE TEMP MACRO _ab_str(j) AS json_extract_string(j, '$')",
    # json_pointer() in SQL.
    "CREATE OR REPLACE TEMP MACRO _ab_pointer(k) AS '/' || replace(replace(k, '~', '~0'), '/', '~1')",
    "CREATE OR REPLACE TEMP MACRO _ab_varchar(j) AS "
    "CASE json_type(j) WHEN 'NULL' THEN NULL WHEN 'VARCHAR' THEN _ab_str(j) ELSE j::VARCHAR END",
    "CREATE OR REPLACE TEMP MACRO _ab_json(j) AS CASE WHEN j::VARCHAR = 'null' THEN NULL ELSE j END",
    "CREATE OR REPLACE TEMP MACRO _ab_integral(d) AS "
    "CASE WHEN d = trunc(d) AND d >= -9223372036854775808.0 AND d < 9223372036854775808.0 THEN d::BIGINT END",
    "CREATE OR REPLACE TEMP MACRO _ab_bigint(j) AS CASE json_type(j) "
    "WHEN 'BIGINT' THEN j::VARCHAR::BIGINT WHEN 'UBIGINT' THEN TRY_CAST(j::VARCHAR AS BIGINT) "
    "WHEN 'DOUBLE' THEN _ab_integral(TRY_CAST(j::VARCHAR AS DOUBLE)) "
    r"WHEN 'VARCHAR' THEN CASE WHEN regexp_full_match(_ab_str(j), '\s*[+-]?[0-9]+\s*') "
    "THEN TRY_CAST(trim(_ab_str(j)) AS BIGINT) END END",
    "CREATE OR REPLACE TEMP MACRO _ab_finite(d) AS CASE WHEN isfinite(d) THEN d END",
    "CREATE OR REPLACE TEMP MACRO _ab_double(j) AS _ab_finite(CASE json_type(j) "
    "WHEN 'BIGINT' THEN TRY_CAST(j::VARCHAR AS DOUBLE) WHEN 'UBIGINT' THEN TRY_CAST(j::VARCHAR AS DOUBLE) "
    "WHEN 'DOUBLE' THEN TRY_CAST(j::VARCHAR AS DOUBLE) WHEN 'VARCHAR' THEN TRY_CAST(trim(_ab_str(j)) AS DOUBLE) END)",
    "CREATE OR REPLACE TEMP MACRO _ab_boolean(j) AS CASE json_type(j) WHEN 'BOOLEAN' THEN j::VARCHAR = 'true' "
    "WHEN 'VARCHAR' THEN CASE lower(trim(_ab_str(j))) WHEN 'true' THEN true WHEN 'false' THEN false END "
    "WHEN 'BIGINT' THEN CASE j::VARCHAR WHEN '0' THEN false WHEN '1' THEN true END END",
    # ISO 8601 only (a date first: no 'epoch' or 'infinity'); the connection's TimeZone is UTC, so a
    # value without an offset is UTC, as Sentry's timestamps are.
    "CREATE OR REPLACE TEMP MACRO _ab_timestamptz(j) AS CASE WHEN json_type(j) = 'VARCHAR' "
    "AND regexp_matches(_ab_str(j), '^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}') "
    "THEN TRY_CAST(upper(trim(_ab_str(j))) AS TIMESTAMPTZ) END",
)


def sql_value(column_type: str, json_value: str) -> str:
    """SQL giving the value of ``json_value`` (an SQL expression of type JSON) in a column of
    ``column_type``: the typed value, or NULL where it does not fit (see :func:`sql_misfit`)."""
    return f"_ab_{column_type.lower()}({json_value})"


def sql_misfit(column_type: str, json_value: str) -> str | None:
    """SQL that is true where a non-null ``json_value`` does not fit ``column_type`` (so it is
    stored as NULL, noted in ``_airbyte_meta``); None for the types every value fits."""
    if column_type in (VARCHAR, JSON):
        return None
    return f"({json_value}::VARCHAR <> 'null' AND {sql_value(column_type, json_value)} IS NULL)"


@dataclass(frozen=True)
class Column:
    """One record field stored as one SQL column.

    ``field`` is the record's key (Sentry's camelCase name; see :func:`storable_field`), ``name``
    the SQL column name (see the module docstring), ``type`` a DuckDB type.
    """

    field: str
    name: str
    type: str



class ColumnSet:
    """The ordered data columns of one stream, with case-insensitively unique SQL names."""

    def __init__(self, columns: Iterable[Column] = ()) -> None:
        self.columns: list[Column] = []
        # By field, and by any record key that is stored under another field (a lone surrogate).
        self._by_field: dict[str, Column] = {}
        self._taken: set[str] = {name.lower() for name, _ in META_COLUMNS}
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
        return column

    def copy(self) -> ColumnSet:
        copied = ColumnSet(self.columns)
        copied._by_field.update(self._by_field)
        return copied

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)
