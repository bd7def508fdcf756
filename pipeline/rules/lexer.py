"""Tokenizer of the rule expression language.

Hand-written rather than built on Python's ``tokenize``: the language is deliberately smaller
than Python, and every token carries its line and column so that an error can point at the exact
character in the YAML file. Forbidden Python constructs (``lambda``, ``import``, ``.``) are still
tokenized so that the parser can say *why* they are rejected instead of "unexpected character".
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pipeline.rules.errors import ExpressionError


class Token(NamedTuple):
    kind: str  # NUM STR NAME KW OP EOF
    text: str
    value: object
    line: int
    column: int


KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})
# Python keywords we refuse with a clear message rather than treating as field names.
FORBIDDEN_WORDS = frozenset({
    "lambda", "import", "from", "def", "class", "for", "while", "if", "else", "is", "yield",
    "await", "async", "with", "exec", "eval", "global", "nonlocal", "del", "return", "None",
    "True", "False",
})

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<num>(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|\*\*|//|[<>+\-*/%(),\[\].:=!&|~^@{};`\\])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
MAX_EXPRESSION_CHARS = 4000


def _unescape(body: str, line: int, column: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ExpressionError(f"unknown escape \\{nxt} in string", line, column + i + 1)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with ``EOF``; raises :class:`ExpressionError`."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    tokens: list[Token] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        column = pos - line_start + 1
        if m is None:
            if text[pos] in "\"'":
                raise ExpressionError("unterminated string", line, column)
            raise ExpressionError(f"unexpected character {text[pos]!r}", line, column)
        group, chunk = m.lastgroup, m.group()
        if group == "nl":
            line, line_start = line + 1, m.end()
        elif group == "num":
            clean = chunk.replace("_", "")
            try:
                value: object = float(clean) if any(c in clean for c in ".eE") else int(clean)
            except ValueError:
                raise ExpressionError(f"malformed number {chunk!r}", line, column) from None
            tokens.append(Token("NUM", chunk, value, line, column))
        elif group == "str":
            tokens.append(Token("STR", chunk, _unescape(chunk[1:-1], line, column), line, column))
        elif group == "name":
            kind = "KW" if chunk in KEYWORDS else "NAME"
            tokens.append(Token(kind, chunk, chunk, line, column))
        elif group == "op":
            tokens.append(Token("OP", chunk, chunk, line, column))
        pos = m.end()
    tokens.append(Token("EOF", "", None, line, pos - line_start + 1))
    return tokens
