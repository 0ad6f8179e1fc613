"""The plan catalogue: which Stripe prices exist, what each plan is called, and its feature limits.
Loaded once from a TOML file (``PLANS_FILE``, or the built-in demo catalogue)."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from api.settings import Settings

__all__ = ["DEFAULT_PLANS_FILE", "Plan", "PlanCatalogue", "PlanPrice", "configured_catalogue", "load_catalogue"]

DEFAULT_PLANS_FILE = Path(__file__).with_name("plans.toml")
UNLIMITED = -1
_EVERY = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}


class PlanPrice(msgspec.Struct, forbid_unknown_fields=True):
    price_id: str
    currency: str
    interval: Literal["day", "week", "month", "year"]
    unit_amount: int
    """Minor units (cents) per unit and interval."""


class Plan(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str
    prices: list[PlanPrice]
    description: str = ""
    features: dict[str, int] = msgspec.field(default_factory=dict)
    """Feature -> limit per billing period; -1 means no limit; a missing feature is not included."""


class PlanCatalogue(msgspec.Struct, forbid_unknown_fields=True):
    plans: list[Plan]

    def __post_init__(self) -> None:
        seen_plans: set[str] = set()
        seen_prices: set[str] = set()
        for plan in self.plans:
            if plan.id in seen_plans:
                raise ValueError(f"plan {plan.id!r} is defined twice")
            seen_plans.add(plan.id)
            if not plan.prices:
                raise ValueError(f"plan {plan.id!r} has no prices")
            for price in plan.prices:
                if price.price_id in seen_prices:
                    raise ValueError(f"price {price.price_id!r} belongs to two plans")
                if price.unit_amount < 0:
                    raise ValueError(f"price {price.price_id!r} has a negative amount")
                seen_prices.add(price.price_id)
            for feature, limit in plan.features.items():
                if limit < UNLIMITED:
                    raise ValueError(f"plan {plan.id!r}: limit of {feature!r} must be -1 (unlimited) or more")

    def plan(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def price_names(self) -> dict[str, str]:
        """Each price id -> its plan's name and billing interval ("Pro, monthly")."""
        return {
            price.price_id: f"{plan.name}, {_EVERY.get(price.interval, price.interval)}"
            for plan in self.plans
            for price in plan.prices
        }

    def plan_for_price(self, price_id: str | None) -> Plan | None:
        """The plan a Stripe price belongs to."""
        return next((p for p in self.plans if any(x.price_id == price_id for x in p.prices)), None)


def configured_catalogue(settings: Settings) -> PlanCatalogue:
    """The catalogue ``PLANS_FILE`` names, or the built-in one."""
    return load_catalogue(settings.plans_file or DEFAULT_PLANS_FILE)


@cache
def load_catalogue(path: Path = DEFAULT_PLANS_FILE) -> PlanCatalogue:
    """Read and check a catalogue; a ``ValueError`` says which file and what is wrong."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return msgspec.convert(raw, PlanCatalogue)
    except FileNotFoundError as exc:
        raise ValueError(f"plan catalogue {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ValueError(f"plan catalogue {path}: {exc}") from exc
