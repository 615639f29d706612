"""Loan core benchmarks (issue 2):

1. 360-period schedule generation: median time (goal <= 5 ms).
2. ``GET /loans/{id}?associations=all`` for 360 periods and 1,000 transactions: query count
   (goal <= 10, the same as for 6 periods and 1 transaction) and requests per second next to a
   hand-written view that serializes the same rows.
3. Admin loan changelist with 100,000 loans: queries and time (goal: constant, <= 300 ms).
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, reset_queries, transaction
from django.http import JsonResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import path

from bench.db import throwaway_database
from loans import schedules, services, versions
from loans.models import (
    Borrower,
    BusinessDate,
    Loan,
    LoanSetup,
    LoanStatus,
    Schedule,
    SchedulePeriod,
    ScheduleReason,
    Transaction,
    TransactionType,
)

AS_OF = date(2030, 1, 1)


def timed(func, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return samples


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
        samples = timed(lambda t=t: schedules.generate_schedule(t), 200)
        print(
            f"360-period schedule ({days_in_year}): median {statistics.median(samples) * 1000:.2f} ms, "
            f"p95 {sorted(samples)[189] * 1000:.2f} ms (goal <= 5 ms)"
        )


def make_loan(user, *, periods: int, repayments: int) -> Loan:
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
        },
        borrower_data={"first_name": "Bench", "last_name": f"P{periods}", "timezone": "UTC"},
        external_id=f"BENCH-{periods}-{repayments}",
    )
    services.activate_loan(loan=loan, actor=user, as_of=AS_OF)
    Transaction.objects.bulk_create(
        Transaction(
            loan=loan,
            type=TransactionType.REPAYMENT,
            date=date(2000, 2, 1) + timedelta(days=3 * i),
            amount=Decimal("10.00"),
        )
        for i in range(repayments)
    )
    versions.rebuild_schedule(loan)
    return loan


def handwritten_detail(request, loan_id):
    """The same rows as the API's loan detail, serialized by hand (the baseline)."""
    loan = Loan.objects.select_related("borrower", "setup").get(pk=loan_id)
    schedule = Schedule.objects.get(loan=loan, is_current=True)
    periods = list(
        SchedulePeriod.objects.filter(schedule=schedule)
        .order_by("period")
        .values(
            "period",
            "from_date",
            "due_date",
            "principal_due",
            "interest_due",
            "fees_due",
            "principal_paid",
            "interest_paid",
            "fees_paid",
            "balance_after",
            "complete",
        )
    )
    txs = list(
        Transaction.objects.filter(loan=loan)
        .order_by("date", "id")
        .values("id", "type", "date", "amount", "principal_portion", "interest_portion")
    )
    return JsonResponse(
        {"id": loan.pk, "externalId": loan.external_id, "periods": periods, "transactions": txs},
        json_dumps_params={"default": str},
    )


urlpatterns = [path("hand/<int:loan_id>", handwritten_detail)]


def bench_loan_detail(user) -> None:
    small = make_loan(user, periods=6, repayments=1)
    large = make_loan(user, periods=360, repayments=1000)
    client = Client()
    client.force_login(user)
    for loan, label in ((small, "6 periods, 1 transaction"), (large, "360 periods, 1,000 tx")):
        url = f"/api/v1/loans/{loan.pk}?associations=all"
        client.get(url)
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        size = len(response.content)
        print(f"GET detail ({label}): {len(ctx.captured_queries)} queries, {size:,} bytes")
    url = f"/api/v1/loans/{large.pk}?associations=all"
    samples = timed(lambda: client.get(url), 30)
    api_rps = 1 / statistics.median(samples)
    with override_settings(ROOT_URLCONF=__name__):
        hand = Client()
        hand.force_login(user)
        hand_samples = timed(lambda: hand.get(f"/hand/{large.pk}"), 30)
    hand_rps = 1 / statistics.median(hand_samples)
    json.loads(client.get(url).content)
    print(
        f"GET detail (360 periods, 1,000 tx): {api_rps:.1f} req/s through DRF vs "
        f"{hand_rps:.1f} req/s hand-written (median of 30, in-process client)"
    )


