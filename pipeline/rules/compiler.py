"""Compile a parsed expression, once, into nested Python closures over an ``AddressUpdate``.

No ``eval``/``exec``/``compile`` of rule text happens anywhere: each syntax node becomes a small
closure, names become positional tuple reads (see :mod:`pipeline.rules.names`), constant
sub-expressions are folded, and ``x in [literal, ...]`` becomes a frozenset lookup. Types are
checked here, so ``amount_usd > "big"`` or ``fan_in_10m and 3`` fail at load with the column,
not at 3 a.m. on a live stream. Unknown names get the closest valid names as a suggestion.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from pipeline.rules.errors import ExpressionError
from pipeline.rules.names import (
    ALL_NAMES,
    BOOL,
    CONSTANTS,
    FIELDS,
    FUNCTIONS,
    NUM,
    STR,
    Env,
)
from pipeline.rules.parser import Binary, Call, ListLit, Lit, Name, Node, Unary, parse, unparse

Fn = Callable[[Any], Any]

_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "%": operator.mod}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_EQUAL = {"==": operator.eq, "!=": operator.ne}


class Compiled(NamedTuple):
    """A compiled expression: ``fn(update)`` and what evidence to record when it is true."""

    fn: Fn
    type: str
    names: tuple[str, ...]  # fields and features the expression reads, in first-use order
    calls: tuple[tuple[str, Fn], ...]  # non-constant function calls: (source text, closure)

    def evidence(self, update: Any) -> dict[str, Any]:
        """The values that made the condition true: every name read and every call's result."""
        out = {name: FIELDS[name].getter(update) for name in self.names}
        for text, fn in self.calls:
            out[text] = fn(update)
        return out


class _Value(NamedTuple):
    fn: Fn | None  # None when constant
    const: Any
    type: str

    @property
    def is_const(self) -> bool:
        return self.fn is None


