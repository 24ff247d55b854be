"""Helpers for the packaging tests: pyproject, a YAML-subset reader, a Dockerfile reader.

The YAML reader covers what metadata.yaml and acceptance-test-config.yml use (block mappings
and sequences, quoted and plain scalars, comments), so the tests need no YAML package; where
PyYAML is installed, test_yaml_reader_agrees_with_pyyaml checks both read the files alike.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]


def pyproject() -> dict[str, Any]:
    if tomllib is None:
        import pytest

        pytest.skip("reading pyproject.toml needs Python 3.11+ (tomllib)")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def project_version() -> str:
    return str(pyproject()["project"]["version"])


def load_gen_docs() -> Any:
    """scripts/gen_docs.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_docs_script", ROOT / "scripts" / "gen_docs.py")
    assert spec and spec.loader, "scripts/gen_docs.py is missing"
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_docs_script", module)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ YAML subset
def _strip_comment(line: str) -> str:
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == "\\" and quote == '"':
                continue
            if ch == quote and not (quote == '"' and i > 0 and line[i - 1] == "\\"):
                quote = None
        elif ch in "\"'" and line[:i].rstrip()[-1:] in ("", ":", "-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _split_key(text: str) -> tuple[str, str] | None:
    if text.startswith(('"', "'")):
        end = text.find(text[0], 1)
        if end > 0 and text[end + 1 : end + 2] == ":":
            return _scalar(text[: end + 1]), text[end + 2 :].strip()
        return None
    match = re.match(r"^([^\s:#\[\]{},][^:#]*?):(?:\s+(.*))?$", text)
    if not match:
        return None
    return match.group(1), (match.group(2) or "").strip()


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text.startswith(("[", "{")):
        return json.loads(text)
    if text in ("true", "True"):
        return True
    if text in ("false", "False"):
        return False
    if text in ("null", "~", ""):
        return None
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[-+]?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?", text):
        return float(text)
    return text


def load_yaml(text: str) -> Any:
    lines = []
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if line.strip():
            lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
    if not lines:
        return None
    value, i = _block(lines, 0, lines[0][0])
    if i != len(lines):
        raise ValueError(f"unparsed YAML from line {lines[i]!r}")
    return value


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if _is_item(lines[i][1]):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _mapping(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not _is_item(lines[i][1]):
        split = _split_key(lines[i][1])
        if split is None:
            raise ValueError(f"not a 'key: value' line: {lines[i][1]!r}")
        key, rest = split
        i += 1
        if rest:
            result[key] = _scalar(rest)
        elif i < len(lines) and (lines[i][0] > indent or (lines[i][0] == indent and _is_item(lines[i][1]))):
            result[key], i = _block(lines, i, lines[i][0])
        else:
            result[key] = None
    return result, i


def _sequence(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and _is_item(lines[i][1]):
        content = lines[i][1][1:].strip()
        if not content:
            i += 1
            value, i = _block(lines, i, lines[i][0])
            items.append(value)
        elif _split_key(content) is not None:
            # "- key: value" opens a mapping whose keys sit two columns in.
            lines = [*lines[:i], (indent + 2, content), *lines[i + 1:]]
            value, i = _mapping(lines, i, indent + 2)
            items.append(value)
        else:
            items.append(_scalar(content))
            i += 1
    return items, i


# ------------------------------------------------------------------ Dockerfile
@dataclass
class Instruction:
    keyword: str
    args: str


def dockerfile(path: Path | None = None) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (path or ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def key_values(args: str) -> dict[str, str]:
    """LABEL/ENV arguments: key=value pairs (quotes removed); also the legacy 'ENV key value'."""
    parts = shlex.split(args)
    if parts and "=" not in parts[0]:
        return {parts[0]: " ".join(parts[1:])}
    return dict(p.split("=", 1) for p in parts)


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not an exec-form list: {args}"
    return value


# ------------------------------------------------------------------ .dockerignore
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(ch, re.escape(ch))
        i += 1
    return re.compile(out + "$")


def dockerignore_rules(path: Path | None = None) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (path or ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = pattern.strip("/")
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def docker_excluded(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders wins."""
    parts = rel.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return excluded
