"""YAML rule engine: rules are data, compiled once into closures, evaluated per address update.

Public API::

    ruleset = load_ruleset(["rules/"], watchlists)      # RuleError naming file:line on failure
    alerts = ruleset.evaluate(updates)                  # list[Alert], cooldowns applied
    ruleset, errors = reload_ruleset(ruleset, ["rules/"])  # keeps the old set on any error
"""

from pipeline.rules.cases import CaseResult, run_cases
from pipeline.rules.compiler import Compiled, compile_expression
from pipeline.rules.engine import RuleSet, alert_id, load_ruleset, reload_ruleset
from pipeline.rules.errors import ExpressionError, RuleEvalError
from pipeline.rules.loader import RuleSetError, load_rules, load_rules_text
from pipeline.rules.model import RISK_SCORES, Rule
from pipeline.rules.names import MemoryWatchlists, Watchlists
from pipeline.rules.reload import RuleWatcher

__all__ = [
    "RISK_SCORES",
    "CaseResult",
    "Compiled",
    "ExpressionError",
    "MemoryWatchlists",
    "Rule",
    "RuleEvalError",
    "RuleSet",
    "RuleSetError",
    "RuleWatcher",
    "Watchlists",
    "alert_id",
    "compile_expression",
    "load_rules",
    "load_rules_text",
    "load_ruleset",
    "reload_ruleset",
    "run_cases",
]
