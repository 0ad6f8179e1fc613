"""The KPI engine: subscription timelines, MRR movements and the monthly series, computed with
DuckDB (reading the facts) and Polars (deduplicating; the per-subscription and per-customer
windows), over integer MRR in ``1/SCALE`` of a minor unit.

The rules (kpis.md):

- a subscription's snapshots in time order; within one second, by the position the export stored
  (the projections' own rule, :func:`api.stripe_objects.ordering.in_second_order`: the
  ``previous_attributes`` chain from the state before that second), else the projections' tie
  rule; nothing after an ended snapshot counts;
- a snapshot's MRR counts for ``active`` and for ``past_due`` up to ``PAST_DUE_GRACE_DAYS``, and
  not once its current period ended more than the stale grace ago with no newer snapshot (stale: a
  renewal never seen); a repeating discount stops at its end; those moments are change points of
  their own;
- a customer's MRR per currency is the sum of its subscriptions'; each change of it is one movement
  (new, reactivation, expansion, contraction, churn), caused by one event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar, cast

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from analytics.facts import FACT_SCHEMA, SCALE
from analytics.mrr import PAST_DUE_GRACE_DAYS, STALE_GRACE_DAYS
from analytics.reconstruction import SOURCE as RECONSTRUCTED
from analytics.reconstruction import SYNC_SOURCE, reconstructed_facts, reconstructed_payment_facts

__all__ = [
    "DAY",
    "MOVEMENT_KINDS",
    "Facts",
    "cents",
    "month_bounds",
    "month_index",
    "months_between",
    "previous",
    "same_group",
    "sum_before",
]

T = TypeVar("T")
DAY = 86_400
GRACE = PAST_DUE_GRACE_DAYS * DAY
_ENDED = ("canceled", "incomplete_expired")
MOVEMENT_KINDS = ("new", "reactivation", "expansion", "contraction", "churn")
GAINS = ("new", "reactivation", "expansion")
LOSSES = ("contraction", "churn")


def net_movement(moves: Mapping[str, int]) -> int:
    """What a month's movements (positive amounts per kind) add to MRR: the gains less the losses,
    so start + net = end (the movement identity of docs/kpis.md)."""
    return sum(moves.get(kind, 0) for kind in GAINS) - sum(moves.get(kind, 0) for kind in LOSSES)


def month_bounds(month: date) -> tuple[int, int]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def months_between(first: date, last: date) -> list[date]:
    found, current = [], date(first.year, first.month, 1)
    while current <= last:
        found.append(current)
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return found


def cents(scaled: int) -> int:
    """Scaled MRR to minor units, rounded half to even like ``round(Fraction)``."""
    return round(Fraction(scaled, SCALE))


class Facts:
    """The facts the KPIs read, from a Parquet export directory or an Arrow table, seen as of
    ``cutoff`` (events created before it) when one is given."""

    def __init__(
        self, source: Path | pa.Table, cutoff: int | None = None, stale_grace_days: int = STALE_GRACE_DAYS
    ) -> None:
        self.stale_grace = stale_grace_days * DAY
        """Seconds past its period's end after which a subscription with no renewal seen is stale."""
        self.con = duckdb.connect()
        if isinstance(source, pa.Table):
            self.con.register("facts_input", source)
        else:
            files = sorted(Path(source).glob("month=*/*.parquet"))
            if files:
                pattern = str(Path(source) / "month=*" / "*.parquet").replace("'", "''")
                self.con.execute(
                    f"CREATE VIEW facts_input AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = false)"
                )
            else:
                self.con.register("facts_input", FACT_SCHEMA.empty_table())
        self.positions: str | None = None
        if not isinstance(source, pa.Table) and any((Path(source) / "positions").glob("*.parquet")):
            self.positions = str(Path(source) / "positions" / "*.parquet").replace("'", "''")
        self.cutoff: int | None = None
        self._cache: dict[tuple[str, str], object] = {}
        self.view = self._with_payments("facts_input")
        if cutoff is not None:
            self._restrict(cutoff)

    def _restrict(self, cutoff: int) -> None:
        base = f"facts_before_{int(cutoff)}"
        self.con.execute(f"CREATE OR REPLACE VIEW {base} AS SELECT * FROM facts_input WHERE created < {int(cutoff)}")
        self.view = self._with_payments(base)
        self.cutoff = cutoff

    def _with_payments(self, base: str) -> str:
        """``base`` and the payment events history reconstruction derives from its synced charges,
        disputes and invoices (:func:`analytics.reconstruction.reconstructed_payment_facts`)."""
        if not self.con.sql(f"SELECT 1 FROM {base} WHERE source = '{SYNC_SOURCE}' LIMIT 1").fetchall():
            return base
        derived, name = f"{base}_payments", f"{base}_with_payments"
        self.con.register(derived, reconstructed_payment_facts(self.con, base))
        self.con.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {base} UNION ALL BY NAME SELECT * FROM {derived}"
        )
        return name

    def before(self, cutoff: int) -> Facts:
        """The same facts, as the log stood before ``cutoff`` (sharing the connection)."""
        horizon = self.horizon()
        if horizon is None or cutoff > horizon:
            return self  # nothing to leave out: share the computed timelines too
        other = object.__new__(Facts)
        other.con = self.con
        other.stale_grace = self.stale_grace
        other.view = self.view
        other.cutoff = self.cutoff
        other.positions = self.positions
        other._cache = self._cache
        if self.cutoff is None or cutoff < self.cutoff:
            other._restrict(cutoff)
        return other

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        frame: pl.DataFrame = self.con.sql(query, params=params).pl()
        return frame

    def present(self) -> int:
        """The instant the KPIs are as of: just before the cutoff (``--as-of``), else now, or the
        newest event if the log runs ahead of the clock (a simulated history)."""
        if self.cutoff is not None:
            return self.cutoff - 1
        return max(self.horizon() or 0, int(time.time()))

    def horizon(self) -> int | None:
        """``created`` of the newest event."""
        rows = self.con.sql(f"SELECT max(created) FROM {self.view}").fetchall()
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def close(self) -> None:
        self.con.close()

    # -- subscription timelines ------------------------------------------------------------------
    def timelines(self) -> pl.DataFrame:
        """Every subscription's states in the order they happened, one row per state."""
        return self.cached("timelines", self._timelines)

    def cached(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, once per view (the facts do not change under an open ``Facts``)."""
        key = (self.view, name)
        if key not in self._cache:
            self._cache[key] = compute()
        return cast(T, self._cache[key])

    def subscription_facts(self) -> str:
        """The relation of every subscription fact: the observed ones and the states history
        reconstruction derives from synced objects (:mod:`analytics.reconstruction`)."""

        def register() -> str:
            name = f"{self.view}_reconstructed"
            self.con.register(name, reconstructed_facts(self.con, self.view))
            return name

        reconstructed = self.cached("reconstructed", register)
        return f"""(
            SELECT * FROM {self.view} WHERE object_type = 'subscription' AND type LIKE 'customer.subscription.%'
            UNION ALL BY NAME SELECT * FROM {reconstructed}
        )"""

    def _timelines(self) -> pl.DataFrame:
        states = self.sql(
            f"""
            SELECT event_id, created, object_id AS sub, coalesce(customer_id, '') AS customer, status,
                   coalesce(currency, 'unknown') AS currency, mrr, undiscounted_mrr AS undiscounted,
                   discount_ends, delinquent, terminal, rank, plan, user_id, cancel_at_period_end,
                   period_end, pos AS stored_pos, source = '{RECONSTRUCTED}' AS reconstructed
            FROM {self.subscription_facts()}
            """
        ).unique("event_id", keep="any")  # a redelivered event counts once
        # Integer keys in the strings' own order: sorting and windows on them are far cheaper, and
        # the order (hence every tie-break) stays that of the ids.
        for column, key in (("sub", "sub_k"), ("customer", "cust_k"), ("currency", "cur_k")):
            states = states.join(_dense_keys(states[column], key), on=column, how="left")
        if self.positions is not None:
            moved = self.sql(
                f"SELECT event_id, arg_max(pos, sequence) AS moved_pos FROM read_parquet('{self.positions}') "
                "GROUP BY event_id"
            )
            states = states.join(moved, on="event_id", how="left").with_columns(
                stored_pos=pl.coalesce(pl.col("moved_pos"), pl.col("stored_pos"))
            )
        # Within a second, the position the export computed from the objects; the projections' tie
        # rule (terminal last, status rank, event id) orders anything it did not see together.
        order = ["sub_k", "created", "stored_pos", "terminal", "rank"]
        unplaced = states.filter(pl.col("stored_pos").is_null()).select("sub_k", "created").is_duplicated().any()
        # The export places every second it saw shared; only facts written without positions need
        # the event id as the last tie-break (a string sort, so only then).
        states = states.sort([*order, "event_id"] if unplaced else order, nulls_last=True)
        # The frame is sorted by subscription: windows are "same group as the row before", cheaper
        # than ``over`` with a million small groups.
        states = states.with_columns(pos=rank_within(["sub_k", "created"]))
        ended = pl.col("status").is_in(_ENDED).cast(pl.Int32)
        states = states.filter(sum_before(ended, ["sub_k"]) == 0)
        run_starts = ~same_group(["sub_k", "status"])
        return states.with_columns(
            past_due_since=pl.when(pl.col("status") == "past_due").then(
                pl.when(run_starts).then(pl.col("created")).forward_fill()
            ),
            next_at=pl.when(pl.col("sub_k").shift(-1) == pl.col("sub_k")).then(pl.col("created").shift(-1)),
        )

    # -- change points and movements ---------------------------------------------------------------
    def change_points(self, timelines: pl.DataFrame) -> pl.DataFrame:
        """Each subscription's MRR at every state, and where its past-due grace, its stale grace
        or a repeating discount runs out before the next state."""
        base = timelines.with_columns(moment=pl.col("created"), point=pl.lit(0, pl.Int8))
        inside = (pl.col("moment") > pl.col("created")) & (
            pl.col("next_at").is_null() | (pl.col("moment") < pl.col("next_at"))
        )
        grace = timelines.filter(pl.col("past_due_since").is_not_null()).with_columns(
            moment=pl.col("past_due_since") + GRACE + 1, point=pl.lit(1, pl.Int8)
        )
        discount = timelines.filter(pl.col("discount_ends").is_not_null()).with_columns(
            moment=pl.col("discount_ends"), point=pl.lit(2, pl.Int8)
        )
        stale_after = pl.col("period_end") + self.stale_grace
        stale_point = timelines.filter(pl.col("period_end").is_not_null()).with_columns(
            moment=stale_after + 1, point=pl.lit(3, pl.Int8)
        )
        points = pl.concat([base, grace.filter(inside), discount.filter(inside), stale_point.filter(inside)])
        lapsed = pl.col("past_due_since").is_not_null() & (pl.col("moment") - pl.col("past_due_since") > GRACE)
        stale = pl.col("period_end").is_not_null() & (pl.col("moment") > stale_after)
        counts = (
            pl.col("status").is_in(["active", "past_due"])
            & ~((pl.col("status") == "past_due") & lapsed)
            & ~stale.fill_null(False)
        )
        value = (
            pl.when(~counts)
            .then(0)
            .when(pl.col("discount_ends").is_not_null() & (pl.col("moment") >= pl.col("discount_ends")))
            .then(pl.col("undiscounted"))
            .otherwise(pl.col("mrr"))
        )
        return points.with_columns(
            value=value.cast(pl.Int64),
            delinquent_point=pl.col("delinquent")
            | ((pl.col("status") == "past_due") & (pl.col("moment") > pl.col("created"))),
        ).sort(["sub_k", "moment", "pos", "point"])

    @staticmethod
    def movements(points: pl.DataFrame, until: int | None = None) -> pl.DataFrame:
        """Every change of a customer's MRR per currency, in time order, before ``until``."""
        if until is not None:
            points = points.filter(pl.col("moment") < until)
        deltas = points.with_columns(delta=pl.col("value") - previous("value", ["sub_k"], 0)).sort(
            ["cust_k", "cur_k", "moment", "sub_k", "pos", "point"]
        )
        moved = deltas.with_columns(after=sum_before(pl.col("delta"), ["cust_k", "cur_k"]) + pl.col("delta")).filter(
            pl.col("delta") != 0
        )
        moved = moved.with_columns(before=pl.col("after") - pl.col("delta"))
        ever_paid = sum_before((pl.col("after") > 0).cast(pl.Int64), ["cust_k", "cur_k"]) > 0
        kind = (
            pl.when(pl.col("before") == 0)
            .then(pl.when(ever_paid).then(pl.lit("reactivation")).otherwise(pl.lit("new")))
            .when(pl.col("after") == 0)
            .then(pl.lit("churn"))
            .when(pl.col("after") > pl.col("before"))
            .then(pl.lit("expansion"))
            .otherwise(pl.lit("contraction"))
        )
        return moved.select(
            at=pl.col("moment"),
            customer=pl.col("customer"),
            currency=pl.col("currency"),
            kind=kind,
            before=pl.col("before"),
            after=pl.col("after"),
            event_id=pl.col("event_id"),
            delinquent=pl.col("delinquent_point"),
            sub=pl.col("sub"),
            pos=pl.col("pos"),
            point=pl.col("point"),
            cust_k=pl.col("cust_k"),
            cur_k=pl.col("cur_k"),
            sub_k=pl.col("sub_k"),
        ).sort(["at", "cust_k", "cur_k", "sub_k", "pos", "point"])


def same_group(keys: Sequence[str]) -> pl.Expr:
    """True where a row belongs to the same group as the row before (the frame sorted by ``keys``)."""
    return pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in keys]).fill_null(False)


