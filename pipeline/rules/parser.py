"""Parser of the rule expression language into a small immutable syntax tree.

Grammar (lowest precedence first)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("=="|"!="|"<"|"<="|">"|">="|"in"|"not" "in") sum)?
    sum      := product (("+"|"-") product)*
    product  := unary (("*"|"/"|"%") unary)*
    unary    := "-" unary | primary
    primary  := NUM | STR | "true" | "false" | NAME | NAME "(" args ")" | "[" args "]" | "(" expr ")"

Comparisons do not chain (``a < b < c`` is an error, not Python's chained meaning). Everything a
rule author might try from Python but that could reach outside the context (attribute access,
subscripts, ``lambda``, dunder names, ``**``) is rejected here with a message saying so.
"""

from __future__ import annotations

from typing import NamedTuple

from pipeline.rules.errors import ExpressionError
from pipeline.rules.lexer import FORBIDDEN_WORDS, Token, tokenize


class Lit(NamedTuple):
    value: object
    line: int
    column: int


class Name(NamedTuple):
    name: str
    line: int
    column: int


class Call(NamedTuple):
    name: str
    args: tuple
    line: int
    column: int


class ListLit(NamedTuple):
    items: tuple
    line: int
    column: int


class Unary(NamedTuple):
    op: str  # "-" or "not"
    operand: object
    line: int
    column: int


class Binary(NamedTuple):
    op: str  # + - * / % == != < <= > >= in "not in" and or
    left: object
    right: object
    line: int
    column: int


