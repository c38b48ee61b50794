"""Reading the configuration layers: one file, then ``SEAWALL_*`` environment variables.

A file is read only when asked for: an explicit path, else the one ``SEAWALL_CONFIG`` names.
``.yml``/``.yaml`` and ``.toml`` files keep seawall's keys under ``resilience`` (so a kstlib
``kstlib.conf.yml`` works as it is), and a ``pyproject.toml`` under ``[tool.seawall]``, without
a ``resilience`` level: the ``tool.seawall`` table is already seawall's own.

Every value is checked where it is read, so an error names its own source; the layers are
then merged key by key (environment over file over built-in defaults), and rules spanning two
keys are checked on the merged values, naming where each of the two came from.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from .._errors import ConfigError
from .schema import Problem, check, closest, error, parse, shown
from .settings import SECTIONS, conflict, rules

__all__ = ["CONFIG_VAR", "ENV_PREFIX", "Entry", "env_name", "load"]

CONFIG_VAR = "SEAWALL_CONFIG"
ENV_PREFIX = "SEAWALL_"

# Keys that kstlib documents or ships but that seawall deliberately does not take.
_NOT_TAKEN = {
    "shutdown.force_exit_code": "GracefulShutdown exits with 128 + the signal number; remove it",
}


class _Yaml(Protocol):
    """The part of PyYAML used here (its stubs may not be installed)."""

    YAMLError: type[Exception]
    SafeLoader: type[object]

    def safe_load(self, stream: str) -> object: ...

    def compose(self, stream: str, Loader: type[object]) -> _Node | None: ...


class _Mark(Protocol):
    line: int


class _Node(Protocol):
    """A composed YAML node: a mapping's value is a list of (key node, value node) pairs."""

    tag: str
    value: object
    start_mark: _Mark


@dataclass(frozen=True, slots=True)
class Entry:
    """One checked value: its section, key and value, where it came from and under what name."""

    section: str
    key: str
    value: object
    source: str
    name: str


