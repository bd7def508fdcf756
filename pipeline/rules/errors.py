"""Errors of the rule engine, all under :class:`pipeline.errors.RuleError`.

An :class:`ExpressionError` knows where in the *expression text* it happened (line and column,
1-based); the loader turns that into a ``file:line`` position in the YAML before it reaches a user.
A :class:`RuleEvalError` is a condition that failed at run time (division by zero, an integer too
large): the engine counts and logs it and moves on, and embedded test cases can expect it.
"""

from __future__ import annotations

from pipeline.errors import RuleError


class ExpressionError(RuleError):
    """An expression does not tokenize, parse or type-check."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(f"line {line} column {column}: {message}")
        self.reason = message
        self.line = line
        self.column = column


class RuleEvalError(RuleError):
    """A compiled condition raised while evaluating one update."""