Node = Lit | Name | Call | ListLit | Unary | Binary
COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})
_FORBIDDEN_OPS = {
    ".": "attribute access is not allowed",
    "**": "'**' is not supported (use the constant UNLIMITED for 2**255)",
    "//": "'//' is not supported; use '/'",
    "=": "assignment is not allowed; use '==' to compare",
    "!": "use 'not' instead of '!'",
    "&": "use 'and' instead of '&'",
    "|": "use 'or' instead of '|'",
    ":": "':' is not allowed (no slices, dicts or lambdas)",
    "{": "dict and set literals are not allowed",
}
MAX_DEPTH = 60
MAX_HEIGHT = 200


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> ExpressionError:
        tok = tok or self.peek()
        return ExpressionError(message, tok.line, tok.column)

    def expect_op(self, text: str) -> Token:
        tok = self.peek()
        if tok.kind == "OP" and tok.text == text:
            return self.advance()
        raise self.error(f"expected {text!r}, found {_describe(tok)}")

    def is_op(self, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind == "OP" and tok.text in texts

    def is_kw(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind == "KW" and tok.text == text

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise self.error("empty expression")
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "EOF":
            raise self.error(self._unexpected_message(tok), tok)
        return node

    def _unexpected_message(self, tok: Token) -> str:
        if tok.kind == "OP" and tok.text in _FORBIDDEN_OPS:
            return _FORBIDDEN_OPS[tok.text]
        if tok.kind == "OP" and tok.text == "[":
            return "subscripts are not allowed"
        if tok.kind == "OP" and tok.text == "(":
            return "only whitelisted functions can be called, by name"
        if tok.kind in ("NAME", "NUM", "STR") or tok.kind == "KW":
            return f"unexpected {_describe(tok)}; missing operator ('and', 'or', '==' ...)?"
        return f"unexpected {_describe(tok)}"

    def _binary_chain(self, ops: tuple[str, ...], keyword: bool, sub) -> Node:
        node = sub()
        while True:
            tok = self.peek()
            matched = (tok.kind == "KW") if keyword else (tok.kind == "OP")
            if not (matched and tok.text in ops):
                return node
            self.advance()
            node = Binary(tok.text, node, sub(), tok.line, tok.column)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} deep")

    def parse_or(self) -> Node:
        self._enter()
        try:
            return self._binary_chain(("or",), True, self.parse_and)
        finally:
            self.depth -= 1

    def parse_and(self) -> Node:
        return self._binary_chain(("and",), True, self.parse_not)

    def parse_not(self) -> Node:
        if self.is_kw("not"):
            tok = self.advance()
            self._enter()
            try:
                return Unary("not", self.parse_not(), tok.line, tok.column)
            finally:
                self.depth -= 1
        return self.parse_compare()

    def parse_compare(self) -> Node:
        left = self.parse_sum()
        tok = self.peek()
        op = self._compare_op()
        if op is None:
            return left
        node = Binary(op, left, self.parse_sum(), tok.line, tok.column)
        if self._compare_op(consume=False) is not None:
            raise self.error("comparisons cannot be chained; combine them with 'and'")
        return node

    def _compare_op(self, consume: bool = True) -> str | None:
        tok = self.peek()
        if tok.kind == "OP" and tok.text in ("==", "!=", "<", "<=", ">", ">="):
            op = tok.text
        elif tok.kind == "KW" and tok.text == "in":
            op = "in"
        elif tok.kind == "KW" and tok.text == "not":
            nxt = self.tokens[self.pos + 1]
            if not (nxt.kind == "KW" and nxt.text == "in"):
                return None
            op = "not in"
        else:
            return None
        if consume:
            self.pos += 2 if op == "not in" else 1
        return op

    def parse_sum(self) -> Node:
        return self._binary_chain(("+", "-"), False, self.parse_product)

    def parse_product(self) -> Node:
        return self._binary_chain(("*", "/", "%"), False, self.parse_unary)

    def parse_unary(self) -> Node:
        if self.is_op("-", "+"):
            tok = self.advance()
            self._enter()
            try:
                operand = self.parse_unary()
            finally:
                self.depth -= 1
            return Unary("-", operand, tok.line, tok.column) if tok.text == "-" else operand
        return self.parse_postfix()

    def parse_postfix(self) -> Node:
        node = self.parse_primary()
        tok = self.peek()
        if tok.kind == "OP" and tok.text == ".":
            raise self.error(_FORBIDDEN_OPS["."], tok)
        if tok.kind == "OP" and tok.text == "[":
            raise self.error("subscripts are not allowed", tok)
        if tok.kind == "OP" and tok.text == "(":
            raise self.error("only whitelisted functions can be called, by name", tok)
        if tok.kind == "OP" and tok.text == "**":
            raise self.error(_FORBIDDEN_OPS["**"], tok)
        return node

    def parse_args(self, close: str) -> tuple:
        items: list[Node] = []
        if self.is_op(close):
            self.advance()
            return ()
        while True:
            items.append(self.parse_or())
            if self.is_op(","):
                self.advance()
                if self.is_op(close):  # trailing comma
                    self.advance()
                    return tuple(items)
                continue
            self.expect_op(close)
            return tuple(items)

    def parse_primary(self) -> Node:
        tok = self.advance()
        if tok.kind in ("NUM", "STR"):
            return Lit(tok.value, tok.line, tok.column)
        if tok.kind == "KW" and tok.text in ("true", "false"):
            return Lit(tok.text == "true", tok.line, tok.column)
        if tok.kind == "NAME":
            if tok.text.startswith("__"):
                raise self.error(f"{tok.text!r}: dunder names are not allowed", tok)
            if tok.text in FORBIDDEN_WORDS:
                hint = {"True": " (write 'true')", "False": " (write 'false')"}.get(tok.text, "")
                raise self.error(f"{tok.text!r} is not allowed in rule expressions{hint}", tok)
            if self.is_op("("):
                self.advance()
                return Call(tok.text, self.parse_args(")"), tok.line, tok.column)
            return Name(tok.text, tok.line, tok.column)
        if tok.kind == "OP" and tok.text == "(":
            node = self.parse_or()
            self.expect_op(")")
            return node
        if tok.kind == "OP" and tok.text == "[":
            return ListLit(self.parse_args("]"), tok.line, tok.column)
        if tok.kind == "OP" and tok.text in _FORBIDDEN_OPS:
            raise self.error(_FORBIDDEN_OPS[tok.text], tok)
        if tok.kind == "EOF":
            raise self.error("unexpected end of expression", tok)
        raise self.error(f"unexpected {_describe(tok)}", tok)


def _describe(tok: Token) -> str:
    if tok.kind == "EOF":
        return "end of expression"
    return f"{tok.text!r}"


def _depth(node: Node) -> int:
    """Height of the tree, iteratively (left-deep chains like ``a + a + ...`` are deep too)."""
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        if isinstance(n, Binary):
            stack += [(n.left, d + 1), (n.right, d + 1)]
        elif isinstance(n, Unary):
            stack.append((n.operand, d + 1))
        elif isinstance(n, Call | ListLit):
            stack += [(c, d + 1) for c in (n.args if isinstance(n, Call) else n.items)]
    return best


def parse(text: str) -> Node:
    """Parse ``text`` into a syntax tree; raises :class:`ExpressionError` with line and column.

    The tree's height is capped (:data:`MAX_DEPTH` levels of nesting, :data:`MAX_HEIGHT` in all)
    so that compiling and evaluating it can never hit Python's recursion limit.
    """
    node = _Parser(tokenize(text)).parse()
    if _depth(node) > MAX_HEIGHT:
        raise ExpressionError(f"expression too long: more than {MAX_HEIGHT} chained operations",
                              node.line, node.column)
    return node


def unparse(node: Node) -> str:
    """Canonical text of a node: the key under which evidence of a call is recorded in details."""
    if isinstance(node, Lit):
        if isinstance(node.value, bool):
            return "true" if node.value else "false"
        return repr(node.value) if isinstance(node.value, str) else str(node.value)
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, ListLit):
        return f"[{', '.join(unparse(a) for a in node.items)}]"
    if isinstance(node, Unary):
        return f"not {unparse(node.operand)}" if node.op == "not" else f"-{unparse(node.operand)}"
    return f"({unparse(node.left)} {node.op} {unparse(node.right)})"
