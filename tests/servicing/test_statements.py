"""``servicing.statements``: the bound INSERT and UPDATE store what the ORM's ``create`` and
``update`` store (every column compared), and ``run_together`` gives each statement's own
result, in order, whether or not the database takes them in one round trip."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import timezone

from servicing.models import DispatchAttempt, LoanDailySnapshot, ScheduledPayment
from servicing.statements import bound_insert, bound_update, run_together


def _columns(obj) -> dict:
    row = type(obj).objects.get(pk=obj.pk)
    values = {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}
    values.pop("id")
    return values


def test_bound_insert_stores_what_create_stores(loan):
    now = timezone.now()
    values = {
        "loan_id": loan.pk,
        "status": "ACTIVE",
        "sub_status": None,
        "servicing_status": "ACTIVE",
        "delinquency_bucket": "CURRENT",
        "days_past_due": 3,
        "amount_past_due": Decimal("12.34"),
        "principal_outstanding": Decimal("1000.01"),
        "interest_outstanding": Decimal("0.99"),
        "fees_outstanding": Decimal("0.00"),
        "payoff_total": Decimal("1001.00"),
        "job_id": None,
        "created_at": now,
    }
    by_orm = LoanDailySnapshot.objects.create(business_date=date(2026, 1, 20), **values)
    (count,) = run_together(
        bound_insert(LoanDailySnapshot, business_date=date(2026, 1, 21), **values)
    )
    assert count == 1
    bound = LoanDailySnapshot.objects.get(loan=loan, business_date=date(2026, 1, 21))
    expected = _columns(by_orm) | {"business_date": date(2026, 1, 21)}
    assert _columns(bound) == expected


def test_bound_insert_returning_and_update_match_the_orm(loan):
    now = timezone.now()
    item = ScheduledPayment.objects.create(
        loan=loan, amount=Decimal("5.00"), scheduled_date=date(2026, 1, 20)
    )
    fields = {
        "loan_id": loan.pk,
        "kind": "PAYMENT",
        "scheduled_payment_id": item.pk,
        "scheduled_communication_id": None,
        "channel": "ACH",
        "amount": Decimal("5.00"),
        "provider": "SimulatedAchProvider",
        "started_at": now,
    }
    by_orm = DispatchAttempt.objects.create(number=1, **fields)
    pk, updated = run_together(
        bound_insert(DispatchAttempt, returning=True, number=2, **fields),
        bound_update(
            ScheduledPayment,
            {"pk": item.pk, "status": "PENDING"},
            status="IN_FLIGHT",
            in_flight_since=now,
            claimed_until=None,
        ),
    )
    assert updated == 1
    bound = DispatchAttempt.objects.get(pk=pk)
    assert _columns(bound) == _columns(by_orm) | {"number": 2}
    item.refresh_from_db()
    assert (item.status, item.in_flight_since) == ("IN_FLIGHT", now)
    # a condition that no longer holds updates nothing (the conditional UPDATE's answer)
    (again,) = run_together(
        bound_update(ScheduledPayment, {"pk": item.pk, "status": "PENDING"}, status="FAILED")
    )
    assert again == 0
    item.refresh_from_db()
    assert item.status == "IN_FLIGHT"
