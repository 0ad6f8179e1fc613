"""Alert rules: the built-in defaults (``rules.toml`` beside this module) with any field overridden
by ``ALERT_RULES_FILE``. A bad file is refused with a message naming the rule and the field."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_RULES", "SEVERITIES", "Rule", "RuleError", "load_rules"]

DEFAULT_RULES = Path(__file__).with_name("rules.toml")
SEVERITIES = ("low", "medium", "high", "critical")


class RuleError(ValueError):
    """The rules file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    severity: str
    threshold: float
    """The rule fires when the measured value is above this."""
    min_volume: int
    """...and the count the value rests on is at least this."""
    window_minutes: int
    """The trailing window the rule looks at (0: the rule's own period, e.g. the month)."""
    cooldown_minutes: int
    """No second delivery for the same rule and key within this long."""
    recommendation: str
    enabled: bool = True


_TYPES: dict[str, type] = {
    "description": str,
    "severity": str,
    "threshold": float,
    "min_volume": int,
    "window_minutes": int,
    "cooldown_minutes": int,
    "recommendation": str,
    "enabled": bool,
}


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RuleError(f"Cannot read the alert rules file {path}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"The alert rules file {path} is not valid TOML: {exc}.") from None


def _field(rule: str, name: str, value: Any) -> Any:
    expected = _TYPES.get(name)
    if expected is None:
        raise RuleError(f"Rule {rule!r}: unknown field {name!r} (known: {', '.join(sorted(_TYPES))}).")
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise RuleError(f"Rule {rule!r}: {name} must be a {expected.__name__}, got {value!r}.")
    if name == "severity" and value not in SEVERITIES:
        raise RuleError(f"Rule {rule!r}: severity must be one of {', '.join(SEVERITIES)}, got {value!r}.")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise RuleError(f"Rule {rule!r}: {name} cannot be negative.")
    return value


def load_rules(overrides: Path | None = None) -> dict[str, Rule]:
    """The rules by name: the defaults, then ``overrides`` applied field by field."""
    rules: dict[str, Rule] = {}
    for name, spec in _read(DEFAULT_RULES).items():
        values = {key: _field(name, key, value) for key, value in spec.items()}
        rules[name] = Rule(name=name, **values)
    if overrides is not None:
        for name, spec in _read(overrides).items():
            if name not in rules:
                raise RuleError(f"Unknown alert rule {name!r} in {overrides} (known: {', '.join(sorted(rules))}).")
            if not isinstance(spec, dict):
                raise RuleError(f"Rule {name!r} in {overrides} must be a table ([{name}]).")
            rules[name] = replace(rules[name], **{key: _field(name, key, value) for key, value in spec.items()})
    return rules