def _suggest(name: str, candidates: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


class _Compiler:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.names: list[str] = []
        self.calls: list[tuple[str, Fn]] = []

    def fail(self, node: Node, message: str) -> ExpressionError:
        return ExpressionError(message, node.line, node.column)

    def visit(self, node: Node) -> _Value:
        if isinstance(node, Lit):
            t = BOOL if isinstance(node.value, bool) else STR if isinstance(node.value, str) else NUM
            return _Value(None, node.value, t)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, ListLit):
            return self.list_lit(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if node.op in ("and", "or"):
            return self.boolean(node)
        if node.op in _ARITH:
            return self.arith(node)
        return self.compare(node)

    def name(self, node: Name) -> _Value:
        if node.name in FIELDS:
            if node.name not in self.names:
                self.names.append(node.name)
            field = FIELDS[node.name]
            return _Value(field.getter, None, field.type)
        if node.name in CONSTANTS:
            t, value = CONSTANTS[node.name]
            return _Value(None, value, t)
        if node.name in FUNCTIONS:
            raise self.fail(node, f"{node.name!r} is a function; call it as {node.name}(...)")
        raise self.fail(node, f"unknown name {node.name!r}{_suggest(node.name, ALL_NAMES)}")

    def list_lit(self, node: ListLit) -> _Value:
        items = [self.visit(item) for item in node.items]
        types = {v.type for v in items}
        if len(types) > 1:
            raise self.fail(node, f"list mixes types {', '.join(sorted(types))}")
        if any(t.startswith("list") for t in types):
            raise self.fail(node, "lists cannot be nested")
        t = f"list<{types.pop() if types else 'any'}>"
        if all(v.is_const for v in items):
            return _Value(None, tuple(v.const for v in items), t)
        fns = [_as_fn(v) for v in items]
        return _Value(lambda u: tuple(f(u) for f in fns), None, t)

    def call(self, node: Call) -> _Value:
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            raise self.fail(node, f"unknown function {node.name!r}{_suggest(node.name, list(FUNCTIONS))}")
        repeat = spec.args[-1].endswith("*")
        n = len(node.args)
        if n < spec.min_args or (not repeat and n > len(spec.args)):
            want = f"at least {spec.min_args}" if repeat else (
                str(spec.min_args) if spec.min_args == len(spec.args)
                else f"{spec.min_args} to {len(spec.args)}")
            raise self.fail(node, f"{node.name}() takes {want} arguments, got {n}")
        args = [self.visit(a) for a in node.args]
        for i, (arg, value) in enumerate(zip(node.args, args)):
            want = spec.args[min(i, len(spec.args) - 1)].rstrip("*")
            if value.type != want:
                raise self.fail(arg, f"argument {i + 1} of {node.name}() must be {want}, got {value.type}")
        impl = spec.impl
        if not spec.needs_env and all(a.is_const for a in args):
            return _Value(None, self._fold(node, impl, [a.const for a in args]), spec.result)
        fns = [_as_fn(a) for a in args]
        if spec.event_time:  # the transfer's block time, as the implicit last argument
            fns.append(FIELDS["ts"].getter)
        env = self.env
        if spec.needs_env:
            if len(fns) == 1:
                f0 = fns[0]
                fn: Fn = lambda u: impl(env, f0(u))
            else:
                fn = lambda u: impl(env, *[f(u) for f in fns])
        elif len(fns) == 1:
            f0 = fns[0]
            fn = lambda u: impl(f0(u))
        elif len(fns) == 2:
            f0, f1 = fns
            fn = lambda u: impl(f0(u), f1(u))
        else:
            fn = lambda u: impl(*[f(u) for f in fns])
        self.calls.append((unparse(node), fn))
        return _Value(fn, None, spec.result)

    def _fold(self, node: Node, impl: Callable[..., Any], args: list[Any]) -> Any:
        try:
            return impl(*args)
        except (ArithmeticError, ValueError, TypeError) as err:
            raise self.fail(node, f"constant expression fails: {err}") from None

    def unary(self, node: Unary) -> _Value:
        v = self.visit(node.operand)
        want = BOOL if node.op == "not" else NUM
        if v.type != want:
            raise self.fail(node, f"'{node.op}' needs a {want} operand, got {v.type}")
        impl = operator.not_ if node.op == "not" else operator.neg
        if v.is_const:
            return _Value(None, impl(v.const), want)
        f = v.fn
        return _Value((lambda u: not f(u)) if node.op == "not" else (lambda u: -f(u)), None, want)

    def boolean(self, node: Binary) -> _Value:
        parts = []
        for operand in _flatten(node, node.op):
            v = self.visit(operand)
            if v.type != BOOL:
                raise self.fail(operand, f"'{node.op}' needs boolean operands, got {v.type}")
            parts.append(v)
        is_and = node.op == "and"
        # A constant that decides the result makes the whole expression constant; others drop out.
        if any(v.is_const and v.const is not is_and for v in parts):
            return _Value(None, not is_and, BOOL)
        fns = [v.fn for v in parts if not v.is_const]
        if not fns:
            return _Value(None, is_and, BOOL)
        return _Value(_chain(fns, is_and), None, BOOL)

    def arith(self, node: Binary) -> _Value:
        left, right = self.visit(node.left), self.visit(node.right)
        for side, v in ((node.left, left), (node.right, right)):
            if v.type != NUM:
                raise self.fail(side, f"'{node.op}' needs numbers, got {v.type}")
        op = _ARITH[node.op]
        if left.is_const and right.is_const:
            return _Value(None, self._fold(node, op, [left.const, right.const]), NUM)
        return _Value(_binary_fn(op, left, right), None, NUM)

    def compare(self, node: Binary) -> _Value:
        left, right = self.visit(node.left), self.visit(node.right)
        op_text = node.op
        if op_text in ("in", "not in"):
            return self.membership(node, left, right)
        if left.type != right.type or left.type.startswith("list"):
            raise self.fail(node, f"cannot compare {left.type} {op_text} {right.type}")
        if op_text in _ORDER and left.type == BOOL:
            raise self.fail(node, f"'{op_text}' cannot order booleans")
        op = _ORDER.get(op_text) or _EQUAL[op_text]
        if left.is_const and right.is_const:
            return _Value(None, op(left.const, right.const), BOOL)
        return _Value(_binary_fn(op, left, right), None, BOOL)

    def membership(self, node: Binary, left: _Value, right: _Value) -> _Value:
        negate = node.op == "not in"
        if right.type == STR and left.type == STR:
            op: Callable[[Any, Any], bool] = lambda a, b: (a in b) is not negate
        elif right.type.startswith("list<"):
            elem = right.type[5:-1]
            if elem not in ("any", left.type):
                raise self.fail(node, f"'{node.op}' compares {left.type} with a list of {elem}")
            if right.is_const and not left.is_const:
                members, f = frozenset(right.const), left.fn
                fn: Fn = (lambda u: f(u) not in members) if negate else (lambda u: f(u) in members)
                return _Value(fn, None, BOOL)
            op = lambda a, b: (a in b) is not negate
        else:
            raise self.fail(node, f"'{node.op}' needs a list or a string on the right, got {right.type}")
        if left.is_const and right.is_const:
            return _Value(None, op(left.const, right.const), BOOL)
        return _Value(_binary_fn(op, left, right), None, BOOL)


def _flatten(node: Node, op: str) -> list[Node]:
    if isinstance(node, Binary) and node.op == op:
        return _flatten(node.left, op) + _flatten(node.right, op)
    return [node]


def _as_fn(v: _Value) -> Fn:
    if v.fn is not None:
        return v.fn
    c = v.const
    return lambda u: c


def _chain(fns: list[Fn], is_and: bool) -> Fn:
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        return (lambda u: a(u) and b(u)) if is_and else (lambda u: a(u) or b(u))
    if len(fns) == 3:
        a, b, c = fns
        return (lambda u: a(u) and b(u) and c(u)) if is_and else (lambda u: a(u) or b(u) or c(u))
    head, rest = _chain(fns[:3], is_and), _chain(fns[3:], is_and)
    return (lambda u: head(u) and rest(u)) if is_and else (lambda u: head(u) or rest(u))


def _binary_fn(op: Callable[[Any, Any], Any], left: _Value, right: _Value) -> Fn:
    """Specialise on constant sides: one closure call less per evaluation, the common case."""
    if right.is_const:
        f, c = left.fn, right.const
        return lambda u: op(f(u), c)
    if left.is_const:
        c, g = left.const, right.fn
        return lambda u: op(c, g(u))
    f, g = left.fn, right.fn
    return lambda u: op(f(u), g(u))


def compile_expression(text: str, env: Env, want: str | None = BOOL) -> Compiled:
    """Parse and compile ``text``; raises :class:`ExpressionError` (line/column in ``text``)."""
    node = parse(text)
    compiler = _Compiler(env)
    value = compiler.visit(node)
    if want is not None and value.type != want:
        raise ExpressionError(f"condition must be a {want} expression, got {value.type}",
                              node.line, node.column)
    return Compiled(_as_fn(value), value.type, tuple(compiler.names), tuple(compiler.calls))
