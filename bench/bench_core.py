"""Loan core benchmarks (issue 2):

1. 360-period schedule generation: median time (goal <= 5 ms).
2. ``GET /loans/{id}?associations=all`` for 360 periods and 1,000 transactions: statements
   (goal <= 10, the same as for 6 periods and 1 transaction).

The changelist at scale is ``bench_changelist``, the loan detail's speed ``bench_detail``.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.test import Client

from bench.db import throwaway_database
from bench.measure import Samples, count_statements, once, print_figure
from loans import schedules, services, versions
from loans.models import (
    BusinessDate,
    Loan,
    Transaction,
    TransactionType,
)

AS_OF = date(2030, 1, 1)


def bench_schedule_generation() -> None:
    terms = schedules.Terms(
        loan_amount=Decimal("300000.00"),
        annual_rate_percent=Decimal("6.5"),
        term=Decimal(360),
        frequency="MONTHLY",
        contract_date=date(2026, 1, 1),
        first_payment_date=date(2026, 2, 1),
    )
    for days_in_year in ("FREQUENCY", "ACTUAL_365", "ACTUAL_ACTUAL"):
        t = schedules.Terms(**{**terms.__dict__, "days_in_year": days_in_year})
        samples = Samples(f"360-period schedule ({days_in_year})")
        for _ in range(200):
            cpu = time.process_time()
            samples.seconds.append(once(lambda t=t: schedules.generate_schedule(t)))
            samples.cpu.append(time.process_time() - cpu)  # waiting for a core not counted
        print_figure(samples, goal="<= 5 ms")


def make_loan(
    user,
    *,
    periods: int,
    repayments: int,
    spacing_days: int = 3,
    external_id: str | None = None,
    **setup,
) -> Loan:
    """A 300,000 loan of ``periods`` monthly installments from 2000-01-01 with ``repayments``
    repayments of 10.00, ``spacing_days`` apart from 2000-02-01 (``setup``: setup fields)."""
    loan = services.create_loan(
        actor=user,
        setup={
            "loan_amount": Decimal("300000.00"),
            "loan_rate": Decimal("6"),
            "loan_term": Decimal(periods),
            "payment_frequency": "MONTHLY",
            "contract_date": date(2000, 1, 1),
            "first_payment_date": date(2000, 2, 1),
            "calc_type": "EQUAL_INSTALLMENTS",
            "days_in_year": "FREQUENCY",
            "rounding_mode": "HALF_UP",
            "termination_interest": "ALL_OUTSTANDING",
            **setup,
        },
        borrower_data={"first_name": "Bench", "last_name": f"P{periods}", "timezone": "UTC"},
        external_id=external_id
        or f"BENCH-{periods}-{repayments}" + "".join(f"-{v}" for v in setup.values()),
    )
    services.activate_loan(loan=loan, actor=user, as_of=AS_OF)
    Transaction.objects.bulk_create(
        Transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            date=date(2000, 2, 1) + timedelta(days=spacing_days * i),
            amount=Decimal("10.00"),
        )
        for i in range(repayments)
    )
    versions.rebuild_schedule(loan)
    return loan


def bench_loan_detail_queries(user) -> None:
    """Statements of the loan detail: the same for 6 periods and 1 transaction as for 360 and
    1,000. (Its speed under gunicorn is ``bench_detail``.)"""
    small = make_loan(user, periods=6, repayments=1)
    large = make_loan(user, periods=360, repayments=1000)
    client = Client()
    client.force_login(user)
    for loan, label in ((small, "6 periods, 1 transaction"), (large, "360 periods, 1,000 tx")):
        url = f"/api/v1/loans/{loan.pk}?associations=all"
        client.get(url)
        statements, response = count_statements(lambda url=url: client.get(url))
        assert response.status_code == 200, response.content[:300]
        print(
            f"GET detail ({label}): {statements} statements, {len(response.content):,} bytes "
            "(goal <= 10, the same for both)"
        )


def run() -> None:
    bench_schedule_generation()
    user = get_user_model().objects.create_superuser("bench", password="bench-pass-123")
    BusinessDate.objects.update_or_create(pk=1, defaults={"date": AS_OF})
    bench_loan_detail_queries(user)


def main() -> None:
    with throwaway_database():
        run()
