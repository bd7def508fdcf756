"""Load rule files: YAML -> validated, compiled :class:`~pipeline.rules.model.Rule` objects.

Every problem is reported as ``file:line: rule 'id': what is wrong`` (with the column inside a
condition, and the closest valid names for a misspelt key, field or tag). All problems of all
files are collected, so ``rules validate`` shows them in one pass, and nothing is returned unless
every file is clean: a rule set is loaded whole or not at all.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import RuleError
from pipeline.records import SEVERITIES, Kind
from pipeline.rules.compiler import compile_expression
from pipeline.rules.errors import ExpressionError
from pipeline.rules.model import (
    ACTIONS,
    EXPECTS,
    KIND_GROUPS,
    KNOWN_TAGS,
    RISK_SCORES,
    ROLES,
    SUBJECTS,
    WHEN_ROLES,
    Case,
    Rule,
)
from pipeline.rules.names import BOOL, FIELDS, NUM, STR, Env
from pipeline.rules.yamlsrc import position_in_scalar
from pipeline.yamlsafe import MAX_BYTES, MarkedMap, YamlError, clip, load_yaml, read_yaml_file
from pipeline.yamlsafe import excerpt as _q

log = logging.getLogger(__name__)

RULE_KEYS = ("id", "title", "description", "tags", "severity", "enabled", "when", "condition",
             "cooldown", "subject", "members", "actions", "risk_score", "tests")
REQUIRED = ("id", "title", "description", "tags", "severity", "condition")
WHEN_KEYS = ("kinds", "role")
CASE_KEYS = ("name", "input", "lists", "expect")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_TAG_RE = re.compile(r"^[a-z0-9_]{1,40}$")
_DURATION_RE = re.compile(r"^(\d+)\s*(s|m|h|d)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class RuleSetError(RuleError):
    """One or more rule files are invalid; ``errors`` lists every problem, one line each."""

    def __init__(self, errors: list[str]) -> None:
        errors = [clip(e) for e in errors]  # one bounded line each, whatever a file holds
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(errors[0] + more)
        self.errors = errors


class _Problem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _suggest(word: str, candidates: Iterable[str]) -> str:
    if len(word) > 64:
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def rule_files(paths: Sequence[str | Path]) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files named by ``paths`` (directories are not searched deeply)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise RuleSetError([f"{p}: no such rule file or directory"])
    return out


def load_rules(paths: Sequence[str | Path], env: Env | None = None, *,
               max_bytes: int = MAX_BYTES) -> list[Rule]:
    """Load and compile every rule in ``paths``; raises :class:`RuleSetError` listing all problems.

    A file larger than ``max_bytes`` (setting ``analytics.max_yaml_bytes``) is refused unread.
    """
    env = env or Env()
    rules: list[Rule] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    files = rule_files(paths)
    if not files:
        raise RuleSetError([f"{', '.join(map(str, paths)) or '(none)'}: no rule files found"])
    for path in files:
        try:
            text = read_yaml_file(path, max_bytes=max_bytes)
        except YamlError as err:
            errors.append(str(err))
            continue
        for rule in _load_text(text, str(path), env, errors, max_bytes):
            if rule.id in seen:
                errors.append(f"{rule.where}: rule {rule.id!r}: duplicate id (first defined at {seen[rule.id]})")
                continue
            seen[rule.id] = rule.where
            rules.append(rule)
    if errors:
        raise RuleSetError(errors)
    return rules


def load_rules_text(text: str, path: str = "<string>", env: Env | None = None, *,
                    max_bytes: int = MAX_BYTES) -> list[Rule]:
    """Load rules from YAML text (tests, tooling); same errors as :func:`load_rules`."""
    errors: list[str] = []
    rules = _load_text(text, path, env or Env(), errors, max_bytes)
    if errors:
        raise RuleSetError(errors)
    return rules


def _load_text(text: str, path: str, env: Env, errors: list[str], max_bytes: int = MAX_BYTES) -> list[Rule]:
    try:
        doc = load_yaml(text, path, max_bytes=max_bytes)
    except YamlError as err:
        errors.append(str(err))
        return []
    if not isinstance(doc, MarkedMap) or "rules" not in doc:
        errors.append(f"{path}:1: a rule file is a mapping with a 'rules:' list")
        return []
    for key in doc:
        if key != "rules":
            errors.append(f"{path}:{doc.key_lines[key]}: unknown top-level key {_q(key)}; "
                          "only 'rules' is allowed")
    if not isinstance(doc["rules"], list):
        errors.append(f"{path}:{doc.key_lines['rules']}: 'rules' must be a list of rules")
        return []
    lines = text.splitlines()
    out: list[Rule] = []
    for i, item in enumerate(doc["rules"]):
        line = item.line if isinstance(item, MarkedMap) else doc.key_lines["rules"]
        if not isinstance(item, MarkedMap):
            errors.append(f"{path}:{line}: rule #{i + 1} must be a mapping")
            continue
        rid = item.get("id") if isinstance(item.get("id"), str) else f"#{i + 1}"
        try:
            out.append(_build_rule(item, path, lines, env))
        except _Problem as p:
            errors.append(f"{path}:{p.line}: rule {_q(rid)}: {p}")
        except ExpressionError as err:  # raised with a file position already mapped
            errors.append(f"{path}:{err.line}: rule {_q(rid)}: column {err.column}: condition: {err.reason}")
    return out


def _get(m: MarkedMap, key: str, types: type | tuple[type, ...], what: str, default: Any = None) -> Any:
    if key not in m:
        if default is None:
            raise _Problem(m.line, f"missing required key {_q(key)}")
        return default
    value = m[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        raise _Problem(m.key_lines[key], f"{_q(key)} must be {what}, got {type(value).__name__} {_q(value)}")
    return value


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _choice(m: MarkedMap, key: str, value: str, options: Sequence[str]) -> str:
    if value not in options:
        raise _Problem(m.key_lines[key], f"{_q(key)}: unknown value {_q(value)}{_suggest(value, options)} "
                                         f"(one of {', '.join(options)})")
    return value


def _build_rule(m: MarkedMap, path: str, lines: list[str], env: Env) -> Rule:
    for key in m:
        if key not in RULE_KEYS:
            raise _Problem(m.key_lines[key], f"unknown key {_q(key)}{_suggest(str(key), RULE_KEYS)}")
    for key in REQUIRED:
        if key not in m:
            raise _Problem(m.line, f"missing required key {_q(key)}")
    rid = _get(m, "id", str, "a string")
    if not _ID_RE.match(rid):
        raise _Problem(m.key_lines["id"], f"id {_q(rid)} must be lower-case letters, digits, '_', '.', '-'")
    tags = tuple(_get(m, "tags", list, "a list of tags"))
    for tag in tags:
        if not isinstance(tag, str) or not _TAG_RE.match(tag):
            raise _Problem(m.key_lines["tags"], f"tag {_q(tag)} must be lower-case letters, digits and '_'")
        if tag not in KNOWN_TAGS and _suggest(tag, KNOWN_TAGS):
            raise _Problem(m.key_lines["tags"], f"unknown tag {_q(tag)}{_suggest(tag, KNOWN_TAGS)}")
    if not tags:
        raise _Problem(m.key_lines["tags"], "'tags' must name at least one typology or category")
    severity = _choice(m, "severity", _get(m, "severity", str, "a string"), SEVERITIES)
    kinds, roles = _when(m)
    condition = _get(m, "condition", str, "an expression string")
    try:
        compiled = compile_expression(condition, env)
    except ExpressionError as err:
        line, column = position_in_scalar(m.value_nodes["condition"], lines, err.line, err.column)
        raise ExpressionError(err.reason, line, column) from None
    subject = _choice(m, "subject", _get(m, "subject", str, "a string", "self"), SUBJECTS)
    members = tuple(_choice(m, "members", str(name), SUBJECTS)
                    for name in _get(m, "members", list, "a list of parties", []))
    actions = tuple(_get(m, "actions", list, "a list", ["alert"]))
    for action in actions:
        _choice(m, "actions", action, ACTIONS) if isinstance(action, str) else _choice(m, "actions", str(action), ACTIONS)
    risk = _get(m, "risk_score", (int, float), "a number 0-100", RISK_SCORES[severity])
    if not 0 <= risk <= 100:
        raise _Problem(m.key_lines["risk_score"], f"'risk_score' must be within 0-100, got {risk}")
    canonical = {k: v for k, v in m.items() if k != "tests"}
    version = hashlib.blake2b(json.dumps(canonical, sort_keys=True, default=str).encode(),
                              digest_size=8).hexdigest()
    return Rule(
        id=rid,
        title=_get(m, "title", str, "a string").strip(),
        description=" ".join(_get(m, "description", str, "a string").split()),
        tags=tags,
        severity=severity,
        enabled=_get(m, "enabled", bool, "true or false", True),
        kinds=kinds,
        roles=roles,
        condition=condition.strip(),
        compiled=compiled,
        cooldown_s=_cooldown(m),
        subject=subject,
        actions=actions,
        risk_score=float(risk),
        version=version,
        cases=_cases(m),
        path=path,
        line=m.line,
        members=members,
    )


def _when(m: MarkedMap) -> tuple[tuple[str, ...], tuple[str, ...]]:
    when = _get(m, "when", dict, "a mapping with 'kinds' and/or 'role'", MarkedMap())
    if not isinstance(when, MarkedMap):
        return Kind.ALL, ROLES
    for key in when:
        if key not in WHEN_KEYS:
            raise _Problem(when.key_lines[key], f"when: unknown key {_q(key)}{_suggest(str(key), WHEN_KEYS)}")
    raw_kinds = when.get("kinds", "any")
    raw_kinds = [raw_kinds] if isinstance(raw_kinds, str) else raw_kinds
    if not isinstance(raw_kinds, list) or not raw_kinds:
        raise _Problem(when.key_lines["kinds"], "when.kinds must be a list of kinds, 'value' or 'any'")
    kinds: list[str] = []
    options = tuple(KIND_GROUPS) + Kind.ALL
    for k in raw_kinds:
        if k in KIND_GROUPS:
            kinds.extend(KIND_GROUPS[k])
        elif k in Kind.ALL:
            kinds.append(k)
        else:
            raise _Problem(when.key_lines["kinds"],
                           f"when.kinds: unknown kind {_q(k)}{_suggest(str(k), options)}")
    role = when.get("role", "any")
    if role not in (*WHEN_ROLES, "any"):
        raise _Problem(when.key_lines["role"],
                       f"when.role: unknown role {_q(role)} (sender, receiver, member or any)")
    return tuple(dict.fromkeys(kinds)), ROLES if role == "any" else (role,)


def _cooldown(m: MarkedMap) -> int:
    raw = m.get("cooldown", 0)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    match = _DURATION_RE.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise _Problem(m.key_lines["cooldown"],
                       f"'cooldown' must be seconds or e.g. '10m', '1h', got {_q(raw)}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _cases(m: MarkedMap) -> tuple[Case, ...]:
    raw = _get(m, "tests", list, "a list of test cases", [])
    cases: list[Case] = []
    for i, c in enumerate(raw):
        if not isinstance(c, MarkedMap):
            raise _Problem(m.key_lines["tests"], f"test #{i + 1} must be a mapping")
        for key in c:
            if key not in CASE_KEYS:
                raise _Problem(c.key_lines[key],
                               f"test: unknown key {_q(key)}{_suggest(str(key), CASE_KEYS)}")
        name = str(c.get("name", f"#{i + 1}"))
        expect = _get(c, "expect", str, "hit, no_hit or error")
        _choice(c, "expect", expect, EXPECTS)
        values = _get(c, "input", dict, "a mapping of context names to values", MarkedMap())
        for key, value in values.items():
            field = FIELDS.get(key)
            if field is None:
                raise _Problem(values.key_lines[key],
                               f"test {_q(name)}: unknown input {_q(key)}{_suggest(str(key), FIELDS)}")
            ok = {NUM: isinstance(value, int | float) and not isinstance(value, bool),
                  STR: isinstance(value, str), BOOL: isinstance(value, bool)}[field.type]
            if not ok:
                raise _Problem(values.key_lines[key],
                               f"test {_q(name)}: input {_q(key)} must be {field.type}, got {_q(value)}")
        lists = _get(c, "lists", dict, "a mapping of address -> list names", MarkedMap())
        norm = {}
        for addr, names in lists.items():
            names = [names] if isinstance(names, str) else names
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _Problem(lists.key_lines[addr], f"test {_q(name)}: lists.{_q(addr)} must be list names")
            norm[str(addr)] = tuple(names)
        cases.append(Case(name, dict(values), norm, expect, c.line))
    return tuple(cases)
