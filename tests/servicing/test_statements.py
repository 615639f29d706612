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


def test_the_bound_audit_row_and_transaction_store_what_the_orm_stores(loan, operator):
    """``versions.record_event`` (a bound INSERT, JSON columns adapted as the field would) and
    the repayment command's bound transaction INSERT write the rows the ORM's ``create``
    writes, every column compared (the creation times apart)."""
    from loans import versions
    from loans.models import LoanEvent, Transaction
    from loans.services import post_transaction

    figures = {
        "input": {"amount": Decimal("1.50"), "date": date(2026, 1, 2), "nested": [1, "a"]},
        "changes": {"status": ("ACTIVE", "CLOSED")},
        "result": {"transactionId": 7},
    }
    bound = versions.record_event(
        loan=loan, command="probe", actor=operator, as_of=date(2026, 1, 2), reason="r", **figures
    )
    by_orm = LoanEvent.objects.create(
        loan=loan,
        command="probe",
        actor=operator,
        business_date=date(2026, 1, 2),
        reason="r",
        input=versions.jsonable(figures["input"]),
        changes=versions.jsonable({"status": ["ACTIVE", "CLOSED"]}),
        result=figures["result"],
    )
    drop = {"created_at"}
    assert {k: v for k, v in _columns(bound).items() if k not in drop} == {
        k: v for k, v in _columns(by_orm).items() if k not in drop
    }
    tx = post_transaction(
        loan=loan,
        type="REPAYMENT",
        on=loan.setup.contract_date,
        amount=Decimal("1.00"),
        actor=operator,
        external_id="probe-1",
        note="n",
    )
    stored = Transaction.objects.get(pk=tx.pk)
    assert {f.attname: getattr(stored, f.attname) for f in Transaction._meta.concrete_fields} == {
        f.attname: getattr(tx, f.attname) for f in Transaction._meta.concrete_fields
    }
