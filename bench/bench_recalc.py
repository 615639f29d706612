"""Interest recalculation benchmark (issue 11).

A 360-period monthly loan with 100 repayments (early, on time and late): deriving its schedule
and every repayment's portions with daily interest recalculation (``loans.recalculation``), goal
<= 10 ms median, printed next to the same loan without recalculation (the base schedule and the
ledger replay, measured in the same run). Pure computation: no database.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from loans import ledger, recalculation, schedules

GOAL_MS = 10.0
REPEAT = 41


@dataclass(frozen=True)
class Row:  # what the derive reads of a Transaction row
    pk: int
    type: str
    date: date
    amount: Decimal


def loan() -> tuple[schedules.Terms, list[Row]]:
    terms = schedules.Terms(
        loan_amount=Decimal("300000.00"),
        annual_rate_percent=Decimal("6.5"),
        term=Decimal(360),
        frequency="MONTHLY",
        contract_date=date(2026, 1, 1),
        first_payment_date=date(2026, 2, 1),
        rounding_mode="HALF_EVEN",
    )
    schedule = schedules.generate_schedule(terms)
    rows = []
    for k, period in enumerate(schedule.periods[:100]):
        shift = (k % 7) - 3  # 3 days early ... 3 days late
        amount = period.total + (Decimal("250.00") if k % 10 == 0 else Decimal(0))
        rows.append(Row(k + 1, "REPAYMENT", period.due_date + timedelta(days=shift), amount))
    rows.sort(key=lambda r: r.date)
    return terms, rows


def derive_recalculating(terms, rows) -> ledger.ReplayResult:
    return recalculation.derive(
        terms=terms,
        transactions=rows,
        frozen=[],
        horizon=rows[-1].date,
        termination_interest="ALL_OUTSTANDING",
    )


def derive_fixed(terms, rows) -> ledger.ReplayResult:
    periods = ledger.periods_from_schedule(schedules.generate_schedule(terms))
    entries = [ledger.Entry(key=r.pk, type=r.type, date=r.date, amount=r.amount) for r in rows]
    return ledger.replay(periods, entries)


def median_ms(func, *args) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        func(*args)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    terms, rows = loan()
    result = derive_recalculating(terms, rows)
    assert len(ledger.live(result.periods)) == 360 and len(result.allocations) == 100
    # Alternate the two measurements so that machine load hits both alike.
    recalculating, fixed = [], []
    for _ in range(3):
        recalculating.append(median_ms(derive_recalculating, terms, rows))
        fixed.append(median_ms(derive_fixed, terms, rows))
    r, f = statistics.median(recalculating), statistics.median(fixed)
    print(
        f"recalc derive, 360 periods + 100 repayments: median {r:.2f} ms "
        f"(goal <= {GOAL_MS:.0f} ms: {'OK' if r <= GOAL_MS else 'MISSED'}); "
        f"without recalculation {f:.2f} ms; ratio {r / f:.1f}x"
    )


if __name__ == "__main__":
    from bench.db import setup_django

    setup_django()
    main()