def previous(column: str, keys: Sequence[str], default: object = None) -> pl.Expr:
    """``column`` of the row before, within the group; ``default`` on a group's first row."""
    return pl.when(same_group(keys)).then(pl.col(column).shift(1)).otherwise(pl.lit(default))


def sum_before(values: pl.Expr, keys: Sequence[str]) -> pl.Expr:
    """The sum of ``values`` over the group's earlier rows (the frame sorted by ``keys``)."""
    exclusive = values.cum_sum() - values
    return exclusive - pl.when(~same_group(keys)).then(exclusive).forward_fill()


def rank_within(keys: Sequence[str]) -> pl.Expr:
    """0, 1, 2... within each group of consecutive rows."""
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    return index - pl.when(~same_group(keys)).then(index).forward_fill()


def _dense_keys(values: pl.Series, name: str) -> pl.DataFrame:
    """Each distinct value and its position in sorted order (sorting the distinct values only)."""
    distinct = values.unique().sort().to_frame()
    return distinct.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias(name))


def month_index(starts: Sequence[int], moments: pl.Series, end: int | None = None) -> pl.Series:
    """For each moment, the index of the month (by their starts) it falls in; -1 before the first,
    and ``len(starts)`` from ``end`` (the last month's end) on, so nothing later lands in the last
    month."""
    found = np.searchsorted(np.asarray(starts, dtype=np.int64), moments.to_numpy(), side="right") - 1
    if end is not None:
        found = np.where(moments.to_numpy() >= end, len(starts), found)
    return pl.Series("month_index", found, dtype=pl.Int64)