def create_many_loans(count: int, user) -> None:
    """100,000 active loans with 6-period schedules, written with bulk_create."""
    setup_terms = schedules.Terms(
        loan_amount=Decimal("1200.00"),
        annual_rate_percent=Decimal("12"),
        term=Decimal(6),
        frequency="MONTHLY",
        contract_date=date(2029, 6, 1),
        first_payment_date=date(2029, 7, 1),
    )
    generated = schedules.generate_schedule(setup_terms)
    batch = 5000
    for start in range(0, count, batch):
        n = min(batch, count - start)
        with transaction.atomic():
            borrowers = Borrower.objects.bulk_create(
                Borrower(first_name="Many", last_name=f"Borrower{start + i}") for i in range(n)
            )
            loans = Loan.objects.bulk_create(
                Loan(
                    external_id=f"MANY-{start + i}",
                    display_id=f"LM-{start + i:07d}",
                    borrower=b,
                    status=LoanStatus.ACTIVE,
                )
                for i, b in enumerate(borrowers)
            )
            setups = LoanSetup.objects.bulk_create(
                LoanSetup(
                    loan=loan,
                    loan_amount=setup_terms.loan_amount,
                    loan_rate=setup_terms.annual_rate_percent,
                    loan_term=setup_terms.term,
                    contract_date=setup_terms.contract_date,
                    first_payment_date=setup_terms.first_payment_date,
                    payment=generated.payment,
                    active=True,
                )
                for loan in loans
            )
            for loan, setup in zip(loans, setups, strict=True):
                loan.setup = setup
            Loan.objects.bulk_update(loans, ["setup"])
            versions = Schedule.objects.bulk_create(
                Schedule(loan=loan, version=1, setup=setup, reason=ScheduleReason.ACTIVATION)
                for loan, setup in zip(loans, setups, strict=True)
            )
            SchedulePeriod.objects.bulk_create(
                SchedulePeriod(
                    schedule=version,
                    period=p.number,
                    from_date=p.from_date,
                    due_date=p.due_date,
                    principal_due=p.principal,
                    interest_due=p.interest,
                    balance_after=p.balance_after,
                )
                for version in versions
                for p in generated.periods
            )


def bench_changelist(user, count: int = 100_000) -> None:
    started = time.perf_counter()
    create_many_loans(count, user)
    print(
        f"created {count:,} loans with 6-period schedules in {time.perf_counter() - started:.1f} s"
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # fresh statistics, as autovacuum would gather
            cursor.execute("ANALYZE")
    measure_changelist(user, count)


def measure_changelist(user, count: int) -> None:
    client = Client()
    client.force_login(user)
    for label, url in (
        ("page 1", "/admin/loans/loan/"),
        ("page 1000", "/admin/loans/loan/?p=1000"),
        ("filter status ACTIVE", "/admin/loans/loan/?status__exact=ACTIVE"),
        ("search by borrower name", "/admin/loans/loan/?q=Borrower4242"),
    ):
        client.get(url)
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        queries = len(ctx.captured_queries)  # read now: every request resets the query log
        assert response.status_code == 200, response.status_code
        samples = timed(lambda url=url: client.get(url), 5)
        print(
            f"admin changelist, {count:,} loans, {label}: {queries} queries, "
            f"median {statistics.median(samples) * 1000:.0f} ms (goal <= 300 ms)"
        )


def run() -> None:
    bench_schedule_generation()
    user = get_user_model().objects.create_superuser("bench", password="bench-pass-123")
    BusinessDate.objects.update_or_create(pk=1, defaults={"date": AS_OF})
    bench_loan_detail(user)
    bench_changelist(user)


def main() -> None:
    with throwaway_database():
        run()