def env_name(section: str, key: str) -> str:
    """The environment variable for ``section.key``: ``SEAWALL_<SECTION>__<KEY>``."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def load(
    path: str | os.PathLike[str] | None, env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str], str | None]:
    """Read the file (if any) and the environment.

    Return the checked sections, the origin of every key set, and the file read (or None).
    """
    named_by = None
    if path is None and env.get(CONFIG_VAR):
        path, named_by = env[CONFIG_VAR], CONFIG_VAR
    entries = [] if path is None else read_file(Path(path), named_by)
    sections, origins = merge([*entries, *read_env(env)])
    return sections, origins, None if path is None else str(path)


# -- files --------------------------------------------------------------------------------


def read_file(path: Path, named_by: str | None = None) -> list[Entry]:
    """The checked entries of one YAML or TOML file."""
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".yml", ".yaml", ".toml"):
        raise ConfigError(f"{source}: unknown file type {suffix!r}; use .yml, .yaml or .toml")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        via = f" (named by {named_by})" if named_by else ""
        raise ConfigError(f"{source}{via}: cannot be read: {exc}") from exc
    if suffix == ".toml":
        document, prefix = _toml(source, text), "resilience"
        if path.name == "pyproject.toml":
            prefix = "tool.seawall"
    else:
        document, prefix = _yaml(source, text), "resilience"
    return _entries(source, _table(source, document, prefix), prefix)


def _yaml(source: str, text: str) -> object:
    try:
        yaml = cast(_Yaml, importlib.import_module("yaml"))
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"reading {source} needs PyYAML: pip install 'seawall[yaml]'", name="yaml"
        ) from exc
    try:
        _refuse_duplicates(source, yaml.compose(text, Loader=yaml.SafeLoader), "")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None


def _yaml_problem(exc: Exception) -> str:
    # str(exc) quotes the offending lines of the file, which may hold a password in a store
    # URL: keep PyYAML's complaint and position, never the file's text.
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} (at line {mark.line + 1}, column {mark.column + 1})"


def _refuse_duplicates(source: str, node: _Node | None, path: str) -> None:
    # PyYAML keeps the last of two equal keys without a word; two "circuit_breaker:" blocks
    # in one file are a mistake worth naming. Only seawall's own subtree is checked.
    if node is None or node.tag != "tag:yaml.org,2002:map" or not isinstance(node.value, list):
        return
    seen: dict[str, int] = {}
    pairs = cast(list[tuple[_Node, _Node]], node.value)
    for key_node, value_node in pairs:
        key, line = key_node.value, key_node.start_mark.line + 1
        if not isinstance(key, str) or (not path and key != "resilience"):
            continue  # a non-string key is reported as unknown later
        name = f"{path}.{key}" if path else str(key)
        if key in seen:
            raise ConfigError(f"{source}: {name} is given twice, on lines {seen[key]} and {line}")
        seen[key] = line
        _refuse_duplicates(source, value_node, name)


def _toml(source: str, text: str) -> object:
    import tomllib  # stdlib, but only needed when a TOML file is actually read

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None


def _table(source: str, document: object, prefix: str) -> dict[Any, Any]:
    """The mapping at dotted ``prefix`` in ``document``; other top-level keys are ignored."""
    node = {} if document is None else document
    walked: list[str] = []
    for part in prefix.split("."):
        if not isinstance(node, dict):
            raise _not_a_table(source, ".".join(walked) or "the document", node)
        misplaced = sorted(k for k in node if k in SECTIONS) if part == "resilience" else []
        if misplaced:
            raise ConfigError(
                f"{source}: {misplaced[0]!r} is at the top level; seawall reads it under "
                f"'resilience:' (other top-level sections are ignored)"
            )
        if part not in node:
            raise ConfigError(f"{source}: no {prefix!r} section, so nothing for seawall in it")
        node = node[part]
        walked.append(part)
    if node is None:  # "resilience:" with nothing under it
        return {}
    if not isinstance(node, dict):
        raise _not_a_table(source, prefix, node)
    return node


def _not_a_table(source: str, name: str, value: object) -> ConfigError:
    return error(source, name, value, Problem("must be a mapping of keys", show_type=True))


def _entries(source: str, table: dict[Any, Any], prefix: str) -> list[Entry]:
    entries: list[Entry] = []
    for section, keys in table.items():
        name = f"{prefix}.{section}"
        if section == "resilience" and prefix == "tool.seawall":
            raise ConfigError(
                f"{source}: {name} is not read: [tool.seawall] has no resilience level, "
                "write [tool.seawall.circuit_breaker] and so on"
            )
        if section not in SECTIONS:
            near = closest(section, SECTIONS)
            raise _unknown(source, name, keys, near and f"{prefix}.{near}")
        if keys is None:  # "circuit_breaker:" with nothing under it
            continue
        if not isinstance(keys, dict):
            raise _not_a_table(source, name, keys)
        entries.extend(_section_entries(source, section, keys, name))
    return entries


def _section_entries(source: str, section: str, keys: dict[Any, Any], name: str) -> list[Entry]:
    known = rules(SECTIONS[section])
    entries = []
    for key, value in keys.items():
        if key not in known:
            hint = _NOT_TAKEN.get(f"{section}.{key}")
            if hint:
                raise ConfigError(f"{source}: {name}.{key} is not a seawall key: {hint}")
            near = closest(key, known)
            raise _unknown(source, f"{name}.{key}", value, near and f"{name}.{near}")
        try:
            checked = check(known[key], value)
        except Problem as problem:
            raise error(source, f"{name}.{key}", value, problem) from None
        entries.append(Entry(section, key, checked, source, f"{name}.{key}"))
    return entries


def _unknown(source: str, name: str, value: object, near: str | None) -> ConfigError:
    hint = f"; did you mean {near!r}?" if near else ""
    return ConfigError(f"{source}: unknown key {name} (value {shown(value)}){hint}")


# -- environment --------------------------------------------------------------------------


def read_env(env: Mapping[str, str]) -> list[Entry]:
    """The checked entries of every ``SEAWALL_<SECTION>__<KEY>`` variable in ``env``."""
    known = {env_name(s, k): (s, k) for s, cls in SECTIONS.items() for k in rules(cls)}
    lookalikes = {var.replace("__", "_"): var for var in known}
    entries = []
    for var in sorted(env):
        text = env[var]
        if var in known:
            entries.append(_env_entry(var, text, *known[var]))
        elif var.startswith(ENV_PREFIX) and "__" in var:
            near = closest(var, known)
            hint = f"; did you mean {near}?" if near else ""
            raise ConfigError(
                f"environment variable {var}: unknown setting (value {shown(text)}){hint}"
            )
        elif var in lookalikes:
            # SEAWALL_CIRCUIT_BREAKER_MAX_FAILURES would otherwise be silently ignored.
            raise ConfigError(
                f"environment variable {var}: not read (value {shown(text)}); seawall's variables "
                f"separate section and key with two underscores: {lookalikes[var]}"
            )
    return entries


def _env_entry(var: str, text: str, section: str, key: str) -> Entry:
    try:
        value = parse(rules(SECTIONS[section])[key], text)
    except Problem as problem:
        raise error(f"environment variable {var}", f"{section}.{key}", text, problem) from None
    return Entry(section, key, value, f"environment variable {var}", f"{section}.{key}")


# -- merging ------------------------------------------------------------------------------


def merge(entries: list[Entry]) -> tuple[dict[str, Any], dict[str, str]]:
    """Later entries win; return ``{section: section settings}`` and ``{dotted key: source}``."""
    chosen: dict[str, dict[str, Entry]] = {name: {} for name in SECTIONS}
    for entry in entries:
        chosen[entry.section][entry.key] = entry
    sections = {}
    for section, cls in SECTIONS.items():
        values = {k: e.value for k, e in chosen[section].items()}
        _check_conflict(section, {**_defaults(cls), **values}, chosen[section])
        sections[section] = cls(**values)
    origins = {f"{s}.{k}": e.source for s, keys in chosen.items() for k, e in keys.items()}
    return sections, origins


def _defaults(cls: type[Any]) -> dict[str, Any]:
    default = cls()
    return {key: getattr(default, key) for key in rules(cls)}


def _check_conflict(section: str, values: dict[str, Any], chosen: dict[str, Entry]) -> None:
    clash = conflict(section, values)
    if clash is None:
        return
    key, other, complaint = clash
    where = chosen.get(key)
    source, name = (where.source, where.name) if where else ("built-in default", f"{section}.{key}")
    origin = chosen[other].source if other in chosen else "the built-in default"
    message = str(error(source, name, values[key], complaint))
    raise ConfigError(f"{message}; {section}.{other} = {values[other]!r} comes from {origin}")
